"""Data validation (the `validate` stage): Great Expectations suites over the manifest.

Public API::

    from clipreid.validation import run_validation, ValidationOutcome
    outcome = run_validation(manifest_path, dataset_cfg, validation_cfg, report_path, docs_dir)
    print(outcome.summary()); sys.exit(0 if outcome.ok else 1)

Modules: ``checks`` (the rule catalogue), ``settings`` (params), ``images`` (file
inspection), ``frames`` (manifest and derived tables), ``suites`` (the expectations),
``engine`` (Great Expectations context, checkpoints, Data Docs), ``datadocs`` (offline
rewriting of the Data Docs site), ``report`` (outcome and JSON), ``runner`` (the stage).

Importing this package is cheap: ``run_validation`` and the outcome classes load on first
use, so worker processes that only inspect images do not import pandas or Great
Expectations.
"""

from __future__ import annotations

__all__ = ["run_validation", "ValidationOutcome", "ExpectationOutcome"]


def __getattr__(name: str):
    if name == "run_validation":
        from clipreid.validation.runner import run_validation

        return run_validation
    if name in ("ValidationOutcome", "ExpectationOutcome"):
        from clipreid.validation import report

        return getattr(report, name)
    raise AttributeError(f"module 'clipreid.validation' has no attribute {name!r}")
