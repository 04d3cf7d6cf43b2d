"""The tables the expectations run over: the manifest as read, and frames derived from it.

Rules that span rows (identities shared by train and test, a query's cross-camera gallery
matches, byte-identical files in two splits) become per-row rules over a derived frame:
one row per identity, per query, per content hash. Every frame keeps the columns that
name an offending row (CSV line, path, pid, example files) so that a failure points at
the data.

``line`` is the manifest's CSV line number: the header is line 1, the first row line 2.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from clipreid.dataset.manifest import COLUMNS, SPLITS
from clipreid.errors import DatasetError
from clipreid.validation.images import FIELDS

INT_PATTERN = r"^-?\d+$"
INT_COLUMNS = ("pid", "camid", "label")


@dataclass
class Frame:
    """One table to validate: its name (also the suite's), the data and the naming columns."""

    name: str
    df: pd.DataFrame
    index_columns: list[str]
    description: str = ""
    meta: dict = field(default_factory=dict)


def load_raw_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read the manifest CSV as text (nothing coerced), with a ``line`` column added.

    Only empty cells count as missing: a path such as ``NA`` stays a string."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"manifest {path} not found; run the `prepare` stage first")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DatasetError(f"manifest {path} is not a readable CSV file: {exc}") from exc
    raw.insert(0, "line", range(2, len(raw) + 2))
    return raw


def missing_columns(raw: pd.DataFrame) -> list[str]:
    """The manifest columns that ``raw`` lacks."""
    return [c for c in COLUMNS if c not in raw.columns]


def typed_rows(raw: pd.DataFrame) -> pd.DataFrame:
    """The rows whose ids are integers, split is known and path is set, with int columns.

    Rows that fail these schema rules are left out here (the schema suite reports them),
    so the derived rules run on what can be read. Adds ``expected_label``: the dense rank
    of pid among train identities for train rows, -1 elsewhere."""
    ok = raw["path"].notna() & raw["split"].isin(SPLITS)
    for col in INT_COLUMNS:
        ok &= raw[col].fillna("").str.match(INT_PATTERN)
    rows = raw.loc[ok, ["line", *COLUMNS]].copy()
    for col in INT_COLUMNS:
        rows[col] = rows[col].astype("int64")
    train = rows["split"] == "train"
    ranks = {pid: i for i, pid in enumerate(sorted(rows.loc[train, "pid"].unique()))}
    rows["expected_label"] = -1
    rows.loc[train, "expected_label"] = rows.loc[train, "pid"].map(ranks)
    rows["expected_label"] = rows["expected_label"].astype("int64")
    return rows.reset_index(drop=True)


def _cameras_text(cameras) -> str:
    return " ".join(str(c) for c in sorted(cameras))


def split_summary(rows: pd.DataFrame, required: tuple[str, ...], num_cameras: int) -> pd.DataFrame:
    """One row per required or present split: image and identity counts, camera sets.

    ``missing_cameras`` lists the cameras a split never sees ('' for an empty split,
    which the ``empty_split`` check reports)."""
    present = set(rows["split"])
    splits = [s for s in SPLITS if s in present or s in required]
    records = []
    for split in splits:
        part = rows[rows["split"] == split]
        cameras = set(part["camid"].tolist())
        records.append(
            {
                "split": split,
                "required": split in required,
                "images": len(part),
                "identities": int(part["pid"].nunique()),
                "cameras": _cameras_text(cameras),
                "missing_cameras": _cameras_text(set(range(num_cameras)) - cameras)
                if len(part)
                else "",
            }
        )
    return pd.DataFrame.from_records(
        records, columns=["split", "required", "images", "identities", "cameras", "missing_cameras"]
    )


def _per_pid(rows: pd.DataFrame) -> pd.DataFrame:
    """pid -> number of images and the first image's path."""
    return rows.groupby("pid")["path"].agg(images="size", example="first")


def identity_roles(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per identity (distractors, pid 0, aside): its train and test image counts.

    ``role`` is ``train``, ``test`` (query, gallery or test) or ``both`` (an overlap)."""
    real = rows[rows["pid"] > 0]
    is_train = real["split"] == "train"
    train = _per_pid(real[is_train]).add_prefix("train_")
    test = _per_pid(real[~is_train]).add_prefix("test_")
    ids = train.join(test, how="outer")
    ids[["train_images", "test_images"]] = (
        ids[["train_images", "test_images"]].fillna(0).astype("int64")
    )
    ids[["train_example", "test_example"]] = ids[["train_example", "test_example"]].fillna("")
    has_train, has_test = ids["train_images"] > 0, ids["test_images"] > 0
    ids["role"] = "train"
    ids.loc[has_test, "role"] = "test"
    ids.loc[has_train & has_test, "role"] = "both"
    return ids.reset_index()[
        ["pid", "role", "train_images", "test_images", "train_example", "test_example"]
    ]


def identities_of(rows: pd.DataFrame, split: str, *, skip_distractors: bool) -> pd.DataFrame:
    """One row per identity of ``split``: pid, its image count, one example path."""
    part = rows[rows["split"] == split]
    if skip_distractors:
        part = part[part["pid"] > 0]
    return _per_pid(part).reset_index()[["pid", "images", "example"]]


def query_matches(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per query image: its gallery images of the same identity, in all and on
    another camera (the protocol ignores same-camera matches, so a query needs one)."""
    query = rows[rows["split"] == "query"][["line", "path", "pid", "camid"]]
    gallery = rows[rows["split"] == "gallery"]
    per_pid = gallery.groupby("pid").size().rename("gallery_images")
    per_cam = gallery.groupby(["pid", "camid"]).size().rename("same_camera")
    out = query.join(per_pid, on="pid").join(per_cam, on=["pid", "camid"])
    out[["gallery_images", "same_camera"]] = (
        out[["gallery_images", "same_camera"]].fillna(0).astype("int64")
    )
    out["cross_camera_gallery"] = out["gallery_images"] - out["same_camera"]
    return out.drop(columns="same_camera").reset_index(drop=True)


def inspections_frame(inspections: list[tuple]) -> pd.DataFrame:
    """The image inspections (see ``images.FIELDS``) as a frame, with ``min_side`` added."""
    info = pd.DataFrame.from_records(inspections, columns=list(FIELDS))
    info["min_side"] = info[["width", "height"]].min(axis=1, skipna=False)
    info["max_side"] = info[["width", "height"]].max(axis=1, skipna=False)
    info["error"] = info["error"].fillna("")
    return info


def image_files(raw: pd.DataFrame, info: pd.DataFrame) -> pd.DataFrame:
    """One row per manifest row with a path: what the inspection of its file found."""
    rows = raw.loc[raw["path"].notna(), ["line", "path", "split"]]
    return rows.merge(info, on="path", how="left").reset_index(drop=True)


def image_duplicates(files: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct content (SHA-256) of decodable files: in how many train and
    test images it appears, with an example of each. ``role`` ``both`` is a leak."""
    decoded = files["decodes"] == True  # noqa: E712 (an object column: True, False or None)
    ok = files[decoded & files["split"].isin(SPLITS)]
    is_train = ok["split"] == "train"
    agg = {"images": "size", "example": "first"}
    train = ok[is_train].groupby("sha256")["path"].agg(**agg).add_prefix("train_")
    test = ok[~is_train].groupby("sha256")["path"].agg(**agg).add_prefix("test_")
    dup = train.join(test, how="outer")
    dup[["train_images", "test_images"]] = (
        dup[["train_images", "test_images"]].fillna(0).astype("int64")
    )
    dup[["train_example", "test_example"]] = dup[["train_example", "test_example"]].fillna("")
    dup["role"] = "train"
    dup.loc[dup["test_images"] > 0, "role"] = "test"
    dup.loc[(dup["train_images"] > 0) & (dup["test_images"] > 0), "role"] = "both"
    return dup.reset_index()[
        ["sha256", "role", "train_images", "test_images", "train_example", "test_example"]
    ]
