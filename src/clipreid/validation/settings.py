"""Settings of the validation stage, taken from the ``validation`` and ``dataset`` params.

The callers pass mappings (plain dicts or OmegaConf ``DictConfig``); nothing here reads a
config file. Every mistake raises :class:`clipreid.errors.ConfigError` naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from clipreid.data.manifest import SPLITS
from clipreid.errors import ConfigError
from clipreid.validation.checks import CHECKS_BY_NAME, SEVERITIES, default_severities

AUTO = "auto"
QUERY_GALLERY_SPLITS = ("train", "query", "gallery")
TEST_SPLITS = ("train", "test")
KNOWN_KEYS = ("severity", "min_image_side", "workers", "max_examples", "required_splits")


@dataclass(frozen=True)
class ValidationSettings:
    """What the validation stage checks and how strictly.

    ``required_splits`` is ``"auto"`` (train + test when the manifest has ``test`` rows,
    else train + query + gallery) or an explicit tuple of split names."""

    severity: dict[str, str] = field(default_factory=default_severities)
    min_image_side: int = 16
    workers: int = 2
    max_examples: int = 20
    required_splits: str | tuple[str, ...] = AUTO
    num_cameras: int = 1
    dataset_name: str = "dataset"


def _positive_int(value, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key} must be an integer >= {minimum}, got {value!r}")
    return value


def _severities(raw) -> dict[str, str]:
    severity = default_severities()
    if raw is None:
        return severity
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"validation.severity must be a mapping of check -> error|warn, got {raw!r}"
        )
    for name, value in raw.items():
        if name not in CHECKS_BY_NAME:
            raise ConfigError(
                f"validation.severity.{name}: unknown check; known checks: {sorted(CHECKS_BY_NAME)}"
            )
        if value not in SEVERITIES:
            raise ConfigError(
                f"validation.severity.{name} must be one of {list(SEVERITIES)}, got {value!r}"
            )
        severity[name] = value
    return severity


def _required_splits(raw) -> str | tuple[str, ...]:
    if raw is None or raw == AUTO:
        return AUTO
    if isinstance(raw, str) or not all(isinstance(s, str) for s in raw):
        raise ConfigError(
            f"validation.required_splits must be 'auto' or a list of splits, got {raw!r}"
        )
    bad = [s for s in raw if s not in SPLITS]
    if bad:
        raise ConfigError(
            f"validation.required_splits: unknown split(s) {bad}; allowed: {list(SPLITS)}"
        )
    return tuple(raw)


def load_settings(dataset_cfg: Mapping, validation_cfg: Mapping | None) -> ValidationSettings:
    """Build :class:`ValidationSettings` from the ``dataset`` and ``validation`` params."""
    validation_cfg = {} if validation_cfg is None else validation_cfg
    if not isinstance(validation_cfg, Mapping):
        raise ConfigError(f"the validation params must be a mapping, got {validation_cfg!r}")
    unknown = sorted(set(validation_cfg) - set(KNOWN_KEYS))
    if unknown:
        raise ConfigError(f"validation: unknown key(s) {unknown}; known keys: {list(KNOWN_KEYS)}")
    if not isinstance(dataset_cfg, Mapping) or "num_cameras" not in dataset_cfg:
        raise ConfigError("dataset.num_cameras is missing: the validation needs the camera count")
    return ValidationSettings(
        severity=_severities(validation_cfg.get("severity")),
        min_image_side=_positive_int(
            validation_cfg.get("min_image_side", 16), "validation.min_image_side", 1
        ),
        workers=_positive_int(validation_cfg.get("workers", 2), "validation.workers", 1),
        max_examples=_positive_int(
            validation_cfg.get("max_examples", 20), "validation.max_examples", 1
        ),
        required_splits=_required_splits(validation_cfg.get("required_splits", AUTO)),
        num_cameras=_positive_int(dataset_cfg["num_cameras"], "dataset.num_cameras", 1),
        dataset_name=str(dataset_cfg.get("name", "dataset")),
    )


def resolve_required_splits(settings: ValidationSettings, present_splits) -> tuple[str, ...]:
    """The splits that must have images: explicit, or chosen by the ``test`` split's presence."""
    if settings.required_splits != AUTO:
        return tuple(settings.required_splits)
    return TEST_SPLITS if "test" in set(present_splits) else QUERY_GALLERY_SPLITS
