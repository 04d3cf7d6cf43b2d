"""The retraining flow: retrain when the data changed, promote only a model that is not worse.

1. `dvc pull` from the DVC remote, when one is configured (the champion's data and models).
2. `dvc status` against dvc.lock (pipelines/status.py): no data change, no missing output
   and a champion on the branch -> the run ends early and says so.
3. `dvc exp run --temp -n <name> -S <override> ...`: the whole pipeline as a DVC experiment
   in a temporary copy of the repository, so the workspace, the branch and the champion's
   files are never touched while it runs (or when it fails).
4. Challenger (the experiment's metrics file) vs champion (the same file committed at
   HEAD): promoted unless its metric is worse by more than the tolerance.
5. Promotion: `dvc exp apply`, `git commit` of the files the experiment changed, `dvc push`
   of the data and models. Rejection changes nothing; the experiment stays listed in
   `dvc exp show` for inspection.

Every run (skipped, rejected, promoted or failed) appends one JSON line to the history
file and publishes a markdown artifact with the decision.

    python -m pipelines.retrain [--repo PATH] [-S key=value ...] [--force] [--config FILE]
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from pipelines.champion import decide, experiment_commit, head_commit, metrics_at
from pipelines.commands import query, stream
from pipelines.reporting import append_history, decision_markdown, flatten
from pipelines.settings import Retraining, TaskPolicy, load_settings
from pipelines.status import data_status

DECISION_ARTIFACT = "clipreid-retraining"


def _log():
    logger = get_run_logger()
    return lambda line: logger.info("%s", line)


def _with_policy(task_fn, policy: TaskPolicy, name: str):
    return task_fn.with_options(name=name, task_run_name=name, retries=policy.retries,
                                retry_delay_seconds=policy.retry_delay_seconds)


def dvc_remote(repo: str, name: str | None) -> str | None:
    """The DVC remote to use: `name` (which must exist) or the project's default one."""
    if name:
        listed = query(["dvc", "remote", "list"], repo).stdout.split("\n")
        if name not in {line.split()[0] for line in listed if line.strip()}:
            raise ValueError(f"DVC remote {name!r} is not configured in {repo}")
        return name
    result = query(["dvc", "remote", "default"], repo, check=False)
    if result.returncode != 0:  # "No default remote set"
        return None
    return result.stdout.strip() or None


@task(cache_policy=NO_CACHE)
def pull(repo: str, remote: str, timeout_seconds: float | None) -> None:
    """`dvc pull`: the champion's data and models from the remote (what it lacks is
    tolerated: before the first promotion the remote is empty)."""
    stream(["dvc", "pull", "--allow-missing", "-r", remote], repo, _log(),
           timeout=timeout_seconds)


@task(cache_policy=NO_CACHE)
def run_experiment(repo: str, baseline: str, name: str, overrides: list[str],
                   timeout_seconds: float | None) -> str:
    """`dvc exp run --temp`: the pipeline as an experiment; returns its commit."""
    args = ["dvc", "exp", "run", "--temp", "-n", name]
    for override in overrides:
        args += ["-S", override]
    stream(args, repo, _log(), timeout=timeout_seconds)
    return experiment_commit(repo, baseline, name)


@task(cache_policy=NO_CACHE)
def promote(repo: str, name: str, exp_commit: str, message: str, cfg: Retraining) -> str:
    """`dvc exp apply`, then commit the files the experiment changed; returns the commit."""
    diff = query(["git", "diff", "-z", "--name-only", "HEAD", exp_commit], repo).stdout
    changed = [path for path in diff.split("\0") if path]
    stream(["dvc", "exp", "apply", name], repo, _log(), timeout=600)
    if not changed:  # the experiment reproduced the champion's commit exactly
        get_run_logger().info("the experiment's files equal HEAD's: nothing to commit")
        return head_commit(repo)
    query(["git", "add", "-A", "--", *changed], repo)
    identity = []
    if not query(["git", "config", "user.email"], repo, check=False).stdout.strip():
        identity = ["-c", f"user.name={cfg.git_name}", "-c", f"user.email={cfg.git_email}"]
    query(["git", *identity, "commit", "-q", "-m", message, "--", *changed], repo)
    untracked = query(["git", "ls-files", "--others", "--exclude-standard", "--directory"],
                      repo).stdout.split()
    if untracked:  # DVC does not commit the .gitignore files an experiment creates
        get_run_logger().warning(
            "untracked, not ignored after the promotion (an output new to the branch has "
            "no .gitignore entry yet: run `dvc repro` once and commit them): %s", untracked)
    return head_commit(repo)


@task(cache_policy=NO_CACHE)
def push(repo: str, remote: str, timeout_seconds: float | None) -> None:
    """`dvc push`: the promoted data and models to the remote."""
    stream(["dvc", "push", "-r", remote], repo, _log(), timeout=timeout_seconds)


def _finish(record: dict, root: Path, cfg: Retraining) -> dict:
    """Append the run to the history file and publish it as a markdown artifact."""
    append_history(root / cfg.history, record)
    create_markdown_artifact(markdown=decision_markdown(record, cfg.metric),
                             key=DECISION_ARTIFACT,
                             description=f"retraining decision in {root}")
    return record


def reasons_to_train(status, champion: dict | None, force: bool, cfg: Retraining) -> list[str]:
    """Why this run trains; empty when it has nothing to do."""
    reasons = ["forced (force=True)"] if force else []
    reasons += status.data_changes
    if status.missing_outputs:
        reasons.append("outputs missing from workspace, cache and remote: "
                       + ", ".join(status.missing_outputs))
    if champion is None:
        reasons.append(f"no champion: {cfg.metrics_file} is not committed at HEAD")
    return reasons


def _run(root: Path, cfg: Retraining, name: str, overrides: list[str], force: bool,
         record: dict) -> dict:
    """The steps of the flow; fills `record` in as it goes."""
    logger = get_run_logger()
    repo = str(root)
    remote = dvc_remote(repo, cfg.remote)
    if remote:
        _with_policy(pull, cfg.transfer, "dvc-pull")(repo, remote, cfg.transfer.timeout_seconds)
    else:
        logger.warning("no DVC remote configured: nothing pulled, nothing will be pushed")
    baseline = head_commit(root)
    if baseline is None:
        raise ValueError(f"{root} has no commit: the champion is a committed state")
    champion = metrics_at(root, baseline, cfg.metrics_file)
    record["champion_commit"] = baseline
    record["champion"] = flatten(champion) if champion else None

    status = data_status(root, cfg.data_stages)
    record["data_changes"] = status.data_changes
    record["code_changes"] = status.code_changes
    record["missing_outputs"] = status.missing_outputs
    reasons = reasons_to_train(status, champion, force, cfg)
    if not reasons:
        record["decision"] = "skipped"
        record["reason"] = (
            "data unchanged since the champion's run (dvc status: no change in "
            f"{', '.join(cfg.data_stages)} or .dvc files): nothing to retrain"
            + (f"; code changes (not a reason to retrain): {status.code_changes}"
               if status.code_changes else "")
            + (f"; other changes ignored: {status.other_changes}"
               if status.other_changes else ""))
        logger.info(record["reason"])
        return record
    logger.info("retraining because: %s", "; ".join(reasons))
    dirty = query(["git", "status", "--porcelain", "--untracked-files=no"], root).stdout
    if dirty.strip():
        logger.warning("uncommitted changes to tracked files go into the experiment:\n%s",
                       dirty)

    record["experiment"] = name
    exp_commit = _with_policy(run_experiment, cfg.experiment, "dvc-exp-run")(
        repo, baseline, name, overrides, cfg.experiment.timeout_seconds)
    challenger = metrics_at(root, exp_commit, cfg.metrics_file)
    record["metrics"] = flatten(challenger) if challenger else None
    decision = decide(record["champion"], record["metrics"], cfg.metric, cfg.tolerance)
    record["reason"] = decision.reason
    if not decision.promote:
        record["decision"] = "rejected"
        logger.warning("challenger %s rejected: %s", name, decision.reason)
        return record

    message = (f"Promote retraining experiment {name}\n\n{decision.reason}\n"
               f"Triggered by: {'; '.join(reasons)}\n"
               f"Overrides: {' '.join(overrides) or '(none)'}")
    promote_task = promote.with_options(name="promote", task_run_name="promote")
    record["commit"] = promote_task(repo, name, exp_commit, message, cfg)
    record["decision"] = "promoted"
    if remote:
        _with_policy(push, cfg.transfer, "dvc-push")(repo, remote, cfg.transfer.timeout_seconds)
        record["pushed_to"] = remote
    logger.info("challenger %s promoted as commit %s: %s", name, record["commit"],
                decision.reason)
    return record


@flow(name="clipreid-retraining")
def retrain(repo: str | None = None, overrides: list[str] | None = None, force: bool = False,
            config_path: str | None = None) -> dict:
    """Retrain the project at `repo` (default: the working directory) when its data
    changed, with `overrides` (`key=value`, as `dvc exp run -S`); promote or reject.

    Returns the run's history record; a failed run is recorded too, then re-raised.
    """
    root = Path(repo or Path.cwd()).resolve()
    cfg = load_settings(config_path).retraining
    overrides = list(overrides or [])
    now = datetime.now(timezone.utc)
    run_id = str(flow_run.id or "local")
    name = f"retrain-{now:%Y%m%d-%H%M%S}-{run_id[:6]}"  # unique: time and flow run
    record = {"time": now.isoformat(timespec="seconds"), "flow_run": run_id,
              "experiment": None, "overrides": overrides, "metrics": None,
              "champion": None, "champion_commit": None, "commit": None}
    try:
        _run(root, cfg, name, overrides, force, record)
    except BaseException as exc:  # recorded, then re-raised: the flow run fails
        reason = f"{type(exc).__name__}: {exc}"[:2000]
        if record.get("decision") == "promoted":  # committed, but `dvc push` failed
            record["decision"] = "promoted-not-pushed"
            reason = (f"committed as {record['commit']} but the push failed; run "
                      f"`dvc push` once the remote is reachable. {reason}")
        else:
            record["decision"] = "failed"
        record["reason"] = reason
        try:
            _finish(record, root, cfg)
        except Exception as error:  # keep the original error
            get_run_logger().error("could not record the failed run: %s", error)
        raise
    return _finish(record, root, cfg)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=None, help="project root (default: cwd)")
    parser.add_argument("-S", "--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="param override, as `dvc exp run -S`")
    parser.add_argument("--force", action="store_true", help="retrain even if no data changed")
    parser.add_argument("--config", default=None, help="orchestration config YAML")
    args = parser.parse_args(argv)
    state = retrain(repo=args.repo, overrides=args.overrides, force=args.force,
                    config_path=args.config, return_state=True)
    if state.is_completed():
        record = state.result()
        print(f"retraining: {record['decision']}: {record['reason']}")
        return 0
    print(f"retraining flow {state.name}: {state.message or ''}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
