"""The retraining flow under Prefect's test harness, offline, on throwaway DVC projects whose
score depends on the model and on the test data: like with like after a data change, the
floor, overrides as a reason to train, dry runs, failing closed on an unreadable or lost
champion, one run at a time on a clean tree, and promotions whose push failed."""

from __future__ import annotations

import fcntl
import json
import shutil
from pathlib import Path

import pytest
import yaml

from pipelines.guard import lock_path
from pipelines.retrain import DECISION_ARTIFACT, main, retrain
from pipelines_testkit import (change_data, head, history, latest_artifact, runs_of, sh,
                               snapshot, task_runs, tracked_changes, write_config)

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture
def config(tmp_path) -> str:
    return str(write_config(tmp_path / "c.yaml"))


def committed_metrics(repo: Path) -> dict:
    return json.loads(sh(["git", "show", "HEAD:metrics/evaluation.json"], repo).stdout)


def experiments(repo: Path) -> str:
    return sh(["git", "for-each-ref", "refs/exps"], repo).stdout


def commit_file(repo: Path, path: str, text: str, message: str = "edit") -> None:
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(text)
    sh(["git", "add", path], repo)
    sh(["git", "commit", "-qm", message], repo)


# --- like with like ---------------------------------------------------------------------


def test_after_a_data_change_the_champion_is_rescored_on_the_new_split(champion, config):
    """Harder test data (scores x 0.8): the challenger (quality 0.55 -> 0.44) is worse than
    the champion's committed 0.5, but better than the champion re-scored on the same data
    (0.4): promoted. Then easier data (x 1.5): a challenger (quality 0.5 -> 0.6) beats the
    committed 0.44 but not the re-scored champion (0.55 x 1.2 = 0.66): rejected."""
    change_data(champion, "scale 0.8\n")
    promoted = retrain(repo=str(champion), overrides=["quality=0.55"], config_path=config)
    assert promoted["decision"] == "promoted", promoted
    assert promoted["champion_committed"]["mAP"] == 0.5
    assert promoted["champion_rescored"]["mAP"] == 0.4
    assert promoted["challenger"]["mAP"] == 0.44
    assert promoted["floor"] == pytest.approx(0.39)  # the re-scored champion - 0.01
    assert committed_metrics(champion)["mAP"] == 0.44
    assert tracked_changes(champion) == ""

    change_data(champion, "scale 1.5\n")
    before, commit = snapshot(champion), head(champion)
    rejected = retrain(repo=str(champion), overrides=["quality=0.5"], config_path=config)
    assert rejected["decision"] == "rejected", rejected
    assert rejected["champion_committed"]["mAP"] == 0.44
    assert rejected["champion_rescored"]["mAP"] == pytest.approx(0.66)
    assert rejected["challenger"]["mAP"] == pytest.approx(0.6)
    assert "worse than the champion's 0.6600 on the same test split" in rejected["reason"]
    assert rejected["split"] != promoted["split"]
    assert head(champion) == commit and snapshot(champion) == before  # nothing changed

    lines = history(champion)
    assert [h["decision"] for h in lines] == ["promoted", "rejected"]
    for line in lines:  # the three sets of metrics, each a flat dict
        assert {"champion_committed", "champion_rescored", "challenger"} <= set(line)
        assert all(isinstance(v, float) for v in line["challenger"].values())
    artifact = latest_artifact(DECISION_ARTIFACT).data
    assert "| mAP | 0.4400 | 0.6600 | 0.6000 |" in artifact
    assert sh(["git", "worktree", "list"], champion).stdout.count("\n") == 1  # scratch gone
    assert not list((champion / ".dvc" / "tmp").glob("clipreid-rescore-*"))


def test_the_floor_stops_a_slow_drift(champion, config):
    """Each challenger 0.008 worse than the last: within the tolerance of 0.01 every time,
    but the second falls below the best ever promoted on this split (0.5) minus 0.01."""
    first = retrain(repo=str(champion), overrides=["quality=0.492"], config_path=config)
    assert first["decision"] == "promoted", first
    assert first["champion_rescored"]["mAP"] == 0.5 and first["floor"] == 0.49
    second = retrain(repo=str(champion), overrides=["quality=0.484"], config_path=config)
    assert second["champion_rescored"]["mAP"] == 0.492  # within the tolerance of it ...
    assert second["decision"] == "rejected"  # ... but below the floor
    assert "below the floor 0.4900" in second["reason"]
    assert committed_metrics(champion)["mAP"] == 0.492
    assert [h["floor"] for h in history(champion)] == [0.49, 0.49]


# --- reasons to train -------------------------------------------------------------------


def test_overrides_alone_are_a_reason_to_train_and_the_record_says_so(champion, config):
    record = retrain(repo=str(champion), overrides=["quality=0.6"], config_path=config)
    assert record["decision"] == "promoted"
    assert record["reasons"] == ["overrides: quality=0.6"]
    assert record["overrides"] == ["quality=0.6"]
    assert "quality: 0.6" in (champion / "params.yaml").read_text()
    assert history(champion)[-1]["reasons"] == ["overrides: quality=0.6"]


def test_a_dry_run_prints_reasons_champion_and_overrides_and_changes_nothing(
        champion, config, capsys):
    change_data(champion)
    before, commit = snapshot(champion), head(champion)
    assert main(["--repo", str(champion), "--config", config, "--dry-run",
                 "-S", "quality=0.9"]) == 0
    out = capsys.readouterr().out
    assert "dry run: would train: prepare: raw/images.txt modified; overrides: quality=0.9" in out
    assert f"champion: commit {commit[:12]}, committed metrics {{'mAP': 0.5" in out
    assert "overrides: quality=0.9" in out
    assert snapshot(champion) == before and head(champion) == commit
    assert experiments(champion) == "" and history(champion) == []


# --- failing closed ---------------------------------------------------------------------


@pytest.mark.parametrize("text, problem", [
    ('{"mAP": NaN, "rank1": 0.6}', "mAP is nan, not a finite number"),
    ('{"rank1": 0.6}', "mAP is missing"),
    ('{"mAP": "0.5"}', "mAP is '0.5', not a number"),
    ('{"mAP": 0.5,', "is not valid JSON"),
    (None, "is missing, although that commit's dvc.lock records a model"),
])
def test_an_unreadable_champion_metric_rejects_the_run(champion, config, text, problem):
    if text is None:
        sh(["git", "rm", "-q", "metrics/evaluation.json"], champion)
        sh(["git", "commit", "-qm", "metrics lost"], champion)
    else:
        commit_file(champion, "metrics/evaluation.json", text)
    commit = head(champion)
    record = retrain(repo=str(champion), overrides=["quality=0.01"], force=True,
                     config_path=config)
    assert record["decision"] == "rejected"
    assert f"metrics/evaluation.json at commit {commit[:12]}" in record["reason"]
    assert problem in record["reason"]
    assert experiments(champion) == "" and head(champion) == commit  # nothing trained


def forget_model(repo: Path, path: str = "models/model.bin") -> None:
    """Remove the champion's model from the workspace, the cache and the remote."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    (md5,) = [out["md5"] for stage in lock["stages"].values()
              for out in stage.get("outs", []) if out["path"] == path]
    for store in (repo / ".dvc" / "cache", repo.parent / "remote"):
        (store / "files" / "md5" / md5[:2] / md5[2:]).unlink()
    (repo / path).unlink()


def test_a_champion_model_found_nowhere_rejects_unless_forced(champion, config):
    forget_model(champion)
    change_data(champion)
    record = retrain(repo=str(champion), overrides=["quality=0.9"], config_path=config)
    assert record["decision"] == "rejected"
    assert "models/model.bin" in record["reason"]
    assert "neither the DVC cache nor the remote" in record["reason"]
    assert experiments(champion) == ""

    forced = retrain(repo=str(champion), overrides=["quality=0.9"], force=True,
                     config_path=config)
    assert forced["decision"] == "promoted", forced
    assert forced["champion_rescored"] is None
    assert forced["reason"].startswith("forced without the champion's comparison")


# --- one at a time, on a clean tree -----------------------------------------------------


def test_uncommitted_tracked_changes_stop_the_run_naming_them(champion, config):
    commit_file(champion, "README.md", "# project\n")
    change_data(champion)  # committed: a reason to train
    (champion / "README.md").write_text("# an unrelated edit\n")
    commit = head(champion)
    state = retrain(repo=str(champion), config_path=config, return_state=True)
    assert state.is_failed()
    assert "README.md" in state.message and "uncommitted changes" in state.message
    assert experiments(champion) == "" and head(champion) == commit
    assert (champion / "README.md").read_text() == "# an unrelated edit\n"
    (line,) = history(champion)
    assert line["decision"] == "failed" and "README.md" in line["reason"]


def test_an_edit_made_while_it_trains_is_neither_committed_nor_lost(champion, config, faults):
    """Someone edits a tracked file while the experiment trains: the qualifying challenger
    is not promoted (the commit would absorb the edit), and the edit survives."""
    commit_file(champion, "README.md", "# project\n")
    commit = head(champion)
    (faults / "train.run").write_text(f"echo 'edited during training' >> {champion}/README.md")
    record = retrain(repo=str(champion), overrides=["quality=0.9"], config_path=config)
    assert record["decision"] == "rejected", record
    assert "tracked files were changed (README.md) while it trained" in record["reason"]
    assert record["challenger"]["mAP"] == 0.9  # it qualified
    assert head(champion) == commit
    assert (champion / "README.md").read_text() == "# project\nedited during training\n"


def test_a_second_run_stops_at_once_while_one_holds_the_lock(champion, config):
    with open(lock_path(champion), "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write('{"pid": 4242, "flow_run": "the-other-run"}')
        held.flush()
        state = retrain(repo=str(champion), overrides=["quality=0.9"], config_path=config,
                        return_state=True)
    assert state.is_failed()
    assert "another retraining" in state.message and "the-other-run" in state.message
    assert experiments(champion) == "" and history(champion) == []


def test_the_lock_and_scratch_of_a_run_that_died_are_taken_over(champion, config):
    """A run killed while it re-scored the champion leaves its lock note (no flock: the
    kernel released it) and its scratch worktree; the next run takes both over."""
    lock_path(champion).write_text('{"pid": 999999, "flow_run": "killed"}')
    scratch = champion / ".dvc" / "tmp" / "clipreid-rescore-killed"
    sh(["git", "worktree", "add", "-q", "--detach", scratch / "tree", "HEAD"], champion)
    record = retrain(repo=str(champion), config_path=config)
    assert record["decision"] == "skipped"
    assert record["took_over_lock"]["flow_run"] == "killed"
    assert lock_path(champion).read_text() == ""  # released cleanly
    assert not scratch.exists()
    assert sh(["git", "worktree", "list"], champion).stdout.count("\n") == 1


# --- promotion completes ----------------------------------------------------------------


def test_a_failed_push_is_completed_by_the_next_run(champion, config):
    remote = champion.parent / "remote"
    shutil.move(remote, champion.parent / "remote.away")
    remote.write_text("not a folder: every push fails\n")
    state = retrain(repo=str(champion), overrides=["quality=0.7"], config_path=config,
                    return_state=True)
    assert state.is_failed()
    (line,) = history(champion)
    assert line["decision"] == "promoted-not-pushed" and line["commit"] == head(champion)
    assert "the next run pushes it first" in line["reason"]

    remote.unlink()  # the remote is back
    shutil.move(champion.parent / "remote.away", remote)
    record = retrain(repo=str(champion), config_path=config)
    assert record["completed_push"] == [line["commit"]]
    assert record["decision"] == "skipped"  # then it went on: nothing else to do
    clone = champion.parent / "clone"
    sh(["git", "clone", "-q", champion, clone], champion.parent)
    sh(["dvc", "pull", "-q"], clone)
    assert (clone / "models/model.bin").read_text().startswith("quality 0.7")
    third = retrain(repo=str(champion), config_path=config)
    assert "completed_push" not in third  # done once


def test_a_transient_training_fault_is_retried(champion, faults, tmp_path):
    config = str(write_config(tmp_path / "c.yaml", retraining={
        "experiment": {"retries": 2, "retry_delay_seconds": 0}}))
    (faults / "train.fail").write_text("2")
    state = retrain(repo=str(champion), overrides=["quality=0.7"], config_path=config,
                    return_state=True)
    assert state.is_completed(), state.message
    (experiment,) = runs_of(task_runs(state), "dvc-exp-run")
    assert experiment.run_count == 3
    assert state.result()["decision"] == "promoted"
