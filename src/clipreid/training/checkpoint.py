"""Per-epoch checkpoints for resuming an interrupted stage.

A checkpoint holds tensors and plain containers only (loaded with weights_only=True), and
the fingerprint of the run that wrote it: a checkpoint of another configuration or other
inputs is ignored, so a changed experiment never resumes from a stale one."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from clipreid.io import file_sha256, load_torch, save_torch

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "last.pt"


def fingerprint(params: Mapping, input_files: Iterable[str | os.PathLike] = ()) -> str:
    """Digest of a stage's params and the contents of its input files."""
    h = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    for path in input_files:
        h.update(file_sha256(path).encode())
    return h.hexdigest()


def save_checkpoint(directory: str | os.PathLike, state: Mapping[str, Any]) -> None:
    save_torch(Path(directory) / CHECKPOINT_NAME, dict(state))


def load_checkpoint(directory: str | os.PathLike, expected_fingerprint: str):
    """The last checkpoint in ``directory`` if it was written by the same run, else None."""
    path = Path(directory) / CHECKPOINT_NAME
    if not path.is_file():
        return None
    try:
        state = load_torch(path)
    except Exception as exc:  # a damaged file: start again rather than fail
        log.warning("ignoring unreadable checkpoint %s (%s)", path, exc)
        return None
    if state.get("fingerprint") != expected_fingerprint:
        log.info("ignoring checkpoint %s: written by another configuration", path)
        return None
    return state


def resume(run, optimizer, scaler, restore, stage: str) -> tuple[int, list]:
    """Restore a stage from the last checkpoint of the same run, if any.

    ``restore(state)`` puts the stage's own tensors back; the optimizer and the gradient
    scaler are restored here. Returns the epoch to start from and the history so far."""
    state = load_checkpoint(run.checkpoint_dir, run.fingerprint)
    if state is None:
        return 1, []
    restore(state)
    optimizer.load_state_dict(state["optimizer"])
    scaler.load_state_dict(state["scaler"])
    log.info("%s: resuming after epoch %d", stage, state["epoch"])
    return state["epoch"] + 1, list(state["history"])


def save_epoch(run, epoch: int, optimizer, scaler, history: list, **tensors) -> None:
    """Write the checkpoint of a finished epoch (atomically; the main process only: the
    processes hold the same state, and every one resumes from this file)."""
    if not run.process.is_main:
        return
    save_checkpoint(run.checkpoint_dir, {
        "fingerprint": run.fingerprint, "epoch": epoch, "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(), "history": history, **tensors,
    })
