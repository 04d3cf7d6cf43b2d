"""The losses of CLIP-ReID (method.md): supervised contrastive (stage 1), label-smoothed
cross-entropy and batch-hard triplet (stage 2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def supcon_loss(
    feats_a: torch.Tensor,
    feats_b: torch.Tensor,
    labels_a: torch.Tensor,
    labels_b: torch.Tensor,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Supervised contrastive loss of rows ``a`` against columns ``b``.

    logits[r, c] = a_r . b_c / temperature on the raw (unnormalised) features; each row's
    log-probabilities over the columns are averaged over the columns of the same identity,
    and the loss is minus the mean of that over rows. Every same-identity pair is a
    positive; a row without any positive column is an error.
    """
    logits = feats_a.float() @ feats_b.float().t() / temperature
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (labels_a.view(-1, 1) == labels_b.view(1, -1)).float()
    counts = positives.sum(dim=1)
    if bool((counts == 0).any()):
        raise ValueError("supcon_loss: a row has no column with the same label")
    mean_log_prob_pos = (positives * log_prob).sum(dim=1) / counts
    return -mean_log_prob_pos.mean()


def cross_entropy_label_smooth(
    logits: torch.Tensor, targets: torch.Tensor, epsilon: float = 0.1
) -> torch.Tensor:
    """Cross-entropy against (1 - eps) * one-hot + eps / num_classes, mean over the batch."""
    num_classes = logits.size(1)
    log_probs = F.log_softmax(logits.float(), dim=1)
    smooth = torch.full_like(log_probs, epsilon / num_classes)
    smooth.scatter_(1, targets.view(-1, 1), 1.0 - epsilon + epsilon / num_classes)
    return -(smooth * log_probs).sum(dim=1).mean()


def euclidean_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pairwise Euclidean distances, clamped away from 0 so the gradient stays finite."""
    x, y = x.float(), y.float()
    sq = (x * x).sum(1, keepdim=True) + (y * y).sum(1).view(1, -1) - 2.0 * x @ y.t()
    return sq.clamp(min=1e-12).sqrt()


def batch_hard_triplet_loss(
    feats: torch.Tensor, labels: torch.Tensor, margin: float = 0.3,
    candidates: torch.Tensor | None = None, candidate_labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Batch-hard triplet loss: for each anchor, the farthest positive (the anchor itself
    counts, at distance ~0) and the closest negative in the batch; mean of
    max(0, d(a, p) - d(a, n) + margin). ``candidates`` (default: the anchors) are where
    positives and negatives are mined: under DDP the global batch, while the anchors are
    the process's own rows."""
    if candidates is None:
        candidates, candidate_labels = feats, labels
    dist = euclidean_distances(feats, candidates)
    same = labels.view(-1, 1) == candidate_labels.view(1, -1)
    if bool(same.all(dim=1).any()):
        raise ValueError("batch_hard_triplet_loss: every anchor needs a negative in the batch")
    hardest_pos = dist.masked_fill(~same, float("-inf")).max(dim=1).values
    hardest_neg = dist.masked_fill(same, float("inf")).min(dim=1).values
    return F.relu(hardest_pos - hardest_neg + margin).mean()
