"""Where code runs and how it reports: device choice, mixed precision, seeding, progress.
Shared by training, feature extraction and evaluation."""

from __future__ import annotations

import contextlib
import random
import sys

import numpy as np
import torch
from tqdm.auto import tqdm

from clipreid.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but no CUDA device is available; use device=auto")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"device '{name}' must be auto, cpu or cuda")
    return torch.device(name)


def autocast(device: torch.device, enabled: bool):
    """float16 autocast on CUDA when enabled; a no-op on the CPU."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def grad_scaler(device: torch.device, enabled: bool) -> torch.amp.GradScaler:
    return torch.amp.GradScaler("cuda", enabled=bool(enabled and device.type == "cuda"))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def progress(iterable, **kwargs):
    """A progress bar on stderr (plain lines when stderr is not a terminal)."""
    return tqdm(iterable, file=sys.stderr, dynamic_ncols=True,
                mininterval=1.0 if sys.stderr.isatty() else 10.0, **kwargs)
