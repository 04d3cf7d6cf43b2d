"""Fixtures of the validation tests: run the validation on a data set written in tmp_path.

The Great Expectations import (~3 s) happens once per session (the first run); each run
makes its own small file context in a temporary folder."""

from __future__ import annotations

import json

import pytest

from clipreid.validation import run_validation


@pytest.fixture
def validate(tmp_path):
    """``validate(dataset, validation_cfg=None, docs=False)`` -> (outcome, report dict)."""

    def run(dataset, validation_cfg=None, docs=False):
        reports = tmp_path / "reports"
        outcome = run_validation(
            dataset.manifest_path,
            dataset.dataset_cfg,
            validation_cfg or {},
            reports / "validation.json",
            reports / "data_docs" if docs else None,
        )
        report = json.loads((reports / "validation.json").read_text())
        return outcome, report

    return run
