"""Small helpers shared by the readers: folder checks, image listing, list-file parsing."""

from __future__ import annotations

import os
import re
from pathlib import Path

from clipreid.errors import DatasetError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
_INTEGER = re.compile(r"-?\d+")


def require_dir(path: str | os.PathLike, *, what: str) -> Path:
    """Return ``path`` as a Path; fail naming it when it is not an existing folder."""
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(
            f"{what}: folder {path} not found; point dataset.root at the data set's folder "
            f"(e.g. `-S dataset.root=/data/...`) and check that it was fully extracted"
        )
    return path


def require_file(path: str | os.PathLike, *, what: str) -> Path:
    """Return ``path`` as a Path; fail naming it when it is not an existing file."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(
            f"{what}: file {path} not found; point dataset.root at the data set's folder "
            f"and check that it was fully extracted"
        )
    return path


def image_names(folder: Path) -> list[str]:
    """Sorted names of the image files directly inside ``folder`` (hidden files and
    non-images such as ``Thumbs.db`` are skipped)."""
    with os.scandir(folder) as entries:
        names = [
            e.name
            for e in entries
            if not e.name.startswith(".")
            and e.name.lower().endswith(IMAGE_SUFFIXES)
            and e.is_file()
        ]
    return sorted(names)


def parse_pid_cam(
    name: str, pattern: re.Pattern, *, where: Path, expected: str
) -> tuple[int, int]:
    """Match ``name`` against ``pattern`` (groups ``pid`` and ``cam``) and return both as
    ints; fail naming the file and the expected form otherwise."""
    match = pattern.fullmatch(name)
    if match is None:
        raise DatasetError(
            f"{where / name}: file name does not parse (expected {expected}); "
            f"remove or rename the file, or check dataset.format"
        )
    return int(match.group("pid")), int(match.group("cam"))


def check_camera(cam: int, num_cameras: int, *, where: str) -> None:
    """Fail when a 1-based camera number lies outside 1..num_cameras."""
    if not 1 <= cam <= num_cameras:
        raise DatasetError(
            f"{where}: camera {cam} outside 1..{num_cameras}; check dataset.num_cameras "
            f"or the file name"
        )


def read_list_file(path: Path) -> list[tuple[int, str, int]]:
    """Parse a ``<relative path> <integer label>`` list file (MSMT17, VehicleID).

    Returns ``(line_number, relpath, label)`` for each non-blank line; a line that does
    not split into exactly those two fields fails, naming the file and the line."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or not _INTEGER.fullmatch(fields[1]):
                raise DatasetError(
                    f"{path}, line {number}: expected '<image path> <integer label>', "
                    f"got {line.strip()!r}; the list file is damaged: restore it from the "
                    f"data set's archive"
                )
            rows.append((number, fields[0], int(fields[1])))
    return rows
