"""The pieces of the flows without a Prefect server: config, stage order from DVC, status
classification, the promotion rule, the command allow-list, and the package's boundary."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
import yaml

from pipelines_testkit import ROOT, sh
from pipelines.champion import decide
from pipelines.commands import ALLOWED_TOOLS, CommandError, query, stream
from pipelines.graph import parse_dot, stage_order, topological_order
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


@pytest.mark.parametrize("champion, challenger, promote", [
    ({"mAP": 0.50}, {"mAP": 0.60}, True),     # better
    ({"mAP": 0.50}, {"mAP": 0.50}, True),     # equal
    ({"mAP": 0.50}, {"mAP": 0.495}, True),    # worse, within the tolerance
    ({"mAP": 0.50}, {"mAP": 0.48}, False),    # worse by more than the tolerance
    (None, {"mAP": 0.1}, True),               # no champion yet: the first model
    ({"mAP": 0.50}, {"rank1": 0.9}, False),   # the challenger lacks the metric
    ({"mAP": 0.50}, {"mAP": float("nan")}, False),
])
def test_promotion_rule(champion, challenger, promote):
    decision = decide(champion, challenger, "mAP", 0.01)
    assert decision.promote is promote
    assert decision.reason


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
