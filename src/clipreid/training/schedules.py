"""Learning-rate schedules of method.md, as pure functions of the (1-based) epoch, so
that a resumed run needs no scheduler state."""

from __future__ import annotations

import bisect
import math
from typing import Sequence


def cosine_with_warmup(epoch: int, base_lr: float, epochs: int, warmup_epochs: int,
                       warmup_lr: float, min_lr: float) -> float:
    """Stage 1: linear warm-up from ``warmup_lr`` over ``warmup_epochs``, then cosine
    decay from ``base_lr`` to ``min_lr`` over ``epochs`` (stepped per epoch)."""
    if epoch < warmup_epochs:
        return warmup_lr + epoch * (base_lr - warmup_lr) / warmup_epochs
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * epoch / epochs))


def warmup_multistep_factor(epoch: int, milestones: Sequence[int], gamma: float,
                            warmup_epochs: int, warmup_factor: float) -> float:
    """Stage 2: factor on the base learning rate: linear warm-up from ``warmup_factor``
    over ``warmup_epochs``, times ``gamma`` for each milestone reached."""
    factor = 1.0
    if epoch < warmup_epochs:
        alpha = epoch / warmup_epochs
        factor = warmup_factor * (1.0 - alpha) + alpha
    return factor * gamma ** bisect.bisect_right(sorted(milestones), epoch)
