"""The fine-tuned model file (``models/reid.pt``): self-describing, so it loads without
params.yaml. It holds the weights, the number of identities and the resolved config the
model was built with (``model``: architecture, input size, stride, SIE, preprocessing;
the object noun of the prompts, the number of cameras, the method, the feature size), as
tensors and plain values, loaded with ``weights_only=True``."""

from __future__ import annotations

import dataclasses
import logging
import os

from clipreid.config.schema import ModelConfig, Params, as_dict, coerce
from clipreid.errors import WeightsError
from clipreid.io import load_torch, save_torch
from clipreid.model.reid import ClipReID, build_reid_model

log = logging.getLogger(__name__)

FORMAT = "clipreid/reid-model/1"
#: The normalisation every model of the earlier file format was trained with.
EARLIER_MEAN = [0.5, 0.5, 0.5]
#: Keys of ``model`` that say where the starting weights came from, not what the model is.
PROVENANCE_KEYS = ("name", "weights", "source", "init_seed")


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """What a model file says about itself (everything needed to rebuild and feed it)."""

    model: ModelConfig
    object: str            # the prompts' noun: person | vehicle
    num_cameras: int       # rows of the SIE camera table (when SIE is on)
    num_classes: int       # training identities (classifiers, prompt vectors)
    method: str            # clipreid | baseline
    feature_dim: int       # size of the test descriptor

    def as_dict(self) -> dict:
        return {"model": as_dict(self.model), "object": self.object,
                "num_cameras": self.num_cameras, "num_classes": self.num_classes,
                "method": self.method, "feature_dim": self.feature_dim}


def describe(model: ClipReID, model_cfg: ModelConfig, object_noun: str, num_cameras: int,
             num_classes: int, method: str) -> ModelCard:
    encoder = model.image_encoder
    return ModelCard(model=coerce(ModelConfig, model_cfg, "model"), object=object_noun,
                     num_cameras=int(num_cameras), num_classes=int(num_classes),
                     method=method, feature_dim=int(encoder.main_dim + encoder.proj_dim))


def save_model(path: str | os.PathLike, model: ClipReID, card: ModelCard) -> None:
    save_torch(path, {
        "format": FORMAT,
        "config": card.as_dict(),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    })


def save_reid_model(path: str | os.PathLike, model: ClipReID, params: Params,
                    num_classes: int) -> None:
    """``model`` trained with ``params``, written to ``path`` with its config."""
    save_model(path, model, describe(model, params.model, params.dataset.object,
                                     params.dataset.num_cameras, num_classes, params.method))


def read_card(saved: dict, path) -> ModelCard:
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise WeightsError(
            f"{path} is not a self-describing model file of this version ({FORMAT}): it was "
            "written by an older version or by another program. Re-create it with the "
            "finetune stage (`dvc repro finetune`), or convert an official checkpoint with "
            "`clipreid import-official`")
    cfg = saved["config"]
    return ModelCard(model=coerce(ModelConfig, cfg["model"], "model"), object=cfg["object"],
                     num_cameras=int(cfg["num_cameras"]), num_classes=int(cfg["num_classes"]),
                     method=cfg["method"], feature_dim=int(cfg["feature_dim"]))


def load_model(path: str | os.PathLike) -> ClipReID:
    """The model of ``path`` in eval mode, built from the config the file carries (no
    params.yaml, no OpenAI weights needed). ``model.test_features(images, camids=None)``
    gives the L2-normalised test descriptors of preprocessed images (the file's
    ``model.preprocess`` and ``model.input_size``; :func:`load_card` reads them; a model
    with SIE needs each image's camera id). ``model.text_features(labels)`` is meaningful
    for ``method: clipreid`` only: a baseline has no trained prompts."""
    return _load(path)[0]


def load_card(path: str | os.PathLike) -> ModelCard:
    """What the model file at ``path`` says about itself, without building the model."""
    return read_card(load_torch(path), path)


def _load(path) -> tuple[ClipReID, ModelCard]:
    saved = load_torch(path)
    card = read_card(saved, path)
    num_cameras = card.num_cameras if card.model.sie.enabled else 0
    model = build_reid_model(card.model, card.num_classes, card.object, num_cameras,
                             load_weights=False)
    try:
        model.load_state_dict(saved["model"])
    except RuntimeError as exc:
        raise WeightsError(f"{path}: the weights do not fit the config the file carries: "
                           f"{exc}") from None
    return model.eval(), card


def mismatches(card: ModelCard, params: Params) -> list[str]:
    """Where the model file's config differs from params.yaml's, as ``key: file vs params``
    (the keys of ``model`` that say where weights came from are not compared)."""
    out = []
    saved, wanted = as_dict(card.model), as_dict(params.model)
    for key in sorted(set(saved) | set(wanted)):
        if key not in PROVENANCE_KEYS and saved.get(key) != wanted.get(key):
            out.append(f"model.{key}: {saved.get(key)!r} in the file, {wanted.get(key)!r} in "
                       "params")
    if card.object != params.dataset.object:
        out.append(f"dataset.object: {card.object!r} in the file, {params.dataset.object!r} in "
                   "params")
    if card.model.sie.enabled and card.num_cameras != params.dataset.num_cameras:
        out.append(f"dataset.num_cameras: {card.num_cameras} in the file, "
                   f"{params.dataset.num_cameras} in params")
    return out


def load_reid_model(path: str | os.PathLike, params: Params) -> ClipReID:
    """The model of ``path`` in eval mode, for a stage run with ``params``: the file's
    config must be the one params.yaml describes, or the stage would feed it wrongly. A
    file of the earlier format (weights and ``num_classes`` only, e.g. a champion model of
    an older commit that the retraining flow re-scores) is built from ``params``."""
    saved = load_torch(path)
    if isinstance(saved, dict) and "format" not in saved and {"model", "num_classes"} <= set(
            saved):
        log.warning("%s has no config of its own (an earlier format): built from params.yaml",
                    path)
        if params.model.preprocess.mean != EARLIER_MEAN or params.model.preprocess.std != \
                EARLIER_MEAN:
            raise WeightsError(
                f"{path} is of the earlier format, whose models were all trained with mean = "
                f"std = 0.5, but params.yaml has model.preprocess mean "
                f"{params.model.preprocess.mean}, std {params.model.preprocess.std}; re-create "
                "it with the finetune stage (`dvc repro finetune`)")
        model = build_reid_model(params.model, int(saved["num_classes"]), params.dataset.object,
                                 params.dataset.num_cameras if params.model.sie.enabled else 0,
                                 load_weights=False)
        try:
            model.load_state_dict(saved["model"])
        except RuntimeError as exc:
            raise WeightsError(f"{path} (earlier format) does not fit params.yaml's model: "
                               f"{exc}") from None
        return model.eval()
    model, card = _load(path)
    problems = mismatches(card, params)
    if problems:
        raise WeightsError(f"{path} was built with another config than params.yaml: "
                           + "; ".join(problems) + ". Re-run the stage that wrote it "
                           "(`dvc repro`), or compose params.yaml for it (`clipreid compose "
                           "experiment=<its recipe>`)")
    return model
