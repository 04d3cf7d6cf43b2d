"""ONNX export of the test-time image encoder, with a parity check in onnxruntime on real
test images: the export fails when ONNX and PyTorch differ by more than the tolerance.

The exported file describes itself: its ``metadata_props`` hold the preprocessing (input
size, resize interpolation, mean, std, channel order, value range), the feature size and
whether camera ids are an input (SIE), under ``clipreid.*`` keys with JSON values;
:func:`read_onnx_metadata` reads them back."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from clipreid.loader.images import read_rgb
from clipreid.loader.transforms import test_transform
from clipreid.config.schema import ExportConfig, PreprocessConfig, coerce
from clipreid.errors import ClipReidError
from clipreid.io import atomic_path, write_json

log = logging.getLogger(__name__)


class ExportParityError(ClipReidError):
    """The exported model disagrees with PyTorch beyond the configured tolerance."""


class TestTimeEncoder(nn.Module):
    """images (B, 3, H, W) [, camids (B,)] -> L2-normalised descriptors (B, D)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.uses_cameras = model.camera_embedding is not None

    def forward(self, images, camids=None):
        return self.model.test_features(images, camids)


#: Node metadata of torch's ONNX exporter that holds absolute paths of this machine's
#: source files: dropped, so the same model exports to the same bytes in any checkout.
MACHINE_SPECIFIC_METADATA = ("pkg.torch.onnx.stack_trace",)


#: Prefix of this project's keys in the ONNX model's metadata_props.
METADATA_PREFIX = "clipreid."


def onnx_metadata(input_size: Sequence[int], preprocess: PreprocessConfig, feature_dim: int,
                  uses_cameras: bool, num_cameras: int, object_noun: str) -> dict[str, Any]:
    """What a user of the ONNX model needs to feed it and read its output."""
    preprocess = coerce(PreprocessConfig, preprocess, "model.preprocess")
    return {
        "format": 1,
        "inputs": ["images", "camids"] if uses_cameras else ["images"],
        "output": "features",
        "input_size": [int(v) for v in input_size],          # H, W
        "layout": "NCHW",
        "channel_order": "RGB",
        "value_range": [0.0, 1.0],       # pixel / 255, before (x - mean) / std
        "resize_interpolation": preprocess.test_interpolation,
        "mean": [float(v) for v in preprocess.mean],
        "std": [float(v) for v in preprocess.std],
        "feature_dim": int(feature_dim),
        "l2_normalised": True,
        "camera_input": bool(uses_cameras),
        "num_cameras": int(num_cameras) if uses_cameras else 0,
        "object": object_noun,
    }


def read_onnx_metadata(onnx_path) -> dict[str, Any]:
    """The ``clipreid.*`` metadata of an exported model, values decoded (see
    :func:`onnx_metadata`); an ONNX file without them is named."""
    import json

    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    found = {p.key[len(METADATA_PREFIX):]: json.loads(p.value) for p in model.metadata_props
             if p.key.startswith(METADATA_PREFIX)}
    if not found:
        raise ClipReidError(f"{onnx_path} carries no clipreid metadata: it was not exported "
                            "by `clipreid export` (or by an older version); re-export it")
    return found


def finish_onnx(onnx_path, metadata: Mapping[str, Any]) -> None:
    """Rewrite ``onnx_path`` with ``metadata`` as metadata_props and without
    :data:`MACHINE_SPECIFIC_METADATA` on its nodes."""
    import json

    import onnx

    model = onnx.load(str(onnx_path))
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = METADATA_PREFIX + key, json.dumps(value)
    graphs = [model.graph] + [f for f in model.functions]
    for graph in graphs:
        for node in graph.node:
            keep = [p for p in node.metadata_props if p.key not in MACHINE_SPECIFIC_METADATA]
            del node.metadata_props[:]
            node.metadata_props.extend(keep)
    onnx.save(model, str(onnx_path))


def load_images(paths: Sequence[str], input_size, preprocess) -> torch.Tensor:
    transform = test_transform(input_size, preprocess)
    return torch.stack([transform(read_rgb(p)) for p in paths])


def onnx_features(onnx_path, images: torch.Tensor, camids: torch.Tensor | None):
    """Features of ``images`` from an ONNX file, or from an open onnxruntime session."""
    import onnxruntime as ort

    session = onnx_path if isinstance(onnx_path, ort.InferenceSession) else \
        ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feeds = {"images": images.numpy()}
    if camids is not None:
        feeds["camids"] = camids.numpy().astype(np.int64)
    return session.run(["features"], feeds)[0]


def cosine_per_row(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def export_onnx(model, paths: Sequence[str], camids: Sequence[int], cfg: ExportConfig,
                onnx_path, metrics_path, report_path, *, input_size: Sequence[int],
                preprocess: PreprocessConfig, num_cameras: int = 0,
                object_noun: str = "person", extra_metadata: Mapping[str, Any] = ()) -> dict:
    """Export ``model`` to ``onnx_path`` (dynamic batch axis) with its metadata
    (:func:`onnx_metadata`: ``input_size`` and ``preprocess`` are how its images are
    prepared; ``extra_metadata`` adds e.g. metrics and match thresholds), and compare
    onnxruntime with PyTorch on the first ``cfg.num_images`` of ``paths``, one image at a
    time and as one batch: the largest absolute difference must stay within
    ``cfg.max_abs_diff`` and every image's cosine similarity at least ``cfg.min_cosine``.
    Writes ``metrics_path`` (``max_abs_diff``, ``min_cosine``) and ``report_path`` (sizes,
    settings and the metadata)."""
    cfg = coerce(ExportConfig, cfg, "export")
    if not paths:
        raise ClipReidError("export: no test images to check the exported model on")
    encoder = TestTimeEncoder(model.cpu().eval()).eval()
    n = min(int(cfg.num_images), len(paths))
    images = load_images(paths[:n], input_size, preprocess)
    cams = torch.as_tensor(list(camids[:n]), dtype=torch.long)
    batch = torch.export.Dim("batch")
    if encoder.uses_cameras:
        args, names, dynamic = (images[:2], cams[:2]), ["images", "camids"], (
            {0: batch}, {0: batch})
    else:
        args, names, dynamic = (images[:2],), ["images"], ({0: batch},)
    with atomic_path(onnx_path) as tmp:
        torch.onnx.export(encoder, args, str(tmp), input_names=names,
                          output_names=["features"], dynamic_shapes=dynamic,
                          opset_version=int(cfg.opset), dynamo=True,
                          external_data=False, verbose=False)
        main_dim, proj_dim = model.image_encoder.main_dim, model.image_encoder.proj_dim
        metadata = {**onnx_metadata(input_size, preprocess, main_dim + proj_dim,
                                    encoder.uses_cameras, num_cameras, object_noun),
                    **dict(extra_metadata)}
        finish_onnx(tmp, metadata)
        use_cams = cams if encoder.uses_cameras else None
        with torch.no_grad():
            expected = encoder(images, use_cams).numpy()
        import onnxruntime as ort

        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        batched = onnx_features(session, images, use_cams)
        single = np.concatenate([onnx_features(session, images[i:i + 1], None
                                               if use_cams is None else use_cams[i:i + 1])
                                 for i in range(n)])
        del session
        diff = float(max(np.abs(expected - batched).max(), np.abs(expected - single).max()))
        cosine = float(min(cosine_per_row(expected, batched).min(),
                           cosine_per_row(expected, single).min()))
        report = {"tolerance": float(cfg.max_abs_diff), "min_cosine_allowed": cfg.min_cosine,
                  "num_images": n, "batch_sizes": [1, n], "opset": int(cfg.opset),
                  "feature_dim": int(expected.shape[1]),
                  "onnx_megabytes": round(Path(tmp).stat().st_size / 2**20, 3),
                  "metadata": metadata}
        log.info("export parity on %d test images (batch 1 and %d): max |onnx - torch| = "
                 "%.3g, min cosine %.7f", n, n, diff, cosine)
        if not diff <= float(cfg.max_abs_diff) or not cosine >= float(cfg.min_cosine):
            raise ExportParityError(
                f"{onnx_path}: onnxruntime and PyTorch differ by {diff:.3g} (min cosine "
                f"{cosine:.7f}) on {n} test images, beyond export.max_abs_diff="
                f"{cfg.max_abs_diff} / export.min_cosine={cfg.min_cosine}; not exported")
    write_json(report_path, report)
    write_json(metrics_path, {"max_abs_diff": diff, "min_cosine": cosine})
    return {"max_abs_diff": diff, "min_cosine": cosine, **report}


def write_precision_variants(fp32_path, fp16_path, int8_path) -> dict[str, str]:
    """An fp16 copy of the exported model (inputs and outputs stay float32) and a
    dynamically quantised int8 one (onnxruntime: int8 weights, activations quantised at
    run time), each with the fp32 model's metadata; both written atomically."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.float16 import convert_float_to_float16

    fp32 = onnx.load(str(fp32_path))
    with atomic_path(fp16_path) as tmp:
        half = convert_float_to_float16(fp32, keep_io_types=True)
        onnx.save(half, str(tmp))
    root = logging.getLogger()
    level = root.level
    with atomic_path(int8_path) as tmp:
        root.setLevel(logging.WARNING)  # the quantiser logs every tensor at INFO on root
        try:
            quantize_dynamic(str(fp32_path), str(tmp), weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
        quantised = onnx.load(str(tmp))
        del quantised.metadata_props[:]
        quantised.metadata_props.extend(fp32.metadata_props)
        onnx.save(quantised, str(tmp))
    return {"fp16": str(fp16_path), "int8": str(int8_path)}


def evaluate_onnx(onnx_path, paths: Sequence[str], camids: Sequence[int], pids: Sequence[int],
                  partitions, distance: str, remove_same_camera: bool,
                  batch_size: int = 64) -> dict[str, float]:
    """mAP and rank-1 of an exported model on the test split, prepared from its metadata
    as `clipreid embed` prepares images (averaged over ``partitions``, the evaluator's
    (query, gallery) index pairs)."""
    from clipreid.embed import Source, embed
    from clipreid.evaluation.metrics import evaluate_features

    feats = embed(Source(list(paths), list(camids)), onnx_path, "onnx", batch_size).features
    pids, cams = np.asarray(pids), np.asarray(camids)
    results = [evaluate_features(feats[q], feats[g], pids[q], pids[g], cams[q], cams[g],
                                 distance=distance, remove_same_camera=remove_same_camera)
               for q, g in partitions]
    return {"mAP": float(np.mean([r["mAP"] for r in results])),
            "rank1": float(np.mean([r["cmc"][0] for r in results]))}
