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
   candidates is the only work on the whole (B, G) block: one comparison per entry, then
   the search for the marked ones, done where the block lives (numpy on the CPU, torch on
   a GPU). On the CPU, :func:`~clipreid.evaluation.evaluate_features` hands over the
   block of similarities itself: candidates are selected on similarities (with a margin
   for rounding) and only they are turned into distances (see
   :class:`~clipreid.evaluation.distance.SimilarityScale`). Numpy blocks are split by rows
   among threads.
3. The candidates are sorted by (row, distance, gallery index); a positive's rank is its
   position among its row's candidates, plus one. For float32 distances >= 0 (those of
   :func:`~clipreid.evaluation.evaluate_features`) that is one sort of int64 keys packing
   row, distance bits, index and an is-positive flag; other distances (float64,
   negative) are sorted by distance, then stably by row, with ties counted apart. Rows
   with very many candidates (a poor model) are done one at a time instead, without a
   sort: each candidate is placed among the row's few sorted positive distances.

Tie rule: gallery images at equal distance rank in the order of their gallery index
(lower index first), as a stable argsort of the whole row orders them. The rule depends
on nothing but the distances and indices, so results do not depend on the block size.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields

import numpy as np
import torch

from clipreid.evaluation.distance import as_numpy


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


class _NumpyBlock:
    """A (B, G) block in a numpy array: junk taken out of the ranking, candidates found.

    The block holds distances, or, given ``scale`` (a
    :class:`~clipreid.evaluation.distance.SimilarityScale`), the similarities they come
    from. Candidates are then selected on the similarities, with the scale's margin, and
    filtered on their exact distances: only they are ever turned into distances (a pass
    over the whole block saved). The block is read twice: one comparison per entry, then
    the search for the marked ones."""

    def __init__(self, values: np.ndarray, same_idx, is_pos, is_junk, scale=None):
        junk_r, junk_c = np.nonzero(is_junk)
        values[junk_r, same_idx[junk_r, junk_c]] = np.inf if scale is None else -np.inf
        rows = np.arange(values.shape[0])[:, None]
        at_pos = values[rows, same_idx]  # a copy
        if scale is None:
            self.farthest = np.where(is_pos, at_pos, -np.inf).max(axis=1, initial=-np.inf)
            mask = values <= self.farthest[:, None]
        else:
            lowest = np.where(is_pos, at_pos, np.inf).min(axis=1, initial=np.inf)
            self.farthest = np.where(is_pos, scale.to_distance(at_pos), -np.inf).max(
                axis=1, initial=-np.inf)
            mask = values >= (lowest - scale.margin)[:, None]
        self.flat = np.flatnonzero(mask)  # (row, gallery index) order
        del mask
        num_rows, self.num_gallery = values.shape
        self.bounds = np.searchsorted(self.flat, np.arange(num_rows + 1) * self.num_gallery)
        self.counts = np.diff(self.bounds)  # with a scale, a little over (the margin)
        self.values, self.scale, self.same_idx, self.is_pos = values, scale, same_idx, is_pos

    def _distances(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Exact distances of the entries ``flat``, and (similarity blocks only, else
        None) which of them are no farther than their row's farthest positive."""
        dist = self.values.reshape(-1)[flat]
        if self.scale is None:
            return dist, None
        dist = self.scale.to_distance(dist)
        return dist, dist <= self.farthest[flat // self.num_gallery]

    def rows(self, which: np.ndarray):
        """(gallery indices, distances) of the candidates of each of the rows ``which``."""
        for row in which.tolist():
            flat = self.flat[self.bounds[row]:self.bounds[row + 1]]
            dist, keep = self._distances(flat)
            cols = flat - row * self.num_gallery
            yield (cols, dist) if keep is None else (cols[keep], dist[keep])

    def candidates(self, which: np.ndarray):
        """(flat index, distance, is positive) of the candidates of the rows ``which``,
        in (row, gallery index) order."""
        flat = self.flat
        if len(which) < len(self.counts):
            chosen = np.zeros(len(self.counts), dtype=bool)
            chosen[which] = True
            flat = flat[np.repeat(chosen, self.counts)]
        dist, keep = self._distances(flat)
        if keep is not None:  # drop those of the margin beyond the farthest positive
            flat, dist = flat[keep], dist[keep]
        pos_r, pos_c = np.nonzero(self.is_pos[which])
        pos_flat = which[pos_r] * self.num_gallery + self.same_idx[which][pos_r, pos_c]
        flags = np.zeros(len(flat), dtype=bool)
        flags[np.searchsorted(flat, pos_flat)] = True  # every positive is a candidate
        return flat, dist, flags


class _TorchBlock:
    """As :class:`_NumpyBlock` for a tensor on a GPU: only the rows or candidates asked
    for are copied to the host."""

    def __init__(self, dist: torch.Tensor, same_idx, is_pos, is_junk):
        device = dist.device
        same = torch.from_numpy(same_idx).to(device)
        pos = torch.from_numpy(is_pos).to(device)
        junk_r, junk_c = torch.from_numpy(is_junk).to(device).nonzero(as_tuple=True)
        dist[junk_r, same[junk_r, junk_c]] = float("inf")
        farthest = torch.full((dist.shape[0],), -float("inf"), dtype=dist.dtype, device=device)
        if same.shape[1]:
            gathered = dist.gather(1, same)
            farthest = torch.where(pos, gathered, farthest[:, None]).amax(dim=1)
        self.dist, self.same, self.pos = dist, same, pos
        self.num_gallery = dist.shape[1]
        self.mask = dist <= farthest[:, None]
        self.counts = self.mask.sum(dim=1).cpu().numpy()

    def rows(self, which: np.ndarray):
        index = torch.from_numpy(which).to(self.dist.device)
        dist, mask = self.dist[index].cpu().numpy(), self.mask[index].cpu().numpy()
        for d, m in zip(dist, mask):
            cols = np.flatnonzero(m)
            yield cols, d[cols]

    def candidates(self, which: np.ndarray):
        device = self.dist.device
        if len(which) < len(self.mask):
            keep = torch.zeros(len(self.mask), dtype=torch.bool, device=device)
            keep[torch.from_numpy(which).to(device)] = True
            self.mask &= keep[:, None]
        flat = self.mask.view(-1).nonzero().squeeze(1)
        index = torch.from_numpy(which).to(device)
        pos_r, pos_c = self.pos[index].nonzero(as_tuple=True)
        pos_flat = index[pos_r] * self.dist.shape[1] + self.same[index][pos_r, pos_c]
        flags = torch.zeros(len(flat), dtype=torch.bool, device=device)
        flags[torch.searchsorted(flat, pos_flat)] = True  # every positive is a candidate
        return flat.cpu().numpy(), self.dist.view(-1)[flat].cpu().numpy(), flags.cpu().numpy()


#: Rows with more candidates than this (or than a quarter of the gallery) are ranked one
#: at a time, without sorting their candidates: on long rows that beats sorting them with
#: the others, and it bounds the memory of the joint sort.
DENSE_ROW = 2048


#: Numpy blocks are ranked by this many threads (numpy releases the GIL in its array
#: operations), each taking a slice of the rows; None: as many as torch uses.
RANKING_THREADS = None
#: Fewest rows a thread is given.
MIN_ROWS_PER_THREAD = 32


def rank_block(values, same_idx: np.ndarray, is_pos: np.ndarray, is_junk: np.ndarray,
               scale=None) -> BlockRanks:
    """Ranks of the positives of a (B, G) block of distances; ``values`` is overwritten.

    ``values`` is a numpy array or a torch tensor on any device (CPU tensors are worked on
    through numpy: :data:`~clipreid.evaluation.distance.NUMPY_ON_CPU`). Given ``scale``
    (a :class:`~clipreid.evaluation.distance.SimilarityScale`), ``values`` holds the
    similarities the distances come from (numpy only); the ranks are the same provided
    they are products of vectors of norm <= 1 with ``scale.dim`` entries, as
    :func:`~clipreid.evaluation.evaluate_features` computes them (the scale's margin
    relies on it)."""
    array = as_numpy(values)
    if array is None:
        if scale is not None:
            raise ValueError("rank_block ranks similarities in numpy arrays only")
        return _rank(_TorchBlock(values, same_idx, is_pos, is_junk), same_idx, is_pos)
    threads = RANKING_THREADS or torch.get_num_threads()
    threads = max(1, min(threads, len(array) // MIN_ROWS_PER_THREAD))
    if threads == 1:
        return _rank(_NumpyBlock(array, same_idx, is_pos, is_junk, scale), same_idx, is_pos)
    cuts = np.linspace(0, len(array), threads + 1).astype(int).tolist()

    def rank_rows(start: int, stop: int) -> BlockRanks:
        part = [a[start:stop] for a in (array, same_idx, is_pos, is_junk)]
        return _rank(_NumpyBlock(*part, scale), part[1], part[2])

    with ThreadPoolExecutor(threads) as pool:
        parts = list(pool.map(rank_rows, cuts[:-1], cuts[1:]))
    return BlockRanks(*(np.concatenate([getattr(p, f.name) for p in parts])
                        for f in fields(BlockRanks)))


def _rank(block, same_idx: np.ndarray, is_pos: np.ndarray) -> BlockRanks:
    """Ranks of the positives of a block (a :class:`_NumpyBlock` or :class:`_TorchBlock`)."""
    num_rows, num_gallery = len(block.counts), block.num_gallery
    many = block.counts > min(DENSE_ROW, max(1, num_gallery // 4))
    parts = []
    if many.any():  # rows with many candidates one at a time
        which = np.flatnonzero(many)
        parts.append(_ranks_by_row(which, block.rows(which), same_idx, is_pos))
    if not many.all():  # the others together
        flat, vals, flags = block.candidates(np.flatnonzero(~many))
        rows, cols = np.divmod(flat, num_gallery)
        parts.append(_ranks_together(rows, vals, flags, cols, num_rows, num_gallery))
    p_rows = np.concatenate([p[0] for p in parts])
    rank = np.concatenate([p[1] for p in parts])

    # the k-th correct match of each row, by rank
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


def _fits_in_keys(vals: np.ndarray, num_rows: int, num_gallery: int) -> bool:
    """Whether (row, distance, index, flag) packs into one int64 sort key: float32
    distances that are >= 0 (their bit patterns then order as the numbers do)."""
    bits = int(num_rows - 1).bit_length() + 32 + int(num_gallery - 1).bit_length() + 1
    return vals.dtype == np.float32 and bits <= 63 and (vals.size == 0 or vals.min() >= 0)


def _ranks_by_keys(rows, vals, flags, cols, num_rows, num_gallery):
    """(row, rank) of the positives: one sort of int64 keys (row, distance bits, gallery
    index, is-positive), which orders the candidates exactly as the tie rule does."""
    col_bits = int(num_gallery - 1).bit_length()
    dist_bits = (vals + np.float32(0)).view(np.uint32).astype(np.int64)  # -0.0 -> +0.0
    keys = (rows << (32 + col_bits)) | (dist_bits << col_bits) | cols
    # keys are unique; "stable" (timsort) runs several times faster than the default
    # quicksort here because the keys arrive grouped by row
    keys = np.sort((keys << 1) | flags, kind="stable")
    where = np.flatnonzero(keys & 1)
    p_rows = keys[where] >> (33 + col_bits)
    per_row = np.bincount(rows, minlength=num_rows)
    rank = where - (np.cumsum(per_row) - per_row)[p_rows] + 1
    return p_rows, rank


def _ranks_together(rows, vals, flags, cols, num_rows, num_gallery):
    """(row, rank) of the positives of rows with few candidates, all rows at once."""
    if _fits_in_keys(vals, num_rows, num_gallery):
        return _ranks_by_keys(rows, vals, flags, cols, num_rows, num_gallery)
    return _ranks_by_pairs(rows, vals, flags, cols, num_rows)


def _ranks_by_pairs(rows, vals, flags, cols, num_rows):
    """(row, rank) of the positives among candidates given in (row, index) order.

    The candidates are sorted by (row, distance): a quicksort of the distances (vectorised
    in numpy), then a stable sort of the rows (a radix sort for 16-bit rows). Candidates of
    equal (row, distance) form a run; a positive's rank is 1 + the number of candidates
    of its row before its run + those of its run with a lower gallery index."""
    order = np.argsort(vals)
    small = rows.astype(np.uint16) if rows.size and rows.max() < 2**16 else rows
    order = order[np.argsort(small[order], kind="stable")]
    rows, vals, flags, cols = rows[order], vals[order], flags[order], cols[order]

    n = len(rows)
    new_run = np.ones(n, dtype=bool)
    new_run[1:] = (rows[1:] != rows[:-1]) | (vals[1:] != vals[:-1])
    run_start = np.maximum.accumulate(np.where(new_run, np.arange(n), 0))
    per_row = np.bincount(rows, minlength=num_rows)
    row_start = np.cumsum(per_row) - per_row
    where = np.flatnonzero(flags)
    p_rows = rows[where]
    rank = run_start[where] - row_start[p_rows] + 1 + _lower_index_in_run(new_run, cols, where)
    return p_rows, rank


def _lower_index_in_run(new_run, cols, where) -> np.ndarray:
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
    first = np.searchsorted(run_id[by_index], run_id[by_index])  # sorted by run there
    position = np.zeros(len(new_run), dtype=np.int64)
    position[by_index] = np.arange(len(by_index)) - first
    out[tied] = position[where[tied]]
    return out


def _ranks_by_row(which, rows, same_idx, is_pos):
    """(row, rank) of the positives of the rows ``which`` (with many candidates), one row
    at a time; ``rows`` yields the (gallery indices, distances) of each row's candidates.

    A positive's rank is 1 + the number of candidates at a smaller distance + those at
    an equal distance and a lower index (counted directly, only when there is such a
    tie). The first number comes without sorting the candidates: each is placed among
    the row's P sorted positive distances (a binary search, log P steps), and a running
    count of the places gives, for each positive, the candidates before it. No other
    image of the row can have a positive's distance: junk is +inf, the rest lies past
    the farthest positive."""
    out_rows, out_ranks = [], []
    for row, (cand_cols, cand_dist) in zip(which.tolist(), rows):
        cols = same_idx[row][is_pos[row]]  # increasing gallery index
        values = cand_dist[np.searchsorted(cand_cols, cols)]
        ordered = np.sort(values)
        # candidates with at most k positives at a smaller (or equal) distance
        at_most_k_smaller = np.cumsum(np.bincount(
            np.searchsorted(ordered, cand_dist, side="left"), minlength=len(ordered) + 1))
        at_most_k_no_larger = np.cumsum(np.bincount(
            np.searchsorted(ordered, cand_dist, side="right"), minlength=len(ordered) + 1))
        # a positive whose value first appears at place k (0-based) among the ordered:
        # closer candidates have at most k positives no farther than them
        k = np.searchsorted(ordered, values, side="left")
        less = at_most_k_no_larger[k]
        equal = at_most_k_smaller[k] - less
        rank = less + 1
        for j in np.flatnonzero(equal > 1).tolist():
            before = cand_dist[:np.searchsorted(cand_cols, cols[j])]
            rank[j] += np.count_nonzero(before == values[j])
        out_rows.append(np.full(len(cols), row))
        out_ranks.append(rank)
    return np.concatenate(out_rows), np.concatenate(out_ranks)
