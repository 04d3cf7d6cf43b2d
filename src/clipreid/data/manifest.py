"""The manifest: the one table every stage after `prepare` reads.

One row per image, columns:

- ``path``  image file, as the reader found it (the data-set root joined with the file's
            path inside it; relative to the working directory when the root is);
- ``pid``   the data set's identity number (int); 0 marks Market-style distractors;
            junk images (pid -1) are dropped by the readers, as the published protocol does;
- ``camid`` camera index (int, 0-based); data sets without cameras use 0 throughout;
- ``split`` one of ``train``, ``query``, ``gallery``; ``test`` marks test images of data sets
            whose query/gallery partition is drawn at evaluation time (VehicleID);
- ``label`` contiguous training label 0..N-1 in order of pid for ``train`` rows, -1 elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from clipreid.errors import DatasetError
from clipreid.io import atomic_path

COLUMNS = ["path", "pid", "camid", "split", "label"]
SPLITS = ("train", "query", "gallery", "test")


def assign_train_labels(df: pd.DataFrame) -> pd.DataFrame:
    """Return a copy with ``label`` set: train pids mapped to 0..N-1 in sorted order."""
    df = df.copy()
    train = df["split"] == "train"
    pids = sorted(df.loc[train, "pid"].unique())
    mapping = {pid: i for i, pid in enumerate(pids)}
    df["label"] = -1
    df.loc[train, "label"] = df.loc[train, "pid"].map(mapping)
    df["label"] = df["label"].astype(int)
    return df


def make_manifest(rows, *, source: str) -> pd.DataFrame:
    """Build a manifest from (path, pid, camid, split) tuples, with train labels assigned.

    ``source`` names where the rows came from, for error messages."""
    df = pd.DataFrame(list(rows), columns=["path", "pid", "camid", "split"])
    if df.empty:
        raise DatasetError(f"{source}: no images found; check the data set root and its layout")
    bad = sorted(set(df["split"]) - set(SPLITS))
    if bad:
        raise DatasetError(f"{source}: unknown split(s) {bad}; allowed: {list(SPLITS)}")
    df["pid"] = df["pid"].astype(int)
    df["camid"] = df["camid"].astype(int)
    return assign_train_labels(df)[COLUMNS]


def require_splits(df: pd.DataFrame, splits, *, source: str) -> None:
    """Fail with a clear message when one of ``splits`` has no rows."""
    for split in splits:
        if not (df["split"] == split).any():
            raise DatasetError(
                f"{source}: the '{split}' split is empty; the data set needs images in it"
            )


def expected_splits(df: pd.DataFrame, *, source: str) -> list[str]:
    """The splits a manifest must fill: ``train`` + ``test`` when it uses ``test`` (query
    and gallery drawn at evaluation time), else ``train`` + ``query`` + ``gallery``.
    A manifest that mixes ``test`` with ``query``/``gallery`` fails."""
    splits = set(df["split"])
    if "test" in splits:
        if splits & {"query", "gallery"}:
            raise DatasetError(
                f"{source}: mixes split 'test' with 'query'/'gallery'; use one or the other"
            )
        return ["train", "test"]
    return ["train", "query", "gallery"]


def save_manifest(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write the manifest CSV atomically (temporary file, then rename)."""
    with atomic_path(path) as tmp:
        df[COLUMNS].to_csv(tmp, index=False)


def load_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read a manifest CSV, checking that its columns are there."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"manifest {path} not found; run the `prepare` stage first")
    df = pd.read_csv(path, dtype={"path": str, "split": str})
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DatasetError(f"manifest {path} lacks column(s) {missing}; re-run `prepare`")
    return df
