"""The manifest: the one table every stage after `prepare` reads.

One row per image, columns:

- ``path``  image file, relative to the data set's root (``dataset.root``); absolute only
            for a custom CSV's image outside that root;
- ``pid``   the data set's identity number (int); 0 marks Market-style distractors;
            junk images (pid -1) are dropped by the readers, as the published protocol does;
- ``camid`` camera index (int, 0-based); data sets without cameras use 0 throughout;
- ``split`` one of ``train``, ``query``, ``gallery``; ``test`` marks test images of data sets
            whose query/gallery partition is drawn at evaluation time (VehicleID);
- ``label`` contiguous training label 0..N-1 in order of pid for ``train`` rows, -1 elsewhere.

The validated manifest (written by the ``validate`` stage) adds ``sha256``, the digest of
each image's bytes: the stages after it identify images by content, not by location.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from clipreid.errors import DatasetError
from clipreid.io import atomic_path

COLUMNS = ["path", "pid", "camid", "split", "label"]
DIGEST = "sha256"   # the validated manifest's extra column
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


def relative_to_root(df: pd.DataFrame, root: str | os.PathLike) -> pd.DataFrame:
    """``df`` with each path inside ``root`` made relative to it (POSIX separators)."""
    base = Path(os.path.abspath(root))
    out = df.copy()

    def relative(path: str) -> str:
        full = Path(os.path.abspath(path))
        try:
            return full.relative_to(base).as_posix()
        except ValueError:  # outside the root (a custom CSV may list such images)
            return str(full)

    out["path"] = [relative(p) for p in out["path"]]
    return out


def image_paths(df: pd.DataFrame, root: str | os.PathLike) -> list[str]:
    """The files of the manifest's images: each path joined to the data set's root."""
    base = Path(root)
    return [str(base / p) for p in df["path"]]


def save_manifest(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write the manifest CSV atomically (temporary file, then rename)."""
    columns = COLUMNS + ([DIGEST] if DIGEST in df.columns else [])
    with atomic_path(path) as tmp:
        df[columns].to_csv(tmp, index=False)


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
