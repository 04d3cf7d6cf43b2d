"""The P x K identity sampler of stage 2: batches of P identities with K images each."""

from __future__ import annotations

from collections import defaultdict
from typing import Iterator, Sequence

import numpy as np


class PKBatchSampler:
    """Yields batches (lists of dataset indices) of ``num_identities`` identities with
    ``num_instances`` images each.

    Each epoch every identity's images are shuffled and cut into chunks of K (an identity
    with fewer than K images is drawn with replacement up to K; a last incomplete chunk is
    dropped); batches take one chunk from each of P randomly chosen identities that still
    have chunks, until fewer than P such identities remain. Deterministic for a given
    ``seed`` and epoch (call :meth:`set_epoch`). Under DDP (``rank``/``world_size``)
    every process draws the same global batches and takes its share of each batch's
    identities, ``num_identities / world_size`` of them with their K images each: the
    global batch stays P x K, and the processes' shares together are the batch one
    process would draw.
    """

    def __init__(
        self,
        labels: Sequence[int],
        num_identities: int,
        num_instances: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.index_by_label: dict[int, list[int]] = defaultdict(list)
        for index, label in enumerate(labels):
            self.index_by_label[int(label)].append(index)
        if len(self.index_by_label) < num_identities:
            raise ValueError(
                f"P x K sampler: {num_identities} identities per batch requested but the "
                f"training split has only {len(self.index_by_label)}; lower "
                f"stage2.num_identities (batch size / num_instances)"
            )
        if num_identities % world_size:
            raise ValueError(
                f"P x K sampler: {num_identities} identities per batch cannot be split over "
                f"{world_size} processes; make finetune.num_identities a multiple of the "
                f"process count (launch.nproc_per_node x launch.nnodes)")
        self.labels = sorted(self.index_by_label)
        self.num_identities = num_identities
        self.num_instances = num_instances
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        k = self.num_instances
        chunks: dict[int, list[list[int]]] = {}
        for label in self.labels:
            idxs = np.asarray(self.index_by_label[label])
            if len(idxs) < k:
                idxs = rng.choice(idxs, size=k, replace=True)
            else:
                idxs = rng.permutation(idxs)
            usable = len(idxs) // k * k
            chunks[label] = [idxs[i : i + k].tolist() for i in range(0, usable, k)]
        batches = []
        available = [label for label in self.labels if chunks[label]]
        while len(available) >= self.num_identities:
            chosen = rng.choice(len(available), size=self.num_identities, replace=False)
            batch = []
            for i in chosen:
                batch.extend(chunks[available[i]].pop())
            batches.append(batch)
            available = [label for label in available if chunks[label]]
        return batches

    def global_batches(self) -> list[list[int]]:
        """This epoch's whole batches (every process's shares), P x K indices each."""
        return self._batches()

    def share(self, batch: list[int]) -> list[int]:
        """This process's identities of a global batch (contiguous: identity-major)."""
        size = len(batch) // self.world_size
        return batch[self.rank * size : (self.rank + 1) * size]

    def __iter__(self) -> Iterator[list[int]]:
        return iter([self.share(batch) for batch in self._batches()])

    def __len__(self) -> int:
        return len(self._batches())
