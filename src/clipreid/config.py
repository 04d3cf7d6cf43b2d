"""Composing conf/ (Hydra) into params.yaml, the way `dvc exp run` does with
hydra.enabled: compose the defaults plus overrides, resolve, dump with OmegaConf."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from clipreid.errors import ConfigError

CONFIG_NAME = "config"


def compose_text(conf_dir: str | Path = "conf", overrides: Sequence[str] = ()) -> str:
    """params.yaml's text for ``overrides`` (same composition and dump as DVC's)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(Path(conf_dir).resolve()), version_base=None):
            cfg = compose(config_name=CONFIG_NAME, overrides=list(overrides))
        OmegaConf.resolve(cfg)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"composing {conf_dir}/ with {list(overrides)}: {exc}") from exc
    return OmegaConf.to_yaml(cfg)


def write_params(path: str | Path = "params.yaml", conf_dir: str | Path = "conf",
                 overrides: Sequence[str] = ()) -> None:
    from clipreid.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(compose_text(conf_dir, overrides), encoding="utf-8")
