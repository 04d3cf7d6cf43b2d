"""Reading params.yaml: each stage sees exactly the params that dvc.yaml declares for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from clipreid.errors import ConfigError

# What each stage reads; dvc.yaml declares the same (tests/test_dvc_graph.py checks).
STAGE_PARAMS: dict[str, tuple[str, ...]] = {
    "prepare": ("dataset",),
    "validate": ("dataset", "validation"),
    "prompt": ("seed", "device", "num_workers", "dataset.object", "dataset.num_cameras",
               "model", "stage1"),
    "finetune": ("seed", "device", "num_workers", "dataset.object", "dataset.num_cameras",
                 "model", "stage2"),
    "evaluate": ("device", "num_workers", "dataset", "model", "evaluation"),
    "export": ("dataset.object", "dataset.num_cameras", "model", "export"),
}


def load_params(path: str | Path = "params.yaml") -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} not found; run from the project root (where dvc.yaml is)")
    with open(path) as f:
        return yaml.safe_load(f) or {}


def _get(params: Mapping, dotted: str) -> Any:
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ConfigError(f"params.yaml has no '{dotted}'; recompose it from conf/ "
                              "(see README) or add the setting")
        node = node[part]
    return node


def select(params: Mapping, keys: Sequence[str]) -> dict:
    """A nested dict with only ``keys`` (dotted) of ``params``."""
    out: dict = {}
    for dotted in keys:
        value = _get(params, dotted)
        node = out
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def stage_params(params: Mapping, stage: str) -> dict:
    """The params ``stage`` may read."""
    return select(params, STAGE_PARAMS[stage])
