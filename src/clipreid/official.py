"""Checkpoints of the official CLIP-ReID code (Syliz517/CLIP-ReID) as this project's model.

The official training script saves ``model.state_dict()`` of its ``build_transformer``
(model/make_model_clipreid.py; the baselines' model/make_model.py has the image side
only), with ``module.`` before every key when trained with DistributedDataParallel. Its
modules hold the same tensors as ours under other names:

==============================  ================================  =========================
official                        ours                              what
==============================  ================================  =========================
``image_encoder.*``             ``image_encoder.visual.*``        CLIP's image tower
``cv_embed``                    ``camera_embedding``              SIE camera table
``bottleneck[_proj].*``         ``bottleneck[_proj].*``           BN necks
``classifier[_proj].weight``    ``classifier[_proj].weight``      identity classifiers
``prompt_learner.cls_ctx``      ``prompt_learner.ctx``            learned prompt vectors
``prompt_learner.token_prefix`` ``prompt_learner.prefix``         template before them
``prompt_learner.token_suffix`` ``prompt_learner.suffix``         template after them
``text_encoder.*``              ``text_encoder.*``                CLIP's text tower
==============================  ================================  =========================

The model is built from the named recipe's config (patch grid, SIE, backbone), every
shape is compared before anything loads, and every mismatch is reported with both shapes
and the config key that decides it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from clipreid.config.schema import Params
from clipreid.errors import WeightsError
from clipreid.io import load_torch, save_torch
from clipreid.model.reid import ClipReID, build_reid_model
from clipreid.model.saved import describe, save_model

log = logging.getLogger(__name__)

#: Official key prefix -> ours (the first that matches; exact names first).
RENAMES = (
    ("cv_embed", "camera_embedding"),
    ("prompt_learner.cls_ctx", "prompt_learner.ctx"),
    ("prompt_learner.token_prefix", "prompt_learner.prefix"),
    ("prompt_learner.token_suffix", "prompt_learner.suffix"),
    ("image_encoder.", "image_encoder.visual."),
    ("text_encoder.", "text_encoder."),
    ("bottleneck_proj.", "bottleneck_proj."),
    ("bottleneck.", "bottleneck."),
    ("classifier_proj.", "classifier_proj."),
    ("classifier.", "classifier."),
)
#: Ours that no official checkpoint holds: the template's token ids, rebuilt from the
#: template (``dataset.object``) and CLIP's tokenizer.
DERIVED = ("prompt_learner.tokens",)
#: Prefixes of the text side, which a baseline checkpoint does not have.
TEXT_SIDE = ("prompt_learner.", "text_encoder.")


def our_name(key: str) -> str | None:
    for official, ours in RENAMES:
        if key == official or (official.endswith(".") and key.startswith(official)):
            return ours + key[len(official):]
    return None


def config_key(ours: str) -> str:
    """The config key that decides the shape of our tensor ``ours``."""
    if ours == "camera_embedding":
        return "dataset.num_cameras with model.sie.enabled (SIE on camera ids only)"
    if ours.endswith("attnpool.positional_embedding"):
        return "model.input_size (the RN50 attention-pool grid, input / 16)"
    if ours == "image_encoder.visual.positional_embedding":
        return "model.input_size and model.stride (the ViT patch grid)"
    if ours.startswith("prompt_learner."):
        return "dataset.object and model.architecture (the prompt template and text width)"
    if ours.startswith("text_encoder."):
        return "model.architecture (the text tower: use the recipe's model, vit_b16 or rn50)"
    return "model (the backbone: the recipe's model, vit_b16 or rn50)"


def read_official_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of an official checkpoint, ``module.`` prefixes removed. Loaded with
    ``weights_only=True``: a checkpoint that holds code is refused."""
    from clipreid.model.backbone import is_torchscript_archive

    if not Path(path).is_file():
        raise WeightsError(f"{path} not found")
    if is_torchscript_archive(Path(path)):
        raise WeightsError(f"{path} is a TorchScript archive (as OpenAI's CLIP weights are), "
                           "not the state dict the official training script saves "
                           "(<MODEL.NAME>_<epoch>.pth); pass that file")
    try:
        saved = load_torch(path)
    except WeightsError as exc:
        if "not a safe checkpoint" not in str(exc):
            raise
        raise WeightsError(
            f"{path} holds Python objects besides tensors, and loading it could run code, so "
            "it is refused. If you trust the file, re-save its tensors as a plain state dict "
            "(a dict of name -> tensor) and import that") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(saved, dict) and isinstance(saved.get(wrapper), dict):
            saved = saved[wrapper]
    if not isinstance(saved, dict) or not saved:
        raise WeightsError(f"{path} holds no state dict")
    return {k.removeprefix("module."): v for k, v in saved.items()
            if isinstance(v, torch.Tensor)}


def plan(state: dict[str, torch.Tensor], model: ClipReID, method: str,
         path) -> dict[str, torch.Tensor]:
    """Our state dict from the official ``state``, after checking every name and shape
    against ``model``; raises naming every problem at once."""
    ours = model.state_dict()
    mapped, seen, problems = {}, set(), []
    for key, tensor in state.items():
        name = our_name(key)
        if name is None or name not in ours:
            hint = ("the checkpoint has SIE camera embeddings: use a recipe with SIE "
                    "(model.sie.enabled=true, e.g. experiment=vit_clipreid_sie_olp_*)"
                    if key == "cv_embed" else "no such tensor in this model")
            problems.append(f"{key} {tuple(tensor.shape)}: {hint}")
            continue
        seen.add(name)
        if name == "camera_embedding" and tensor.shape[0] != ours[name].shape[0]:
            problems.append(f"{key} {tuple(tensor.shape)} vs ours {name} "
                            f"{tuple(ours[name].shape)}: the checkpoint's camera table has "
                            f"{tensor.shape[0]} rows, dataset.num_cameras is "
                            f"{ours[name].shape[0]}; set dataset.num_cameras to the cameras "
                            "of the data set it was trained on (a camera x view table, "
                            "SIE_VIEW, is not supported)")
            continue
        if tuple(tensor.shape) != tuple(ours[name].shape):
            problems.append(f"{key} {tuple(tensor.shape)} vs ours {name} "
                            f"{tuple(ours[name].shape)}: set {config_key(name)}")
            continue
        mapped[name] = tensor
    optional = DERIVED + (TEXT_SIDE if method == "baseline" else ())
    for name, tensor in ours.items():
        if name not in seen and not name.startswith(optional):
            problems.append(f"missing {name} {tuple(tensor.shape)}: the checkpoint lacks it; "
                            f"set {config_key(name)}")
    if problems:
        raise WeightsError(f"{path} does not fit the recipe's model ({len(problems)} "
                           "problem(s)):\n  " + "\n  ".join(problems))
    return mapped


def import_official(checkpoint: str | os.PathLike, params: Params,
                    out_dir: str | os.PathLike) -> dict:
    """Map the official ``checkpoint`` onto the model of ``params`` (a named recipe's) and
    write ``out_dir/reid.pt`` (self-describing, see clipreid.model.saved) and, for
    CLIP-ReID checkpoints, ``out_dir/prompts.pt`` (prompt vectors and every identity's
    text feature, as the prompt stage writes them). Returns a summary."""
    from clipreid.training.prompt import all_text_features

    state = read_official_state(checkpoint)
    if "classifier.weight" not in state:
        raise WeightsError(f"{checkpoint} is no CLIP-ReID checkpoint: it has no "
                           "classifier.weight (keys start with "
                           f"{sorted({k.split('.')[0] for k in state})[:6]})")
    num_classes = int(state["classifier.weight"].shape[0])
    method = params.method
    has_prompts = "prompt_learner.cls_ctx" in state
    if method == "clipreid" and not has_prompts:
        raise WeightsError(f"{checkpoint} has no prompt vectors (prompt_learner.cls_ctx): a "
                           "baseline checkpoint; use a baseline recipe (experiment="
                           "vit_baseline_* or rn50_baseline_*)")
    sie = params.model.sie.enabled
    model = build_reid_model(params.model, num_classes, params.dataset.object,
                             params.dataset.num_cameras if sie else 0, load_weights=False)
    mapped = plan(state, model, method, checkpoint)
    model.load_state_dict(mapped, strict=False)
    model.eval()
    out_dir = Path(out_dir)
    card = describe(model, params.model, params.dataset.object, params.dataset.num_cameras,
                    num_classes, method)
    save_model(out_dir / "reid.pt", model, card)
    written = [str(out_dir / "reid.pt")]
    if method == "clipreid":
        save_torch(out_dir / "prompts.pt", {
            "method": "clipreid",
            "prompt_learner": {k: v.detach().cpu()
                               for k, v in model.prompt_learner.state_dict().items()},
            "text_features": all_text_features(model, num_classes, torch.device("cpu")),
            "num_classes": num_classes,
        })
        written.append(str(out_dir / "prompts.pt"))
    log.info("imported %d tensors of %s: %d identities, feature size %d", len(mapped),
             checkpoint, num_classes, card.feature_dim)
    return {"tensors": len(mapped), "num_classes": num_classes,
            "feature_dim": card.feature_dim, "written": written}
