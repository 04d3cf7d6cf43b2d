"""The `validate` stage: manifest + images in, report JSON and Data Docs out.

:func:`run_validation` reads no config file: the caller passes the ``dataset`` and
``validation`` params as mappings. Image paths are opened as the manifest writes them
(relative to the working directory when relative).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

from clipreid.config.schema import DatasetConfig, ValidationConfig, coerce
from clipreid.io import write_json
from clipreid.validation import frames as fr
from clipreid.validation.checks import CHECKS, ERROR
from clipreid.validation.images import inspect_images
from clipreid.validation.report import (
    SKIPPED,
    ExpectationOutcome,
    ValidationOutcome,
    outcome_from_result,
)
from clipreid.validation.settings import load_settings

log = logging.getLogger(__name__)


def _image_stats(info) -> dict:
    """Counts of the image inspection for the report: missing, undecodable, modes (no
    timings: the report is a DVC output and must not change from run to run)."""
    decoded = info[info["decodes"] == True]  # noqa: E712 (object column)
    return {
        "inspected": len(info),
        "missing": int((~info["exists"].astype(bool)).sum()),
        "undecodable": int((info["decodes"] == False).sum()),  # noqa: E712
        "modes": {str(k): int(v) for k, v in decoded["mode"].value_counts().sort_index().items()},
        "min_side": int(decoded["min_side"].min()) if len(decoded) else None,
    }


def _run_gx(plan, settings, docs_dir, timings: dict) -> tuple[list[dict], str | None]:
    """Run the suites in a fresh context; publish the Data Docs when ``docs_dir`` is set.

    Returns the per-expectation result dicts and the Data Docs index path (or None)."""
    from clipreid.validation import engine

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="clipreid-gx-") as scratch:
        context = engine.new_context(Path(scratch) / "site")
        results = engine.run_suites(context, plan, settings.severity, settings.max_examples)
        timings["validate"] = time.perf_counter() - t0
        if docs_dir is None:
            return results, None
        from clipreid.validation.datadocs import publish_site

        t0 = time.perf_counter()
        index, unknown = publish_site(engine.build_site(context), docs_dir)
        if unknown:
            log.warning("Data Docs: removed remote resources with no local copy: %s", unknown)
        timings["data_docs"] = time.perf_counter() - t0
        return results, str(index)


def _outcomes(results: list[dict], skipped: dict[str, str], settings) -> list[ExpectationOutcome]:
    """One outcome per expectation run, then one per check that did not apply."""
    outcomes = [
        outcome_from_result(
            r["frame"], r["check"], r["severity"], r["result"], settings.max_examples
        )
        for r in results
    ]
    for check in CHECKS:
        if check.name in skipped:
            severity = settings.severity[check.name]
            outcomes.append(
                ExpectationOutcome(check.name, severity, SKIPPED, message=skipped[check.name])
            )
    return outcomes


def run_validation(
    manifest_path: str | os.PathLike,
    dataset: DatasetConfig,
    validation: ValidationConfig,
    report_path: str | os.PathLike,
    docs_dir: str | os.PathLike | None = None,
    image_root: str | os.PathLike | None = None,
) -> ValidationOutcome:
    """Validate the manifest and its images; write the report (and the Data Docs site).

    Returns a :class:`ValidationOutcome`; ``outcome.ok`` is False when an ``error``
    check failed (the CLI then exits non-zero and prints ``outcome.summary()``).
    ``docs_dir=None`` skips the Data Docs. Image paths are read under ``image_root``
    (default: ``dataset.root``); ``outcome.digests`` maps each manifest path to the SHA-256
    of its file. Raises ``DatasetError`` when the manifest
    is missing or unreadable and ``ConfigError`` on bad params."""
    dataset = coerce(DatasetConfig, dataset, "dataset")
    settings = load_settings(dataset, validation)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    raw = fr.load_raw_manifest(manifest_path)

    info, image_stats = None, {}
    if "path" in raw.columns:
        t0 = time.perf_counter()
        paths = raw["path"].dropna().drop_duplicates().tolist()
        root = Path(dataset.root if image_root is None else image_root)
        inspected = inspect_images([str(root / str(p)) for p in paths], settings.workers,
                                   max_side=settings.max_image_side)
        info = fr.inspections_frame([(p, *rest) for p, (_, *rest) in zip(paths, inspected)])
        timings["images"] = time.perf_counter() - t0
        image_stats = _image_stats(info)

    t0 = time.perf_counter()
    from clipreid.validation import suites  # imports Great Expectations (~3 s)

    timings["import_gx"] = time.perf_counter() - t0
    plan, skipped, summary = suites.build_plan(raw, info, settings)
    results, docs_index = _run_gx(plan, settings, docs_dir, timings)
    outcomes = _outcomes(results, skipped, settings)
    # A manifest without its columns cannot be checked further: never ok, whatever the severity.
    columns_ok = not fr.missing_columns(raw)
    ok = columns_ok and not any(o.failed and o.severity == ERROR for o in outcomes)
    timings["total"] = time.perf_counter() - start

    outcome = ValidationOutcome(
        ok=ok,
        dataset=settings.dataset_name,
        manifest=str(manifest_path),
        expectations=outcomes,
        summary_data={
            **summary,
            "rows": len(raw),
            "images": image_stats,
            "settings": {
                "num_cameras": settings.num_cameras,
                "min_image_side": settings.min_image_side,
                "max_image_side": settings.max_image_side,
                "severity": dict(settings.severity),
            },
        },
        report_path=str(report_path),
        docs_index=docs_index,
        digests={} if info is None else dict(zip(info["path"], info["sha256"])),
        seconds={k: round(v, 3) for k, v in timings.items()},
    )
    log.info("validation took %s s", outcome.seconds)
    write_json(report_path, outcome.to_dict())
    return outcome
