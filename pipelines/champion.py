"""Champion vs challenger: the metrics committed on the branch against an experiment's.

The champion is whatever the branch holds: its metrics file at HEAD (`git show`). The
challenger is a DVC experiment, a git commit under refs/exps, read the same way.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from pipelines.commands import query


def head_commit(repo: str | Path) -> str | None:
    """The commit HEAD points at, or None in a repository without commits."""
    result = query(["git", "rev-parse", "--verify", "-q", "HEAD"], repo, check=False)
    return result.stdout.strip() or None


def metrics_at(repo: str | Path, rev: str | None, path: str) -> dict | None:
    """The JSON metrics file `path` as committed at `rev`, or None when it is not there."""
    if rev is None:
        return None
    result = query(["git", "show", f"{rev}:{path}"], repo, check=False)
    if result.returncode != 0:
        return None
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} at commit {rev[:12]} is not valid JSON ({exc.msg}, line "
                         f"{exc.lineno} column {exc.colno}); restore it, e.g. with "
                         f"`git show {rev[:12]}~1:{path}`, and commit the fix") from None


def experiment_commit(repo: str | Path, baseline: str, name: str) -> str:
    """The commit of the experiment `name` run on top of `baseline` (DVC stores it at
    refs/exps/<baseline[:2]>/<baseline[2:]>/<name>)."""
    ref = f"refs/exps/{baseline[:2]}/{baseline[2:]}/{name}"
    return query(["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], repo).stdout.strip()


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def decide(champion: dict | None, challenger: dict | None, metric: str,
           tolerance: float) -> Decision:
    """Promote unless the challenger's `metric` is worse than the champion's by more than
    `tolerance` (higher is better). No champion (or none with that metric): promote."""
    value = None if challenger is None else challenger.get(metric)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return Decision(False, f"the challenger has no finite {metric} ({value!r})")
    best = None if champion is None else champion.get(metric)
    if not isinstance(best, (int, float)) or not math.isfinite(best):
        return Decision(True, f"no champion {metric} on the branch: the first model "
                              f"({metric} {value:.4f}) is promoted")
    drop = best - value
    if drop > tolerance:
        return Decision(False, f"{metric} {value:.4f} is worse than the champion's "
                               f"{best:.4f} by {drop:.4f}, more than the tolerance "
                               f"{tolerance}")
    return Decision(True, f"{metric} {value:.4f} vs champion {best:.4f} "
                          f"(change {-drop:+.4f}, tolerance {tolerance})")
