"""The `clipreid` command: bad input stops with one clear line naming what is wrong."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from clipreid.cli import main

ROOT = Path(__file__).resolve().parents[1]
MARKET = {"name": "market1501", "format": "market1501", "object": "person",
          "num_cameras": 6}


def write_params(tmp_path, dataset):
    """The committed params.yaml with its ``dataset`` group replaced by ``dataset``."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["dataset"] = dataset
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return str(path)


def jpeg(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((16, 8, 3), dtype=np.uint8)).save(path)


def market_tree(root, train=("0001_c1s1_000001_00.jpg",), query=("0002_c1s1_000001_00.jpg",),
                gallery=("0002_c2s1_000001_00.jpg",)):
    for folder, names in (("bounding_box_train", train), ("query", query),
                          ("bounding_box_test", gallery)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            jpeg(root / folder / name)


def run_prepare(tmp_path, monkeypatch, root):
    monkeypatch.chdir(tmp_path)
    dataset = {**MARKET, "root": str(root), "source": str(root)}
    return main(["--params", write_params(tmp_path, dataset), "prepare"])


def test_missing_data_folder(tmp_path, monkeypatch, capsys):
    assert run_prepare(tmp_path, monkeypatch, tmp_path / "nowhere") == 2
    err = capsys.readouterr().err
    assert "error" in err and str(tmp_path / "nowhere") in err


def test_unparseable_file_name(tmp_path, monkeypatch, capsys):
    root = tmp_path / "market"
    market_tree(root, train=("0001_c1s1_000001_00.jpg", "holiday-photo.jpg"))
    assert run_prepare(tmp_path, monkeypatch, root) == 2
    assert "holiday-photo.jpg" in capsys.readouterr().err


def test_empty_split(tmp_path, monkeypatch, capsys):
    root = tmp_path / "market"
    market_tree(root, query=())
    assert run_prepare(tmp_path, monkeypatch, root) == 2
    err = capsys.readouterr().err
    assert "query" in err and "empty" in err


def test_good_tree_writes_the_manifest(tmp_path, monkeypatch):
    root = tmp_path / "market"
    market_tree(root)
    assert run_prepare(tmp_path, monkeypatch, root) == 0
    manifest = (tmp_path / "data/prepared/manifest.csv").read_text().splitlines()
    assert manifest[0] == "path,pid,camid,split,label" and len(manifest) == 4


def test_missing_params_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["prepare"]) == 2
    assert "params.yaml not found" in capsys.readouterr().err


def test_unknown_config_group_option(tmp_path, capsys):
    assert main(["--params", str(tmp_path / "p.yaml"), "compose", "dataset=nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_missing_weights_name_the_file(tmp_path, monkeypatch, capsys):
    """The published model without OpenAI's weights: composing it, and any stage, stops
    naming the file it expects."""
    from clipreid.config.compose import compose
    from clipreid.errors import ConfigError

    root = tmp_path / "market"
    market_tree(root)
    cache = tmp_path / "home" / ".cache" / "clip"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    overrides = ["model=vit_b16", "dataset=market1501", f"dataset.root={root}", "device=cpu",
                 "num_workers=0"]
    with pytest.raises(ConfigError, match=f"model.weights='{cache / 'ViT-B-16.pt'}': no such"):
        compose(ROOT / "conf", overrides)
    cache.mkdir(parents=True)
    (cache / "ViT-B-16.pt").write_bytes(b"for the composition")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(compose(ROOT / "conf", overrides)))
    (cache / "ViT-B-16.pt").unlink()
    monkeypatch.chdir(tmp_path)
    assert main(["prompt"]) == 2
    err = capsys.readouterr().err
    assert str(cache / "ViT-B-16.pt") in err and "model.weights" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "market", "params.yaml"]


def test_synth_writes_a_market_layout_on_demand(tmp_path, monkeypatch, capsys):
    small = {"seed": 0, "num_train_ids": 4, "num_test_ids": 3, "num_cameras": 6,
             "num_distractors": 2, "num_junk": 1}
    committed = yaml.safe_load((ROOT / "params.yaml").read_text())["dataset"]
    params = write_params(tmp_path, {**committed, "synthetic": {**committed["synthetic"],
                                                                  **small}})
    out = tmp_path / "synthetic"
    assert main(["--params", params, "synth", "--out", str(out), "--seed", "5"]) == 0
    assert "wrote a synthetic data set" in capsys.readouterr().out
    names = sorted(p.name for p in (out / "bounding_box_train").iterdir())
    assert names and all(name.endswith(".jpg") and name[:4].isdigit() for name in names)
    assert any(p.name.startswith("-1_") for p in (out / "bounding_box_test").iterdir())


def test_identities_that_do_not_split_over_the_processes_stop_before_torchrun(
        tmp_path, monkeypatch, capsys):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["launch"]["nproc_per_node"] = 2
    params["finetune"]["num_identities"] = 3
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert main(["--params", str(path), "finetune"]) == 2
    err = capsys.readouterr().err
    assert "finetune.num_identities=3 cannot be split over 2 processes" in err
