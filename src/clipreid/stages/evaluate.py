"""`evaluate`: test features of the fine-tuned model; Market-protocol metrics and plots."""

from __future__ import annotations

import dataclasses
import logging

from clipreid.config.params import select
from clipreid.config.schema import Params, as_dict
from clipreid.dataset.manifest import image_paths, load_manifest
from clipreid.evaluation import run_evaluation
from clipreid.evaluation.protocols import split_digest, test_partitions
from clipreid.features import test_features
from clipreid.model.saved import load_reid_model
from clipreid.runtime import resolve_device
from clipreid.stages import layout

log = logging.getLogger(__name__)


def run(params: Params, manifest_path=layout.VALIDATED_MANIFEST, model_path=layout.REID_MODEL,
        metrics_path=layout.EVALUATION_METRICS, report_path=layout.EVALUATION_REPORT,
        plots_dir=layout.EVALUATION_PLOTS) -> dict:
    settings = params.evaluation
    manifest = load_manifest(manifest_path)
    test, partitions = test_partitions(manifest, settings.trials, str(manifest_path))
    model = load_reid_model(model_path, params)
    device = resolve_device(params.device)
    paths = image_paths(test, params.dataset.root)
    feats = test_features(model.to(device), paths, test["camid"].tolist(),
                          params.model.input_size, params.model.preprocess, settings.batch_size,
                          device, params.num_workers, amp=settings.amp)
    # Data sets without camera labels (VehicleID: camid 0 throughout) keep same-camera
    # matches, or no match would be left.
    settings = dataclasses.replace(settings, remove_same_camera=bool(
        settings.remove_same_camera and params.dataset.num_cameras > 1))
    metrics = run_evaluation(feats, test["pid"].to_numpy(), test["camid"].to_numpy(), paths,
                             partitions, settings, metrics_path, report_path, plots_dir,
                             test_split=split_digest(test, partitions),
                             run_params=select(as_dict(params), ("method", "dataset.name",
                                                                 "model")))
    log.info("evaluation: %s", metrics)
    return metrics
