"""The flows under Prefect's test harness, offline, on throwaway DVC projects: retries of a
transient fault, time limits, a failing stage, champion vs challenger, skipping when the
data did not change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.retrain import retrain
from pipelines.run_pipeline import METRICS_ARTIFACT, pipeline
from pipelines_testkit import runs_of, sh, snapshot, task_runs, write_config

pytestmark = pytest.mark.usefixtures("prefect_api")


def change_data(repo: Path, line: str = "img-3 pid-3 cam-3\n", commit: bool = True) -> None:
    """New raw data arrives (and is committed to the branch, as a data update would be)."""
    with open(repo / "raw" / "images.txt", "a") as f:
        f.write(line)
    if commit:
        sh(["git", "commit", "-qam", "new images"], repo)


def history(repo: Path) -> list[dict]:
    path = repo / "reports" / "retraining_history.jsonl"
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


def running(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (a killed, unreaped child)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def flow_logs(state) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_logs(log_filter=LogFilter(
            flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])))


# --- the pipeline flow ------------------------------------------------------------------


def test_transient_fault_is_retried_and_logs_and_metrics_reach_prefect(champion, faults, tmp_path):
    change_data(champion, commit=False)  # so that every stage really runs
    (faults / "train.fail").write_text("2")  # the first two attempts of `train` fail
    config = write_config(tmp_path / "c.yaml")
    state = pipeline(repo=str(champion), config_path=str(config), return_state=True)

    assert state.is_completed(), state.message
    runs = task_runs(state)
    assert [r.name for r in sorted(runs, key=lambda r: r.start_time)] == [
        "prepare", "train", "evaluate"]  # graph order, one task per stage
    (train,) = runs_of(runs, "train")
    assert train.run_count == 3 and train.state_name == "Completed"
    assert (faults / "train.attempts").read_text() == "3"  # the stage command ran 3 times
    assert (faults / "prepare.attempts").read_text() == "1"
    assert "up to date" in sh(["dvc", "status"], champion).stdout
    result = state.result()
    assert result["metrics/evaluation.json"]["mAP"] == 0.5
    artifact = latest_artifact(METRICS_ARTIFACT)
    assert "| metrics/evaluation.json | mAP | 0.5000 |" in artifact.data
    messages = [log.message for log in flow_logs(state)]
    assert "[train] stage train done" in messages  # the stage command's own output
    assert "[train] Running stage 'train':" in messages  # and DVC's


def test_a_stage_over_its_time_limit_is_killed_and_fails_the_flow(champion, faults, tmp_path):
    change_data(champion, commit=False)
    (faults / "train.sleep").write_text("600")
    config = write_config(tmp_path / "c.yaml", stage_defaults={"retries": 0},
                          stages={"train": {"timeout_seconds": 3}})
    state = pipeline(repo=str(champion), config_path=str(config), return_state=True)

    assert state.is_failed()
    runs = task_runs(state)
    (train,) = runs_of(runs, "train")
    assert train.state_name == "Failed" and "time limit of 3" in train.state.message
    assert not runs_of(runs, "evaluate")  # a failed stage stops the run
    pid = int((faults / "train.pid").read_text())
    assert not running(pid)  # the stage command was killed with DVC, not orphaned


# --- the retraining flow ----------------------------------------------------------------


def test_unchanged_data_skips_training(champion, tmp_path):
    before = snapshot(champion)
    record = retrain(repo=str(champion), config_path=str(write_config(tmp_path / "c.yaml")))

    assert record["decision"] == "skipped" and "data unchanged" in record["reason"]
    assert record["experiment"] is None
    assert sh(["git", "for-each-ref", "refs/exps"], champion).stdout == ""  # nothing ran
    assert snapshot(champion) == before
    assert [h["decision"] for h in history(champion)] == ["skipped"]


def test_always_failing_stage_fails_the_flow_and_leaves_the_champion(champion, faults, tmp_path):
    change_data(champion)
    (faults / "train.fail").write_text("1000")
    before, commit = snapshot(champion), head(champion)
    config = write_config(tmp_path / "c.yaml")  # the experiment is retried once
    state = retrain(repo=str(champion), config_path=str(config), return_state=True)

    assert state.is_failed()
    (experiment,) = runs_of(task_runs(state), "dvc-exp-run")
    assert experiment.run_count == 2 and experiment.state_name == "Failed"
    assert (faults / "train.attempts").read_text() == "2"
    assert head(champion) == commit and snapshot(champion) == before
    assert tracked_changes(champion) == ""
    (line,) = history(champion)
    assert line["decision"] == "failed" and "injected fault in train" in line["reason"]


def test_worse_challenger_is_rejected_better_one_promoted(champion, faults, tmp_path):
    change_data(champion)
    config = str(write_config(tmp_path / "c.yaml",
                              retraining={"experiment": {"retries": 2,
                                                         "retry_delay_seconds": 0}}))
    champion_files, champion_commit = snapshot(champion), head(champion)

    # A worse challenger (mAP 0.3 < 0.5 - 0.01): rejected, nothing changes.
    worse = retrain(repo=str(champion), overrides=["quality=0.3"], config_path=config)
    assert worse["decision"] == "rejected" and "worse than the champion" in worse["reason"]
    assert worse["metrics"]["mAP"] == 0.3 and worse["champion"]["mAP"] == 0.5
    assert head(champion) == champion_commit
    assert snapshot(champion) == champion_files and tracked_changes(champion) == ""

    # A better one (mAP 0.7), after a transient fault twice in training: promoted.
    (faults / "train.attempts").unlink()  # count this run's attempts only
    (faults / "train.fail").write_text("2")
    state = retrain(repo=str(champion), overrides=["quality=0.7"], config_path=config,
                    return_state=True)
    assert state.is_completed(), state.message
    (experiment,) = runs_of(task_runs(state), "dvc-exp-run")
    assert experiment.run_count == 3
    better = state.result()
    assert better["decision"] == "promoted", better
    assert better["commit"] == head(champion) != champion_commit
    committed = json.loads(sh(["git", "show", "HEAD:metrics/evaluation.json"], champion).stdout)
    assert committed["mAP"] == 0.7
    assert "quality: 0.7" in (champion / "params.yaml").read_text()
    assert (champion / "models/model.bin").read_text().startswith("quality 0.7")
    assert tracked_changes(champion) == ""
    assert "up to date" in sh(["dvc", "status"], champion).stdout

    # The promoted data and model are on the remote: a fresh clone pulls them.
    clone = champion.parent / "clone"
    sh(["git", "clone", "-q", champion, clone], champion.parent)
    sh(["dvc", "pull", "-q"], clone)
    assert (clone / "models/model.bin").read_text() == (champion / "models/model.bin").read_text()

    lines = history(champion)
    assert [h["decision"] for h in lines] == ["rejected", "promoted"]
    assert [h["metrics"]["mAP"] for h in lines] == [0.3, 0.7]
    assert lines[0]["experiment"] != lines[1]["experiment"]
    assert all(h["time"] and h["experiment"].startswith("retrain-") for h in lines)
    assert "worse than the champion" in lines[0]["reason"]
    assert lines[1]["commit"] == head(champion) and lines[1]["pushed_to"] == "local"

    # The new champion's data is what the branch records: the next run has nothing to do.
    again = retrain(repo=str(champion), config_path=config)
    assert again["decision"] == "skipped"
    assert again["champion"]["mAP"] == 0.7


def test_first_model_is_promoted_when_the_branch_has_no_champion(champion, tmp_path):
    """A fresh project: nothing committed but the pipeline definition, an empty remote."""
    sh(["git", "rm", "-q", "--cached", "dvc.lock", "metrics/evaluation.json"], champion)
    sh(["git", "commit", "-qm", "no champion yet"], champion)
    for path in ("dvc.lock", "metrics/evaluation.json", "models/model.bin"):
        (champion / path).unlink()
    state = retrain(repo=str(champion), config_path=str(write_config(tmp_path / "c.yaml")),
                    return_state=True)
    assert state.is_completed(), state.message
    record = state.result()
    assert record["decision"] == "promoted" and "first model" in record["reason"]
    assert json.loads(sh(["git", "show", "HEAD:metrics/evaluation.json"],
                         champion).stdout)["mAP"] == 0.5
    assert sh(["git", "ls-files", "dvc.lock"], champion).stdout.strip() == "dvc.lock"
