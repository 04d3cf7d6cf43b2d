"""Building CLIP (OpenAI weights or a small random one) and adapting its image tower to
re-ID input: non-square positional grids, overlapping patches, RN50 with stride-1 layer4."""

from __future__ import annotations

import contextlib
import os
import zipfile
from pathlib import Path
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from clipreid.errors import ConfigError, WeightsError

# Names `clip.load` accepts whose architecture this project supports.
SUPPORTED_CLIP_NAMES = ("ViT-B/16", "RN50")


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
    if h % 16 or w % 16:
        raise ConfigError(f"model.input_size {list(input_size)}: RN needs multiples of 16")
    pos = visual.attnpool.positional_embedding
    old = round((pos.shape[0] - 1) ** 0.5)
    new = (h // 16, w // 16)
    visual.attnpool.positional_embedding = nn.Parameter(
        resize_positional_embedding(pos.data, (old, old), new)
    )
    return new


def default_weights_path(clip_name: str) -> Path:
    """Where `clip.load` caches the named checkpoint (~/.cache/clip/<file>)."""
    url = import_clip().clip._MODELS[clip_name]
    return Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(url)


def resolve_weights(model_cfg: Mapping) -> Path:
    """The checkpoint file for a pretrained model: ``model.weights`` or clip's cache."""
    name = model_cfg["clip_name"]
    if name not in SUPPORTED_CLIP_NAMES:
        raise ConfigError(f"model.clip_name '{name}' is not one of {SUPPORTED_CLIP_NAMES}")
    if model_cfg.get("weights"):
        path = Path(model_cfg["weights"])
        if not path.is_file():
            raise WeightsError(f"model.weights: {path} not found; point it at the {name} file")
        return path
    path = default_weights_path(name)
    if not path.is_file():
        url = import_clip().clip._MODELS[name]
        raise WeightsError(
            f"OpenAI CLIP weights for {name} not found: expected {path} (clip's download "
            f"cache) or a file given as model.weights. This machine does not download them: "
            f"fetch {url} elsewhere and pass -S model.weights=/path/{os.path.basename(url)}"
        )
    return path


def is_torchscript_archive(path: Path) -> bool:
    """OpenAI's checkpoints are TorchScript archives: zips with a ``code/`` folder."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name for name in archive.namelist())


def read_clip_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a CLIP checkpoint: a plain state dict (loaded weights_only) or OpenAI's
    TorchScript archive, of which only the tensors are read (its code is never run)."""
    try:
        if is_torchscript_archive(path):
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


def build_clip(model_cfg: Mapping, load_weights: bool = True) -> nn.Module:
    """A float32 CLIP of the ``model.architecture`` sizes.

    With ``model.clip_name`` set and ``load_weights``, OpenAI's weights of that name are
    loaded into it (strictly: the architecture must match); otherwise it is randomly
    initialised, seeded by ``model.init_seed`` (the embedded default, and the skeleton that
    trained weights are loaded into)."""
    clip = import_clip()
    pretrained = bool(model_cfg.get("clip_name")) and load_weights
    path = resolve_weights(model_cfg) if pretrained else None  # fail before building
    spec = dict(model_cfg["architecture"])
    layers = spec["vision_layers"]
    with seeded(int(model_cfg.get("init_seed", 0))):
        model = clip.model.CLIP(
            embed_dim=spec["embed_dim"],
            image_resolution=spec["image_resolution"],
            vision_layers=tuple(layers) if isinstance(layers, (list, tuple)) else int(layers),
            vision_width=spec["vision_width"],
            vision_patch_size=spec.get("vision_patch_size"),
            context_length=spec.get("context_length", 77),
            vocab_size=spec.get("vocab_size", 49408),
            transformer_width=spec["transformer_width"],
            transformer_heads=spec["transformer_heads"],
            transformer_layers=spec["transformer_layers"],
        ).float()
    if pretrained:
        state = read_clip_state_dict(path)
        for key in ("input_resolution", "context_length", "vocab_size"):
            state.pop(key, None)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise WeightsError(
                f"{path} does not match model.architecture of {model_cfg['clip_name']}: {exc}"
            ) from exc
    model.eval()
    return model
