"""The fine-tuned model file (``models/reid.pt``): its weights and number of identities,
saved as tensors and plain values (loaded with ``weights_only=True``)."""

from __future__ import annotations

import os

from clipreid.config.schema import ModelConfig
from clipreid.io import load_torch, save_torch
from clipreid.model.reid import ClipReID, build_reid_model


def save_reid_model(path: str | os.PathLike, model: ClipReID, num_classes: int) -> None:
    save_torch(path, {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "num_classes": int(num_classes),
    })


def load_reid_model(path: str | os.PathLike, model_cfg: ModelConfig, object_noun: str,
                    num_cameras: int) -> ClipReID:
    """The model of ``path`` in eval mode (architecture from ``model_cfg``)."""
    saved = load_torch(path)
    model = build_reid_model(model_cfg, int(saved["num_classes"]), object_noun, num_cameras,
                             load_weights=False)
    model.load_state_dict(saved["model"])
    return model.eval()
