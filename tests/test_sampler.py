"""The P x K identity sampler."""

from collections import Counter

import pytest

from clipreid.loader.sampler import PKBatchSampler


def labels_with_counts(counts):
    return [label for label, n in enumerate(counts) for _ in range(n)]


def test_every_batch_has_p_identities_times_k_images():
    labels = labels_with_counts([6, 4, 9, 5, 8, 4, 7, 12])
    sampler = PKBatchSampler(labels, num_identities=4, num_instances=4, seed=1)
    batches = list(sampler)
    assert batches and len(batches) == len(sampler)
    for batch in batches:
        assert len(batch) == 16
        per_label = Counter(labels[i] for i in batch)
        assert len(per_label) == 4 and set(per_label.values()) == {4}


def test_small_identities_are_sampled_with_replacement():
    labels = labels_with_counts([2, 2, 2, 2])
    batches = list(PKBatchSampler(labels, num_identities=2, num_instances=4, seed=0))
    assert len(batches) == 2  # one chunk of 4 per identity, 2 identities per batch
    for batch in batches:
        for label, n in Counter(labels[i] for i in batch).items():
            assert n == 4  # only 2 distinct images exist: drawn with replacement
            assert len({i for i in batch if labels[i] == label}) <= 2


def test_no_image_repeats_within_an_epoch_when_identities_are_large_enough():
    labels = labels_with_counts([8] * 6)
    seen = [i for batch in PKBatchSampler(labels, 3, 4, seed=3) for i in batch]
    assert len(seen) == len(set(seen)) == 48


def test_deterministic_per_seed_and_epoch():
    labels = labels_with_counts([5, 7, 6, 9, 4, 8])
    a = PKBatchSampler(labels, 3, 4, seed=5)
    b = PKBatchSampler(labels, 3, 4, seed=5)
    assert list(a) == list(b)
    a.set_epoch(1)
    assert list(a) != list(b)
    b.set_epoch(1)
    assert list(a) == list(b)


def test_processes_split_each_batch_by_identity():
    """Under DDP the global batch stays P x K: each of 2 processes takes P/2 identities of
    every batch, K images each, and together they are the single-process batch."""
    labels = labels_with_counts([8] * 8)
    whole = list(PKBatchSampler(labels, 4, 2, seed=0))
    parts = [list(PKBatchSampler(labels, 4, 2, seed=0, rank=r, world_size=2)) for r in (0, 1)]
    assert len(parts[0]) == len(parts[1]) == len(whole)
    for batch, first, second in zip(whole, *parts):
        assert first + second == batch and len(first) == len(second) == 4
        assert not {labels[i] for i in first} & {labels[i] for i in second}
    with pytest.raises(ValueError, match="multiple of the process count"):
        PKBatchSampler(labels, 3, 2, seed=0, rank=0, world_size=2)


def test_too_few_identities_is_a_clear_error():
    with pytest.raises(ValueError, match="num_identities"):
        PKBatchSampler([0, 0, 1, 1], num_identities=3, num_instances=2)
