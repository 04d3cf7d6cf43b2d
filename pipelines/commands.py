"""The one place in `pipelines/` that starts processes: DVC, git and `clipreid` only.

Two ways to run a command:
- `query`: short commands whose stdout is read (`dvc status --json`, `git show ...`);
- `stream`: long commands (stages, experiments, transfers) whose merged stdout/stderr is
  forwarded line by line to a logger (Prefect's run logger in the flows).

Both enforce a time limit by killing the command's whole process group (DVC and the stage
command it started): a Prefect task timeout alone cannot stop a child process.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ALLOWED_TOOLS = frozenset({"dvc", "git", "clipreid"})
KILL_GRACE_SECONDS = 10


class CommandError(RuntimeError):
    """A command failed (non-zero exit) or could not be started."""

    def __init__(self, argv: Sequence[str], returncode: int | None, output: str):
        self.argv = list(argv)
        self.returncode = returncode
        self.output = output
        tail = "\n".join(output.strip().splitlines()[-20:])
        super().__init__(f"`{' '.join(self.argv)}` exited with {returncode}:\n{tail}")


class CommandTimeout(CommandError):
    """A command ran past its time limit and was killed."""

    def __init__(self, argv: Sequence[str], timeout: float, output: str):
        super().__init__(argv, None, output)
        self.args = (f"`{' '.join(self.argv)}` ran past its time limit of {timeout} s "
                     "and was killed",)


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str = ""


def tool_env() -> dict[str, str]:
    """The environment of every command: this interpreter's bin folder (the venv, with
    dvc and clipreid, also for DVC's stage commands) first on PATH, no telemetry,
    unbuffered Python output (live logs), no interactive git prompts."""
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{path}" if path else bin_dir,
            "DVC_NO_ANALYTICS": "1", "PYTHONUNBUFFERED": "1", "GIT_TERMINAL_PROMPT": "0"}


def _argv(args: Sequence[str], env: dict[str, str]) -> list[str]:
    """Check the tool against the allow-list and resolve it on the command's PATH."""
    args = [str(a) for a in args]
    if not args or args[0] not in ALLOWED_TOOLS:
        raise ValueError(f"pipelines/ runs only {sorted(ALLOWED_TOOLS)}, not {args[:1]}")
    exe = shutil.which(args[0], path=env["PATH"])
    if exe is None:
        raise CommandError(args, None, f"{args[0]} is not on PATH ({env['PATH']})")
    return [exe, *args[1:]]


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, then SIGKILL what is left after a grace period."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=KILL_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:  # the leader is gone; stragglers get SIGKILL too
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return


def query(args: Sequence[str], cwd: str | Path, *, timeout: float | None = 600,
          check: bool = True, env: dict[str, str] | None = None) -> Result:
    """Run a short command and return its output (stdout and stderr kept apart); `env`
    adds variables to :func:`tool_env`."""
    env = {**tool_env(), **(env or {})}
    argv = _argv(args, env)
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace",
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        stdout, stderr = proc.communicate()
        raise CommandTimeout(args, timeout, stdout + stderr) from None
    except BaseException:
        _kill_group(proc)
        raise
    if check and proc.returncode != 0:
        raise CommandError(args, proc.returncode, stderr or stdout)
    return Result(proc.returncode, stdout, stderr)


def stream(args: Sequence[str], cwd: str | Path, log: Callable[[str], object], *,
           timeout: float | None = None, check: bool = True,
           env: dict[str, str] | None = None) -> Result:
    """Run a long command, passing each output line to `log` as it is printed; `env` adds
    variables to :func:`tool_env`."""
    env = {**tool_env(), **(env or {})}
    argv = _argv(args, env)
    log(f"$ {' '.join(str(a) for a in args)}")
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace",
                            bufsize=1, start_new_session=True)
    expired = threading.Event()

    def expire():
        if proc.poll() is None:  # still running at the deadline
            expired.set()
            _kill_group(proc)

    timer = threading.Timer(timeout, expire) if timeout else None
    tail: deque[str] = deque(maxlen=200)
    try:
        if timer:
            timer.start()
        for line in proc.stdout:
            line = line.rstrip("\r\n")
            tail.append(line)
            log(line)
        proc.wait()
    except BaseException:  # interrupted or cancelled: leave no process behind
        _kill_group(proc)
        raise
    finally:
        if timer:
            timer.cancel()
        proc.stdout.close()
    output = "\n".join(tail)
    if expired.is_set():
        raise CommandTimeout(args, timeout, output)
    if check and proc.returncode != 0:
        raise CommandError(args, proc.returncode, output)
    return Result(proc.returncode, output)
