"""The pipeline flow: every DVC stage, in graph order, as one Prefect task.

Each task runs `dvc repro -s <stage>` (that stage only; DVC skips it when nothing it
depends on changed) with the retries, retry delay and time limit that
pipelines/config.yaml gives the stage. The stage's output goes to Prefect's logger; a
stage that still fails after its retries fails the flow and no later stage runs. At the
end the metrics DVC knows of are published as a markdown artifact.

    python -m pipelines.run_pipeline [--repo PATH] [--config pipelines/config.yaml]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from pipelines.commands import stream
from pipelines.graph import stage_order
from pipelines.reporting import metrics_markdown, workspace_metrics
from pipelines.settings import load_settings

METRICS_ARTIFACT = "clipreid-pipeline-metrics"


@task(cache_policy=NO_CACHE)
def run_stage(repo: str, stage: str, timeout_seconds: float | None) -> None:
    """`dvc repro -s <stage>` in `repo`, its output forwarded line by line."""
    logger = get_run_logger()
    stream(["dvc", "repro", "--single-item", stage], repo,
           lambda line: logger.info("[%s] %s", stage, line), timeout=timeout_seconds)


def run_stages(repo: str, settings) -> list[str]:
    """Run every stage DVC lists, upstream first, each with its own retries, retry delay
    and time limit; the first stage that still fails after its retries stops the run."""
    logger = get_run_logger()
    stages = stage_order(repo)
    logger.info("DVC stages in graph order: %s", ", ".join(stages))
    for stage in stages:
        policy = settings.stage_policy(stage)
        run = run_stage.with_options(name=f"stage-{stage}", task_run_name=stage,
                                     retries=policy.retries,
                                     retry_delay_seconds=policy.retry_delay_seconds)
        run(repo, stage, policy.timeout_seconds)
    return stages


@flow(name="clipreid-pipeline")
def pipeline(repo: str | None = None, config_path: str | None = None) -> dict:
    """Run the DVC pipeline of `repo` (default: the working directory) stage by stage and
    return its metrics ({metrics file: {metric: value}})."""
    root = str(Path(repo or Path.cwd()).resolve())
    settings = load_settings(config_path)
    run_stages(root, settings)
    metrics = workspace_metrics(root)
    create_markdown_artifact(markdown=metrics_markdown(metrics, "Pipeline metrics"),
                             key=METRICS_ARTIFACT,
                             description=f"dvc metrics show after the pipeline in {root}")
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=None, help="project root (default: cwd)")
    parser.add_argument("--config", default=None, help="orchestration config YAML")
    args = parser.parse_args(argv)
    state = pipeline(repo=args.repo, config_path=args.config, return_state=True)
    if state.is_completed():
        print(metrics_markdown(state.result(), "Pipeline metrics"))
        return 0
    print(f"pipeline flow {state.name}: {state.message or ''}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
