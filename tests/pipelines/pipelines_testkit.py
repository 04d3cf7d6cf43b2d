"""Helpers of the orchestration tests: a throwaway DVC project with trivial stages, the
tests' orchestration config, and readers of what a flow run left behind.

The throwaway project mirrors the real graph in miniature (prepare -> train -> evaluate,
a metrics file with mAP that depends on the model's `quality` param and on the test data,
a report naming the test split) with stages that take milliseconds. Faults are injected through
the stage command itself: `steps.py` reads $PIPELINES_TEST_FAULTS (a folder) and fails
the first N attempts of a stage, or sleeps, so retries and time limits go through the
real `dvc repro -s` / `dvc exp run` path.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `pipelines` is a top-level package of the repository
    sys.path.insert(0, str(ROOT))

from pipelines.commands import tool_env  # noqa: E402

FAULTS_ENV = "PIPELINES_TEST_FAULTS"

STEPS = '''"""Trivial stages of a throwaway DVC project (tests/pipelines)."""
import hashlib
import json
import os
import pathlib
import sys
import time

import yaml

stage = sys.argv[1]
faults = os.environ.get("PIPELINES_TEST_FAULTS")
if faults:
    folder = pathlib.Path(faults)
    counter = folder / f"{stage}.attempts"
    attempt = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(attempt))
    fail = folder / f"{stage}.fail"
    if fail.exists() and attempt <= int(fail.read_text()):
        sys.exit(f"injected fault in {stage}, attempt {attempt}")
    hook = folder / f"{stage}.run"  # a shell command run during the stage
    if hook.exists():
        import subprocess
        subprocess.run(hook.read_text(), shell=True, check=True)
    sleep = folder / f"{stage}.sleep"
    if sleep.exists():
        (folder / f"{stage}.pid").write_text(str(os.getpid()))
        time.sleep(float(sleep.read_text()))

params = yaml.safe_load(open("params.yaml"))
if stage == "prepare":
    pathlib.Path("data").mkdir(exist_ok=True)
    text = pathlib.Path("raw/images.txt").read_text()
    pathlib.Path("data/prepared.txt").write_text(f"seed {params['dataset']['seed']}\\n{text}")
elif stage == "train":
    pathlib.Path("models").mkdir(exist_ok=True)
    data = pathlib.Path("data/prepared.txt").read_text()
    pathlib.Path("models/model.bin").write_text(f"quality {params['quality']}\\n{data}")
elif stage == "evaluate":
    quality = float(pathlib.Path("models/model.bin").read_text().split()[1])
    # The score depends on the model and on the test split: lines "scale <s>" in the
    # data make it harder (s < 1) or easier (s > 1).
    scale = 1.0
    for line in pathlib.Path("data/prepared.txt").read_text().splitlines():
        if line.startswith("scale "):
            scale *= float(line.split()[1])
    score = round(quality * scale, 6)
    pathlib.Path("metrics").mkdir(exist_ok=True)
    json.dump({"mAP": score, "rank1": round(min(1.0, score + 0.1), 6)},
              open("metrics/evaluation.json", "w"))
    pathlib.Path("report").mkdir(exist_ok=True)  # the test split's identity
    split = hashlib.sha256(pathlib.Path("data/prepared.txt").read_bytes()).hexdigest()
    json.dump({"test_split": split}, open("report/evaluation.json", "w"))
print(f"stage {stage} done")
'''

DVC_YAML = {
    "stages": {
        "prepare": {"cmd": "python steps.py prepare", "deps": ["raw/images.txt", "steps.py"],
                    "params": ["dataset"], "outs": ["data/prepared.txt"]},
        "train": {"cmd": "python steps.py train", "deps": ["data/prepared.txt", "steps.py"],
                  "params": ["quality"], "outs": ["models/model.bin"]},
        "evaluate": {"cmd": "python steps.py evaluate",
                     "deps": ["data/prepared.txt", "models/model.bin", "steps.py"],
                     "metrics": [{"metrics/evaluation.json": {"cache": False}}],
                     "outs": [{"report/evaluation.json": {"cache": False}}]},
    }
}

# Orchestration config of the tests: no waiting between attempts, no time limits (a test
# that checks time limits sets its own).
TEST_CONFIG = {
    "stage_defaults": {"retries": 2, "retry_delay_seconds": 0, "timeout_seconds": None},
    "stages": {},
    "retraining": {
        "cron": "0 3 * * 1", "timezone": "UTC", "interval_seconds": None,
        "data_stages": ["prepare"],
        "metrics_file": "metrics/evaluation.json", "metric": "mAP", "tolerance": 0.01,
        "floor_margin": 0.01, "rescore_stage": "evaluate",
        "champion_model": ["models/model.bin"], "split_file": "report/evaluation.json",
        "split_key": "test_split",
        "history": "reports/retraining_history.jsonl", "remote": None,
        "experiment": {"retries": 1, "retry_delay_seconds": 0, "timeout_seconds": None},
        "rescore": {"retries": 0, "retry_delay_seconds": 0, "timeout_seconds": None},
        "transfer": {"retries": 1, "retry_delay_seconds": 0, "timeout_seconds": None},
    },
}


def sh(args, cwd, check=True) -> subprocess.CompletedProcess:
    """Run a setup or inspection command in a test project (the tests may run anything)."""
    env = {**tool_env(), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def write_config(path: Path, **changes) -> Path:
    """TEST_CONFIG with top-level sections updated by `changes`, as a YAML file."""
    import yaml

    config = json.loads(json.dumps(TEST_CONFIG))
    for key, value in changes.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) else value
    path.write_text(yaml.safe_dump(config))
    return path


def snapshot(repo: Path) -> dict[str, str]:
    """Hash of every file in the project except .git, DVC's internals and the history."""
    digest = {}
    for path in sorted(repo.rglob("*")):
        rel = path.relative_to(repo).as_posix()
        if path.is_file() and not rel.startswith((".git/", ".dvc/tmp/", ".dvc/cache/",
                                                   "reports/")):
            digest[rel] = hashlib.md5(path.read_bytes()).hexdigest()
    return digest


def build_champion(base: Path) -> Path:
    """base/repo: a git + DVC project whose pipeline ran and was committed (the champion,
    mAP 0.5) and pushed to base/remote, its DVC remote (a local folder)."""
    repo = base / "repo"
    (repo / "raw").mkdir(parents=True)
    (repo / "raw" / "images.txt").write_text("img-1 pid-1 cam-1\nimg-2 pid-2 cam-2\n")
    (repo / "steps.py").write_text(STEPS)
    import yaml

    (repo / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML, sort_keys=False))
    (repo / "params.yaml").write_text("quality: 0.5\ndataset:\n  seed: 0\n")
    (repo / ".gitignore").write_text("/reports/\n")
    sh(["git", "init", "-q", "-b", "main"], repo)
    sh(["dvc", "init", "-q"], repo)
    sh(["dvc", "config", "core.analytics", "false"], repo)
    sh(["dvc", "remote", "add", "-d", "local", "../remote"], repo)  # stored relative
    sh(["dvc", "repro", "-q"], repo)
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-qm", "champion"], repo)
    sh(["dvc", "push", "-q"], repo)
    return repo


def task_runs(flow_state) -> list:
    """The task runs of a finished flow run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    flow_run_id = flow_state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return runs


def runs_of(runs, name: str) -> list:
    """The task runs named `name` (a stage name, or e.g. `dvc-exp-run`)."""
    return [run for run in runs if run.name == name]


def change_data(repo: Path, line: str = "img-3 pid-3 cam-3\n", commit: bool = True) -> None:
    """New raw data arrives (and is committed to the branch, as a data update would be)."""
    with open(repo / "raw" / "images.txt", "a") as f:
        f.write(line)
    if commit:
        sh(["git", "commit", "-qam", "new images"], repo)


def history(repo: Path) -> list[dict]:
    """The retraining history of the project (empty when no run was recorded)."""
    path = repo / "reports" / "retraining_history.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def head(repo: Path) -> str:
    return sh(["git", "rev-parse", "HEAD"], repo).stdout.strip()


def tracked_changes(repo: Path) -> str:
    return sh(["git", "status", "--porcelain", "--untracked-files=no"], repo).stdout


def latest_artifact(key: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        return client.read_latest_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))[0]
