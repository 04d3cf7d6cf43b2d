"""Champion vs challenger: what the branch holds against an experiment, and the rule.

The champion is the model the branch records: the outputs its `dvc.lock` lists at HEAD
(the champion commit), with the metrics committed beside them. The challenger is a DVC
experiment, a git commit under refs/exps, read the same way. Both are compared on the
same test split, the experiment's: the champion's model is re-scored there
(pipelines/rescore.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipelines.commands import query
from pipelines.reporting import flatten


class MetricUnreadable(ValueError):
    """A metrics file that exists where a model does, but whose metric cannot be read."""


def head_commit(repo: str | Path) -> str | None:
    """The commit HEAD points at, or None in a repository without commits."""
    result = query(["git", "rev-parse", "--verify", "-q", "HEAD"], repo, check=False)
    return result.stdout.strip() or None


def file_at(repo: str | Path, rev: str, path: str) -> str | None:
    """The text of `path` as committed at `rev`, or None when it is not there."""
    result = query(["git", "show", f"{rev}:{path}"], repo, check=False)
    return result.stdout if result.returncode == 0 else None


def parse_json(text: str, path: str, where: str) -> dict:
    """A JSON object, or an error naming the file and where it was read."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MetricUnreadable(f"{path} {where} is not valid JSON ({exc.msg}, line "
                               f"{exc.lineno} column {exc.colno})") from None
    if not isinstance(data, dict):
        raise MetricUnreadable(f"{path} {where} is not a JSON object")
    return data


def metrics_at(repo: str | Path, rev: str | None, path: str) -> dict | None:
    """The JSON metrics file `path` as committed at `rev`, or None when it is not there."""
    if rev is None:
        return None
    text = file_at(repo, rev, path)
    if text is None:
        return None
    try:
        return parse_json(text, path, f"at commit {rev[:12]}")
    except MetricUnreadable as exc:
        raise MetricUnreadable(f"{exc}; restore it, e.g. with `git show {rev[:12]}~1:{path}`, "
                               "and commit the fix") from None


def metric_value(metrics: dict, metric: str, where: str) -> float:
    """`metrics[metric]` as a finite number, or an error naming `where` it was read."""
    flat = flatten(metrics)
    value = flat.get(metric)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        found = "missing" if metric not in flat else f"{value!r}, not a number"
        raise MetricUnreadable(f"{where}: {metric} is {found}")
    if not math.isfinite(value):
        raise MetricUnreadable(f"{where}: {metric} is {value!r}, not a finite number")
    return float(value)


def locked_outputs(repo: str | Path, rev: str) -> set[str]:
    """The outputs dvc.lock records at `rev` (empty when it has no dvc.lock)."""
    text = file_at(repo, rev, "dvc.lock")
    if text is None:
        return set()
    try:
        stages = (yaml.safe_load(text) or {}).get("stages") or {}
        return {out["path"] for stage in stages.values() for out in stage.get("outs") or []}
    except (yaml.YAMLError, AttributeError, KeyError, TypeError) as exc:
        raise MetricUnreadable(f"dvc.lock at commit {rev[:12]} cannot be read ({exc}); "
                               "restore it from an earlier commit and commit the fix") from None


@dataclass(frozen=True)
class Champion:
    """The branch's model at `commit`: None metrics when the branch has no model yet."""

    commit: str
    metrics: dict | None

    @property
    def exists(self) -> bool:
        return self.metrics is not None


def champion_at(repo: str | Path, rev: str, model_files: tuple[str, ...],
                metrics_file: str, metric: str) -> Champion:
    """The champion at `rev`. A commit whose dvc.lock lists every `model_files` output has
    a model; its committed `metric` must then be readable (else MetricUnreadable, naming
    the file and the commit: the run fails closed). Only a commit without the model has
    no champion."""
    if not set(model_files) <= locked_outputs(repo, rev):
        return Champion(rev, None)
    where = f"{metrics_file} at commit {rev[:12]}"
    metrics = metrics_at(repo, rev, metrics_file)
    if metrics is None:
        raise MetricUnreadable(f"{where} is missing, although that commit's dvc.lock "
                               f"records a model ({', '.join(model_files)})")
    metric_value(metrics, metric, where)
    return Champion(rev, flatten(metrics))


def experiment_commit(repo: str | Path, baseline: str, name: str) -> str:
    """The commit of the experiment `name` run on top of `baseline` (DVC stores it at
    refs/exps/<baseline[:2]>/<baseline[2:]>/<name>)."""
    ref = f"refs/exps/{baseline[:2]}/{baseline[2:]}/{name}"
    return query(["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], repo).stdout.strip()


# --- the rule ---------------------------------------------------------------------------


def best_promoted(history: list[dict], split: str | None, metric: str) -> float | None:
    """The best `metric` ever promoted on test split `split`, as the history records it:
    promoted challengers, and champions re-scored on that split. None without a split
    (no comparable runs) or without such a run."""
    if split is None:
        return None
    scores = []
    for record in history:
        if record.get("split") != split:
            continue
        if str(record.get("decision", "")).startswith("promoted"):
            scores.append((record.get("challenger") or {}).get(metric))
        scores.append((record.get("champion_rescored") or {}).get(metric))
    scores = [s for s in scores if isinstance(s, (int, float)) and math.isfinite(s)]
    return max(scores) if scores else None


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def decide(challenger: float, champion: float | None, floor: float | None, metric: str,
           tolerance: float) -> Decision:
    """Promote unless the challenger's `metric` is worse than the champion's (re-scored on
    the same split; None: no champion to compare) by more than `tolerance`, or below
    `floor` (None: no floor). Higher is better."""
    parts = [f"{metric} {challenger:.4f}"]
    if champion is not None:
        drop = champion - challenger
        if drop > tolerance:
            return Decision(False, f"{metric} {challenger:.4f} is worse than the champion's "
                                   f"{champion:.4f} on the same test split by {drop:.4f}, "
                                   f"more than the tolerance {tolerance}")
        parts.append(f"vs champion {champion:.4f} on the same test split "
                     f"(change {challenger - champion:+.4f}, tolerance {tolerance})")
    if floor is not None:
        if challenger < floor:
            return Decision(False, f"{metric} {challenger:.4f} is below the floor "
                                   f"{floor:.4f} (the best {metric} ever promoted on this "
                                   f"test split minus the floor margin)")
        parts.append(f"floor {floor:.4f}")
    if champion is None and floor is None:
        parts.append("no champion to compare with")
    return Decision(True, ", ".join(parts))
