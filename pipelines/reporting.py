"""What a run leaves behind: markdown tables for Prefect artifacts and the history file."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.commands import query


def flatten(values: dict, prefix: str = "") -> dict[str, object]:
    """{"a": {"b": 1}} -> {"a.b": 1} (the way `dvc metrics show` names nested keys)."""
    flat: dict[str, object] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def workspace_metrics(repo: str | Path) -> dict[str, dict[str, object]]:
    """Every metrics file dvc.yaml declares, as DVC reads it: {path: {metric: value}}."""
    shown = json.loads(query(["dvc", "metrics", "show", "--json"], repo).stdout or "{}")
    files = (shown.get("") or shown.get("workspace") or {}).get("data") or {}
    return {path: flatten(entry.get("data") or {}) for path, entry in files.items()}


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
    return str(value).replace("|", "\\|")


def metrics_markdown(metrics: dict[str, dict[str, object]], title: str) -> str:
    """A markdown table with one row per metric: file, metric, value."""
    lines = [f"# {title}", ""]
    if not any(metrics.values()):
        return "\n".join([*lines, "No metrics files were found."])
    lines += ["| file | metric | value |", "|---|---|---|"]
    for path, values in metrics.items():
        lines += [f"| {path} | {key} | {_cell(value)} |" for key, value in values.items()]
    return "\n".join(lines)


METRIC_SETS = ("champion_committed", "champion_rescored", "challenger")


def decision_markdown(record: dict, metric: str) -> str:
    """A run of the retraining flow as markdown: decision, reason, and the three sets of
    metrics (the champion's as committed, the champion's and the challenger's on the
    current test split)."""
    lines = [f"# Retraining: {record['decision']}", "",
             f"- time: {record['time']}",
             f"- experiment: {record.get('experiment') or '-'}",
             f"- reasons to train: {'; '.join(record.get('reasons') or []) or '-'}",
             f"- overrides: {' '.join(record.get('overrides') or []) or '-'}",
             f"- reason: {record['reason']}",
             f"- champion commit: {record.get('champion_commit') or '-'}",
             f"- test split: {record.get('split') or '-'}",
             f"- floor: {_cell(record['floor']) if record.get('floor') is not None else '-'}",
             f"- commit: {record.get('commit') or '-'}", ""]
    sets = [record.get(name) or {} for name in METRIC_SETS]
    keys = list(dict.fromkeys([metric, *(k for values in sets for k in values)]))
    if any(sets):
        lines += ["| metric | champion (committed) | champion (re-scored) | challenger |",
                  "|---|---|---|---|"]
        lines += ["| " + " | ".join([k, *(_cell(values.get(k, "-")) for values in sets)])
                  + " |" for k in keys]
    return "\n".join(lines)


def append_history(path: str | Path, record: dict) -> None:
    """Append one JSON line to the run history (the folder is created when missing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")


def read_history(path: str | Path) -> list[dict]:
    """Every record of the run history (none when the file does not exist); a line that
    is not JSON is an error naming the file and the line."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}, line {number}: not a JSON record ({exc.msg}); fix or "
                             "remove that line") from None
    return records


def unpushed_promotions(history: list[dict]) -> list[str]:
    """Commits promoted but not pushed ("promoted-not-pushed") that no later run pushed."""
    pending: list[str] = []
    for record in history:
        if record.get("decision") == "promoted-not-pushed" and record.get("commit"):
            pending.append(record["commit"])
        done = set(record.get("completed_push") or [])
        pending = [commit for commit in pending if commit not in done]
    return pending
