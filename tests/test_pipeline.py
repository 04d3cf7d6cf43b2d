"""End to end: `dvc repro` of a micro configuration in a fresh git + DVC project, a no-op
second repro, and an experiment that `dvc exp show` lists with its metrics."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# Appended to the copy's conf/config.yaml (after _self_ in the defaults list these values
# win), so `dvc exp run` recomposes to the micro configuration too.
MICRO = """
dataset:
  synthetic:
    num_train_ids: 8
    num_test_ids: 6
    train_images_per_id: [4, 6]
    gallery_images_per_id: [3, 5]
    num_distractors: 5
    num_junk: 2
model:
  input_size: [64, 32]
  architecture:
    vision_layers: 1
    vision_width: 64
    transformer_layers: 1
stage1:
  epochs: 2
stage2:
  epochs: 2
  num_identities: 4
  num_instances: 2
num_workers: 0
export:
  num_images: 4
"""


def run(cmd, cwd, check=True):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def make_project(root: Path) -> Path:
    for name in ("conf", "src"):
        shutil.copytree(ROOT / name, root / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, root / name)
    (root / ".dvc").mkdir()
    shutil.copy(ROOT / ".dvc" / "config", root / ".dvc" / "config")
    shutil.copy(ROOT / ".dvc" / ".gitignore", root / ".dvc" / ".gitignore")
    with open(root / "conf" / "config.yaml", "a") as f:
        f.write(MICRO)
    run(["git", "init", "-q"], root)
    run(["clipreid", "compose"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "micro project"], root)
    return root


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("project"))
    proc = run(["dvc", "repro"], root)
    return root, proc


def test_repro_runs_every_stage_and_writes_its_outputs(project):
    root, proc = project
    for stage in ("prepare", "prompt", "finetune", "evaluate", "export"):
        assert f"Running stage '{stage}'" in proc.stdout
    for path in ("data/prepared/manifest.csv", "models/prompts.pt", "models/reid.pt",
                 "models/reid.onnx", "dvclive/prompt/metrics.json",
                 "dvclive/finetune/plots/metrics/loss.tsv", "plots/evaluation/cmc.csv"):
        assert (root / path).is_file(), path
    metrics = json.loads((root / "metrics/evaluation.json").read_text())
    for key in ("mAP", "rank1", "rank5", "rank10", "mINP"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["rank1"] <= metrics["rank5"] <= metrics["rank10"]
    export = json.loads((root / "metrics/export.json").read_text())
    assert export["max_abs_diff"] <= 1e-4
    lock = (root / "dvc.lock").read_text()
    assert "models/reid.pt" in lock and "md5" in lock


def test_second_repro_reruns_nothing(project):
    root, _ = project
    proc = run(["dvc", "repro"], root)
    assert "Running stage" not in proc.stdout
    assert "up to date" in run(["dvc", "status"], root).stdout


def test_experiment_is_listed_with_its_metrics(project):
    root, _ = project
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "baseline run"], root)
    proc = run(["dvc", "exp", "run", "-S", "stage2.epochs=1", "-n", "one-epoch"], root)
    assert "Running stage 'finetune'" in proc.stdout
    assert "Running stage 'prompt'" not in proc.stdout  # stage 1 is unaffected
    shown = json.loads(run(["dvc", "exp", "show", "--json"], root).stdout)
    experiments = [exp for rev in shown for exp in (rev.get("experiments") or [])]
    names = [exp.get("name") for exp in experiments]
    assert "one-epoch" in names, names
    run_data = next(e for e in experiments if e.get("name") == "one-epoch")["revs"][0]["data"]
    assert run_data["params"]["params.yaml"]["data"]["stage2"]["epochs"] == 1
    metrics = run_data["metrics"]["metrics/evaluation.json"]["data"]
    assert set(metrics) >= {"mAP", "rank1", "mINP"}
