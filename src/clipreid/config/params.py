"""Reading params.yaml into the typed :class:`~clipreid.config.schema.Params`, and what
each stage reads of it (dvc.yaml declares the same lists; tests/test_config.py checks)."""

from __future__ import annotations

from pathlib import Path

import yaml

from clipreid.config.schema import Params, parse_params
from clipreid.errors import ConfigError

#: The params each stage reads; dvc.yaml declares the same (tests/test_config.py checks).
#: One read is left out on purpose: the stages after `validate` find the images under
#: ``dataset.root``, but identify them by content (the validated manifest holds each
#: image's SHA-256), so the same data set in another folder reruns nothing downstream.
STAGE_PARAMS: dict[str, tuple[str, ...]] = {
    "prepare": ("dataset",),
    "validate": ("dataset", "validation"),
    "prompt": ("method", "seed", "device", "num_workers", "launch", "dataset.object",
               "dataset.num_cameras", "model", "prompt"),
    "finetune": ("method", "seed", "device", "num_workers", "launch", "dataset.object",
                 "dataset.num_cameras", "model", "finetune"),
    "evaluate": ("method", "device", "num_workers", "dataset.name", "dataset.num_cameras",
                 "model", "evaluation"),
    "export": ("method", "dataset.name", "dataset.object", "dataset.num_cameras", "model",
               "prompt", "finetune", "evaluation", "export"),
}


def read_params_file(path: str | Path = "params.yaml") -> dict:
    """params.yaml as plain data; a missing or unreadable file names itself."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} not found; run from the project root (where dvc.yaml is) "
                          "or write it with `clipreid compose`")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        where = getattr(exc, "problem_mark", None)
        line = f", line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"{path}{line} is not valid YAML ({getattr(exc, 'problem', exc)}); "
                          "recompose it with `clipreid compose`") from None
    return data if data is not None else {}


def load_params(path: str | Path = "params.yaml", *, check_paths: bool = True) -> Params:
    """params.yaml, checked as a whole (see :mod:`clipreid.config.schema`)."""
    data = read_params_file(path)
    try:
        return parse_params(data, check_paths=check_paths)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def select(params: dict, keys) -> dict:
    """A nested dict with only ``keys`` (dotted) of ``params`` (plain data)."""
    out: dict = {}
    for dotted in keys:
        node, value = out, params
        for part in dotted.split("."):
            if not isinstance(value, dict) or part not in value:
                raise ConfigError(f"params.yaml has no '{dotted}'; recompose it from conf/ "
                                  "(`clipreid compose`)")
            value = value[part]
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def stage_params(params: Params, stage: str) -> dict:
    """The params ``stage`` declares in dvc.yaml, as plain data."""
    from clipreid.config.schema import as_dict

    return select(as_dict(params), STAGE_PARAMS[stage])
