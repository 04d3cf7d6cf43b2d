"""The retraining flow: retrain when the data changed (or on request), promote only a model
that is not worse than the champion on the same test split.

1. One run per repository (a lock, pipelines/guard.py), on a clean tree: tracked files with
   uncommitted changes stop the run before anything happens, naming them.
2. A promotion whose `dvc push` failed is pushed first; then `dvc pull` brings the
   champion's data and models from the DVC remote, when one is configured.
3. The champion: the model the branch's dvc.lock records at HEAD, with its committed
   metrics, which must be readable (else the run is rejected, naming file and commit).
4. `dvc status` against dvc.lock (pipelines/status.py) and the `-S` overrides: no data
   change, no override, no missing output and a champion on the branch -> the run ends.
5. `dvc exp run --temp -n <name> -S <override> ...`: the whole pipeline as a DVC experiment
   in a temporary copy of the repository; the workspace is never touched.
6. The champion's model, taken from the DVC cache or remote before the experiment, is
   re-scored on the experiment's test split with the experiment's evaluation code and
   params, in a scratch worktree (pipelines/rescore.py).
7. Challenger vs re-scored champion (tolerance) and vs the floor (the best score ever
   promoted on that split, minus a margin: pipelines/champion.py).
8. Promotion: `dvc exp apply`, the overrides kept in conf/ (`clipreid compose`) so that
   the next experiment starts from this recipe, `git commit`, `dvc push`. Rejection
   changes nothing; the experiment stays in `dvc exp show`.

Every run (skipped, rejected, promoted, promoted-not-pushed or failed) appends one JSON
line to the history file and publishes a markdown artifact with the decision; a dry run
(`--dry-run`) prints what it would do and records nothing.

    python -m pipelines.retrain [--repo PATH] [-S key=value ...] [--force] [--dry-run]
                                [--config FILE]
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

import yaml
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from pipelines.champion import (Champion, MetricUnreadable, best_promoted, champion_at,
                                decide, experiment_commit, file_at, head_commit,
                                metric_value, metrics_at)
from pipelines.commands import query, stream
from pipelines.guard import DirtyTree, dirty_files, run_lock
from pipelines.reporting import (append_history, decision_markdown, flatten, read_history,
                                 unpushed_promotions)
from pipelines.rescore import (ChampionModelMissing, challenger_split,
                               fetch_champion_model, remove_scratch, rescore, scratch_dir)
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
            raise ValueError(f"DVC remote {name!r} (retraining.remote of the orchestration "
                             f"config) is not configured in {repo}: set it to one that "
                             "`dvc remote list` shows, or to null for the default remote")
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
def push(repo: str, remote: str, timeout_seconds: float | None) -> None:
    """`dvc push`: the promoted data and models to the remote."""
    stream(["dvc", "push", "-r", remote], repo, _log(), timeout=timeout_seconds)


@task(cache_policy=NO_CACHE)
def fetch_champion(repo: str, commit: str, files: tuple[str, ...], dest: str,
                   remote: str | None, timeout_seconds: float | None) -> None:
    """The champion's model files from the DVC cache or remote (pipelines/rescore.py)."""
    fetch_champion_model(Path(repo), commit, files, Path(dest), remote, timeout_seconds)


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
def rescore_champion(repo: str, exp_commit: str, name: str, model_dir: str,
                     cfg: Retraining) -> tuple[dict, str | None]:
    """The champion's model evaluated on the experiment's test split (pipelines/rescore.py)."""
    return rescore(Path(repo), exp_commit, name, Path(model_dir), cfg.rescore_stage,
                   cfg.metrics_file, cfg.split_file, cfg.split_key, _log(),
                   cfg.rescore.timeout_seconds)


def hydra_enabled(repo: str) -> bool:
    """Whether `dvc exp run` composes params.yaml from conf/ (DVC's Hydra integration)."""
    result = query(["dvc", "config", "hydra.enabled"], repo, check=False)
    return result.stdout.strip().lower() == "true"


def keep_recipe(repo: str, exp_commit: str, overrides: list[str]) -> None:
    """Keep the experiment's overrides in conf/ (`clipreid compose`), so that the next
    composition, the next `dvc exp run` included, starts from the promoted recipe; the
    params it composes must be the experiment's."""
    stream(["clipreid", "compose", *overrides], repo, _log(), timeout=600)
    composed = flatten(yaml.safe_load((Path(repo) / "params.yaml").read_text()) or {})
    trained = file_at(repo, exp_commit, "params.yaml") or ""
    expected = flatten(yaml.safe_load(trained) or {})
    differ = sorted(k for k in set(composed) | set(expected)
                    if composed.get(k, "<missing>") != expected.get(k, "<missing>"))
    if differ:
        raise RuntimeError(f"conf/ with the kept overrides {overrides} does not compose the "
                           f"experiment's params.yaml (differing keys: {differ[:10]}); the "
                           "promotion was rolled back")
    (Path(repo) / "params.yaml").write_text(trained)  # the experiment's own bytes


@task(cache_policy=NO_CACHE)
def promote(repo: str, name: str, exp_commit: str, overrides: list[str], message: str,
            cfg: Retraining) -> str:
    """`dvc exp apply`, the overrides kept in conf/, then a commit of what changed; returns
    the commit. On failure the workspace goes back to HEAD (the tree was clean)."""
    diff = query(["git", "diff", "-z", "--name-only", "HEAD", exp_commit], repo).stdout
    changed = [path for path in diff.split("\0") if path]
    try:
        stream(["dvc", "exp", "apply", name], repo, _log(), timeout=600)
        if overrides and hydra_enabled(repo):
            keep_recipe(repo, exp_commit, overrides)
        if changed:
            query(["git", "add", "-A", "--", *changed], repo)
        query(["git", "add", "-u"], repo)
        staged = query(["git", "diff", "--cached", "--name-only"], repo).stdout.split()
        if not staged:  # the experiment reproduced the champion's commit exactly
            get_run_logger().info("the experiment's files equal HEAD's: nothing to commit")
            return head_commit(repo)
        identity = []
        if not query(["git", "config", "user.email"], repo, check=False).stdout.strip():
            identity = ["-c", f"user.name={cfg.git_name}", "-c", f"user.email={cfg.git_email}"]
        query(["git", *identity, "commit", "-q", "-m", message], repo)
    except BaseException as exc:  # back to HEAD; the tree was clean when promote started
        try:
            query(["git", "reset", "-q", "--hard", "HEAD"], repo)
            if changed:  # files the experiment added (untracked at HEAD)
                query(["git", "clean", "-fdq", "--", *changed], repo)
            query(["dvc", "checkout", "--force"], repo, timeout=3600)
        except Exception as error:
            raise RuntimeError(f"the promotion failed ({exc}) and restoring HEAD failed "
                               f"too: {error}; restore it by hand (`git reset --hard HEAD "
                               f"&& dvc checkout --force`)") from exc
        raise
    untracked = query(["git", "ls-files", "--others", "--exclude-standard", "--directory"],
                      repo).stdout.split()
    if untracked:  # DVC does not commit the .gitignore files an experiment creates
        get_run_logger().warning(
            "untracked, not ignored after the promotion (an output new to the branch has "
            "no .gitignore entry yet: run `dvc repro` once and commit them): %s", untracked)
    return head_commit(repo)


def _finish(record: dict, root: Path, cfg: Retraining) -> dict:
    """Append the run to the history file and publish it as a markdown artifact."""
    append_history(root / cfg.history, record)
    create_markdown_artifact(markdown=decision_markdown(record, cfg.metric),
                             key=DECISION_ARTIFACT,
                             description=f"retraining decision in {root}")
    return record


def reasons_to_train(status, champion: Champion, overrides: list[str], force: bool,
                     cfg: Retraining, pulled: bool = True) -> list[str]:
    """Why this run trains; empty when it has nothing to do. `pulled`: whether the remote
    was pulled first (a dry run pulls nothing)."""
    reasons = ["forced (force=True)"] if force else []
    reasons += status.data_changes
    if overrides:
        reasons.append(f"overrides: {' '.join(overrides)}")
    if status.missing_outputs:
        where = ("workspace, cache and remote" if pulled else
                 "workspace and cache (a dry run does not look at the remote)")
        reasons.append(f"outputs missing from {where}: " + ", ".join(status.missing_outputs))
    if not champion.exists:
        reasons.append(f"no champion: dvc.lock at {champion.commit[:12]} records no "
                       f"{', '.join(cfg.champion_model)}")
    return reasons


def _moved_since(root: Path, commit: str) -> str | None:
    """What changed in the checkout since the run started from `commit`, or None."""
    head = head_commit(root)
    if head != commit:
        return f"the branch moved from {commit[:12]} to {(head or '-')[:12]}"
    dirty = dirty_files(root)
    if dirty:
        return f"tracked files were changed ({', '.join(dirty)})"
    return None


def _reject(record: dict, reason: str) -> dict:
    record["decision"] = "rejected"
    record["reason"] = reason
    get_run_logger().warning("rejected: %s", reason)
    return record


def _prepare(root: Path, cfg: Retraining, overrides: list[str], force: bool, dry_run: bool,
             record: dict) -> tuple[Champion | None, str | None, list[dict]]:
    """Steps 1-4: clean tree, pending push, pull, champion, reasons. Returns the champion
    (None when the run ends here), the remote and the history."""
    logger = get_run_logger()
    repo = str(root)
    dirty = dirty_files(root)
    if dirty and not dry_run:
        raise DirtyTree(f"tracked files with uncommitted changes: {', '.join(dirty)}. They "
                        "would go into the experiment and the promotion commit: commit or "
                        "revert them, then run again")
    record["dirty_files"] = dirty
    remote = dvc_remote(repo, cfg.remote)
    history = read_history(root / cfg.history)
    pending = unpushed_promotions(history) if remote else []
    record["unpushed"] = pending
    if not dry_run:
        removed = remove_scratch(root)
        if removed:
            logger.warning("removed scratch folders of a run that died: %s", removed)
        if pending:
            logger.info("promoted but not pushed by an earlier run: %s; pushing first",
                        pending)
            _with_policy(push, cfg.transfer, "dvc-push-pending")(
                repo, remote, cfg.transfer.timeout_seconds)
            record["completed_push"] = pending
        if remote:
            _with_policy(pull, cfg.transfer, "dvc-pull")(repo, remote,
                                                         cfg.transfer.timeout_seconds)
        else:
            logger.warning("no DVC remote configured: nothing pulled, nothing will be pushed")
    baseline = head_commit(root)
    if baseline is None:
        raise ValueError(f"{root} has no commit: the champion is a committed state")
    record["champion_commit"] = baseline
    try:
        champion = champion_at(root, baseline, cfg.champion_model, cfg.metrics_file,
                               cfg.metric)
    except MetricUnreadable as exc:  # fail closed: no run against an unknown champion
        _reject(record, f"the champion's metric cannot be read: {exc}. Fix the file at "
                        "that commit (commit the fix) before retraining")
        return None, remote, history
    record["champion_committed"] = champion.metrics

    status = data_status(root, cfg.data_stages)
    record["data_changes"] = status.data_changes
    record["code_changes"] = status.code_changes
    record["missing_outputs"] = status.missing_outputs
    record["reasons"] = reasons_to_train(status, champion, overrides, force, cfg,
                                         pulled=not dry_run)
    if dry_run:
        record["decision"] = "dry-run"
        record["reason"] = ("would train: " + "; ".join(record["reasons"])
                            if record["reasons"] else "nothing to train")
        return None, remote, history
    if not record["reasons"]:
        record["decision"] = "skipped"
        record["reason"] = (
            "data unchanged since the champion's run (dvc status: no change in "
            f"{', '.join(cfg.data_stages)} or .dvc files) and no overrides: nothing to retrain"
            + (f"; code changes (not a reason to retrain): {status.code_changes}"
               if status.code_changes else "")
            + (f"; other changes ignored: {status.other_changes}"
               if status.other_changes else ""))
        logger.info(record["reason"])
        return None, remote, history
    return champion, remote, history


def _run(root: Path, cfg: Retraining, name: str, overrides: list[str], force: bool,
         dry_run: bool, record: dict) -> dict:
    """The steps of the flow; fills `record` in as it goes."""
    logger = get_run_logger()
    champion, remote, history = _prepare(root, cfg, overrides, force, dry_run, record)
    if champion is None:
        return record
    logger.info("retraining because: %s", "; ".join(record["reasons"]))
    scratch = scratch_dir(root, name)
    try:
        return _train_and_decide(root, cfg, name, overrides, force, champion, remote,
                                 history, scratch, record)
    finally:
        remove_scratch(root, scratch)


def _train_and_decide(root: Path, cfg: Retraining, name: str, overrides: list[str],
                      force: bool, champion: Champion, remote: str | None,
                      history: list[dict], scratch: Path, record: dict) -> dict:
    """Steps 5-8: fetch the champion's model, train, re-score, decide, promote."""
    logger = get_run_logger()
    repo = str(root)
    model_dir = scratch / "champion"
    unavailable = None  # why the champion cannot be re-scored (only with force)
    if champion.exists:
        try:
            _with_policy(fetch_champion, cfg.transfer, "fetch-champion-model")(
                repo, champion.commit, cfg.champion_model, str(model_dir), remote,
                cfg.transfer.timeout_seconds)
        except ChampionModelMissing as exc:
            if not force:
                return _reject(record, str(exc))
            unavailable = str(exc)

    record["experiment"] = name
    exp_commit = _with_policy(run_experiment, cfg.experiment, "dvc-exp-run")(
        repo, champion.commit, name, overrides, cfg.experiment.timeout_seconds)
    try:
        challenger = flatten(metrics_at(root, exp_commit, cfg.metrics_file) or {})
        record["challenger"] = challenger
        value = metric_value(challenger, cfg.metric,
                             f"{cfg.metrics_file} of experiment {name}")
        record["split"] = challenger_split(root, exp_commit, cfg.split_file, cfg.split_key)
    except MetricUnreadable as exc:
        return _reject(record, f"the challenger cannot be scored: {exc}")

    rescored = None
    if champion.exists and unavailable is None:
        try:
            metrics, split = _with_policy(rescore_champion, cfg.rescore, "rescore-champion")(
                repo, exp_commit, name, str(model_dir), cfg)
            if split != record["split"]:
                raise MetricUnreadable(f"the champion was re-scored on test split {split}, "
                                       f"the challenger on {record['split']}")
            record["champion_rescored"] = metrics  # only a score of this split
            rescored = metric_value(metrics, cfg.metric, "the champion re-scored")
        except Exception as exc:  # fail closed: no comparison, no promotion
            if not force:
                return _reject(record, "the champion could not be re-scored on the current "
                                       f"test split: {type(exc).__name__}: {exc}"[:2000])
            unavailable = f"{type(exc).__name__}: {exc}"[:2000]

    best = best_promoted(history, record["split"], cfg.metric)
    if rescored is not None and record["split"] is not None:
        best = rescored if best is None else max(best, rescored)
    record["floor"] = (None if best is None or cfg.floor_margin is None
                       else round(best - cfg.floor_margin, 10))
    decision = decide(value, rescored, record["floor"], cfg.metric, cfg.tolerance)
    record["reason"] = decision.reason
    if record["split"] is None and cfg.floor_margin is not None:
        record["reason"] += (f"; no floor: {cfg.split_file} of the experiment names no "
                             f"test split ({cfg.split_key})")
    if unavailable:
        record["reason"] = (f"forced without the champion's comparison ({unavailable}); "
                            + record["reason"])
    if not decision.promote:
        return _reject(record, record["reason"])
    moved = _moved_since(root, champion.commit)
    if moved:  # promoting now would undo or absorb what someone did during the run
        return _reject(record, f"not promoted although it qualified ({record['reason']}): "
                               f"{moved} while it trained; run again")

    message = (f"Promote retraining experiment {name}\n\n{record['reason']}\n"
               f"Triggered by: {'; '.join(record['reasons'])}\n"
               f"Overrides: {' '.join(overrides) or '(none)'}")
    promote_task = promote.with_options(name="promote", task_run_name="promote")
    record["commit"] = promote_task(repo, name, exp_commit, overrides, message, cfg)
    record["decision"] = "promoted"
    if remote:
        _with_policy(push, cfg.transfer, "dvc-push")(repo, remote, cfg.transfer.timeout_seconds)
        record["pushed_to"] = remote
    logger.info("challenger %s promoted as commit %s: %s", name, record["commit"],
                record["reason"])
    return record


@flow(name="clipreid-retraining")
def retrain(repo: str | None = None, overrides: list[str] | None = None, force: bool = False,
            config_path: str | None = None, dry_run: bool = False) -> dict:
    """Retrain the project at `repo` (default: the working directory) when its data
    changed or `overrides` (`key=value`, as `dvc exp run -S`) are given; promote or
    reject. `dry_run`: say what would happen, change and record nothing.

    Returns the run's history record; a failed run is recorded too, then re-raised. A run
    that finds another one running stops at once and records nothing.
    """
    root = Path(repo or Path.cwd()).resolve()
    cfg = load_settings(config_path).retraining
    overrides = list(overrides or [])
    now = datetime.now(timezone.utc)
    run_id = str(flow_run.id or "local")
    name = f"retrain-{now:%Y%m%d-%H%M%S}-{run_id[:6]}"  # unique: time and flow run
    record = {"time": now.isoformat(timespec="seconds"), "flow_run": run_id,
              "experiment": None, "overrides": overrides, "reasons": [],
              "champion_commit": None, "champion_committed": None,
              "champion_rescored": None, "challenger": None, "split": None,
              "floor": None, "commit": None}
    if dry_run:
        return _run(root, cfg, name, overrides, force, True, record)
    with run_lock(root, run_id) as stale:
        if stale:
            get_run_logger().warning("took over the lock of a retraining that died: %s",
                                     stale)
            record["took_over_lock"] = stale
        try:
            _run(root, cfg, name, overrides, force, False, record)
        except BaseException as exc:  # recorded, then re-raised: the flow run fails
            reason = f"{type(exc).__name__}: {exc}"[:2000]
            if record.get("decision") == "promoted":  # committed, but `dvc push` failed
                record["decision"] = "promoted-not-pushed"
                reason = (f"committed as {record['commit']} but the push failed; the next "
                          f"run pushes it first. {reason}")
            else:
                record["decision"] = "failed"
            record["reason"] = reason
            try:
                _finish(record, root, cfg)
            except Exception as error:  # keep the original error
                get_run_logger().error("could not record the failed run: %s", error)
            raise
        return _finish(record, root, cfg)


def dry_run_summary(record: dict) -> str:
    """What a dry run found, for the terminal."""
    committed = record.get("champion_committed")
    commit = (record.get("champion_commit") or "-")[:12]
    if committed:
        champion = f"commit {commit}, committed metrics {committed}"
    elif record["decision"] == "rejected":  # its metric cannot be read
        champion = f"commit {commit}: {record['reason']}"
    else:
        champion = f"none (commit {commit} has no model)"
    lines = [f"dry run: {record['reason']}",
             f"champion: {champion}",
             f"overrides: {' '.join(record['overrides']) or '(none)'}"]
    if record.get("dirty_files"):
        lines.append("uncommitted changes to tracked files (a real run stops on them): "
                     + ", ".join(record["dirty_files"]))
    if record.get("unpushed"):
        lines.append(f"promoted but not pushed (a real run pushes them first): "
                     f"{record['unpushed']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=None, help="project root (default: cwd)")
    parser.add_argument("-S", "--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="param override, as `dvc exp run -S`")
    parser.add_argument("--force", action="store_true",
                        help="retrain even if nothing changed; promote even when the "
                             "champion cannot be re-scored")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the reasons to train, the champion and the overrides; "
                             "train, change and record nothing")
    parser.add_argument("--config", default=None, help="orchestration config YAML")
    args = parser.parse_args(argv)
    state = retrain(repo=args.repo, overrides=args.overrides, force=args.force,
                    config_path=args.config, dry_run=args.dry_run, return_state=True)
    if state.is_completed():
        record = state.result()
        if args.dry_run:
            print(dry_run_summary(record))
        else:
            print(f"retraining: {record['decision']}: {record['reason']}")
        return 0
    print(f"retraining flow {state.name}: {state.message or ''}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
