"""The scheduled deployment of the retraining flow carries the configured schedule: cron in
a time zone, or an interval when `retraining.interval_seconds` is set."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml

from pipelines.serve import CODE_ROOT, build_deployment, deployment_values, schedule_of
from pipelines.settings import load_settings
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


def test_interval_seconds_replaces_the_cron_schedule(tmp_path):
    config = write_config(tmp_path / "c.yaml", retraining={
        "interval_seconds": 90, "cron": "30 1 * * *", "timezone": "Europe/Paris"})
    assert schedule_of(load_settings(config).retraining).interval == timedelta(seconds=90)

    (schedule,) = build_deployment(tmp_path, str(config)).schedules
    assert schedule.schedule.interval == timedelta(seconds=90)
    assert not hasattr(schedule.schedule, "cron")
    assert schedule.active


def test_cron_when_interval_seconds_is_null(tmp_path):
    config = write_config(tmp_path / "c.yaml", retraining={
        "interval_seconds": None, "cron": "30 1 * * *", "timezone": "Europe/Paris"})
    schedule = schedule_of(load_settings(config).retraining)
    assert (schedule.cron, schedule.timezone, schedule.interval) == (
        "30 1 * * *", "Europe/Paris", None)
    (registered,) = build_deployment(tmp_path, str(config)).schedules
    assert registered.schedule.cron == "30 1 * * *"


def test_prefect_yaml_build_step_gives_the_same_deployment(tmp_path, monkeypatch):
    """What pipelines/prefect.yaml templates in comes from build_deployment."""
    config = write_config(tmp_path / "c.yaml", retraining={
        "cron": "30 1 * * *", "timezone": "Europe/Paris", "deployment_name": "nightly"})
    values = deployment_values(str(tmp_path), str(config))
    assert values == {
        "name": "nightly", "description": build_deployment(tmp_path).description,
        "tags": ["clipreid", "retraining"], "repo": str(tmp_path.resolve()),
        "config_path": str(config.resolve()), "cron": "30 1 * * *",
        "timezone": "Europe/Paris", "directory": str(CODE_ROOT)}
    assert (CODE_ROOT / "pipelines" / "retrain.py").is_file()

    monkeypatch.chdir(tmp_path)  # $CLIPREID_REPO, $CLIPREID_CONFIG unset: "" each
    values = deployment_values("", "")
    assert (values["repo"], values["config_path"]) == (str(tmp_path.resolve()), None)
    assert (values["name"], values["cron"]) == ("scheduled-retraining", "0 3 * * 1")


def test_prefect_yaml_build_step_refuses_an_interval(tmp_path):
    """prefect.yaml fixes a cron schedule: an interval config is not silently turned
    into a different schedule."""
    config = write_config(tmp_path / "c.yaml", retraining={"interval_seconds": 30})
    with pytest.raises(ValueError, match="interval_seconds"):
        deployment_values(str(tmp_path), str(config))
