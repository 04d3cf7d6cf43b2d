"""conf/ (Hydra) -> params.yaml, the way `dvc exp run` composes it, and the one source of
truth between them.

- Composition is checked: conf/config.yaml's ``schema_version: ${clipreid_check:1}`` calls
  :func:`check_composition` on the whole composed config, so a bad value stops the
  composition itself, in `clipreid compose` and in `dvc exp run` alike (DVC imports the
  resolver through the Hydra plugin in src/hydra_plugins, its ``hydra.plugins_path``).
- Overrides a user keeps live in conf/: `clipreid compose key=value group=option` records
  them in ``conf/kept/overrides.yaml`` (the last entry of the defaults list), so every
  later composition, DVC's included, starts from them.
- :func:`params_drift` names every key where params.yaml differs from what conf/ composes;
  the stages refuse to run on such a params.yaml outside a DVC experiment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import yaml

from clipreid.errors import ConfigError

CONFIG_NAME = "config"
RESOLVER = "clipreid_check"
KEPT_FILE = Path("kept") / "overrides.yaml"
KEPT_HEADER = """\
# @package _global_
# Overrides kept by `clipreid compose` (or a promoted experiment): the last entry of the
# defaults list in conf/config.yaml, so every composition, `dvc exp run` included, starts
# from them. Edit it, or write it again with `clipreid compose key=value group=option`.
"""


def check_composition(*, _root_) -> int:
    """The resolver behind ``schema_version``: the whole composition must pass the schema."""
    from omegaconf import OmegaConf

    from clipreid.config.schema import parse_params

    data = {str(k): OmegaConf.to_container(_root_[k], resolve=True) if
            OmegaConf.is_config(_root_[k]) else _root_[k]
            for k in _root_ if k != "schema_version"}
    data["schema_version"] = 1
    parse_params(data)
    return 1


def register_resolver() -> None:
    """Make ``${clipreid_check:...}`` known to OmegaConf (idempotent)."""
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver(RESOLVER, lambda version, _root_: (
        check_composition(_root_=_root_) and version), replace=True)


def _unwrap(exc: BaseException) -> BaseException:
    """The ConfigError under Hydra's and OmegaConf's wrappers, if there is one."""
    seen = exc
    while seen is not None:
        if isinstance(seen, ConfigError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return exc


def _known_key(dotted: str) -> str | None:
    """None when ``dotted`` names a key of the schema; else the message to give."""
    import dataclasses
    import typing

    from clipreid.config.schema import Params

    cls, walked = Params, []
    for part in dotted.split("."):
        if cls is None or not dataclasses.is_dataclass(cls):
            return None  # below a mapping or a plain value: the schema judges the value
        names = [f.name for f in dataclasses.fields(cls)]
        if part not in names:
            where = ".".join(walked) or "params.yaml"
            return f"unknown key {dotted!r}; {where} allows {names}"
        walked.append(part)
        hint = typing.get_type_hints(cls)[part]
        options = [a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)]
        cls = hint if dataclasses.is_dataclass(hint) else (options[0] if options else None)
    return None


def check_overrides(conf_dir: Path, overrides: Sequence[str]) -> None:
    """Refuse what the composition would turn into a confusing error: deletions, and keys
    the schema does not have (named with the keys it allows)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except Exception as exc:  # hydra's OverrideParseException and friends
        raise ConfigError(f"cannot parse the overrides {list(overrides)}: "
                          f"{str(exc).splitlines()[0]}") from None
    groups = _groups(conf_dir)
    for override in parsed:
        key = override.key_or_group
        if override.is_add() and key in groups:
            raise ConfigError(f"{override.input_line}: {key} is a group of the defaults list; "
                              f"write {key}=<option> (without the +)")
        if override.is_delete():
            raise ConfigError(f"{override.input_line}: deleting a key is not allowed; every "
                              "key of the schema is required (set a value instead)")
        if key not in groups:
            problem = _known_key(key.lstrip("+"))
            if problem:
                raise ConfigError(problem)


def compose(conf_dir: str | Path = "conf", overrides: Sequence[str] = (), *,
            check_paths: bool = True) -> dict:
    """The composition of ``conf_dir`` with ``overrides``, resolved and checked
    (``check_paths=False``: without the checks that look at the file system, for commands
    that need neither the data set nor OpenAI's weights)."""
    if not check_paths:
        from clipreid.config.schema import without_path_checks

        with without_path_checks():
            return compose(conf_dir, overrides)
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    check_overrides(Path(conf_dir), overrides)
    register_resolver()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(Path(conf_dir).resolve()), version_base=None):
            cfg = hydra_compose(config_name=CONFIG_NAME, overrides=list(overrides))
        OmegaConf.resolve(cfg)
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        cause = _unwrap(exc)
        if isinstance(cause, ConfigError):
            raise ConfigError(f"{cause}") from None
        text = str(exc).split("\nConfig search path")[0].strip().replace("\n\t", ", ")
        raise ConfigError(f"composing {conf_dir}/ with {list(overrides)}: {text}") from None
    finally:
        GlobalHydra.instance().clear()
    return OmegaConf.to_container(cfg)


def compose_text(conf_dir: str | Path = "conf", overrides: Sequence[str] = ()) -> str:
    """params.yaml's text for ``overrides`` (the same dump as DVC's)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(compose(conf_dir, overrides)))


# --- kept overrides -------------------------------------------------------------------
def _groups(conf_dir: Path) -> set[str]:
    return {p.name for p in conf_dir.iterdir() if p.is_dir() and p.name != "kept"}


def read_kept(conf_dir: str | Path = "conf") -> tuple[dict[str, str], dict]:
    """(group choices, values) that conf/kept/overrides.yaml holds."""
    path = Path(conf_dir) / KEPT_FILE
    if not path.is_file():
        return {}, {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    choices = {}
    for entry in data.pop("defaults", []) or []:
        for key, value in (entry.items() if isinstance(entry, dict) else []):
            group = key.removeprefix("override ").lstrip("/").split("@")[0]
            choices[group] = value
    return choices, data


def _set(tree: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = tree.get(part)
        if not isinstance(node, dict):
            node = tree[part] = {}
        tree = node
    tree[leaf] = value


def keep_overrides(conf_dir: str | Path, overrides: Sequence[str]) -> list[str]:
    """Record ``overrides`` (``group=option`` or ``key=value``) in conf/kept/overrides.yaml,
    on top of what it holds; the composition is checked before anything is written.

    As in Hydra, group choices apply before values, whatever their order. A group whose
    kept option changes drops the values kept for its old option (they may not exist in
    the new one); those are returned, for the caller to report."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    conf_dir = Path(conf_dir)
    choices, values = read_kept(conf_dir)
    groups = _groups(conf_dir)
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    for override in parsed:
        if override.is_add() or override.package:
            raise ConfigError(f"{override.input_line}: only `key=value` and `group=option` "
                              "can be kept")
    dropped = []
    for override in (o for o in parsed if o.key_or_group in groups):
        group, option = override.key_or_group, override.value()
        if not isinstance(option, str):
            raise ConfigError(f"{override.input_line}: a group takes one option name")
        if choices.get(group, option) != option and isinstance(values.get(group), dict):
            dropped += [f"{group}.{k}={v}" for k, v in _flat(values.pop(group)).items()]
        choices[group] = option
    for override in (o for o in parsed if o.key_or_group not in groups):
        _set(values, override.key_or_group, override.value())
    text = KEPT_HEADER
    if choices:
        text += yaml.safe_dump({"defaults": [{f"override /{g}@_global_.{g}": o}
                                             for g, o in choices.items()]}, sort_keys=False)
    if values:
        text += yaml.safe_dump(values, sort_keys=False)
    path = conf_dir / KEPT_FILE
    old = path.read_text(encoding="utf-8") if path.is_file() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    try:
        compose(conf_dir)
    except ConfigError:
        if old is None:
            path.unlink()
        else:
            path.write_text(old, encoding="utf-8")
        raise
    return dropped


def write_params(path: str | Path = "params.yaml", conf_dir: str | Path = "conf",
                 overrides: Sequence[str] = ()) -> list[str]:
    """Keep ``overrides`` in conf/, then write params.yaml as conf/ composes it. Returns
    the kept values dropped by a group switch (see :func:`keep_overrides`)."""
    from clipreid.io import atomic_path

    dropped = []
    if overrides:
        compose(conf_dir, overrides)  # refuse bad overrides before keeping anything
        dropped = keep_overrides(conf_dir, overrides)
    text = compose_text(conf_dir)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return dropped


# --- drift ----------------------------------------------------------------------------
def _flat(tree, prefix: str = "") -> dict:
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): tree}


def params_drift(params: dict, conf_dir: str | Path = "conf") -> list[str]:
    """Every key where ``params`` differs from the composition of ``conf_dir``, as
    ``key: params.yaml has X, conf/ gives Y``."""
    composed, given = _flat(compose(conf_dir)), _flat(params)
    missing = object()
    return [f"{key}: params.yaml has {given.get(key, missing)!r}, conf/ gives "
            f"{composed.get(key, missing)!r}".replace(repr(missing), "nothing")
            for key in sorted(set(composed) | set(given))
            if given.get(key, missing) != composed.get(key, missing)]


def in_dvc_experiment() -> bool:
    """Whether this process runs inside `dvc exp run`, which composes params.yaml from conf/
    plus its own -S overrides just before the stages start."""
    return bool(os.environ.get("DVC_EXP_NAME"))


def require_no_drift(params: dict, params_path: str | Path = "params.yaml",
                     conf_dir: str | Path = "conf") -> None:
    """Refuse a params.yaml that conf/ does not reproduce (outside DVC experiments)."""
    if in_dvc_experiment() or not Path(conf_dir).is_dir():
        return
    drift = params_drift(params, conf_dir)
    if drift:
        shown = "; ".join(drift[:10]) + ("; ..." if len(drift) > 10 else "")
        raise ConfigError(
            f"{params_path} differs from what conf/ composes ({shown}). `dvc exp run` "
            f"recomposes params.yaml from conf/ and would silently drop these values: keep "
            f"them with `clipreid compose KEY=VALUE ...` (written to conf/{KEPT_FILE}), or "
            f"run `clipreid compose` to rewrite {params_path} from conf/")
