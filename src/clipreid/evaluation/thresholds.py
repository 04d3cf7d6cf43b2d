"""Calibrated match thresholds: which distance means "same identity" when the identity may
not be in the gallery.

The evaluator counts, in fine bins, the distances of every cross-camera query-gallery
pair of the same identity (genuine) and of different identities (impostor); a
threshold at a target false match rate (FMR) is the largest distance at which at most
that fraction of impostor pairs match, and its true match rate (TMR) the fraction of
genuine pairs within it. With camera filtering off (data sets without cameras) every
pair counts.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


class CrossCameraPairs:
    """Genuine and impostor distance counts of cross-camera pairs, ``bins`` bins over
    [0, ``upper``] (the distance's range)."""

    def __init__(self, bins: int, upper: float, g_camids: np.ndarray, cross_camera: bool):
        self.bins, self.upper = int(bins), float(upper)
        self.g_camids = np.asarray(g_camids)
        self.cross_camera = cross_camera
        self.genuine = np.zeros(self.bins, dtype=np.int64)
        self.impostor = np.zeros(self.bins, dtype=np.int64)

    def _count(self, values: np.ndarray) -> np.ndarray:
        index = (values.reshape(-1) * (self.bins / self.upper)).astype(np.int64)
        return np.bincount(np.clip(index, 0, self.bins - 1, out=index), minlength=self.bins)

    def add(self, dist: np.ndarray, q_camids: np.ndarray, same_idx: np.ndarray,
            member: np.ndarray) -> None:
        """One block: ``dist`` (B, G) distances, the block's query cameras, and the
        gallery indices of each query's identity (``same_idx``, valid where ``member``)."""
        rows = np.arange(len(dist))[:, None]
        same = dist[rows, same_idx]
        if self.cross_camera:
            cross = q_camids[:, None] != self.g_camids[None, :]
            every = self._count(dist[cross])
            genuine = member & (self.g_camids[same_idx] != q_camids[:, None])
        else:
            every = self._count(dist)
            genuine = member
        counted = self._count(same[genuine])
        self.genuine += counted
        self.impostor += every - counted

    def result(self) -> dict:
        return {"edges": np.linspace(0.0, self.upper, self.bins + 1),
                "genuine": self.genuine.copy(), "impostor": self.impostor.copy()}


def rate_name(fmr: float) -> str:
    """``tmr_at_fmr_1e-2`` for 0.01: a metric name without dots (DVC nests dotted keys)."""
    exponent = math.floor(math.log10(fmr) + 1e-12)
    mantissa = fmr / 10 ** exponent
    text = f"{mantissa:.3g}".replace(".", "p")
    return f"tmr_at_fmr_{text}e{exponent}"


def fit_thresholds(pairs: dict, targets: Sequence[float]) -> list[dict]:
    """Per target FMR: the threshold ``distance`` (match when distance <= it), the FMR and
    TMR it reaches on these pairs, and the pair counts. Empty when a kind of pair is
    missing."""
    genuine, impostor, edges = pairs["genuine"], pairs["impostor"], pairs["edges"]
    if genuine.sum() == 0 or impostor.sum() == 0:
        return []
    fmr = np.cumsum(impostor) / impostor.sum()
    tmr = np.cumsum(genuine) / genuine.sum()
    out = []
    for target in targets:
        within = np.flatnonzero(fmr <= target)
        if len(within):
            i = int(within[-1])
            distance, reached, true = float(edges[i + 1]), float(fmr[i]), float(tmr[i])
        else:
            distance, reached, true = 0.0, 0.0, 0.0
        out.append({"fmr_target": float(target), "distance": distance, "fmr": reached,
                    "tmr": true})
    return out


def roc_table(pairs: dict, points: int = 200) -> list[tuple[float, float]]:
    """(FMR, TMR) at log-spaced false match rates down to one impostor pair."""
    genuine, impostor = pairs["genuine"], pairs["impostor"]
    if genuine.sum() == 0 or impostor.sum() == 0:
        return []
    fmr = np.cumsum(impostor) / impostor.sum()
    tmr = np.cumsum(genuine) / genuine.sum()
    lowest = max(1.0 / impostor.sum(), 1e-9)
    rows = []
    for target in np.logspace(math.log10(lowest), 0.0, points):
        within = np.flatnonzero(fmr <= target)
        rows.append((float(target), float(tmr[within[-1]]) if len(within) else 0.0))
    return rows
