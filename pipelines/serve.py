"""The retraining flow as a scheduled deployment, served by Prefect's own `serve`.

The schedule (cron and timezone) comes from pipelines/config.yaml (`retraining.cron`,
weekly by default). `serve` registers the deployment with the Prefect API in use and
runs each scheduled run in a subprocess of this process; it blocks until interrupted.
Schedules need a Prefect server (`prefect server start`, or the team's server via
PREFECT_API_URL): the temporary server Prefect starts when none is configured does not
schedule runs.

    python -m pipelines.serve [--repo PATH] [--config FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from prefect import serve
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.schedules import Cron

from pipelines.retrain import retrain
from pipelines.settings import load_settings


def build_deployment(repo: str | Path, config_path: str | None = None) -> RunnerDeployment:
    """The retraining deployment: cron schedule from the config, one run at a time, the
    flow's `repo` and `config_path` parameters fixed to absolute paths."""
    cfg = load_settings(config_path).retraining
    return retrain.to_deployment(
        name=cfg.deployment_name,
        schedules=[Cron(cfg.cron, timezone=cfg.timezone)],
        parameters={"repo": str(Path(repo).resolve()),
                    "config_path": str(Path(config_path).resolve()) if config_path else None},
        concurrency_limit=1,
        description="Retrain clipreid when its data changed; promote only a model that is "
                    "not worse than the champion.",
        tags=["clipreid", "retraining"],
        # `pipelines.retrain.retrain`, imported by module name from the project root.
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


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
