"""How a training stage runs: where, with which seed, and where it keeps its state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from clipreid.config.schema import PreprocessConfig
from clipreid.distributed import Process


@dataclass(frozen=True)
class RunSettings:
    """Where a training stage runs and keeps its state: shared by stage 1 and stage 2."""

    input_size: Sequence[int]
    preprocess: PreprocessConfig   # model.preprocess: normalisation and interpolation
    device: torch.device
    seed: int
    checkpoint_dir: str   # per-epoch checkpoint for resuming (checkpoint.py)
    fingerprint: str      # params + inputs digest: a checkpoint of another run is ignored
    live_dir: str         # dvclive curves
    decoded_dir: str      # stage 2's training images, decoded once (loader/decoded.py)
    num_workers: int = 0
    process: Process = Process()   # this process among torchrun's (rank 0 of 1 alone)
