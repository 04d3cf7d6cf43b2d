"""`prepare`: the data set (the synthetic one is generated here) -> the manifest."""

from __future__ import annotations

import logging

import pandas as pd

from clipreid.config.schema import Params
from clipreid.dataset.manifest import save_manifest
from clipreid.dataset.prepare import prepare_manifest
from clipreid.stages import layout

log = logging.getLogger(__name__)


def run(params: Params, manifest_path=layout.MANIFEST) -> pd.DataFrame:
    manifest = prepare_manifest(params.dataset)
    save_manifest(manifest, manifest_path)
    counts = manifest.groupby("split").agg(images=("path", "size"), ids=("pid", "nunique"))
    log.info("manifest %s:\n%s", manifest_path, counts.to_string())
    return manifest
