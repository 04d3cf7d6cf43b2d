"""The retraining flow as a scheduled deployment: served by Prefect's own `serve`, or
registered on a process work pool for a worker (pipelines/prefect.yaml).

The schedule comes from pipelines/config.yaml: `retraining.cron` in `retraining.timezone`
(weekly by default), or, when `retraining.interval_seconds` is set, a run every that many
seconds. `serve` registers the deployment with the Prefect API in use and runs each
scheduled run in a subprocess of this process; it blocks until interrupted. Schedules
need a Prefect server (`prefect server start`, or the team's server via PREFECT_API_URL):
the temporary server Prefect starts when none is configured does not schedule runs.

    python -m pipelines.serve [--repo PATH] [--config FILE]

`deployment_values` is the build step of pipelines/prefect.yaml: it hands `prefect deploy`
the name, parameters, schedule and code folder of the same deployment.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import timedelta
from pathlib import Path

from prefect import serve
from prefect.client.schemas.schedules import CronSchedule
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.schedules import Cron, Interval, Schedule

from pipelines.retrain import retrain
from pipelines.settings import Retraining, load_settings

# The folder that holds the `pipelines` package: where a worker imports the flow from.
CODE_ROOT = Path(__file__).resolve().parents[1]


def schedule_of(cfg: Retraining) -> Schedule:
    """The deployment's schedule: every `interval_seconds` when set, else `cron` in
    `timezone`."""
    if cfg.interval_seconds is not None:
        return Interval(timedelta(seconds=cfg.interval_seconds), timezone=cfg.timezone)
    return Cron(cfg.cron, timezone=cfg.timezone)


def build_deployment(repo: str | Path, config_path: str | None = None) -> RunnerDeployment:
    """The retraining deployment: schedule from the config, one run at a time, the
    flow's `repo` and `config_path` parameters fixed to absolute paths."""
    cfg = load_settings(config_path).retraining
    return retrain.to_deployment(
        name=cfg.deployment_name,
        schedules=[schedule_of(cfg)],
        parameters={"repo": str(Path(repo).resolve()),
                    "config_path": str(Path(config_path).resolve()) if config_path else None},
        concurrency_limit=1,
        description="Retrain clipreid when its data changed; promote only a model that is "
                    "not worse than the champion.",
        tags=["clipreid", "retraining"],
        # `pipelines.retrain.retrain`, imported by module name from the project root.
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def deployment_values(repo: str = "", config: str = "") -> dict:
    """Build step of pipelines/prefect.yaml (`prefect deploy`): the deployment
    `build_deployment` makes, as values the file templates in (`{{ retraining.<key> }}`).

    `repo` and `config` default to the working directory and pipelines/config.yaml (the
    file passes $CLIPREID_REPO and $CLIPREID_CONFIG, empty when unset). `directory` is
    the folder holding `pipelines/`, where the worker runs the flow.

    prefect.yaml validates a schedule's kind (cron, interval) before any step runs, so the
    file can take a cron schedule's values from here but not switch to an interval: an
    interval_seconds config is refused rather than registered with a different schedule.
    """
    config_path = config or None
    deployment = build_deployment(repo or os.getcwd(), config_path)
    (schedule,) = deployment.schedules
    if not isinstance(schedule.schedule, CronSchedule):
        raise ValueError(
            f"retraining.interval_seconds is set in {config_path or 'pipelines/config.yaml'}:"
            " pipelines/prefect.yaml can register cron schedules only (prefect deploy fixes"
            " a schedule's kind before its build step runs). Serve it instead (python -m "
            "pipelines.serve), or set interval_seconds: null to use retraining.cron.")
    return {
        "name": deployment.name,
        "description": deployment.description,
        "tags": list(deployment.tags),
        "repo": deployment.parameters["repo"],
        "config_path": deployment.parameters["config_path"],
        "cron": schedule.schedule.cron,
        "timezone": schedule.schedule.timezone,
        "directory": str(CODE_ROOT),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=".", help="project root (default: cwd)")
    parser.add_argument("--config", default=None, help="orchestration config YAML")
    args = parser.parse_args(argv)
    deployment = build_deployment(args.repo, args.config)
    serve(deployment, limit=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
