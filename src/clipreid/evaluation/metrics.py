"""mAP, CMC and mINP under the Market-1501 protocol.

For each query, the gallery images with the query's identity AND the query's camera are
removed (``remove_same_camera=True``; data sets without cameras turn it off). The
remaining gallery images of the query's identity are its correct matches; a query with
none is skipped. With ``rank_i`` the rank (1-based) of the i-th correct match of a query
with ``n`` correct matches:

- AP = mean over i of ``i / rank_i`` (the precision at each correct match); mAP is the
  mean AP over valid queries;
- CMC[k-1] = fraction of valid queries whose first correct match has rank <= k;
- INP = ``n / rank_n`` (Ye et al., 2021); mINP is its mean over valid queries.

Ties in distance: lower gallery index ranks first (see :mod:`.ranking`).

Two entry points: :func:`evaluate` ranks a given distance matrix; :func:`evaluate_features`
computes the distances itself, one block of queries at a time, so the full matrix never
exists (MSMT17: 11,659 x 82,161).
"""

from __future__ import annotations

import numpy as np
import torch

from clipreid.errors import ConfigError, DatasetError
from clipreid.evaluation import inputs
from clipreid.evaluation.distance import (GalleryDistances, as_numpy, check_distance,
                                         distance_from_similarity, normalize)
from clipreid.evaluation.ranking import SameIdentityIndex, rank_block
from clipreid.evaluation.thresholds import CrossCameraPairs

#: Working memory one block may use in the worst case (every gallery image a candidate).
BLOCK_BUDGET_BYTES = 2 * 1024**3
#: Bytes of working memory per distance of a block in that worst case: measured with
#: tracemalloc, the block itself included, at most 15 for float32 and 30 for float64
#: distances (tests/evaluation checks the bound).
BYTES_PER_DISTANCE = 40
#: Upper end of the histogram range of each distance (both are >= 0).
DISTANCE_RANGE = {"euclidean": 4.0, "cosine": 2.0}


def default_block_size(num_gallery: int) -> int:
    """Queries per block so that one block stays within :data:`BLOCK_BUDGET_BYTES`
    (MSMT17, 82,161 gallery images: 653 queries; Market-1501, 15,913: 3,373)."""
    return max(1, BLOCK_BUDGET_BYTES // (BYTES_PER_DISTANCE * max(1, num_gallery)))


def _check_block_size(block_size, num_gallery: int) -> int:
    if block_size is None:
        return default_block_size(num_gallery)
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) \
            or block_size < 1:
        raise ConfigError(f"block_size must be a positive integer, got {block_size!r}")
    return int(block_size)


def _check_max_rank(max_rank) -> int:
    if isinstance(max_rank, bool) or not isinstance(max_rank, (int, np.integer)) or max_rank < 1:
        raise ConfigError(f"max_rank must be a positive integer, got {max_rank!r}")
    return int(max_rank)


class _Accumulator:
    """Collects the per-query results of the blocks and turns them into metrics."""

    def __init__(self, num_queries: int):
        self.ap = np.full(num_queries, np.nan)
        self.first_rank = np.zeros(num_queries, dtype=np.int64)
        self.last_rank = np.zeros(num_queries, dtype=np.int64)
        self.num_pos = np.zeros(num_queries, dtype=np.int64)

    def add(self, start: int, ranks) -> None:
        stop = start + len(ranks.ap)
        self.ap[start:stop] = ranks.ap
        self.first_rank[start:stop] = ranks.first_rank
        self.last_rank[start:stop] = ranks.last_rank
        self.num_pos[start:stop] = ranks.num_pos

    def result(self, max_rank: int) -> dict:
        valid = self.num_pos > 0
        num_valid = int(valid.sum())
        if num_valid == 0:
            raise DatasetError(
                "no query has a correct match in the gallery (same identity, and another "
                "camera when remove_same_camera is on); check the query/gallery split and "
                "the identity and camera labels")
        inp = np.full(len(valid), np.nan)
        inp[valid] = self.num_pos[valid] / self.last_rank[valid]
        hits = np.bincount(np.minimum(self.first_rank[valid], max_rank + 1),
                           minlength=max_rank + 2)
        cmc = np.cumsum(hits[1:max_rank + 1]) / num_valid
        return {
            "mAP": float(np.mean(self.ap[valid])),
            "cmc": cmc.astype(np.float64),
            "mINP": float(np.mean(inp[valid])),
            "num_queries": len(valid),
            "num_valid_queries": num_valid,
            "ap": self.ap.copy(),
            "inp": inp,
            "first_rank": self.first_rank.copy(),
            "num_positives": self.num_pos.copy(),
        }


def evaluate(distmat, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50, *,
             remove_same_camera: bool = True, block_size: int | None = None) -> dict:
    """Metrics of a (Q, G) distance matrix (numpy array or tensor, any float dtype).

    Returns a dict: ``mAP``, ``mINP`` (floats in [0, 1]), ``cmc`` (float array of length
    ``max_rank``; entries past the gallery size repeat the last value),
    ``num_queries``, ``num_valid_queries``, and per query ``ap`` and ``inp`` (NaN for
    skipped queries), ``first_rank`` (0 for skipped queries) and ``num_positives``.
    """
    max_rank = _check_max_rank(max_rank)
    if isinstance(distmat, torch.Tensor):
        dist = distmat.detach()
        if dist.dtype not in (torch.float32, torch.float64):  # integers, float16, bfloat16
            dist = dist.to(torch.float64)
        dist = dist if as_numpy(dist) is None else dist.numpy()
    else:
        dist = np.asarray(distmat)
    if dist.ndim != 2:
        raise DatasetError(
            f"distmat must be 2-D (queries x gallery), got shape {tuple(dist.shape)}")
    q_pids, g_pids = inputs.labels(q_pids, "q_pids"), inputs.labels(g_pids, "g_pids")
    q_cams, g_cams = inputs.labels(q_camids, "q_camids"), inputs.labels(g_camids, "g_camids")
    inputs.check_problem(dist.shape[0], dist.shape[1], q_pids, g_pids, q_cams, g_cams)
    if isinstance(dist, np.ndarray) and (dist.dtype.kind != "f" or dist.dtype.itemsize < 4):
        dist = dist.astype(np.float64)  # integers, float16
    inputs.check_finite(dist, "distmat")
    block = _check_block_size(block_size, dist.shape[1])

    index = SameIdentityIndex(g_pids, g_cams)
    acc = _Accumulator(dist.shape[0])
    for start in range(0, dist.shape[0], block):
        stop = min(start + block, dist.shape[0])
        same = index.lookup(q_pids[start:stop], q_cams[start:stop], remove_same_camera)
        part = dist[start:stop]
        part = part.clone() if isinstance(part, torch.Tensor) else np.array(part)
        acc.add(start, rank_block(part, *same))
    return acc.result(max_rank)


def evaluate_features(qf, gf, q_pids, g_pids, q_camids, g_camids, *,
                      distance: str = "euclidean", block_size: int | None = None,
                      device=None, max_rank: int = 50, remove_same_camera: bool = True,
                      histogram_bins: int = 0, pair_bins: int = 0) -> dict:
    """Metrics of query features ``qf`` (Q, D) against gallery features ``gf`` (G, D).

    Features are L2-normalised, then compared by ``distance`` (see
    :mod:`.distance`), ``block_size`` queries at a time (default: sized by
    :func:`default_block_size`) on ``device`` (default: where ``qf`` is). Returns what
    :func:`evaluate` returns on :func:`~.distance.pairwise_distance` of the same
    features, and with ``histogram_bins > 0`` also ``distance_histogram``: ``edges``
    (bins + 1) and the ``positive`` and ``negative`` counts of query-gallery pairs per bin
    (negative: another identity; same-camera pairs of the query's identity are in neither).
    With ``pair_bins > 0`` also ``pair_histogram``: genuine and impostor counts of
    cross-camera pairs (all pairs without camera filtering) for the match thresholds
    (:mod:`.thresholds`).
    """
    max_rank = _check_max_rank(max_rank)
    check_distance(distance)
    qf = inputs.features(qf, "qf")
    gf = inputs.features(gf, "gf")
    if qf.shape[1] != gf.shape[1]:
        raise DatasetError(f"qf has {qf.shape[1]} dimensions but gf has {gf.shape[1]}; "
                           "query and gallery features must come from the same model")
    device = torch.device(device) if device is not None else qf.device
    q_pids, g_pids = inputs.labels(q_pids, "q_pids"), inputs.labels(g_pids, "g_pids")
    q_cams, g_cams = inputs.labels(q_camids, "q_camids"), inputs.labels(g_camids, "g_camids")
    inputs.check_problem(qf.shape[0], gf.shape[0], q_pids, g_pids, q_cams, g_cams)
    block = _check_block_size(block_size, gf.shape[0])

    gallery = GalleryDistances(gf, distance, device)
    qn = normalize(qf.to(device))
    index = SameIdentityIndex(g_pids, g_cams)
    acc = _Accumulator(qf.shape[0])
    hist = _Histogram(histogram_bins, DISTANCE_RANGE[distance]) if histogram_bins else None
    pairs = CrossCameraPairs(pair_bins, DISTANCE_RANGE[distance], g_cams,
                             remove_same_camera) if pair_bins else None
    for start in range(0, qf.shape[0], block):
        stop = min(start + block, qf.shape[0])
        sim = gallery.similarities(qn[start:stop])
        same = index.lookup(q_pids[start:stop], q_cams[start:stop], remove_same_camera)
        if hist is None and pairs is None and as_numpy(sim) is not None:
            # only candidates become distances
            acc.add(start, rank_block(as_numpy(sim), *same, scale=gallery.scale))
            continue
        dist = distance_from_similarity(sim, distance)
        if hist is not None:
            hist.add(dist, *same)
        if pairs is not None:
            values = as_numpy(dist)
            pairs.add(values if values is not None else dist.cpu().numpy(),
                      q_cams[start:stop], same[0], same[1] | same[2])
        acc.add(start, rank_block(dist, *same))
    result = acc.result(max_rank)
    if hist is not None:
        result["distance_histogram"] = hist.result()
    if pairs is not None:
        result["pair_histogram"] = pairs.result()
    return result


class _Histogram:
    """Exact counts of positive and negative query-gallery distances in fixed bins."""

    def __init__(self, bins: int, upper: float):
        if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
            raise ConfigError(f"histogram_bins must be a positive integer, got {bins!r}")
        self.bins, self.upper = int(bins), upper
        self.all = np.zeros(self.bins, dtype=np.int64)
        self.pos = np.zeros(self.bins, dtype=np.int64)
        self.junk = np.zeros(self.bins, dtype=np.int64)

    def _count(self, values) -> np.ndarray:
        """Counts per bin (values past the range go to the end bins)."""
        scale = self.bins / self.upper
        if as_numpy(values) is None:
            index = (values.reshape(-1) * scale).to(torch.int64).clamp_(0, self.bins - 1)
            return torch.bincount(index, minlength=self.bins).cpu().numpy()
        index = (values.reshape(-1) * scale).astype(np.int64)
        return np.bincount(np.clip(index, 0, self.bins - 1, out=index), minlength=self.bins)

    def add(self, dist: torch.Tensor, same_idx, is_pos, is_junk) -> None:
        values = as_numpy(dist)
        if values is not None:
            same = values[np.arange(len(values))[:, None], same_idx]
        else:
            values = dist
            same = dist.gather(1, torch.from_numpy(same_idx).to(dist.device)).cpu().numpy()
        self.all += self._count(values)
        self.pos += self._count(same[is_pos])
        self.junk += self._count(same[is_junk])

    def result(self) -> dict:
        return {
            "edges": np.linspace(0.0, self.upper, self.bins + 1),
            "positive": self.pos.copy(),
            "negative": self.all - self.pos - self.junk,
        }
