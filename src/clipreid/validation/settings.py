"""Settings of the validation stage, taken from the ``validation`` and ``dataset`` params
(checked by the params schema, clipreid.config.schema)."""

from __future__ import annotations

from dataclasses import dataclass, field

from clipreid.config.schema import DatasetConfig, ValidationConfig, coerce
from clipreid.validation.checks import CHECKS, default_severities

AUTO = "auto"
QUERY_GALLERY_SPLITS = ("train", "query", "gallery")
TEST_SPLITS = ("train", "test")


@dataclass(frozen=True)
class ValidationSettings:
    """What the validation stage checks and how strictly.

    ``required_splits`` is ``"auto"`` (train + test when the manifest has ``test`` rows,
    else train + query + gallery) or an explicit tuple of split names."""

    severity: dict[str, str] = field(default_factory=default_severities)
    min_image_side: int = 16
    max_image_side: int = 4096
    workers: int = 2
    max_examples: int = 20
    required_splits: str | tuple[str, ...] = AUTO
    num_cameras: int = 1
    dataset_name: str = "dataset"


def load_settings(dataset: DatasetConfig, validation: ValidationConfig) -> ValidationSettings:
    """:class:`ValidationSettings` from the (already checked) ``dataset`` and ``validation``
    params; plain mappings are checked here)."""
    dataset = coerce(DatasetConfig, dataset, "dataset")
    validation = coerce(ValidationConfig, validation, "validation")
    splits = validation.required_splits
    return ValidationSettings(
        severity={check.name: getattr(validation.severity, check.name) for check in CHECKS},
        min_image_side=validation.min_image_side,
        max_image_side=validation.max_image_side,
        workers=validation.workers,
        max_examples=validation.max_examples,
        required_splits=AUTO if splits == AUTO else tuple(splits),
        num_cameras=dataset.num_cameras,
        dataset_name=dataset.name,
    )


def resolve_required_splits(settings: ValidationSettings, present_splits) -> tuple[str, ...]:
    """The splits that must have images: explicit, or chosen by the ``test`` split's presence."""
    if settings.required_splits != AUTO:
        return tuple(settings.required_splits)
    return TEST_SPLITS if "test" in set(present_splits) else QUERY_GALLERY_SPLITS
