"""Tiny Market-1501-layout data sets, clean or broken in one known way, for the
validation tests (and for end-to-end tests of the pipeline: ``build_market_dataset``
writes the image folders a Market reader reads, plus the manifest the validation reads).

Layout under ``root``::

    market/bounding_box_train/0002_c1s1_000001_00.jpg   (pid 2, camera 1 -> camid 0)
    market/query/...
    market/bounding_box_test/...                        (the gallery; pid 0 = distractor)
    manifest.csv                                        (path, pid, camid, split, label)

The clean set has 3 cameras, 3 train identities (2 images each), 3 query images and a
gallery with a cross-camera match for each query, every camera in every split, and
RGB, grayscale (L) and CMYK JPEGs. Each broken case changes one thing; ``CASES`` says
which check must catch it and which file (or split) the message must name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from clipreid.dataset.manifest import make_manifest, save_manifest

NUM_CAMERAS = 3
DATASET_CFG = {"name": "market1501", "num_cameras": NUM_CAMERAS, "format": "market1501"}
FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
SIZE = (32, 64)  # width, height: a small person crop


@dataclass(frozen=True)
class Record:
    """One image of the data set: where it goes, what it shows, how it is stored."""

    split: str
    pid: int
    camid: int
    seq: int = 1
    mode: str = "RGB"
    size: tuple[int, int] = SIZE

    @property
    def name(self) -> str:
        return f"{self.pid:04d}_c{self.camid + 1}s1_{self.seq:06d}_00.jpg"

    @property
    def relpath(self) -> str:
        return f"{FOLDERS[self.split]}/{self.name}"


def clean_records() -> list[Record]:
    """The clean data set (see the module docstring)."""
    return [
        Record("train", 2, 0), Record("train", 2, 1),
        Record("train", 7, 2, mode="L"), Record("train", 7, 0, mode="CMYK"),
        Record("train", 11, 1), Record("train", 11, 2),
        Record("query", 20, 0), Record("query", 23, 1), Record("query", 31, 2),
        Record("gallery", 20, 1), Record("gallery", 20, 2),
        Record("gallery", 23, 0), Record("gallery", 23, 2),
        Record("gallery", 31, 0), Record("gallery", 31, 1),
        Record("gallery", 0, 2),
    ]  # fmt: skip


@dataclass(frozen=True)
class Case:
    """A broken data set: the check that must fail and the file (or split) it must name.

    ``layout`` is False when the fault cannot be shown by a folder alone (the manifest
    names a file that is not there). ``reader_rejects`` is True when the Market reader of
    `prepare` already refuses the folder (so in a pipeline run `prepare` fails first)."""

    check: str
    culprit: str
    layout: bool = True
    reader_rejects: bool = False


CASES: dict[str, Case] = {
    "identity_overlap": Case("identity_overlap", "bounding_box_train/0023_c1s1_000009_00.jpg"),
    "no_cross_camera_match": Case("cross_camera_match", "query/0031_c3s1_000001_00.jpg"),
    "camera_out_of_range": Case(
        "camera_range", "bounding_box_test/0023_c4s1_000001_00.jpg", reader_rejects=True
    ),
    "truncated_jpeg": Case("file_decodes", "bounding_box_test/0020_c2s1_000001_00.jpg"),
    "zero_byte_file": Case("file_decodes", "bounding_box_train/0011_c2s1_000001_00.jpg"),
    "text_named_jpg": Case("file_decodes", "bounding_box_test/0023_c3s1_000001_00.jpg"),
    "empty_query_split": Case("empty_split", "query", reader_rejects=True),
    "duplicate_across_splits": Case(
        "train_test_duplicates", "bounding_box_test/0031_c1s1_000001_00.jpg"
    ),
    "missing_file": Case("file_exists", "bounding_box_test/0020_c3s1_000001_00.jpg", layout=False),
    "image_too_small": Case("image_min_size", "bounding_box_test/0000_c3s1_000001_00.jpg"),
}


def _records_for(case: str) -> list[Record]:
    records = clean_records()
    if case == "identity_overlap":
        records += [Record("train", 23, 0, seq=9), Record("train", 23, 1, seq=10)]
    elif case == "no_cross_camera_match":  # query 31 is on camera 2: so is all its gallery
        records = [r for r in records if not (r.split == "gallery" and r.pid == 31)]
        records += [Record("gallery", 31, 2, seq=1), Record("gallery", 31, 2, seq=2)]
    elif case == "camera_out_of_range":
        records = [
            r for r in records if not (r.split == "gallery" and r.pid == 23 and r.camid == 0)
        ]
        records.append(Record("gallery", 23, NUM_CAMERAS))
    elif case == "empty_query_split":
        records = [r for r in records if r.split != "query"]
    elif case == "image_too_small":
        records = [r for r in records if r.pid != 0]
        records.append(Record("gallery", 0, 2, size=(10, 12)))
    return records


def write_image(path: Path, record: Record) -> None:
    """Write a noise image whose bytes are unique to ``record``."""
    seed = int.from_bytes(hashlib.sha256(repr(record).encode()).digest()[:4], "little")
    rng = np.random.default_rng(seed)
    width, height = record.size
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGB")
    if record.mode != "RGB":
        image = image.convert(record.mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="JPEG", quality=90)


def _break_files(case: str, image_root: Path) -> None:
    """Damage files after they were written (faults of bytes, not of names)."""
    target = image_root / CASES[case].culprit if case in CASES else None
    if case == "truncated_jpeg":
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2])
    elif case == "zero_byte_file":
        target.write_bytes(b"")
    elif case == "text_named_jpg":
        target.write_text("this is not an image\n")
    elif case == "duplicate_across_splits":
        target.write_bytes((image_root / "bounding_box_train/0002_c1s1_000001_00.jpg").read_bytes())


@dataclass
class BuiltDataset:
    """A data set written by :func:`build_market_dataset`."""

    case: str
    image_root: Path
    manifest_path: Path
    dataset_cfg: dict = field(default_factory=lambda: dict(DATASET_CFG))

    @property
    def expected(self) -> Case | None:
        return CASES.get(self.case)


def build_market_dataset(
    root: str | Path, case: str = "clean", *, manifest: bool = True
) -> BuiltDataset:
    """Write the data set ``case`` ('clean' or a key of ``CASES``) under ``root``.

    Images go to ``root/market/<Market folders>``; with ``manifest`` the manifest (as the
    Market reader makes it: absolute paths, 0-based camids, train labels) goes to
    ``root/manifest.csv``. For ``missing_file`` the file is deleted after the manifest
    was written (so without a manifest that case is the clean folder)."""
    if case != "clean" and case not in CASES:
        raise KeyError(f"unknown case {case!r}; known: clean, {sorted(CASES)}")
    root = Path(root)
    image_root = root / "market"
    records = _records_for(case)
    for record in records:
        write_image(image_root / record.relpath, record)
    for folder in FOLDERS.values():
        (image_root / folder).mkdir(parents=True, exist_ok=True)
    _break_files(case, image_root)
    manifest_path = root / "manifest.csv"
    if manifest:
        rows = [(str(image_root / r.relpath), r.pid, r.camid, r.split) for r in records]
        save_manifest(make_manifest(rows, source=str(image_root)), manifest_path)
    if case == "missing_file":
        (image_root / CASES[case].culprit).unlink()
    return BuiltDataset(case, image_root, manifest_path)


def build_vehicle_dataset(
    root: str | Path, *, single_image_test_identity: bool = False
) -> BuiltDataset:
    """A VehicleID-style set: ``train`` and ``test`` splits, no cameras (camid 0).

    With ``single_image_test_identity`` test identity 12 has one image, which the
    ``test_identity_images`` check must name."""
    root = Path(root)
    image_root = root / "vehicle" / "image"
    records = [Record("train", pid, 0, seq=s) for pid in (1, 2, 3) for s in (1, 2)]
    records += [Record("test", pid, 0, seq=s) for pid in (10, 11, 12) for s in (1, 2)]
    if single_image_test_identity:
        records = [r for r in records if not (r.pid == 12 and r.seq == 2)]
    rows = []
    for r in records:
        path = image_root / f"{r.pid:07d}_{r.seq:02d}.jpg"
        write_image(path, r)
        rows.append((str(path), r.pid, r.camid, r.split))
    manifest_path = root / "manifest.csv"
    save_manifest(make_manifest(rows, source=str(image_root)), manifest_path)
    case = "single_image_test_identity" if single_image_test_identity else "clean"
    return BuiltDataset(
        case,
        image_root,
        manifest_path,
        {"name": "vehicleid", "num_cameras": 1, "format": "vehicleid", "test_size": 800},
    )
