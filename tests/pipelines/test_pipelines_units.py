"""The pieces of the flows without a Prefect server: config, stage order from DVC, status
classification, the promotion rule, the command allow-list, and the package's boundary."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest
import yaml

from pipelines_testkit import ROOT, sh
from pipelines.champion import MetricUnreadable, best_promoted, decide, metric_value
from pipelines.commands import ALLOWED_TOOLS, CommandError, query, stream
from pipelines.graph import parse_dot, stage_order, topological_order
from pipelines.guard import NotARepository, dirty_files, lock_path
from pipelines.reporting import unpushed_promotions
from pipelines.settings import DEFAULT_CONFIG, TaskPolicy, load_settings
from pipelines.status import classify_status

# --- config -----------------------------------------------------------------------------


def test_shipped_config_schedules_weekly_in_utc_and_keeps_out_of_params():
    settings = load_settings()
    assert settings.retraining.cron == "0 3 * * 1"
    assert settings.retraining.timezone == "UTC"
    assert settings.retraining.metric == "mAP"
    assert settings.retraining.history == "reports/retraining_history.jsonl"
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert not {"retraining", "stage_defaults", "stages"} & set(params)


def test_stage_policy_is_the_defaults_with_the_stage_keys_on_top(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({
        "stage_defaults": {"retries": 3, "retry_delay_seconds": 5, "timeout_seconds": 100},
        "stages": {"train": {"timeout_seconds": 7}}}))
    settings = load_settings(path)
    assert settings.stage_policy("train") == TaskPolicy(3, 5, 7)
    assert settings.stage_policy("validate") == TaskPolicy(3, 5, 100)  # not listed: defaults


@pytest.mark.parametrize("config, message", [
    ({"stages": {"train": {"retry": 1}}}, "unknown key"),
    ({"retraining": {"tolerence": 0.1}}, "unknown key"),
    ({"retraining": {"tolerance": -1}}, "tolerance"),
    ({"retraining": {"floor_margin": -0.1}}, "floor_margin"),
    ({"retraining": {"interval_seconds": 0}}, "interval_seconds"),
    ({"retraining": {"champion_model": []}}, "champion_model"),
    ({"stage_defaults": {"retries": -1}}, "retries"),
    ({"shedule": {}}, "unknown top-level"),
])
def test_config_mistakes_are_named(tmp_path, config, message):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match=message):
        load_settings(path)


def test_default_config_path_is_inside_the_package():
    assert DEFAULT_CONFIG == ROOT / "pipelines" / "config.yaml"


# --- stage order ------------------------------------------------------------------------


def test_dot_parsing_and_topological_order():
    dot = '''strict digraph {
"raw.dvc";
"export";
"prepare";
"train";
"raw.dvc" -> "prepare";
"prepare" -> "train";
"train" -> "export";
}'''
    nodes, edges = parse_dot(dot)
    assert nodes == ["raw.dvc", "export", "prepare", "train"]
    assert topological_order(nodes, edges) == ["raw.dvc", "prepare", "train", "export"]
    with pytest.raises(ValueError, match="cycle"):
        topological_order(["a", "b"], [("a", "b"), ("b", "a")])


def test_a_stage_added_to_dvc_yaml_appears_in_the_order(champion):
    assert stage_order(champion) == ["prepare", "train", "evaluate"]
    spec = yaml.safe_load((champion / "dvc.yaml").read_text())
    spec["stages"] = {"validate": {"cmd": "python steps.py validate",
                                   "deps": ["data/prepared.txt"], "outs": ["validated.txt"]},
                      **spec["stages"]}
    spec["stages"]["train"]["deps"].append("validated.txt")
    (champion / "dvc.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    assert stage_order(champion) == ["prepare", "validate", "train", "evaluate"]


def test_stage_order_of_the_real_dvc_yaml(tmp_path):
    """The project's own dvc.yaml: every stage, each after the stages whose outputs it
    reads (so a `validate` stage slots in without a change here)."""
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    sh(["dvc", "init", "-q", "--no-scm"], tmp_path)
    order = stage_order(tmp_path)
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert sorted(order) == sorted(stages)
    assert order[0] == "prepare"

    def paths(entries):
        return {next(iter(e)) if isinstance(e, dict) else e for e in entries or []}

    producer = {out: name for name, spec in stages.items() for out in paths(spec.get("outs"))}
    for name, spec in stages.items():
        for dep in paths(spec.get("deps")):
            if dep in producer:
                assert order.index(producer[dep]) < order.index(name), (dep, name)


# --- data status ------------------------------------------------------------------------


def test_status_classification():
    status = {
        "prepare": [{"changed deps": {"raw/images.txt": "modified",
                                      "params.yaml": {"dataset.seed": "modified"}}}],
        "train": [{"changed deps": {"src/model.py": "modified"}},
                  {"changed outs": {"models/model.bin": "not in cache",
                                    "checkpoints/train": "deleted"}}],  # cache: false
        "data/raw.dvc": [{"changed outs": {"data/raw": "modified"}}],
        "evaluate": ["changed command"],
    }
    result = classify_status(status, ["prepare"])
    assert result.data_changes == ["prepare: raw/images.txt modified",
                                   "prepare: params.yaml:dataset.seed modified",
                                   "data/raw.dvc: data/raw modified"]
    assert result.missing_outputs == ["models/model.bin"]
    assert result.other_changes == ["train: src/model.py modified",
                                    "train: output checkpoints/train deleted",
                                    "evaluate: changed command"]
    assert classify_status({}, ["prepare"]).data_changed is False


def test_a_data_stage_code_change_is_no_data_change():
    """A reader's code changing is a code change; the data set's own source (the
    synthetic set's generator, or a data folder) and its params are data changes."""
    status = {"prepare": [{"changed deps": {
        "src/clipreid/dataset/readers/market.py": "modified",
        "src/clipreid/dataset/synthetic.py": "modified",
        "params.yaml": {"dataset.num_cameras": "modified"}}}]}
    result = classify_status(status, ["prepare"], ["src/clipreid/dataset/synthetic.py"])
    assert result.code_changes == ["prepare: src/clipreid/dataset/readers/market.py modified"]
    assert result.data_changes == ["prepare: src/clipreid/dataset/synthetic.py modified",
                                   "prepare: params.yaml:dataset.num_cameras modified"]
    real = classify_status({"prepare": [{"changed deps": {
        "src/clipreid/dataset/manifest.py": "modified",
        "/data/Market-1501": "modified"}}]}, ["prepare"], ["/data/Market-1501"])
    assert real.code_changes == ["prepare: src/clipreid/dataset/manifest.py modified"]
    assert real.data_changes == ["prepare: /data/Market-1501 modified"]
    assert not classify_status({"prepare": [{"changed deps": {
        "src/clipreid/io.py": "modified"}}]}, ["prepare"], []).data_changed


# --- promotion rule ---------------------------------------------------------------------


@pytest.mark.parametrize("challenger, champion, floor, promote", [
    (0.60, 0.50, None, True),     # better
    (0.50, 0.50, None, True),     # equal
    (0.495, 0.50, None, True),    # worse, within the tolerance
    (0.48, 0.50, None, False),    # worse by more than the tolerance
    (0.10, None, None, True),     # no champion yet: the first model
    (0.495, 0.50, 0.499, False),  # within the tolerance, below the floor
    (0.499, 0.50, 0.499, True),   # at the floor
    (0.30, None, 0.40, False),    # no champion to compare, but a floor
])
def test_promotion_rule(challenger, champion, floor, promote):
    decision = decide(challenger, champion, floor, "mAP", 0.01)
    assert decision.promote is promote
    assert decision.reason.startswith("mAP") and ("floor" in decision.reason) == (floor is not None)


def test_best_promoted_reads_promotions_and_rescored_champions_of_the_same_split():
    history = [
        {"decision": "promoted", "split": "a", "challenger": {"mAP": 0.5}},
        {"decision": "rejected", "split": "a", "challenger": {"mAP": 0.9},  # not promoted
         "champion_rescored": {"mAP": 0.52}},
        {"decision": "promoted-not-pushed", "split": "a", "challenger": {"mAP": 0.51}},
        {"decision": "promoted", "split": "b", "challenger": {"mAP": 0.8}},  # another split
        {"decision": "skipped", "split": None, "challenger": None},
        {"decision": "promoted", "split": "a", "challenger": {"mAP": float("nan")}},
    ]
    assert best_promoted(history, "a", "mAP") == 0.52
    assert best_promoted(history, "b", "mAP") == 0.8
    assert best_promoted(history, "c", "mAP") is None
    assert best_promoted(history, None, "mAP") is None  # no split identity: no floor


def test_unpushed_promotions_until_a_later_run_pushed_them():
    history = [{"decision": "promoted-not-pushed", "commit": "c1"},
               {"decision": "skipped"},
               {"decision": "promoted-not-pushed", "commit": "c2"}]
    assert unpushed_promotions(history) == ["c1", "c2"]
    assert unpushed_promotions([*history, {"decision": "skipped",
                                           "completed_push": ["c1", "c2"]}]) == []
    assert unpushed_promotions([{"decision": "promoted", "commit": "c3"}]) == []


@pytest.mark.parametrize("metrics, message", [
    ({"mAP": 0.5}, None),
    ({"mAP": 1}, None),
    ({"test": {"mAP": 0.5}}, "missing"),
    ({"mAP": float("nan")}, "not a finite number"),
    ({"mAP": float("inf")}, "not a finite number"),
    ({"mAP": None}, "None, not a number"),
    ({"mAP": True}, "True, not a number"),
    ({"mAP": "0.5"}, "'0.5', not a number"),
])
def test_metric_value_accepts_only_finite_numbers(metrics, message):
    if message is None:
        assert metric_value(metrics, "mAP", "f") == float(metrics["mAP"])
    else:
        with pytest.raises(MetricUnreadable, match=f"^f: mAP is .*{re.escape(message)}"):
            metric_value(metrics, "mAP", "f")


def test_dirty_files_names_modified_staged_and_renamed_tracked_files(tmp_path):
    import subprocess

    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": __import__("os").environ["PATH"]}
    for name in ("a.txt", "b.txt", "c d.txt"):
        (tmp_path / name).write_text(name)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "x"]):
        subprocess.run(cmd, cwd=tmp_path, env=env, check=True)
    assert dirty_files(tmp_path) == []
    (tmp_path / "a.txt").write_text("changed")
    subprocess.run(["git", "mv", "b.txt", "e.txt"], cwd=tmp_path, env=env, check=True)
    (tmp_path / "untracked.txt").write_text("not tracked: not dirty")
    (tmp_path / "c d.txt").write_text("changed too")
    assert sorted(dirty_files(tmp_path)) == ["a.txt", "c d.txt", "e.txt"]


# --- commands and the package boundary --------------------------------------------------


def test_only_dvc_git_and_clipreid_can_be_run(tmp_path):
    assert ALLOWED_TOOLS == {"dvc", "git", "clipreid"}
    for args in (["python", "-c", "print(1)"], ["sh", "-c", "true"], ["rm", "-rf", "x"], []):
        with pytest.raises(ValueError, match="runs only"):
            query(args, tmp_path)
        with pytest.raises(ValueError, match="runs only"):
            stream(args, tmp_path, print)


def test_stream_forwards_every_line_and_reports_failures(tmp_path):
    lines = []
    stream(["git", "--version"], tmp_path, lines.append)
    assert lines[0] == "$ git --version" and lines[1].startswith("git version")
    with pytest.raises(CommandError, match="exited with"):
        stream(["git", "no-such-subcommand"], tmp_path, lines.append)


PIPELINES = ROOT / "pipelines"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_pipelines_is_orchestration_only():
    """No training code, no stage logic: no torch or clipreid imports; processes start in
    pipelines/commands.py only (whose allow-list is tested above)."""
    sources = sorted(PIPELINES.glob("*.py"))
    assert {p.name for p in sources} >= {"__init__.py", "run_pipeline.py", "retrain.py",
                                         "serve.py", "commands.py"}
    for path in sources:
        imports = _imports(path)
        assert not imports & {"torch", "torchvision", "clip", "clipreid", "numpy", "pandas"}, path
        if path.name != "commands.py":
            assert not imports & {"subprocess", "multiprocessing", "pty"}, path
            text = path.read_text()
            assert "os.system" not in text and "os.exec" not in text and "popen" not in text.lower(), path


def test_a_corrupt_metrics_file_names_the_file_and_the_commit(tmp_path):
    import subprocess

    from pipelines.champion import head_commit, metrics_at

    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": __import__("os").environ["PATH"]}
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "evaluation.json").write_text('{"mAP": 0.1 "rank1": 0.2}')
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "x"]):
        subprocess.run(cmd, cwd=tmp_path, env=env, check=True)
    commit = head_commit(tmp_path)
    with pytest.raises(ValueError, match=rf"metrics/evaluation.json at commit {commit[:12]} "
                                         r"is not valid JSON \(Expecting ',' delimiter, line 1"):
        metrics_at(tmp_path, commit, "metrics/evaluation.json")


def test_a_folder_that_is_no_git_checkout_is_named(tmp_path):
    with pytest.raises(NotARepository, match=f"{tmp_path} is not a git checkout.*--repo"):
        lock_path(tmp_path)
