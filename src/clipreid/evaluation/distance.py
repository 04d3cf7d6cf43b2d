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
On the CPU the evaluator ranks the similarity block itself and turns into distances only
the few similarities that can matter (see :class:`SimilarityScale`), with the same
float32 operations, hence the same values.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from clipreid.errors import ConfigError
from clipreid.evaluation import inputs

DISTANCES = ("euclidean", "cosine")

#: Work on CPU tensors through numpy, several times faster than torch on the CPUs we use.
#: Tests turn it off to run, on the CPU, the torch code that GPUs take.
NUMPY_ON_CPU = True


#: Fewest multiply-adds of a CPU product of a query block with the gallery. OpenBLAS's
#: main kernel computes each entry the same way whatever the block's rows (tests check
#: it), but it hands small products (about 1e6 multiply-adds) to other kernels and single
#: rows to its matrix-vector product, which sum in other orders: the last bits of a
#: distance, hence near-tie orders, would depend on the block size.
MIN_PRODUCT_WORK = 2**22


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
    than torch's MKL on the AMD processors we use; elsewhere it is ``torch.mm``. A block
    too small for OpenBLAS's main kernel is padded with zero rows (see
    :data:`MIN_PRODUCT_WORK`), so every entry is summed the same way, whatever the block
    size, on the CPUs this was measured on; on others (an AMD EPYC with AVX2) entries can
    differ in their last bit between block sizes.
    """
    a = as_numpy(q)
    if a is not None:
        num_rows, dim = a.shape
        rows = max(num_rows, 2, -(-MIN_PRODUCT_WORK // max(1, dim * g_t.shape[1])))
        if rows > num_rows:
            a = np.concatenate([a, np.zeros((rows - num_rows, dim), dtype=a.dtype)])
        return torch.from_numpy(np.matmul(a, g_t.numpy())[:num_rows])
    with ieee_float32_matmul():
        return torch.mm(q, g_t)


def similarity_to_distance(a: np.ndarray, distance: str) -> np.ndarray:
    """Turn a numpy array of similarities into distances in place and return it (the
    float32 formula of the module docstring, element by element, so any subset of a
    block gets the values the whole block would)."""
    if distance == "euclidean":
        a *= -2.0
        a += 2.0
    else:
        np.negative(a, out=a)
        a += 1.0
    np.maximum(a, 0.0, out=a)
    return a


def distance_from_similarity(sim: torch.Tensor, distance: str) -> torch.Tensor:
    """Turn a similarity block into distances in place (see the module docstring).

    CPU tensors are worked on through numpy (:data:`NUMPY_ON_CPU`)."""
    check_distance(distance)
    a = as_numpy(sim)
    if a is not None:
        similarity_to_distance(a, distance)
        return sim
    if distance == "euclidean":
        return sim.mul_(-2.0).add_(2.0).clamp_min_(0.0)
    return sim.neg_().add_(1.0).clamp_min_(0.0)


@dataclass(frozen=True)
class SimilarityScale:
    """How a block of similarities of normalised ``dim``-d features maps to distances.

    The map ``d(s)`` is non-increasing (it is made of exact scalings, one rounded
    addition and a clamp at 0), so the gallery images no farther than a distance
    ``d(s0)`` are those with ``s >= s0`` plus those with a slightly smaller ``s`` that
    rounds to the same distance: all within :attr:`margin` below ``s0``. Rounding merges
    similarities less than ulp(d)/2 <= 2**-21 apart; the clamp merges those >= 1, and a
    float32 product of vectors normalised to 1 exceeds 1 by less than dim * 2**-22. A
    ranking can thus select candidates on ``s >= s0 - margin`` and filter them exactly on
    their distances, without turning the whole block into distances.
    """

    distance: str
    dim: int

    @property
    def margin(self) -> float:
        return 2.0**-20 + self.dim * 2.0**-22

    def to_distance(self, a: np.ndarray) -> np.ndarray:
        """Distances of the similarities ``a`` (numpy), in place."""
        return similarity_to_distance(a, self.distance)


class GalleryDistances:
    """The distances of query blocks to a fixed gallery: normalise once, then per block.

    ``gf`` is normalised once, on ``device``."""

    def __init__(self, gf: torch.Tensor, distance: str, device: torch.device):
        self.distance = check_distance(distance)
        self.g_t = normalize(gf.to(device)).t()  # a view: BLAS reads it transposed
        self.scale = SimilarityScale(self.distance, self.g_t.shape[0])

    @property
    def num_gallery(self) -> int:
        return self.g_t.shape[1]

    def similarities(self, q_normalized: torch.Tensor) -> torch.Tensor:
        """(B, G) float32 similarities of already-normalised queries ``q_normalized``
        (:attr:`scale` turns them into distances)."""
        return similarity(q_normalized, self.g_t)

    def __call__(self, q_normalized: torch.Tensor) -> torch.Tensor:
        """(B, G) float32 distances of already-normalised queries ``q_normalized``."""
        return distance_from_similarity(self.similarities(q_normalized), self.distance)


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
