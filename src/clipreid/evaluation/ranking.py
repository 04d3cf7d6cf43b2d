"""Where the correct matches of each query rank, without sorting the gallery.

The metrics of a query only depend on the ranks of its correct matches, so we compute
those ranks and nothing else:

1. The gallery images of the query's identity are found from an index of the gallery by
   identity, never by comparing every gallery label with every query label. With camera
   filtering on, those taken by the query's camera are *junk*: they are left out of the
   ranking altogether (their distance is set to +inf in the block). The rest are the
   query's *positives*.
2. Only gallery images no farther than the query's farthest positive (the *candidates*)
   can rank before a positive; every other image ranks after all of them. Finding the
   candidates is the only pass over the whole (B, G) block of distances: one comparison
   per distance, done where the block lives (numpy on the CPU, torch on a GPU).
3. The candidates are sorted by (row, distance, gallery index); a positive's rank is its
   position among its row's candidates, plus one.

Tie rule: gallery images at equal distance rank in the order of their gallery index
(lower index first), as a stable argsort of the whole row orders them. The rule depends
on nothing but the distances and indices, so results do not depend on the block size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


class SameIdentityIndex:
    """The gallery grouped by identity: for a query, the gallery images of its identity."""

    def __init__(self, g_pids: np.ndarray, g_camids: np.ndarray):
        self.order = np.argsort(g_pids, kind="stable")  # by identity, then gallery index
        self.g_camids = g_camids
        self.pids, self.starts, self.counts = np.unique(
            g_pids[self.order], return_index=True, return_counts=True)

    def lookup(self, q_pids: np.ndarray, q_camids: np.ndarray, remove_same_camera: bool):
        """(same_idx, is_pos, is_junk), each (B, S) for S the largest group of the block.

        ``same_idx[r]`` lists the gallery indices of query r's identity in increasing
        order, padded with 0 where neither ``is_pos`` nor ``is_junk`` is set."""
        slot = np.minimum(np.searchsorted(self.pids, q_pids), len(self.pids) - 1)
        count = np.where(self.pids[slot] == q_pids, self.counts[slot], 0)
        width = int(count.max()) if len(count) else 0
        offsets = np.arange(width)
        member = offsets[None, :] < count[:, None]
        where = np.minimum(self.starts[slot][:, None] + offsets[None, :], len(self.order) - 1)
        same_idx = np.where(member, self.order[where], 0)
        if remove_same_camera:
            is_junk = member & (self.g_camids[same_idx] == q_camids[:, None])
        else:
            is_junk = np.zeros_like(member)
        return same_idx, member & ~is_junk, is_junk


@dataclass
class BlockRanks:
    """Per query of a block: AP, ranks of the first and of the last correct match, and
    the number of correct matches (0: the query has none and is skipped)."""

    ap: np.ndarray  # float64, NaN where num_pos == 0
    first_rank: np.ndarray  # int64, 0 where num_pos == 0
    last_rank: np.ndarray  # int64, 0 where num_pos == 0
    num_pos: np.ndarray  # int64


def _candidates_numpy(dist: np.ndarray, same_idx, is_pos, is_junk):
    """Junk to +inf, then (flat index, distance, is positive) of the block's candidates."""
    rows = np.arange(dist.shape[0])[:, None]
    junk_r, junk_c = np.nonzero(is_junk)
    dist[junk_r, same_idx[junk_r, junk_c]] = np.inf
    farthest = np.where(is_pos, dist[rows, same_idx], -np.inf).max(axis=1, initial=-np.inf)
    flat = np.flatnonzero(dist <= farthest[:, None])
    positive = np.zeros(dist.size, dtype=bool)
    pos_r, pos_c = np.nonzero(is_pos)
    positive[pos_r * dist.shape[1] + same_idx[pos_r, pos_c]] = True
    return flat, dist.reshape(-1)[flat], positive[flat]


def _candidates_torch(dist: torch.Tensor, same_idx, is_pos, is_junk):
    """As :func:`_candidates_numpy` for a block on a GPU; only candidates are copied back."""
    device = dist.device
    same = torch.from_numpy(same_idx).to(device)
    pos = torch.from_numpy(is_pos).to(device)
    junk_r, junk_c = torch.from_numpy(is_junk).to(device).nonzero(as_tuple=True)
    dist[junk_r, same[junk_r, junk_c]] = float("inf")
    if same.shape[1]:
        gathered = dist.gather(1, same)
        farthest = torch.where(pos, gathered, torch.full_like(gathered, -float("inf"))).amax(1)
    else:
        farthest = torch.full((dist.shape[0],), -float("inf"), dtype=dist.dtype, device=device)
    flat = (dist <= farthest[:, None]).view(-1).nonzero().squeeze(1)
    positive = torch.zeros(dist.numel(), dtype=torch.bool, device=device)
    pos_r, pos_c = pos.nonzero(as_tuple=True)
    positive[pos_r * dist.shape[1] + same[pos_r, pos_c]] = True
    return (flat.cpu().numpy(), dist.view(-1)[flat].cpu().numpy(),
            positive[flat].cpu().numpy())


def _sort_by_row_then_distance(rows: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """Permutation ordering candidates by (row, distance); ties in any order.

    A quicksort of the distances (vectorised in numpy), then a stable sort of the rows
    (a radix sort for 16-bit rows)."""
    order = np.argsort(vals)
    small = rows.astype(np.uint16) if rows.size and rows.max() < 2**16 else rows
    return order[np.argsort(small[order], kind="stable")]


def rank_block(dist, same_idx: np.ndarray, is_pos: np.ndarray,
               is_junk: np.ndarray) -> BlockRanks:
    """Ranks of the positives of a (B, G) block of distances; ``dist`` is overwritten.

    ``dist`` is a numpy array or a torch tensor on any device (CPU tensors are worked on
    through numpy, which is several times faster there)."""
    num_rows, num_gallery = dist.shape
    if isinstance(dist, torch.Tensor) and dist.device.type != "cpu":
        flat, vals, flags = _candidates_torch(dist, same_idx, is_pos, is_junk)
    else:
        dist = dist.numpy() if isinstance(dist, torch.Tensor) else dist
        flat, vals, flags = _candidates_numpy(dist, same_idx, is_pos, is_junk)

    rows = flat // num_gallery
    order = _sort_by_row_then_distance(rows, vals)
    rows, vals, flags, cols = rows[order], vals[order], flags[order], (flat % num_gallery)[order]

    # candidates of equal (row, distance) form a run; a positive's rank is 1 + the number
    # of candidates of its row before its run + those of its run with a lower index
    n = len(rows)
    new_run = np.ones(n, dtype=bool)
    new_run[1:] = (rows[1:] != rows[:-1]) | (vals[1:] != vals[:-1])
    run_start = np.maximum.accumulate(np.where(new_run, np.arange(n), 0))
    per_row = np.bincount(rows, minlength=num_rows)
    row_start = np.cumsum(per_row) - per_row
    where = np.flatnonzero(flags)
    p_rows, p_cols = rows[where], cols[where]
    rank = run_start[where] - row_start[p_rows] + 1 + _lower_index_in_run(
        new_run, flags, cols, where)

    # k-th correct match of each row, by rank
    by_rank = np.lexsort((rank, p_rows))
    p_rows, rank = p_rows[by_rank], rank[by_rank]
    num_pos = is_pos.sum(axis=1).astype(np.int64)
    k = np.arange(len(rank)) - (np.cumsum(num_pos) - num_pos)[p_rows] + 1

    with np.errstate(invalid="ignore", divide="ignore"):
        ap = np.bincount(p_rows, weights=k / rank, minlength=num_rows) / num_pos
    first_rank = np.zeros(num_rows, dtype=np.int64)
    last_rank = np.zeros(num_rows, dtype=np.int64)
    first_rank[p_rows[k == 1]] = rank[k == 1]
    is_last = k == num_pos[p_rows]
    last_rank[p_rows[is_last]] = rank[is_last]
    return BlockRanks(ap=ap, first_rank=first_rank, last_rank=last_rank, num_pos=num_pos)


def _lower_index_in_run(new_run, flags, cols, where) -> np.ndarray:
    """For the positives at ``where``: how many candidates of their run (equal row and
    distance) have a lower gallery index. Zero but for ties, which are handled here."""
    run_id = np.cumsum(new_run) - 1
    run_len = np.bincount(run_id)
    tied = run_len[run_id[where]] > 1
    out = np.zeros(len(where), dtype=np.int64)
    if not tied.any():
        return out
    runs = np.unique(run_id[where[tied]])
    members = np.flatnonzero(np.isin(run_id, runs))  # every candidate of those runs
    by_index = members[np.lexsort((cols[members], run_id[members]))]
    position = np.empty(len(flags), dtype=np.int64)
    first = np.searchsorted(run_id[by_index], run_id[by_index])  # run_id is sorted there
    position[by_index] = np.arange(len(by_index)) - first
    out[tied] = position[where[tied]]
    return out
