"""The scheduled deployment of the retraining flow carries the configured cron schedule."""

from __future__ import annotations

import pytest
import yaml

from pipelines.serve import build_deployment
from pipelines_testkit import write_config


def test_deployment_has_the_shipped_weekly_schedule(tmp_path):
    deployment = build_deployment(tmp_path)
    (schedule,) = deployment.schedules
    assert schedule.schedule.cron == "0 3 * * 1"
    assert schedule.schedule.timezone == "UTC"
    assert schedule.active
    assert deployment.name == "scheduled-retraining"
    assert deployment.entrypoint == "pipelines.retrain.retrain"
    assert deployment.parameters == {"repo": str(tmp_path.resolve()), "config_path": None}


@pytest.mark.usefixtures("prefect_api")
def test_configured_schedule_is_registered_with_the_server(tmp_path):
    from prefect.client.orchestration import get_client

    config = write_config(tmp_path / "c.yaml", retraining={
        "cron": "30 1 * * *", "timezone": "Europe/Paris", "deployment_name": "nightly"})
    assert yaml.safe_load(config.read_text())["retraining"]["cron"] == "30 1 * * *"
    deployment = build_deployment(tmp_path, str(config))
    deployment_id = deployment.apply()

    with get_client(sync_client=True) as client:
        stored = client.read_deployment(deployment_id)
    assert stored.name == "nightly"
    (schedule,) = stored.schedules
    assert schedule.schedule.cron == "30 1 * * *"
    assert schedule.schedule.timezone == "Europe/Paris"
    assert stored.parameters["config_path"] == str(config.resolve())
    assert stored.global_concurrency_limit.limit == 1  # one retraining at a time
