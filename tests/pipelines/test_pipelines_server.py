"""The scheduled deployment against a real `prefect server start` (not the test harness).

One test, in order: a private server (SQLite under a temporary PREFECT_HOME, scheduler
loop of 2 s) -> `python -m pipelines.serve` with an interval schedule -> the server's
scheduler creates a run, the served process executes it, the throwaway project's history
records it -> `prefect deployment run` from another process, executed too -> the process
work pool route: `prefect work-pool create`, `prefect deploy --prefect-file
pipelines/prefect.yaml`, the deployment read back, and a run executed by `prefect worker
start --run-once`. Every process started here is stopped at the end (process groups and
their descendants). Waits poll until the awaited thing happens, or fail as soon as a
process it depends on has exited (with that process's log); no wait has a time limit.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from uuid import UUID

import psutil
import pytest

from pipelines.commands import tool_env
from pipelines.serve import schedule_of
from pipelines.settings import load_settings
from pipelines_testkit import ROOT, history, write_config

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
FLOW = "clipreid-retraining"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processes:
    """Processes started by the test, each in its own session, output to a log file."""

    def __init__(self, logs: Path, env: dict[str, str]):
        self.logs = logs
        self.env = env
        self.started: dict[str, subprocess.Popen] = {}
        logs.mkdir()

    def start(self, name: str, args: list, **env) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "w")
        proc = subprocess.Popen([str(a) for a in args], cwd=ROOT, env={**self.env, **env},
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.started[name] = proc
        return proc

    def run(self, name: str, args: list, check: bool = True, **env) -> str:
        """Run a command to its end; its output, or (check) a failure with it."""
        proc = subprocess.run([str(a) for a in args], cwd=ROOT, env={**self.env, **env},
                              capture_output=True, text=True)
        (self.logs / f"{name}.log").write_text(proc.stdout + proc.stderr)
        assert (proc.returncode == 0) == check, (
            f"{args} exited with {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout + proc.stderr

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text()[-4000:] if path.exists() else ""

    def stop(self, name: str) -> None:
        """SIGTERM the process's group and every descendant (flow runs start their own
        sessions), SIGKILL what is left after a grace period."""
        proc = self.started.pop(name, None)
        if proc is None:
            return
        try:
            family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(True)]
        except psutil.NoSuchProcess:
            family = []
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            for member in family:
                try:
                    member.send_signal(sig)
                except psutil.NoSuchProcess:
                    pass
            _, alive = psutil.wait_procs(family, timeout=15)
            if not alive:
                break
        proc.poll()

    def stop_all(self) -> None:
        for name in reversed(list(self.started)):
            self.stop(name)


def _wait(what: str, probe, procs: Processes, *needed: str):
    """Poll `probe` until it returns something truthy. The processes named in `needed`
    make it happen: when one of them has exited and the probe still fails, it never
    will, and the test fails with their logs. No time limit: a slow machine only waits
    longer."""
    while True:
        ended = [name for name in needed if procs.started[name].poll() is not None]
        value = probe()  # after the check: a process may end right after doing its work
        if value:
            return value
        if ended:
            raise AssertionError(
                f"{', '.join(ended)} exited while waiting for {what}\n"
                + "\n".join(f"--- {name}:\n{procs.log(name)}" for name in needed))
        time.sleep(1)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _deployment(name: str):
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            return client.read_deployment_by_name(f"{FLOW}/{name}")
        except ObjectNotFound:
            return None


def _final_runs(deployment_id: UUID) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]),
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=sorted(FINAL)))))


def _final_run(run_id: UUID):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
    return run if run.state and run.state.type.value in FINAL else None


def _triggered_run(output: str) -> UUID:
    """The flow run id `prefect deployment run` prints."""
    found = re.search(r"UUID:\s*([0-9a-f-]{36})", output)
    assert found, output
    return UUID(found.group(1))


def _history(repo: Path) -> dict[str, dict]:
    """The project's history lines, by flow run id."""
    return {record["flow_run"]: record for record in history(repo)}


def _assert_completed_and_recorded(run, repo: Path, procs: Processes, *logs: str) -> None:
    assert run.state.type.value == "COMPLETED", (
        f"{run.name}: {run.state.type.value} {run.state.message}\n"
        + "\n".join(f"--- {name}:\n{procs.log(name)}" for name in logs))
    record = _history(repo).get(str(run.id))
    assert record is not None, f"no history line for {run.id}: {_history(repo)}"
    assert record["decision"] == "skipped", record  # the data did not change


@pytest.fixture
def processes(tmp_path):
    home = tmp_path / "prefect-home"
    home.mkdir()
    base = {key: value for key, value in tool_env().items()
            if not key.startswith("PREFECT_")}  # no profile, API or key of the caller's
    procs = Processes(tmp_path / "logs", {
        **base, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1", "DVC_NO_ANALYTICS": "1", "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
        "PREFECT_RUNNER_POLL_FREQUENCY": "2", "PREFECT_WORKER_QUERY_SECONDS": "2",
    })
    try:
        yield procs
    finally:
        procs.stop_all()


def test_server_schedules_serves_and_a_worker_runs_the_deployment(champion, tmp_path,
                                                                   processes):
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    processes.env["PREFECT_API_URL"] = url
    processes.start("server", ["prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", port, "--no-ui"])
    _wait("the server's health endpoint", lambda: _healthy(url), processes, "server")

    with temporary_settings({PREFECT_API_URL: url}):  # this test's server, not the harness
        # 1. Served, on an interval schedule: the server's scheduler creates the run.
        served = write_config(tmp_path / "served.yaml", retraining={
            "deployment_name": "served-retraining", "interval_seconds": 10})
        processes.start("serve", [sys.executable, "-m", "pipelines.serve",
                                  "--repo", champion, "--config", served])
        deployment = _wait("the served deployment", lambda: _deployment("served-retraining"),
                           processes, "serve")
        (schedule,) = deployment.schedules
        assert isinstance(schedule.schedule, IntervalSchedule)
        assert schedule.schedule.interval.total_seconds() == 10
        scheduled = _wait(
            "a scheduled run to finish",
            lambda: [run for run in _final_runs(deployment.id) if run.auto_scheduled],
            processes, "serve", "server")[0]
        _assert_completed_and_recorded(scheduled, champion, processes, "serve")

        # 2. A run now, from another process. The schedule is paused first (which drops
        # its pending runs), so the manual run does not queue behind a backlog.
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            client.pause_deployment(deployment.id)
        output = processes.run("deployment-run", [
            "prefect", "deployment", "run", f"{FLOW}/served-retraining"])
        manual = _wait("the triggered run to finish",
                       lambda: _final_run(_triggered_run(output)), processes, "serve")
        assert not manual.auto_scheduled
        _assert_completed_and_recorded(manual, champion, processes, "serve")
        processes.stop("serve")

        # 3. The process work pool route: prefect.yaml, for this project and config.
        pooled = write_config(tmp_path / "pooled.yaml", retraining={
            "deployment_name": "pooled-retraining", "cron": "30 1 * * *",
            "timezone": "Europe/Paris"})
        processes.run("pool", ["prefect", "work-pool", "create", "test-pool",
                               "--type", "process"])
        deploy = ["prefect", "--no-prompt", "deploy", "--prefect-file",
                  "pipelines/prefect.yaml", "--pool", "test-pool"]
        # An interval config is refused (prefect.yaml fixes a cron schedule), not deployed
        # with a schedule other than the config's.
        refused = processes.run("deploy-interval", deploy, check=False,
                                CLIPREID_REPO=str(champion), CLIPREID_CONFIG=str(served))
        assert "interval_seconds" in refused
        processes.run("deploy", deploy, CLIPREID_REPO=str(champion),
                      CLIPREID_CONFIG=str(pooled))
        stored = _deployment("pooled-retraining")
        assert stored is not None
        assert stored.work_pool_name == "test-pool"
        assert stored.entrypoint == "pipelines.retrain.retrain"
        assert stored.parameters == {"repo": str(champion.resolve()),
                                     "config_path": str(pooled.resolve())}
        expected = schedule_of(load_settings(pooled).retraining)
        (schedule,) = stored.schedules
        assert isinstance(schedule.schedule, CronSchedule)
        assert (schedule.schedule.cron, schedule.schedule.timezone) == (
            expected.cron, expected.timezone) == ("30 1 * * *", "Europe/Paris")
        assert schedule.active
        assert stored.pull_steps == [{"prefect.deployments.steps.set_working_directory": {
            "directory": str(ROOT)}}]
        assert stored.global_concurrency_limit.limit == 1

        # 4. A worker of that pool runs a triggered run in this checkout.
        output = processes.run("pool-run", [
            "prefect", "deployment", "run", f"{FLOW}/pooled-retraining"])
        processes.start("worker", ["prefect", "worker", "start", "--pool", "test-pool",
                                   "--run-once"])
        pooled_run = _wait("the worker's run to finish",
                           lambda: _final_run(_triggered_run(output)), processes, "worker")
        _assert_completed_and_recorded(pooled_run, champion, processes, "worker")
