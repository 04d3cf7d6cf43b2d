"""One retraining at a time, on a clean tree.

`run_lock` holds an exclusive `flock` on a file in the repository's git folder for the
whole run: a second run of the same repository (another scheduled run, a manual one)
fails at once, naming the holder. The kernel releases the lock when its process dies, so
a run that was killed leaves no lock to clear: its note stays in the file, and the next
run takes over and says so.

`dirty_files` lists tracked files with uncommitted changes, which would silently go into
the experiment (`dvc exp run` copies the workspace) and into a promotion commit.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from pipelines.commands import query

LOCK_FILE = "clipreid-retraining.lock"


class RetrainingBusy(RuntimeError):
    """Another retraining of the same repository is running."""


class DirtyTree(RuntimeError):
    """Tracked files have uncommitted changes."""


class NotARepository(RuntimeError):
    """The folder given as the project is no git checkout."""


def lock_path(repo: str | Path) -> Path:
    """The lock file: in the repository's (common) git folder, shared by its worktrees."""
    result = query(["git", "rev-parse", "--git-common-dir"], repo, check=False)
    if result.returncode != 0:
        raise NotARepository(f"{Path(repo).resolve()} is not a git checkout of the project "
                             "(the retraining flow commits its promotions there): pass the "
                             "project root with --repo")
    return (Path(repo) / result.stdout.strip()).resolve() / LOCK_FILE


@contextmanager
def run_lock(repo: str | Path, flow_run: str) -> Iterator[dict | None]:
    """Hold the repository's retraining lock; yields the note of a dead run whose lock
    this run took over (None when the lock was free and clean)."""
    path = lock_path(repo)
    handle = open(path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "(no note)"
            raise RetrainingBusy(
                f"another retraining of {Path(repo).resolve()} is running ({holder}); this "
                f"run stops. The lock is {path}: it is released when that run ends or its "
                "process dies") from None
        handle.seek(0)
        note = handle.read().strip()
        stale = _parse(note) if note else None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "flow_run": flow_run,
                                 "since": datetime.now(timezone.utc).isoformat(
                                     timespec="seconds")}))
        handle.flush()
        try:
            yield stale
        finally:  # a clean end leaves an empty file: a note means the holder died
            handle.seek(0)
            handle.truncate()
            handle.flush()
    finally:
        handle.close()  # releases the flock


def _parse(note: str) -> dict:
    try:
        value = json.loads(note)
    except json.JSONDecodeError:
        return {"note": note}
    return value if isinstance(value, dict) else {"note": note}


def dirty_files(repo: str | Path) -> list[str]:
    """Tracked files whose content differs from HEAD (staged or not)."""
    out = query(["git", "status", "--porcelain", "-z", "--untracked-files=no"], repo).stdout
    entries = [entry for entry in out.split("\0") if entry]
    files, skip = [], False
    for entry in entries:
        if skip:  # the source path of a rename
            skip = False
            continue
        files.append(entry[3:])
        skip = entry[0] in "RC"
    return files
