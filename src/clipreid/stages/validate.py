"""`validate`: Great Expectations checks of the manifest and its images. Writes the report
and Data Docs, and, only when every error-severity check passes, the validated manifest
(with each image's SHA-256) that the later stages read."""

from __future__ import annotations

from pathlib import Path

from clipreid.config.schema import Params
from clipreid.dataset.manifest import DIGEST, load_manifest, save_manifest
from clipreid.stages import layout
from clipreid.validation import run_validation


def run(params: Params, manifest_path=layout.MANIFEST, report_path=layout.VALIDATION_REPORT,
        docs_dir=layout.DATA_DOCS, validated_path=layout.VALIDATED_MANIFEST):
    outcome = run_validation(manifest_path, params.dataset, params.validation, report_path,
                             docs_dir)
    print(outcome.summary())
    if outcome.ok:
        manifest = load_manifest(manifest_path)
        manifest[DIGEST] = [outcome.digests[p] for p in manifest["path"]]
        save_manifest(manifest, validated_path)
    else:  # the gate is shut: no stage may train on the data of an earlier run
        Path(validated_path).unlink(missing_ok=True)
    return outcome
