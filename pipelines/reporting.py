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


def decision_markdown(record: dict, metric: str) -> str:
    """A run of the retraining flow as markdown: decision, reason, both metrics."""
    champion = record.get("champion") or {}
    challenger = record.get("metrics") or {}
    lines = [f"# Retraining: {record['decision']}", "",
             f"- time: {record['time']}",
             f"- experiment: {record.get('experiment') or '-'}",
             f"- reason: {record['reason']}",
             f"- commit: {record.get('commit') or '-'}", ""]
    keys = list(dict.fromkeys([metric, *challenger, *champion]))
    if challenger or champion:
        lines += ["| metric | champion | challenger |", "|---|---|---|"]
        lines += [f"| {k} | {_cell(champion.get(k, '-'))} | {_cell(challenger.get(k, '-'))} |"
                  for k in keys]
    return "\n".join(lines)


def append_history(path: str | Path, record: dict) -> None:
    """Append one JSON line to the run history (the folder is created when missing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
