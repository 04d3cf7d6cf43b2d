"""`export`: the test-time image encoder to ONNX (fp32, checked against PyTorch in
onnxruntime; fp16 and int8 beside it, each scored on the test split), with its metadata
(preprocessing, metrics, match thresholds) and the model card."""

from __future__ import annotations

import json
import logging

from clipreid.config.schema import Params
from clipreid.dataset.manifest import image_paths, load_manifest
from clipreid.errors import ClipReidError
from clipreid.evaluation.protocols import test_partitions
from clipreid.export import evaluate_onnx, export_onnx, write_precision_variants
from clipreid.io import write_json
from clipreid.model.saved import load_reid_model
from clipreid.model_card import write_model_card
from clipreid.stages import layout

log = logging.getLogger(__name__)


def read_json(path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise ClipReidError(f"{path} cannot be read ({exc}); run the evaluate stage first "
                            "(`dvc repro evaluate`)") from None


def run(params: Params, manifest_path=layout.VALIDATED_MANIFEST, model_path=layout.REID_MODEL,
        evaluation_metrics=layout.EVALUATION_METRICS,
        evaluation_report=layout.EVALUATION_REPORT, onnx_path=layout.ONNX_MODEL,
        fp16_path=layout.ONNX_FP16_MODEL, int8_path=layout.ONNX_INT8_MODEL,
        card_path=layout.MODEL_CARD, metrics_path=layout.EXPORT_METRICS,
        report_path=layout.EXPORT_REPORT) -> dict:
    manifest = load_manifest(manifest_path)
    test, partitions = test_partitions(manifest, params.evaluation.trials, str(manifest_path))
    evaluation, report = read_json(evaluation_metrics), read_json(evaluation_report)
    model = load_reid_model(model_path, params)
    paths, camids = image_paths(test, params.dataset.root), test["camid"].tolist()
    result = export_onnx(model, paths, camids, params.export, onnx_path, metrics_path,
                         report_path, input_size=params.model.input_size,
                         preprocess=params.model.preprocess,
                         num_cameras=params.dataset.num_cameras,
                         object_noun=params.dataset.object,
                         extra_metadata={"metrics": evaluation,
                                         "thresholds": report.get("thresholds", []),
                                         "distance": params.evaluation.distance})
    files = {"fp32": str(onnx_path), **write_precision_variants(onnx_path, fp16_path,
                                                                  int8_path)}
    remove_same_camera = bool(params.evaluation.remove_same_camera
                              and params.dataset.num_cameras > 1)
    metrics = {"max_abs_diff": result["max_abs_diff"], "min_cosine": result["min_cosine"]}
    for variant, path in files.items():
        scores = evaluate_onnx(path, paths, camids, test["pid"].tolist(), partitions,
                               params.evaluation.distance, remove_same_camera)
        metrics.update({f"{k}_{variant}": v for k, v in scores.items()})
        log.info("ONNX %s on the test split: mAP %.4f, rank-1 %.4f", variant, scores["mAP"],
                 scores["rank1"])
    write_json(metrics_path, metrics)
    write_model_card(card_path, params, manifest, evaluation, report, metrics,
                     result["metadata"])
    return {**result, **metrics}
