"""Alpha-weighted average query expansion (alpha-QE; Radenovic, Tolias, Chum, 2018).

Each query is replaced by the L2-normalised sum of itself and its ``top_k`` most similar
gallery images, each weighted by its cosine similarity to the query raised to the power
``alpha`` (negative similarities count as 0; the query's own weight is 1). ``alpha = 0``
gives plain average query expansion (Chum et al., 2007). The gallery is left as it is.
"""

from __future__ import annotations

import numpy as np
import torch

from clipreid.errors import ConfigError, DatasetError
from clipreid.evaluation import inputs
from clipreid.evaluation.distance import GalleryDistances, normalize, smallest_k
from clipreid.evaluation.metrics import default_block_size


def alpha_query_expansion(qf, gf, *, top_k: int = 5, alpha: float = 3.0,
                          block_size: int | None = None, device=None) -> torch.Tensor:
    """Expanded query features (Q, D), float32, L2-normalised, on ``device``."""
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ConfigError(f"query expansion top_k must be a positive integer, got {top_k!r}")
    if not np.isfinite(alpha) or alpha < 0:
        raise ConfigError(f"query expansion alpha must be a finite number >= 0, got {alpha!r}")
    qf = inputs.features(qf, "qf")
    gf = inputs.features(gf, "gf")
    if qf.shape[1] != gf.shape[1]:
        raise DatasetError(f"qf has {qf.shape[1]} dimensions but gf has {gf.shape[1]}")
    device = torch.device(device) if device is not None else qf.device
    gn = normalize(gf.to(device))
    qn = normalize(qf.to(device))
    # cosine distance 1 - s: the nearest images are the most similar ones
    to_gallery = GalleryDistances(gf, "cosine", device)
    block = block_size or default_block_size(len(gf))
    out = torch.empty_like(qn)
    for start in range(0, len(qn), block):
        q = qn[start:start + block]
        nearest = torch.from_numpy(smallest_k(to_gallery(q), top_k)).to(device)  # (B, k)
        neighbours = gn[nearest]  # (B, k, D)
        sim = torch.einsum("bkd,bd->bk", neighbours, q).clamp_min(0.0)
        weights = sim.pow(alpha)  # 0 ** 0 == 1: alpha = 0 weighs all neighbours alike
        expanded = q + torch.einsum("bk,bkd->bd", weights, neighbours)
        out[start:start + block] = normalize(expanded)
    return out
