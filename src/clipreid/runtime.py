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


AMP_MODES = ("auto", "bf16", "fp16", "off")
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a stage's ``amp`` setting on ``device`` (None: float32).

    ``auto``: bfloat16 on a GPU that has it, float16 on an older GPU, float32 on the CPU.
    ``bf16`` / ``fp16`` are used as asked, on the CPU too (autocast supports both there,
    which tests use); ``off`` is float32 everywhere."""
    if mode not in AMP_MODES:
        raise ConfigError(f"amp '{mode}' must be one of {', '.join(AMP_MODES)}")
    if mode == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return AMP_DTYPES[mode]


def autocast(device: torch.device, mode: str):
    """Mixed precision of ``mode`` (see :func:`amp_dtype`); a no-op when float32."""
    dtype = amp_dtype(mode, device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, mode: str) -> torch.amp.GradScaler:
    """A gradient scaler, enabled for float16 only (bfloat16 has float32's range)."""
    enabled = amp_dtype(mode, device) == torch.float16
    return torch.amp.GradScaler(device.type, enabled=enabled)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def progress(iterable, **kwargs):
    """A progress bar on stderr (plain lines when stderr is not a terminal)."""
    return tqdm(iterable, file=sys.stderr, dynamic_ncols=True,
                mininterval=1.0 if sys.stderr.isatty() else 10.0, **kwargs)
