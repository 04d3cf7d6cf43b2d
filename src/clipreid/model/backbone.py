"""Building CLIP (OpenAI weights or a small random one) and adapting its image tower to
re-ID input: non-square positional grids, overlapping patches, RN50 with stride-1 layer4."""

from __future__ import annotations

import contextlib
import os
import zipfile
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from clipreid.config.schema import ModelConfig, coerce
from clipreid.errors import WeightsError
from clipreid.io import file_sha256


def import_clip():
    """OpenAI's ``clip`` package, imported lazily (it costs seconds), without the
    pkg_resources deprecation warning it triggers on import."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        import clip
    return clip


@contextlib.contextmanager
def seeded(seed: int):
    """Run the block with torch's global generator seeded, restoring it afterwards, so a
    model's initialisation depends only on ``model.init_seed``."""
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.random.set_rng_state(state)


def resize_positional_embedding(
    pos: torch.Tensor, old_grid: Sequence[int], new_grid: Sequence[int]
) -> torch.Tensor:
    """Resize a (1 + h*w, C) positional embedding from grid ``old_grid`` to ``new_grid``
    by bilinear interpolation; the first (class / mean token) row is kept as it is."""
    (oh, ow), (nh, nw) = tuple(old_grid), tuple(new_grid)
    if pos.shape[0] != 1 + oh * ow:
        raise ValueError(
            f"positional embedding has {pos.shape[0]} rows, expected 1 + {oh}x{ow}"
        )
    if (oh, ow) == (nh, nw):
        return pos.clone()
    cls_row, grid = pos[:1], pos[1:]
    grid = grid.reshape(1, oh, ow, -1).permute(0, 3, 1, 2).float()
    grid = F.interpolate(grid, size=(nh, nw), mode="bilinear", align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(nh * nw, -1).to(pos.dtype)
    return torch.cat([cls_row, grid], dim=0)


def vit_grid(input_size: Sequence[int], patch: int, stride: int) -> tuple[int, int]:
    """Patch grid of a ViT for an (H, W) input: ((H - patch) // stride + 1, ...)."""
    h, w = input_size
    return (h - patch) // stride + 1, (w - patch) // stride + 1


def adapt_vit(visual: nn.Module, input_size: Sequence[int], stride: int) -> tuple[int, int]:
    """Set the patch stride and resize the square positional grid to the input's grid."""
    patch = visual.conv1.kernel_size[0]
    old = round((visual.positional_embedding.shape[0] - 1) ** 0.5)
    new = vit_grid(input_size, patch, stride)
    visual.conv1.stride = (stride, stride)
    visual.positional_embedding = nn.Parameter(
        resize_positional_embedding(visual.positional_embedding.data, (old, old), new)
    )
    return new


def adapt_resnet(visual: nn.Module, input_size: Sequence[int]) -> tuple[int, int]:
    """Make layer4 stride 1 (output stride 16) and resize the attention-pool grid."""
    first = visual.layer4[0]
    first.avgpool = nn.Identity()
    if first.downsample is not None:
        first.downsample[0] = nn.Identity()  # the anti-aliasing AvgPool2d of the shortcut
    h, w = input_size
    pos = visual.attnpool.positional_embedding
    old = round((pos.shape[0] - 1) ** 0.5)
    new = (h // 16, w // 16)
    visual.attnpool.positional_embedding = nn.Parameter(
        resize_positional_embedding(pos.data, (old, old), new)
    )
    return new


def resolve_weights(model_cfg: ModelConfig) -> Path:
    """The OpenAI checkpoint file of ``model.weights``, which must exist."""
    path = Path(model_cfg.weights)
    if not path.is_file():
        url = import_clip().clip._MODELS[model_cfg.clip_name]
        raise WeightsError(
            f"model.weights: {path} not found. OpenAI's {model_cfg.clip_name} weights are not "
            f"downloaded here: fetch {url} and pass -S model.weights=/path/"
            f"{os.path.basename(url)} (clip.load caches it in ~/.cache/clip/)")
    return path


def is_torchscript_archive(path: Path) -> bool:
    """OpenAI's checkpoints are TorchScript archives: zips with a ``code/`` folder."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name for name in archive.namelist())


#: Set to 1 to load a TorchScript archive that is not one of OpenAI's files (it runs the
#: code inside the archive: only for files you trust).
TRUST_ARCHIVE_ENV = "CLIPREID_TRUST_WEIGHTS_ARCHIVE"


def openai_digests() -> set[str]:
    """SHA-256 digests of OpenAI's released CLIP files: the folder of each download address
    in clip's model list (clip/clip.py, _MODELS) is the file's digest."""
    return {url.rstrip("/").split("/")[-2] for url in import_clip().clip._MODELS.values()}


def require_trusted_archive(path: Path) -> None:
    """A TorchScript archive runs its own code when loaded: load only OpenAI's files (by
    digest), or any archive when the user says so with CLIPREID_TRUST_WEIGHTS_ARCHIVE=1."""
    if os.environ.get(TRUST_ARCHIVE_ENV) == "1":
        return
    digest = file_sha256(path)
    if digest not in openai_digests():
        raise WeightsError(
            f"{path} is a TorchScript archive but not one of OpenAI's released CLIP files "
            f"(its SHA-256 {digest} is none of the digests in clip's model list). Loading an "
            f"archive runs the code inside it, so it is refused. Use OpenAI's file, or save "
            f"the weights as a plain state dict (torch.save(model.state_dict(), path)), or, "
            f"if you trust this file, set {TRUST_ARCHIVE_ENV}=1")


def read_clip_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a CLIP checkpoint: a plain state dict (loaded weights_only) or one of
    OpenAI's TorchScript archives (recognised by its SHA-256; any other archive is refused
    unless trusted explicitly, see :func:`require_trusted_archive`)."""
    archive = is_torchscript_archive(path)
    if archive:
        require_trusted_archive(path)
    try:
        if archive:
            obj = torch.jit.load(str(path), map_location="cpu").state_dict()
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{path} is neither a state dict nor a CLIP archive: {exc}") from exc
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise WeightsError(f"{path} does not hold a CLIP state dict")
    return {k: v.float() for k, v in obj.items() if isinstance(v, torch.Tensor)}


def build_clip(model_cfg: ModelConfig, load_weights: bool = True) -> nn.Module:
    """A float32 CLIP of the ``model.architecture`` sizes.

    With ``model.clip_name`` set and ``load_weights``, OpenAI's weights of that name are
    loaded into it (strictly: the architecture must match); otherwise it is randomly
    initialised, seeded by ``model.init_seed`` (the embedded default, and the skeleton that
    trained weights are loaded into)."""
    model_cfg = coerce(ModelConfig, model_cfg, "model")
    clip = import_clip()
    pretrained = bool(model_cfg.clip_name) and load_weights
    path = resolve_weights(model_cfg) if pretrained else None  # fail before building
    spec = model_cfg.architecture
    layers = spec.vision_layers
    with seeded(model_cfg.init_seed):
        model = clip.model.CLIP(
            embed_dim=spec.embed_dim,
            image_resolution=spec.image_resolution,
            vision_layers=tuple(layers) if isinstance(layers, (list, tuple)) else int(layers),
            vision_width=spec.vision_width,
            vision_patch_size=spec.vision_patch_size,
            context_length=spec.context_length,
            vocab_size=spec.vocab_size,
            transformer_width=spec.transformer_width,
            transformer_heads=spec.transformer_heads,
            transformer_layers=spec.transformer_layers,
        ).float()
    if pretrained:
        state = read_clip_state_dict(path)
        for key in ("input_resolution", "context_length", "vocab_size"):
            state.pop(key, None)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise WeightsError(
                f"{path} does not match model.architecture of {model_cfg.clip_name}: {exc}"
            ) from exc
    model.eval()
    return model
