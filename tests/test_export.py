"""ONNX export: dynamic batch, parity with PyTorch, failure above the tolerance, and the
same bytes for the same model in any checkout."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import clipreid
from clipreid.export import (ExportParityError, export_onnx, load_images, onnx_features,
                             read_onnx_metadata)
from clipreid.config.schema import PreprocessConfig
from clipreid.errors import ClipReidError
from clipreid.model import build_reid_model

CFG = {"opset": 18, "max_abs_diff": 1e-4, "num_images": 4}
PREPROCESS = PreprocessConfig()


@pytest.fixture(scope="module")
def image_paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("export_images")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(5):
        path = root / f"{i}.jpg"
        Image.fromarray(rng.integers(0, 255, (70, 30, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("sie", [False, True])
def test_export_matches_torch_at_any_batch_size(tiny_vit_cfg, image_paths, tmp_path, sie):
    tiny_vit_cfg["sie"] = {"enabled": sie, "coefficient": 1.0}
    model = build_reid_model(tiny_vit_cfg, num_classes=3, object_noun="person", num_cameras=3)
    onnx_path, metrics_path = tmp_path / "m.onnx", tmp_path / "export.json"
    camids = [0, 1, 2, 0, 1]
    report_path = tmp_path / "report.json"
    result = export_onnx(model, image_paths, camids, CFG, onnx_path, metrics_path,
                         report_path, input_size=[64, 32], preprocess=PREPROCESS,
                         num_cameras=3 if sie else 0)
    assert json.loads(metrics_path.read_text()) == {"max_abs_diff": result["max_abs_diff"],
                                                    "min_cosine": result["min_cosine"]}
    assert result["min_cosine"] >= 0.9999 and result["batch_sizes"] == [1, 4]
    meta = read_onnx_metadata(onnx_path)  # what a user needs, read back from the file
    assert meta == json.loads(report_path.read_text())["metadata"]
    assert meta["input_size"] == [64, 32] and meta["layout"] == "NCHW"
    assert (meta["mean"], meta["std"]) == ([0.5] * 3, [0.5] * 3)
    assert (meta["channel_order"], meta["value_range"]) == ("RGB", [0.0, 1.0])
    assert meta["resize_interpolation"] == "bilinear"
    assert meta["feature_dim"] == result["feature_dim"]
    assert meta["camera_input"] is sie and meta["num_cameras"] == (3 if sie else 0)
    assert meta["inputs"] == (["images", "camids"] if sie else ["images"])
    assert json.loads(report_path.read_text())["num_images"] == 4
    assert result["num_images"] == 4 and result["max_abs_diff"] <= 1e-4
    images = load_images(image_paths, [64, 32], PREPROCESS)
    cams = torch.tensor(camids)
    with torch.no_grad():
        expected = model.test_features(images, cams if sie else None).numpy()
    for n in (1, 5):  # batch sizes other than the one traced
        got = onnx_features(onnx_path, images[:n], cams[:n] if sie else None)
        assert got.shape == (n, 96)
        assert np.abs(got - expected[:n]).max() <= 1e-4


def test_export_fails_above_tolerance_and_writes_nothing(tiny_vit_cfg, image_paths, tmp_path):
    model = build_reid_model(tiny_vit_cfg, num_classes=3, object_noun="person", num_cameras=0)
    onnx_path, metrics_path = tmp_path / "m.onnx", tmp_path / "export.json"
    with pytest.raises(ExportParityError, match="differ by"):
        export_onnx(model, image_paths, [0] * 5, {**CFG, "max_abs_diff": 1e-30},
                    onnx_path, metrics_path, tmp_path / "report.json", input_size=[64, 32],
                    preprocess=PREPROCESS)
    assert not onnx_path.exists() and not metrics_path.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind either


def test_same_model_exports_to_the_same_bytes_without_local_paths(tiny_vit_cfg, image_paths,
                                                                  tmp_path):
    """torch's exporter records stack traces with this checkout's absolute paths; the
    export drops them, so DVC sees the same ONNX output wherever the project is cloned."""
    model = build_reid_model(tiny_vit_cfg, num_classes=3, object_noun="person", num_cameras=0)
    outputs = []
    for name in ("a", "b"):
        onnx_path = tmp_path / name / "model.onnx"
        onnx_path.parent.mkdir()
        export_onnx(model, image_paths, [0] * 5, CFG, onnx_path,
                    tmp_path / name / "export.json", tmp_path / name / "report.json",
                    input_size=[64, 32], preprocess=PREPROCESS)
        outputs.append(onnx_path.read_bytes())
    assert outputs[0] == outputs[1]
    source_root = str(Path(clipreid.__file__).resolve().parents[1]).encode()
    assert source_root not in outputs[0]
    assert b"stack_trace" not in outputs[0]


def test_an_onnx_file_without_metadata_is_named(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), str(tmp_path / "plain.onnx"))
    with pytest.raises(ClipReidError, match="carries no clipreid metadata"):
        read_onnx_metadata(tmp_path / "plain.onnx")
