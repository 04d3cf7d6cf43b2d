"""Fixtures of the orchestration tests: a private copy of a throwaway champion project per
test, a fault-injection folder, and one Prefect test harness (a temporary local API
server, offline) for the whole session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pipelines_testkit import FAULTS_ENV, build_champion

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture(scope="session")
def champion_template(tmp_path_factory) -> Path:
    return build_champion(tmp_path_factory.mktemp("template"))


@pytest.fixture
def champion(champion_template, tmp_path) -> Path:
    """A private copy of the champion project (repo and remote side by side)."""
    base = tmp_path / "project"
    shutil.copytree(champion_template.parent, base, symlinks=True)
    return base / "repo"


@pytest.fixture
def faults(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "faults"
    folder.mkdir()
    monkeypatch.setenv(FAULTS_ENV, str(folder))
    return folder


@pytest.fixture(scope="session")
def prefect_api():
    """One Prefect test harness (temporary SQLite API server) for every flow test."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=300):
        yield
