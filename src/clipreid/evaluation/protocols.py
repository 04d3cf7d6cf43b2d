"""Evaluation protocols: which test images are queries and which the gallery.

- query/gallery data sets (Market-1501, DukeMTMC-reID, MSMT17, VeRi-776, ...): one
  partition, as the manifest's ``split`` column says;
- ``test`` data sets (VehicleID): per trial, one random image of each identity goes to the
  gallery and the others are queries; metrics are averaged over seeded trials (the
  published protocol averages 10).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from clipreid.config.schema import TrialsConfig
from clipreid.dataset.manifest import require_splits
from clipreid.errors import DatasetError

Partition = tuple[np.ndarray, np.ndarray]  # (query indices, gallery indices)


def draw_trial(test_df: pd.DataFrame, seed: int) -> Partition:
    """One trial: per identity, one random image goes to the gallery and the others are
    queries. Returns sorted 0-based row positions in ``test_df``."""
    pids = test_df["pid"].to_numpy()
    if len(pids) == 0:
        raise DatasetError("no test images to draw a trial from")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pids))
    _, first = np.unique(pids[order], return_index=True)
    gallery = np.sort(order[first])
    is_query = np.ones(len(pids), dtype=bool)
    is_query[gallery] = False
    return np.flatnonzero(is_query), gallery


def draw_trials(test_df: pd.DataFrame, num_trials: int = 10, seed: int = 0) -> list[Partition]:
    """``num_trials`` trials of :func:`draw_trial`, trial ``t`` drawn with seed ``seed + t``."""
    return [draw_trial(test_df, seed + t) for t in range(int(num_trials))]


def test_partitions(manifest: pd.DataFrame, trials: TrialsConfig,
                    source: str) -> tuple[pd.DataFrame, list[Partition]]:
    """(test rows, [(query index, gallery index), ...]) of the manifest's protocol."""
    if (manifest["split"] == "test").any():
        test = manifest[manifest["split"] == "test"].reset_index(drop=True)
        return test, draw_trials(test, trials.count, trials.seed)
    require_splits(manifest, ["query", "gallery"], source=source)
    test = pd.concat([manifest[manifest["split"] == "query"],
                      manifest[manifest["split"] == "gallery"]]).reset_index(drop=True)
    is_query = (test["split"] == "query").to_numpy()
    return test, [(np.flatnonzero(is_query), np.flatnonzero(~is_query))]


test_partitions.__test__ = False

SPLIT_COLUMNS = ("path", "pid", "camid", "sha256")


def split_digest(test: pd.DataFrame, partitions: list[Partition]) -> str:
    """The identity of a test split: SHA-256 of what the metrics are measured on, i.e. each
    test image (path, identity, camera, and its content's SHA-256 where the manifest has
    it, as the validated manifest does) and the query/gallery partitions. Two evaluations
    with the same digest score the same images against the same ground truth."""
    digest = hashlib.sha256()
    columns = [c for c in SPLIT_COLUMNS if c in test.columns]
    digest.update(test[columns].to_csv(index=False, lineterminator="\n").encode())
    for query, gallery in partitions:
        for part in (query, gallery):
            digest.update(np.asarray(part, dtype=np.int64).tobytes())
            digest.update(b"|")
    return digest.hexdigest()  # not a pytest test, despite its name
