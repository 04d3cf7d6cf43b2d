"""Distances between L2-normalised features, computed one block of queries at a time.

Both distances are computed from the similarity ``s = q . g`` of the L2-normalised
features ``q`` and ``g`` (float32 matrix product, IEEE precision: TF32 is switched off
on CUDA while we compute):

- ``"euclidean"``: the squared Euclidean distance ``|q - g|^2 = 2 - 2 s`` (clamped at 0),
  as the published re-ID evaluators compute it; it orders the gallery exactly as the
  Euclidean distance does;
- ``"cosine"``: the cosine distance ``1 - s`` (clamped at 0). On normalised features it
  is half the squared Euclidean distance, so both give the same rankings and metrics.

:func:`pairwise_distance` returns exactly the values that the block-wise evaluator ranks,
so ``evaluate(pairwise_distance(qf, gf), ...)`` equals ``evaluate_features(qf, gf, ...)``.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from clipreid.errors import ConfigError
from clipreid.evaluation import inputs

DISTANCES = ("euclidean", "cosine")

#: Work on CPU tensors through numpy, several times faster than torch on the CPUs we use.
#: Tests turn it off to run, on the CPU, the torch code that GPUs take.
NUMPY_ON_CPU = True


def as_numpy(t):
    """A numpy view of ``t`` if it is to be worked on with numpy, else None (torch)."""
    if isinstance(t, np.ndarray):
        return t
    if NUMPY_ON_CPU and t.device.type == "cpu":
        return t.numpy()
    return None


def check_distance(distance: str) -> str:
    """Return ``distance`` if it is one we compute, else raise :class:`ConfigError`."""
    if distance not in DISTANCES:
        raise ConfigError(f"evaluation distance '{distance}' is unknown; use one of {DISTANCES}")
    return distance


def normalize(x: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` scaled to unit L2 norm (all-zero rows stay zero), as a new float32
    tensor (CPU tensors are worked on through numpy: :data:`NUMPY_ON_CPU`)."""
    x = x.to(torch.float32)
    a = as_numpy(x)
    if a is not None:
        norms = np.sqrt(np.einsum("ij,ij->i", a, a))
        return torch.from_numpy(a / np.maximum(norms, np.float32(1e-12))[:, None])
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


@contextlib.contextmanager
def ieee_float32_matmul():
    """Compute float32 products in full float32 (no TF32) inside the block."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def similarity(q: torch.Tensor, g_t: torch.Tensor) -> torch.Tensor:
    """``q @ g_t`` for a (B, D) block and the (D, G) transposed gallery (a view).

    On the CPU the product goes through numpy's BLAS (OpenBLAS), which ran 1.5-2x faster
    than torch's MKL on the AMD processors we use; elsewhere it is ``torch.mm``.
    """
    if as_numpy(q) is not None:
        return torch.from_numpy(np.matmul(q.numpy(), g_t.numpy()))
    with ieee_float32_matmul():
        return torch.mm(q, g_t)


def distance_from_similarity(sim: torch.Tensor, distance: str) -> torch.Tensor:
    """Turn a similarity block into distances in place (see the module docstring).

    CPU tensors are worked on through numpy (:data:`NUMPY_ON_CPU`)."""
    check_distance(distance)
    a = as_numpy(sim)
    if a is not None:
        if distance == "euclidean":
            a *= -2.0
            a += 2.0
        else:
            np.negative(a, out=a)
            a += 1.0
        np.maximum(a, 0.0, out=a)
        return sim
    if distance == "euclidean":
        return sim.mul_(-2.0).add_(2.0).clamp_min_(0.0)
    return sim.neg_().add_(1.0).clamp_min_(0.0)


class GalleryDistances:
    """The distances of query blocks to a fixed gallery: normalise once, then per block.

    ``gf`` is normalised once, on ``device``."""

    def __init__(self, gf: torch.Tensor, distance: str, device: torch.device):
        self.distance = check_distance(distance)
        self.g_t = normalize(gf.to(device)).t()  # a view: BLAS reads it transposed

    @property
    def num_gallery(self) -> int:
        return self.g_t.shape[1]

    def __call__(self, q_normalized: torch.Tensor) -> torch.Tensor:
        """(B, G) float32 distances of already-normalised queries ``q_normalized``."""
        return distance_from_similarity(similarity(q_normalized, self.g_t), self.distance)


def pairwise_distance(qf, gf, distance: str = "euclidean", device=None) -> torch.Tensor:
    """The full (Q, G) float32 distance matrix the evaluator ranks (needs Q*G*4 bytes)."""
    qf = inputs.features(qf, "qf")
    gf = inputs.features(gf, "gf")
    if qf.shape[1] != gf.shape[1]:
        raise inputs.DatasetError(f"qf has {qf.shape[1]} dimensions but gf has {gf.shape[1]}")
    device = torch.device(device) if device is not None else qf.device
    return GalleryDistances(gf, distance, device)(normalize(qf.to(device)))


def smallest_k(dist: torch.Tensor, k: int) -> np.ndarray:
    """Indices of the ``k`` smallest entries of each row of ``dist`` (B, N), ordered by
    (distance, index). Which of several entries tied at the k-th distance get in is left
    to the selection algorithm."""
    k = min(k, dist.shape[1])
    a = as_numpy(dist)
    if a is None:
        idx = torch.topk(dist, k, dim=1, largest=False).indices.cpu().numpy()
        values = dist.gather(1, torch.from_numpy(idx).to(dist.device)).cpu().numpy()
    else:
        idx = np.argpartition(a, k - 1, axis=1)[:, :k] if k < a.shape[1] else \
            np.broadcast_to(np.arange(a.shape[1]), a.shape).copy()
        values = np.take_along_axis(a, idx, axis=1)
    order = np.lexsort((idx, values), axis=1)
    return np.take_along_axis(idx, order, axis=1)
