"""k-reciprocal re-ranking (Zhong, Zheng, Cao, Li, "Re-ranking Person Re-identification
with k-reciprocal Encoding", CVPR 2017), computed without any N x N matrix.

With all N = Q + G images pooled and ``d`` their distances (:mod:`.distance`), each row
divided by its maximum over the N images:

- ``N(p, k)``: the k + 1 nearest images of p (p itself included), by distance;
- ``R(p, k) = {g in N(p, k) : p in N(g, k)}`` (the k-reciprocal neighbours);
- ``R*(p)``: ``R(p, k1)``, joined by ``R(c, round(k1 / 2))`` for every ``c`` in
  ``R(p, k1)`` that shares more than 2/3 of its members with ``R(p, k1)``;
- ``V[p, g] = exp(-d(p, g))`` on ``R*(p)``, 0 elsewhere, each row scaled to sum 1;
- local query expansion (``k2 > 1``): ``V[p]`` <- mean of ``V[g]`` over the k2 nearest
  images g of p (p included);
- Jaccard distance ``dJ(p, g) = 1 - sum_j min(V[p, j], V[g, j]) / sum_j max(...)``,
  where the sum of the maxima is ``2 - sum of the minima`` (rows sum to 1);
- re-ranked distance ``(1 - lambda) * dJ + lambda * d``.

Memory: the distances are computed one block of rows at a time and only the neighbour
lists, the sparse ``V`` (a few dozen entries per row) and the (Q, G) result are kept, so
Market-1501 (3,368 + 15,913 images) needs a few hundred MB where the published code holds
several N x N matrices. Precision: ``V`` and the Jaccard sums are float64 (the published
code uses float16); the result is float32.
"""

from __future__ import annotations

import numpy as np
import torch

from clipreid.errors import ConfigError, DatasetError
from clipreid.evaluation import inputs
from clipreid.evaluation.distance import (GalleryDistances, check_distance, normalize,
                                          smallest_k)
from clipreid.evaluation.metrics import default_block_size

#: Largest number of (query entry, gallery entry) pairs joined at once for the Jaccard sums.
JOIN_PAIRS = 1 << 23
#: Rows per chunk of the vectorised neighbour-set steps (bounds their temporaries).
ROW_CHUNK = 2048
#: Bytes of the float64 (rows, G) Jaccard sums of one chunk of query rows.
JACCARD_BYTES = 256 * 1024**2


def k_reciprocal_rerank(qf, gf, *, k1: int = 20, k2: int = 6, lambda_value: float = 0.3,
                        distance: str = "euclidean", block_size: int | None = None,
                        device=None) -> np.ndarray:
    """Re-ranked (Q, G) float32 distances of query features ``qf`` to gallery ``gf``."""
    check_distance(distance)
    _check_params(k1, k2, lambda_value)
    qf = inputs.features(qf, "qf")
    gf = inputs.features(gf, "gf")
    if qf.shape[1] != gf.shape[1]:
        raise DatasetError(f"qf has {qf.shape[1]} dimensions but gf has {gf.shape[1]}")
    device = torch.device(device) if device is not None else qf.device
    feats = torch.cat([qf.to(device), gf.to(device)])
    num_q, num = len(qf), len(feats)

    top, row_max, out = _neighbours_and_query_rows(feats, num_q, max(k1 + 1, k2), distance,
                                                   block_size or default_block_size(num))
    rows, cols = _expanded_neighbours(top, k1)
    weights = _weights(normalize(feats).cpu().numpy(), rows, cols, row_max, distance)
    v_rows, v_cols, v_vals = _rows_scaled_to_one(rows, cols, weights, num)
    if k2 > 1:
        v_rows, v_cols, v_vals = _local_query_expansion(v_rows, v_cols, v_vals, top[:, :k2], num)
    _combine_with_jaccard(out, v_rows, v_cols, v_vals, num_q, lambda_value)
    return out


def _check_params(k1, k2, lambda_value) -> None:
    for name, value in (("k1", k1), ("k2", k2)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"re-ranking {name} must be a positive integer, got {value!r}")
    if not 0.0 <= float(lambda_value) <= 1.0:
        raise ConfigError(f"re-ranking lambda_value must be in [0, 1], got {lambda_value!r}")


def _neighbours_and_query_rows(feats, num_q, k, distance, block):
    """One pass over the N x N distances, a block of rows at a time.

    Returns the k nearest images of every image (N, k), every row's largest distance
    (N,), and the (Q, G) query-to-gallery distances divided by their row's maximum."""
    num = len(feats)
    dist_to_all = GalleryDistances(feats, distance, feats.device)
    feats_n = normalize(feats)
    top = np.empty((num, min(k, num)), dtype=np.int64)
    row_max = np.empty(num, dtype=np.float64)
    out = np.empty((num_q, num - num_q), dtype=np.float32)
    for start in range(0, num, block):
        stop = min(start + block, num)
        d = dist_to_all(feats_n[start:stop])
        top[start:stop] = smallest_k(d, k)
        d = d.cpu().numpy()
        peak = np.maximum(d.max(axis=1).astype(np.float64), np.finfo(np.float32).tiny)
        row_max[start:stop] = peak
        if start < num_q:
            q_stop = min(stop, num_q)
            out[start:q_stop] = d[:q_stop - start, num_q:] / peak[:q_stop - start, None]
    return top, row_max, out


def _reciprocal(top: np.ndarray, k: int) -> np.ndarray:
    """(N, k + 1) mask: ``top[p, a]`` is a k-reciprocal neighbour of p."""
    forward = top[:, :k + 1]
    mask = np.empty(forward.shape, dtype=bool)
    for a in range(0, len(top), ROW_CHUNK):
        back = forward[forward[a:a + ROW_CHUNK]]  # (B, k+1, k+1): neighbours of neighbours
        mask[a:a + ROW_CHUNK] = (back == np.arange(a, a + len(back))[:, None, None]).any(axis=2)
    return mask


def _expanded_neighbours(top: np.ndarray, k1: int):
    """(rows, cols) of every pair (p, g) with g in R*(p), sorted by (p, g)."""
    k_half = int(round(k1 / 2))  # round half to even, as numpy's around
    in_r = _reciprocal(top, k1)
    in_half = _reciprocal(top, k_half)
    half = np.where(in_half, top[:, :k_half + 1], -2)  # R(c, k1/2), -2 marks no member
    half_size = in_half.sum(axis=1)
    forward = top[:, :k1 + 1]
    out_rows, out_cols = [], []
    for a in range(0, len(top), ROW_CHUNK):
        r_p = np.where(in_r[a:a + ROW_CHUNK], forward[a:a + ROW_CHUNK], -1)  # R(p, k1); -1: none
        cand = forward[a:a + ROW_CHUNK]  # candidates c (valid where r_p >= 0)
        shared = (half[cand][..., None] == r_p[:, None, None, :]).any(axis=3).sum(axis=2)
        keep = (r_p >= 0) & (3 * shared > 2 * half_size[cand])
        joined = np.concatenate(
            [r_p, np.where(keep[..., None], half[cand], -1).reshape(len(r_p), -1)], axis=1)
        joined.sort(axis=1)
        first = np.ones(joined.shape, dtype=bool)
        first[:, 1:] = joined[:, 1:] != joined[:, :-1]
        valid = first & (joined >= 0)
        r, c = np.nonzero(valid)
        out_rows.append(r + a)
        out_cols.append(joined[r, c])
    return np.concatenate(out_rows), np.concatenate(out_cols)


def _weights(feats_n: np.ndarray, rows, cols, row_max, distance):
    """``exp(-d(p, g) / max_g d(p, g))`` for the pairs (rows, cols)."""
    sim = np.empty(len(rows), dtype=np.float64)
    for a in range(0, len(rows), ROW_CHUNK):
        r, c = rows[a:a + ROW_CHUNK], cols[a:a + ROW_CHUNK]
        sim[a:a + ROW_CHUNK] = np.einsum("ij,ij->i", feats_n[r], feats_n[c])
    d = np.maximum(2.0 - 2.0 * sim if distance == "euclidean" else 1.0 - sim, 0.0)
    return np.exp(-d / row_max[rows])


def _rows_scaled_to_one(rows, cols, vals, num):
    sums = np.bincount(rows, weights=vals, minlength=num)
    return rows, cols, vals / sums[rows]


def _local_query_expansion(rows, cols, vals, nearest: np.ndarray, num):
    """Sparse ``V'[p] = mean of V[g] over g in nearest[p]`` (entries sorted by (p, g))."""
    counts = np.bincount(rows, minlength=num)
    starts = np.cumsum(counts) - counts
    k2 = nearest.shape[1]
    src = nearest.reshape(-1)  # row p takes V[src] for its k2 neighbours
    dst = np.repeat(np.arange(num), k2)
    n = counts[src]
    entry = np.repeat(starts[src] - np.cumsum(n) + n, n) + np.arange(n.sum())
    key = np.repeat(dst, n) * num + cols[entry]
    unique, inverse = np.unique(key, return_inverse=True)
    summed = np.bincount(inverse, weights=vals[entry]) / k2
    return unique // num, unique % num, summed


def _combine_with_jaccard(out, rows, cols, vals, num_q, lambda_value):
    """Turn ``out`` (normalised query-gallery distances) into re-ranked distances.

    ``sum_j min(V[p, j], V[g, j])`` is accumulated by joining, column by column, the
    entries of query rows with those of gallery rows; a chunk of query rows at a time
    keeps the join within :data:`JOIN_PAIRS` pairs."""
    num_g = out.shape[1]
    gallery = rows >= num_q
    g_order = np.argsort(cols[gallery], kind="stable")
    g_rows = rows[gallery][g_order] - num_q
    g_vals = vals[gallery][g_order]
    g_count = np.bincount(cols[gallery], minlength=num_q + num_g)
    g_start = np.cumsum(g_count) - g_count

    q_end = np.searchsorted(rows, num_q)  # entries are sorted by row: queries first
    q_rows, q_cols, q_vals = rows[:q_end], cols[:q_end], vals[:q_end]
    pairs_per_row = np.bincount(q_rows, weights=g_count[q_cols], minlength=num_q)
    max_rows = max(1, min(ROW_CHUNK, JACCARD_BYTES // (8 * num_g)))
    row = 0
    while row < num_q:
        stop = _chunk_end(pairs_per_row, row, max_rows)
        a, b = np.searchsorted(q_rows, [row, stop])
        n = g_count[q_cols[a:b]]
        entry = np.repeat(np.arange(a, b), n)
        g_entry = np.repeat(g_start[q_cols[a:b]] - np.cumsum(n) + n, n) + np.arange(n.sum())
        target = (q_rows[entry] - row) * num_g + g_rows[g_entry]
        shared = np.bincount(target, weights=np.minimum(q_vals[entry], g_vals[g_entry]),
                             minlength=(stop - row) * num_g).reshape(stop - row, num_g)
        # in place: shared -> Jaccard distance -> re-ranked distance
        np.divide(shared, 2.0 - shared, out=shared)
        np.subtract(1.0, shared, out=shared)
        shared *= 1.0 - lambda_value
        shared += lambda_value * out[row:stop]
        out[row:stop] = shared
        row = stop
    return out


def _chunk_end(pairs_per_row: np.ndarray, row: int, max_rows: int) -> int:
    """End of the chunk of query rows starting at ``row`` (at least one row, at most
    :data:`JOIN_PAIRS` pairs or ``max_rows`` rows)."""
    total = np.cumsum(pairs_per_row[row:row + max_rows])
    return row + max(1, int(np.searchsorted(total, JOIN_PAIRS, side="right")))
