"""Each loss against small cases computed by hand."""

import math

import pytest
import torch

from clipreid.losses import (
    batch_hard_triplet_loss,
    cross_entropy_label_smooth,
    euclidean_distances,
    supcon_loss,
)


def test_supcon_two_by_two_by_hand():
    # rows a, columns b; labels [0, 1] on both sides: one positive per row.
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    # logits = a @ b.T = [[1, 0], [2, 2]]
    # row 0: log_prob(col 0) = 1 - log(e^1 + e^0); row 1: log_prob(col 1) = 2 - log(2 e^2)
    row0 = 1 - math.log(math.e + 1)
    row1 = 2 - math.log(2 * math.e**2)
    expected = -(row0 + row1) / 2
    got = supcon_loss(a, b, torch.tensor([0, 1]), torch.tensor([0, 1]))
    assert got.item() == pytest.approx(expected, abs=1e-6)


def test_supcon_averages_over_all_same_identity_columns():
    a = torch.tensor([[1.0, 0.0]])
    b = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]])
    labels_a, labels_b = torch.tensor([7]), torch.tensor([7, 3, 7])
    # logits [1, 0, 2]; lse = log(e + 1 + e^2); positives: columns 0 and 2
    lse = math.log(math.e + 1 + math.e**2)
    expected = -((1 - lse) + (2 - lse)) / 2
    assert supcon_loss(a, b, labels_a, labels_b).item() == pytest.approx(expected, abs=1e-6)


def test_supcon_temperature_scales_logits():
    a, b = torch.randn(4, 3), torch.randn(4, 3)
    labels = torch.tensor([0, 1, 0, 2])
    assert supcon_loss(a, b, labels, labels, temperature=0.5).item() == pytest.approx(
        supcon_loss(2 * a, b, labels, labels).item(), abs=1e-5)


def test_supcon_rejects_rows_without_positive():
    with pytest.raises(ValueError, match="no column with the same label"):
        supcon_loss(torch.randn(2, 3), torch.randn(2, 3), torch.tensor([0, 1]),
                    torch.tensor([1, 1]))


def test_label_smoothed_cross_entropy_by_hand():
    logits = torch.tensor([[2.0, 0.0, 0.0]])
    target = torch.tensor([0])
    lse = math.log(math.e**2 + 2)
    logp = [2 - lse, -lse, -lse]
    eps = 0.1
    weights = [1 - eps + eps / 3, eps / 3, eps / 3]
    expected = -sum(w * lp for w, lp in zip(weights, logp))
    got = cross_entropy_label_smooth(logits, target, epsilon=eps)
    assert got.item() == pytest.approx(expected, abs=1e-6)


def test_label_smoothing_zero_is_cross_entropy():
    logits, target = torch.randn(5, 4), torch.tensor([0, 3, 1, 1, 2])
    assert cross_entropy_label_smooth(logits, target, 0.0).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, target).item(), abs=1e-6)


def test_batch_hard_triplet_by_hand():
    # 1-d features: identity 0 at 0 and 1; identity 1 at 3 and 7.
    feats = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    labels = torch.tensor([0, 0, 1, 1])
    # anchor 0: hardest pos 1, hardest neg 3 -> max(0, 1 - 3 + .3) = 0
    # anchor 1: pos 1, neg 2 -> 0
    # anchor 2 (3): pos 4, neg 2 -> 4 - 2 + .3 = 2.3
    # anchor 3 (7): pos 4, neg 6 -> 0
    got = batch_hard_triplet_loss(feats, labels, margin=0.3)
    assert got.item() == pytest.approx(2.3 / 4, abs=1e-5)


def test_triplet_needs_negatives():
    with pytest.raises(ValueError, match="negative"):
        batch_hard_triplet_loss(torch.randn(3, 2), torch.tensor([1, 1, 1]))


def test_euclidean_distances_match_cdist_and_have_finite_gradient_at_zero():
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), requires_grad=True)
    d = euclidean_distances(x, x)
    off = ~torch.eye(5, dtype=torch.bool)
    assert torch.allclose(d[off], torch.cdist(x, x)[off], atol=1e-4)
    # the diagonal: sqrt of a float32 cancellation error (up to ~1e-6) stays small
    assert (d.diagonal() < 1e-2).all()
    d.sum().backward()
    assert torch.isfinite(x.grad).all()
