"""The champion re-scored on the challenger's test split, without touching the workspace.

1. `fetch_champion_model`: the champion's model files, as the champion commit's dvc.lock
   records them, from the DVC cache or the remote (`dvc get <repo> <path> --rev <commit>`),
   into a scratch folder. Done before the experiment trains, so a champion whose model is
   gone is known at once.
2. `rescore`: a scratch git worktree of the experiment's commit (its code, its params, its
   data as dvc.lock records them, checked out from the project's DVC cache) with the
   champion's model files in place of the challenger's; `dvc repro --single-item --force
   <stage>` runs the evaluation there. Its metrics file and its test split's identity are
   read back, and the worktree is removed.

The scratch folders live under the project's `.dvc/tmp/` (ignored by git and DVC, on the
cache's file system); a run that was killed leaves them behind, and the next run removes
them (`remove_scratch`), under the run lock.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from pipelines.champion import file_at, parse_json
from pipelines.commands import CommandError, query, stream
from pipelines.reporting import flatten

SCRATCH = Path(".dvc") / "tmp"
SCRATCH_PREFIX = "clipreid-rescore-"


class ChampionModelMissing(RuntimeError):
    """The champion's model is neither in the DVC cache nor on the remote."""


def scratch_dir(repo: Path, name: str) -> Path:
    return repo / SCRATCH / f"{SCRATCH_PREFIX}{name}"


def remove_worktree(repo: Path, tree: Path) -> None:
    """Remove the scratch git worktree `tree` and git's record of it."""
    if tree.exists():
        query(["git", "worktree", "remove", "--force", str(tree)], repo, check=False)
        shutil.rmtree(tree, ignore_errors=True)
    query(["git", "worktree", "prune"], repo, check=False)


def remove_scratch(repo: Path, folder: Path | None = None) -> list[str]:
    """Remove `folder` (default: every rescoring scratch folder) and its git worktree;
    returns what was removed."""
    folders = [folder] if folder else sorted((repo / SCRATCH).glob(f"{SCRATCH_PREFIX}*"))
    removed = []
    for path in folders:
        if not path.exists():
            continue
        remove_worktree(repo, path / "tree")
        shutil.rmtree(path, ignore_errors=True)
        removed.append(str(path))
    query(["git", "worktree", "prune"], repo, check=False)
    return removed


# What `dvc get` says when the file is in neither the cache nor the remote.
MISSING_MARKERS = ("no storage files available", "missing cache files", "not in cache")


def fetch_champion_model(repo: Path, commit: str, files: tuple[str, ...], dest: Path,
                         remote: str | None, timeout: float | None) -> None:
    """`dvc get` each of the champion's model `files` at `commit` into `dest`, from the
    DVC cache or `remote` (None: the project's default remote). A file found nowhere
    raises ChampionModelMissing; any other failure (network, credentials) CommandError."""
    for path in files:
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        args = ["dvc", "get", str(repo), path, "--rev", commit, "-o", str(target), "--force"]
        if remote:
            args += ["--remote", remote]
        result = query(args, repo, timeout=timeout, check=False)
        if result.returncode == 0:
            continue
        output = (result.stderr or result.stdout).strip()
        if not any(marker in output.lower() for marker in MISSING_MARKERS):
            raise CommandError(args, result.returncode, output)
        detail = output.splitlines()
        raise ChampionModelMissing(
            f"the champion's {path} (commit {commit[:12]}) is in neither the DVC cache "
            f"nor the remote ({detail[0] if detail else 'dvc get failed'}); restore it "
            "(`dvc push` from a machine that has it, or `dvc repro` of that commit, which "
            "re-creates it), or retrain with --force (force=True) to promote without "
            "comparing with the champion")


def split_of(text: str | None, path: str, key: str, where: str) -> str | None:
    """The test split's identity: `key` of the JSON file `path` (None when absent)."""
    if text is None:
        return None
    value = flatten(parse_json(text, path, where)).get(key)
    return None if value is None else str(value)


def rescore(repo: Path, exp_commit: str, exp_name: str, model_dir: Path, stage: str,
            metrics_file: str, split_file: str, split_key: str,
            log: Callable[[str], object], timeout: float | None) -> tuple[dict, str | None]:
    """Evaluate the champion's model (the files under `model_dir`) with the experiment's
    code, params and data; returns its flat metrics and the test split's identity."""
    scratch = model_dir.parent
    tree = scratch / "tree"
    try:
        # No hooks of the user's (nor DVC's post-checkout hook) in the scratch tree.
        query(["git", "-c", "core.hooksPath=/dev/null", "worktree", "add", "--detach", "-q",
               str(tree), exp_commit], repo)
        cache = query(["dvc", "cache", "dir"], repo).stdout.strip()
        query(["dvc", "config", "--local", "cache.dir", cache], tree)
        stream(["dvc", "checkout", "--with-deps", stage], tree, log, timeout=timeout)
        for source in sorted(p for p in model_dir.rglob("*") if p.is_file()):
            target = tree / source.relative_to(model_dir)
            target.unlink(missing_ok=True)  # never write through a link into the cache
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        for path in (metrics_file, split_file):  # git-tracked: the challenger's, until
            (tree / path).unlink(missing_ok=True)  # the evaluation writes the champion's
        # The worktree's params.yaml is the experiment's own, composed by `dvc exp run`
        # from conf/ and its -S overrides: DVC_EXP_NAME tells the stage so, as DVC does.
        stream(["dvc", "repro", "--single-item", "--force", stage], tree, log,
               timeout=timeout, env={"DVC_EXP_NAME": exp_name})
        where = f"of the champion re-scored in {tree}"
        metrics_path = tree / metrics_file
        if not metrics_path.is_file():
            raise CommandError(["dvc", "repro", stage], 0, f"{metrics_file} {where} is missing")
        metrics = flatten(parse_json(metrics_path.read_text(), metrics_file, where))
        split_path = tree / split_file
        split = split_of(split_path.read_text() if split_path.is_file() else None,
                         split_file, split_key, where)
        return metrics, split
    finally:  # the champion's files stay in `model_dir` for a retry of this task
        remove_worktree(repo, tree)


def challenger_split(repo: Path, exp_commit: str, split_file: str, key: str) -> str | None:
    """The experiment's test split identity, as its commit records it."""
    return split_of(file_at(repo, exp_commit, split_file), split_file, key,
                    f"at experiment commit {exp_commit[:12]}")
