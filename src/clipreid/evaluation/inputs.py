"""Checking and converting the evaluator's inputs.

Every public function of :mod:`clipreid.evaluation` accepts numpy arrays or torch tensors;
these helpers turn them into torch tensors and fail with a :class:`DatasetError` that
names the argument at fault and what to do about it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from clipreid.errors import DatasetError


def as_tensor(x, name: str, device: torch.device | str | None = None) -> torch.Tensor:
    """``x`` (numpy array, tensor or sequence) as a tensor on ``device`` (no copy if it can)."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        try:
            t = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError) as exc:
            raise DatasetError(f"{name} must be a numeric array, got {type(x).__name__}: {exc}")
    if device is not None:
        t = t.to(device)
    return t


def labels(x, name: str) -> np.ndarray:
    """A 1-D int64 numpy array of identity or camera labels."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.ndim != 1:
        raise DatasetError(f"{name} must be 1-D (one label per image), got shape {a.shape}")
    if a.dtype.kind == "f":
        if not np.array_equal(a, np.round(a)):
            raise DatasetError(f"{name} must hold integer labels, found non-integer values")
    elif a.dtype.kind not in "iu":
        raise DatasetError(f"{name} must hold integer labels, got dtype {a.dtype}")
    return a.astype(np.int64)


def features(x, name: str, device=None) -> torch.Tensor:
    """A 2-D float32/float64 feature matrix with finite entries and at least one row."""
    t = as_tensor(x, name, device)
    if t.dim() != 2:
        raise DatasetError(f"{name} must be 2-D (images x dimensions), got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise DatasetError(f"{name} is empty: the evaluation needs at least one image there")
    if t.shape[1] == 0:
        raise DatasetError(f"{name} has zero feature dimensions")
    if t.dtype not in (torch.float32, torch.float64):  # integers, float16, bfloat16
        t = t.to(torch.float32)
    check_finite(t, name)
    return t


def check_finite(t, name: str) -> None:
    """Fail naming the first row of ``t`` (2-D tensor or array) with a NaN or inf entry."""
    if isinstance(t, torch.Tensor) and t.device.type == "cpu":
        t = t.numpy()  # numpy is several times faster than torch on the CPU
    if isinstance(t, np.ndarray):
        # a float64 sum of float32/float16 entries cannot overflow, so it is finite
        # exactly when every entry is; it needs no temporary array
        if t.dtype.itemsize <= 4:
            all_finite = np.isfinite(t.sum(dtype=np.float64))
        else:
            all_finite = np.isfinite(t).all()
        if all_finite:
            return
        bad_rows = ~np.isfinite(t).reshape(len(t), -1).all(axis=1)
        first = int(np.flatnonzero(bad_rows)[0]) if bad_rows.any() else None
    else:
        bad_rows = ~torch.isfinite(t).reshape(len(t), -1).all(dim=1)
        first = int(bad_rows.nonzero()[0, 0]) if bool(bad_rows.any()) else None
    if first is not None:
        raise DatasetError(
            f"{name} has NaN or infinite values (first in row {first}); "
            "check the model's outputs (e.g. a mixed-precision overflow) before evaluating")


def check_lengths(pairs: Sequence[tuple[str, int]]) -> None:
    """Fail unless all ``(name, length)`` pairs have the same length."""
    first_name, first_len = pairs[0]
    for name, length in pairs[1:]:
        if length != first_len:
            raise DatasetError(
                f"{name} has {length} entries but {first_name} has {first_len}; "
                "they must describe the same images, one entry per image")


def check_problem(num_q: int, num_g: int, q_pids, g_pids, q_camids, g_camids) -> None:
    """Check the label vectors against the numbers of queries and gallery images."""
    if num_q == 0:
        raise DatasetError("the query set is empty: the evaluation needs at least one query")
    if num_g == 0:
        raise DatasetError("the gallery is empty: the evaluation needs at least one gallery image")
    check_lengths([("the query rows", num_q), ("q_pids", len(q_pids)), ("q_camids", len(q_camids))])
    check_lengths([("the gallery rows", num_g), ("g_pids", len(g_pids)),
                   ("g_camids", len(g_camids))])
