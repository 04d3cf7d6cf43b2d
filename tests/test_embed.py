"""`clipreid embed`: the exported model, prepared from its own metadata only, gives the
descriptors PyTorch gives on the test transform; the torch backend agrees; folders, globs
and CSVs (with camera ids for SIE) are read; unreadable images stop the run or are
skipped and named."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from clipreid.cli import main
from clipreid.config.schema import ModelConfig, Params, PreprocessConfig, SieConfig
from clipreid.embed import Source, embed, read_source
from clipreid.errors import DatasetError
from clipreid.export import export_onnx
from clipreid.loader import transforms
from clipreid.model import build_reid_model
from clipreid.model.saved import save_reid_model

IMAGENET = PreprocessConfig(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225],
                            test_interpolation="bicubic")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Seven images of different sizes and modes in a folder tree."""
    root = tmp_path_factory.mktemp("embed_images")
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate([(90, 40), (128, 64), (60, 31), (200, 100), (64, 32), (77, 33),
                                (130, 70)]):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(exist_ok=True)
        path = folder / f"{i}.{'png' if i % 3 else 'jpg'}"
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        (img.convert("L") if i == 5 else img).save(path)
        paths.append(path)
    return root, sorted(str(p.resolve()) for p in paths)


def exported(tmp_path_factory, sie: bool):
    folder = tmp_path_factory.mktemp("sie" if sie else "plain")
    model_cfg = ModelConfig(input_size=[64, 32], preprocess=IMAGENET,
                            sie=SieConfig(enabled=sie, coefficient=2.0))
    model = build_reid_model(model_cfg, 5, "person", 3).eval()
    params = dataclasses.replace(Params(), model=model_cfg, dataset=dataclasses.replace(
        Params().dataset, num_cameras=3))
    save_reid_model(folder / "reid.pt", model, params, 5)
    probe = [str(p) for p in sorted((folder.parent).glob("embed_images*/*/*"))][:2]
    export_onnx(model, probe, [0, 1], {"opset": 18, "max_abs_diff": 1e-4, "num_images": 2},
                folder / "reid.onnx", folder / "m.json", folder / "r.json",
                input_size=[64, 32], preprocess=IMAGENET, num_cameras=3)
    return folder, model, model_cfg


@pytest.fixture(scope="module")
def plain(tmp_path_factory, images):
    return exported(tmp_path_factory, sie=False)


@pytest.fixture(scope="module")
def sie(tmp_path_factory, images):
    return exported(tmp_path_factory, sie=True)


def reference(model, paths, camids=None):
    transform = transforms.test_transform([64, 32], IMAGENET)
    from clipreid.loader.images import read_rgb

    batch = torch.stack([transform(read_rgb(p)) for p in paths])
    with torch.no_grad():
        cams = torch.tensor(camids) if camids is not None else None
        return model.test_features(batch, cams).numpy()


def test_onnx_embedding_equals_pytorch_on_the_test_transform(plain, images):
    folder, model, _ = plain
    root, paths = images
    got = embed(read_source(root), folder / "reid.onnx", batch_size=3)
    assert got.paths == paths  # resolved, sorted, recursive
    assert got.features.dtype == np.float32 and got.features.shape == (7, 256)
    np.testing.assert_allclose(np.linalg.norm(got.features, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got.features, reference(model, paths), atol=1e-4)
    torch_got = embed(read_source(root), folder / "reid.pt", backend="torch", batch_size=4)
    np.testing.assert_allclose(torch_got.features, got.features, atol=1e-4)


def test_sie_models_take_camera_ids_from_a_csv(sie, images, tmp_path):
    folder, model, _ = sie
    root, paths = images
    table = tmp_path / "list.csv"
    camids = [i % 3 for i in range(len(paths))]
    with open(table, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "camid"])
        writer.writerows([p, c] for p, c in zip(paths, camids))
    got = embed(read_source(table), folder / "reid.onnx")
    np.testing.assert_allclose(got.features, reference(model, paths, camids), atol=1e-4)
    with pytest.raises(DatasetError, match="uses camera ids.*CSV with path and camid"):
        embed(read_source(root), folder / "reid.onnx")
    with pytest.raises(DatasetError, match="camid 7 is out of range"):
        embed(Source(paths[:1], [7]), folder / "reid.onnx")


def test_globs_and_relative_csv_paths(plain, images, tmp_path):
    folder, _, _ = plain
    root, paths = images
    pngs = read_source(str(root / "*" / "*.png"))
    assert pngs.paths == [p for p in paths if p.endswith(".png")]
    table = root / "relative.csv"
    table.write_text("path\na/1.png\nb/0.jpg\n")
    assert read_source(table).paths == [str(root / "a" / "1.png"), str(root / "b" / "0.jpg")]
    table.unlink()
    with pytest.raises(DatasetError, match="matches no file"):
        read_source(str(root / "*.gif"))
    with pytest.raises(DatasetError, match="not an image, a folder, a .csv file or a glob"):
        read_source(tmp_path / "nothing")
    bad = tmp_path / "bad.csv"
    bad.write_text("file\nx.jpg\n")
    with pytest.raises(DatasetError, match="'path' column"):
        read_source(bad)


def test_unreadable_images_stop_or_are_skipped_and_named(plain, images, tmp_path):
    folder, _, _ = plain
    _, paths = images
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    source = Source([paths[0], str(broken), paths[1]])
    with pytest.raises(DatasetError, match=r"broken.jpg cannot be read.*--on-error skip"):
        embed(source, folder / "reid.onnx")
    got = embed(source, folder / "reid.onnx", on_error="skip")
    assert got.paths == [paths[0], paths[1]] and got.features.shape[0] == 2
    assert [p for p, _ in got.skipped] == [str(broken)]


def test_the_command_writes_features_and_paths(plain, images, tmp_path, capsys):
    folder, _, _ = plain
    root, paths = images
    out = tmp_path / "out" / "gallery.npz"
    code = main(["embed", str(root), "-o", str(out), "--model", str(folder / "reid.onnx"),
                 "--threads", "1", "--batch-size", "2"])
    assert code == 0, capsys.readouterr().err
    saved = np.load(out)
    assert saved["features"].shape == (7, 256) and saved["features"].dtype == np.float32
    assert saved["paths"].tolist() == paths
    assert "7 images, 256-d features" in capsys.readouterr().out
    assert main(["embed", str(root), "-o", str(out), "--model", str(tmp_path / "no.onnx")]) == 2
    assert "no.onnx not found" in capsys.readouterr().err


def test_inputs_users_get_wrong_are_named(plain, images, tmp_path, capsys):
    folder, _, _ = plain
    root, paths = images
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffpath\n".encode("utf-8") + paths[0].encode() + b"\n")
    assert read_source(bom).paths == [paths[0]]
    latin = tmp_path / "latin.csv"
    latin.write_bytes("path\ncaf\xe9.jpg\n".encode("latin-1"))
    with pytest.raises(DatasetError, match="is not UTF-8"):
        read_source(latin)
    assert read_source(paths[0]).paths == [paths[0]]  # one image file
    from clipreid.errors import ClipReidError

    with pytest.raises(ClipReidError, match="not a PyTorch model file.*drop --backend torch"):
        embed(Source(paths[:1]), folder / "reid.onnx", backend="torch")
    with pytest.raises(ClipReidError, match="not an ONNX model.*--backend torch"):
        embed(Source(paths[:1]), folder / "reid.pt")
    capsys.readouterr()
    assert main(["embed", paths[0], "-o", str(tmp_path), "--model",
                 str(folder / "reid.onnx")]) == 2
    assert "is a folder: give the .npz file to write" in capsys.readouterr().err
