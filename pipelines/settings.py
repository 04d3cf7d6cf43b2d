"""Orchestration settings: `pipelines/config.yaml` as typed, validated dataclasses.

Deliberately Hydra-free and separate from params.yaml: these settings change how runs
are retried, timed out, scheduled and promoted, never what a run computes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

DEFAULT_CONFIG = Path(__file__).with_name("config.yaml")


@dataclass(frozen=True)
class TaskPolicy:
    """Retries, delay between attempts and time limit of one Prefect task."""

    retries: int = 0
    retry_delay_seconds: float = 0
    timeout_seconds: float | None = None

    def __post_init__(self):
        if self.retries < 0 or self.retry_delay_seconds < 0:
            raise ValueError(f"retries and retry_delay_seconds must be >= 0: {self}")
        if self.timeout_seconds is not None and self.timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive or null: {self}")


@dataclass(frozen=True)
class Retraining:
    """Settings of the retraining flow and of its scheduled deployment."""

    deployment_name: str = "scheduled-retraining"
    cron: str = "0 3 * * 1"
    timezone: str = "UTC"
    interval_seconds: float | None = None
    data_stages: tuple[str, ...] = ("prepare",)
    metrics_file: str = "metrics/evaluation.json"
    metric: str = "mAP"
    tolerance: float = 0.01
    floor_margin: float | None = 0.01
    rescore_stage: str = "evaluate"
    champion_model: tuple[str, ...] = ("models/reid.pt",)
    split_file: str = "reports/evaluation.json"
    split_key: str = "test_split"
    history: str = "reports/retraining_history.jsonl"
    remote: str | None = None
    experiment: TaskPolicy = field(default_factory=TaskPolicy)
    rescore: TaskPolicy = field(default_factory=TaskPolicy)
    transfer: TaskPolicy = field(default_factory=TaskPolicy)
    git_name: str = "clipreid-retraining"
    git_email: str = "retraining@clipreid.invalid"

    def __post_init__(self):
        if not isinstance(self.tolerance, (int, float)) or self.tolerance < 0:
            raise ValueError(f"retraining.tolerance must be a number >= 0, got "
                             f"{self.tolerance!r}")
        if self.floor_margin is not None and (
                not isinstance(self.floor_margin, (int, float)) or self.floor_margin < 0):
            raise ValueError(f"retraining.floor_margin must be a number >= 0 or null, got "
                             f"{self.floor_margin!r}")
        if self.interval_seconds is not None and (
                not isinstance(self.interval_seconds, (int, float))
                or self.interval_seconds <= 0):
            raise ValueError(f"retraining.interval_seconds must be a positive number or "
                             f"null, got {self.interval_seconds!r}")
        if not self.champion_model:
            raise ValueError("retraining.champion_model must name the model file(s) the "
                             "rescoring takes from the champion's commit")


@dataclass(frozen=True)
class Settings:
    """The whole orchestration config."""

    stage_defaults: TaskPolicy = field(default_factory=TaskPolicy)
    stages: dict[str, dict] = field(default_factory=dict)
    retraining: Retraining = field(default_factory=Retraining)

    def stage_policy(self, stage: str) -> TaskPolicy:
        """The policy of one stage: the defaults with that stage's own keys on top."""
        own = self.stages.get(stage) or {}
        return _build(TaskPolicy, {**_as_dict(self.stage_defaults), **own}, f"stages.{stage}")


def _as_dict(policy: TaskPolicy) -> dict:
    return {f.name: getattr(policy, f.name) for f in fields(policy)}


def _build(cls, values: dict | None, where: str):
    """`cls(**values)`, naming the offending section when a key is unknown."""
    values = dict(values or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where}; known: {sorted(known)}")
    return cls(**values)


def load_settings(path: str | Path | None = None) -> Settings:
    """Read the orchestration config (default: pipelines/config.yaml)."""
    raw = yaml.safe_load(Path(path or DEFAULT_CONFIG).read_text()) or {}
    retraining = dict(raw.get("retraining") or {})
    for key in ("experiment", "rescore", "transfer"):
        retraining[key] = _build(TaskPolicy, retraining.get(key), f"retraining.{key}")
    for key in ("data_stages", "champion_model"):
        if key in retraining:
            retraining[key] = tuple(retraining[key] or ())
    settings = _build(Settings, {
        "stage_defaults": _build(TaskPolicy, raw.get("stage_defaults"), "stage_defaults"),
        "stages": dict(raw.get("stages") or {}),
        "retraining": _build(Retraining, retraining, "retraining"),
    }, "the config")
    for stage in settings.stages:  # fail on typos now, not when that stage runs
        settings.stage_policy(stage)
    unknown = sorted(set(raw) - {"stage_defaults", "stages", "retraining"})
    if unknown:
        raise ValueError(f"unknown top-level key(s) {unknown} in {path or DEFAULT_CONFIG}")
    return settings
