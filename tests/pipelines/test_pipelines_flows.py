"""The pipeline flow under Prefect's test harness, offline, on throwaway DVC projects:
retries of a transient fault, time limits, a failing stage. The retraining flow's tests are
in test_pipelines_retraining.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.run_pipeline import METRICS_ARTIFACT, pipeline
from pipelines_testkit import (change_data, latest_artifact, runs_of, sh, task_runs,
                               write_config)

pytestmark = pytest.mark.usefixtures("prefect_api")


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
