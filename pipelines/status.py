"""Has the data changed? DVC's own answer (`dvc status --json` against dvc.lock), sorted.

`dvc status` compares every stage's dependencies, params and command with the hashes
recorded in dvc.lock (the champion's inputs when dvc.lock is committed) and every output
with the workspace and cache. Its entries are sorted into three kinds:

- data changes: a change of the data set itself, seen by a *data stage* (the configured
  stages that read the raw data, `prepare` here) or a `.dvc` file: the data set's files
  (its `dataset.source`: the data folder, or the synthetic set's generator), its
  `dataset.*` params, a `.dvc` file, a stage that never ran;
- code changes: a data stage's code (a dependency under `src/` other than the data set's
  source): reported as such, never a reason to retrain;
- missing outputs: cached outputs of any stage that are neither in the workspace nor in
  the cache (after `dvc pull`: nor on the remote), e.g. in a fresh clone before the first
  model was pushed. DVC reports them as "not in cache". Outputs declared `cache: false`
  and not committed to git (the training checkpoints) are never restorable; DVC reports
  them as "deleted" and they are not counted;
- other changes: code, params or outputs of the other stages (training recipe, model
  code). These are not data changes; they are reported but do not trigger a retraining.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipelines.commands import query

MISSING_STATE = "not in cache"


@dataclass
class DataStatus:
    data_changes: list[str] = field(default_factory=list)
    code_changes: list[str] = field(default_factory=list)
    missing_outputs: list[str] = field(default_factory=list)
    other_changes: list[str] = field(default_factory=list)

    @property
    def data_changed(self) -> bool:
        return bool(self.data_changes)


def _describe(entries: dict) -> list[str]:
    """`{"src/x": "modified", "params.yaml": {"dataset.seed": "modified"}}` as
    ["src/x modified", "params.yaml:dataset.seed modified"]."""
    out = []
    for path, state in entries.items():
        if isinstance(state, dict):
            out.extend(f"{path}:{key} {value}" for key, value in state.items())
        else:
            out.append(f"{path} {state}")
    return out


CODE_ROOT = "src/"


def classify_status(status: dict, data_stages: tuple[str, ...] | list[str],
                    data_sources: tuple[str, ...] | list[str] = ()) -> DataStatus:
    """Sort the JSON of `dvc status --json` into data changes, code changes, missing
    outputs and others. ``data_sources``: the data set's own paths (``dataset.source``),
    which are data even when they lie under src/ (the synthetic set's generator)."""
    result = DataStatus()
    for stage, items in status.items():
        is_data = stage in data_stages or stage.endswith(".dvc")
        changes = result.data_changes if is_data else result.other_changes
        for item in items:
            if isinstance(item, str):  # "changed command", "always changed", ...
                changes.append(f"{stage}: {item}")
                continue
            for kind, entries in item.items():
                if kind == "changed outs":
                    for path, state in entries.items():
                        if state == MISSING_STATE:
                            result.missing_outputs.append(path)
                        elif stage.endswith(".dvc"):  # the tracked data itself changed
                            result.data_changes.append(f"{stage}: {path} {state}")
                        else:  # a stage's product, not its input
                            result.other_changes.append(f"{stage}: output {path} {state}")
                elif is_data and kind == "changed deps":
                    for path, state in entries.items():
                        code = path.startswith(CODE_ROOT) and path not in data_sources
                        target = result.code_changes if code else result.data_changes
                        target.extend(f"{stage}: {d}" for d in _describe({path: state}))
                else:  # params, and everything of the other stages
                    changes.extend(f"{stage}: {d}" for d in _describe(entries))
    return result


def data_sources(repo: str | Path) -> tuple[str, ...]:
    """The data set's own path (`dataset.source` of the repository's params.yaml)."""
    path = Path(repo) / "params.yaml"
    if not path.is_file():
        return ()
    source = (yaml.safe_load(path.read_text()) or {}).get("dataset", {}).get("source")
    return (str(source),) if source else ()


def data_status(repo: str | Path, data_stages: tuple[str, ...] | list[str]) -> DataStatus:
    """Run `dvc status --json` in `repo` and classify it."""
    out = query(["dvc", "status", "--json"], repo, timeout=600).stdout.strip()
    return classify_status(json.loads(out or "{}"), data_stages, data_sources(repo))
