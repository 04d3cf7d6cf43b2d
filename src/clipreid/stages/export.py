"""`export`: the test-time image encoder to ONNX, checked against PyTorch in onnxruntime."""

from __future__ import annotations

from clipreid.config.schema import Params
from clipreid.dataset.manifest import image_paths, load_manifest
from clipreid.export import export_onnx
from clipreid.model.saved import load_reid_model
from clipreid.stages import layout


def run(params: Params, manifest_path=layout.VALIDATED_MANIFEST, model_path=layout.REID_MODEL,
        onnx_path=layout.ONNX_MODEL, metrics_path=layout.EXPORT_METRICS,
        report_path=layout.EXPORT_REPORT) -> dict:
    manifest = load_manifest(manifest_path)
    test = manifest[manifest["split"] != "train"]
    model = load_reid_model(model_path, params)
    return export_onnx(model, image_paths(test, params.dataset.root), test["camid"].tolist(),
                       params.export, onnx_path, metrics_path, report_path,
                       input_size=params.model.input_size, preprocess=params.model.preprocess,
                       num_cameras=params.dataset.num_cameras,
                       object_noun=params.dataset.object)
