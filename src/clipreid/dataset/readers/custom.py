"""Custom data sets: one CSV file describing the user's own images.

The CSV has a header and the columns ``path,pid,camid,split`` (other columns are
ignored)::

    path,pid,camid,split
    images/train/alice_01.jpg,1,0,train
    images/query/bob_03.jpg,2,1,query
    /abs/path/to/bob_07.jpg,2,0,gallery

- ``path``: the image, relative to the CSV file's folder, or absolute;
- ``pid``: integer identity; -1 marks junk (dropped), 0 distractors (gallery only);
- ``camid``: integer camera, 0-based, below ``dataset.num_cameras`` (use 0 when unknown);
- ``split``: ``train``, ``query``, ``gallery`` or ``test``. Use either query + gallery, or
  ``test`` (query/gallery drawn per trial, as for VehicleID), not both.

Every listed image must exist (checked with one ``stat`` per row; not opened).
"""

from __future__ import annotations

import codecs
import csv
import os
import re
from pathlib import Path

import pandas as pd

from clipreid.dataset.manifest import expected_splits, make_manifest, require_splits
from clipreid.dataset.readers._common import require_file
from clipreid.errors import DatasetError

CSV_COLUMNS = ("path", "pid", "camid", "split")
INT = re.compile(r"-?\d+")


def _decoded_lines(csv_path: Path) -> list[str]:
    """The CSV's lines as text: UTF-8, a leading byte-order mark skipped; a line that is
    not UTF-8 stops the reading with one clear line naming it."""
    raw = csv_path.read_bytes().removeprefix(codecs.BOM_UTF8)
    lines = []
    for number, chunk in enumerate(raw.splitlines(keepends=True), start=1):
        try:
            lines.append(chunk.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise DatasetError(
                f"{csv_path}, line {number}: not UTF-8 (byte {chunk[exc.start]:#04x} at column "
                f"{exc.start + 1}); save the CSV as UTF-8 (with or without a byte-order mark)"
            ) from None
    return lines


def read_csv_dataset(csv_path: str | os.PathLike, *, num_cameras: int) -> pd.DataFrame:
    """Read a custom CSV (see module docstring) into a manifest."""
    csv_path = require_file(csv_path, what="custom data set CSV")
    base = csv_path.parent
    rows, missing = [], []
    reader = csv.DictReader(_decoded_lines(csv_path))
    absent = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if absent:
        raise DatasetError(
            f"{csv_path}: missing column(s) {absent}; the header must name "
            f"{','.join(CSV_COLUMNS)}"
        )
    for number, record in enumerate(reader, start=2):
        where = f"{csv_path}, line {number}"
        path, pid, camid, split = (str(record[c] or "").strip() for c in CSV_COLUMNS)
        if not path or not INT.fullmatch(pid) or not INT.fullmatch(camid):
            raise DatasetError(
                f"{where}: expected a path and integer pid and camid, got "
                f"path={path!r} pid={pid!r} camid={camid!r}; fix the row"
            )
        if not 0 <= int(camid) < num_cameras:
            raise DatasetError(
                f"{where}: camid {camid} outside 0..{num_cameras - 1} (0-based); fix "
                f"the row or set dataset.num_cameras"
            )
        if split not in ("train", "query", "gallery", "test"):
            raise DatasetError(
                f"{where}: split {split!r} unknown; use train, query, gallery or test"
            )
        if int(pid) == -1:
            continue
        full = Path(path) if Path(path).is_absolute() else base / path
        if not full.is_file():
            missing.append(f"line {number}: {full}")
        rows.append((str(full), int(pid), int(camid), split))
    if missing:
        shown = "; ".join(missing[:5])
        raise DatasetError(
            f"{csv_path}: {len(missing)} listed image(s) not found ({shown}"
            f"{'; ...' if len(missing) > 5 else ''}); paths are relative to the CSV's folder"
        )
    df = make_manifest(rows, source=f"custom CSV {csv_path}")
    source = f"custom CSV {csv_path}"
    require_splits(df, expected_splits(df, source=source), source=source)
    return df

