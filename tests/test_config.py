"""conf/ (Hydra) vs params.yaml vs dvc.yaml: no drift, and the published recipe."""

from pathlib import Path

import pytest
import yaml

from clipreid.config.compose import compose_text
from clipreid.config.params import STAGE_PARAMS, stage_params

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def clip_cache(tmp_path, monkeypatch):
    """A home whose clip cache holds (stand-ins of) OpenAI's files: the default
    model.weights of vit_b16 and rn50 must exist."""
    cache = tmp_path / "home" / ".cache" / "clip"
    cache.mkdir(parents=True)
    for name in ("ViT-B-16.pt", "RN50.pt"):
        (cache / name).write_bytes(b"stand-in")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def compose(*overrides):
    return yaml.safe_load(compose_text(ROOT / "conf", overrides))


def test_params_yaml_is_the_default_composition_of_conf():
    committed = (ROOT / "params.yaml").read_text()
    assert committed == compose_text(ROOT / "conf"), (
        "params.yaml differs from the composition of conf/: run `make params`")


def test_embedded_default_is_synthetic_data_and_a_tiny_random_clip():
    params = compose()
    assert params["dataset"]["name"] == "synthetic"
    assert params["model"]["clip_name"] is None
    assert params["prompt"] == yaml.safe_load((ROOT / "conf/prompt/embedded.yaml").read_text())


def test_vit_b16_configuration_has_method_md_values(tmp_path):
    """model=vit_b16 alone selects the published ViT recipe (RN50's own recipe, and every
    named one, are checked value by value in tests/test_recipes.py)."""
    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"OpenAI's file")
    params = compose("model=vit_b16", "dataset=market1501", f"dataset.root={tmp_path}",
                     f"model.weights={weights}")
    assert params["dataset"]["root"] == str(tmp_path)
    assert params["dataset"]["source"] == str(tmp_path)
    assert params["model"]["input_size"] == [256, 128]
    s1 = params["prompt"]
    assert (s1["epochs"], s1["batch_size"], s1["lr"], s1["weight_decay"]) == (120, 64, 3.5e-4, 1e-4)
    assert (s1["warmup_epochs"], s1["warmup_lr"], s1["min_lr"]) == (5, 1e-5, 1e-6)
    s2 = params["finetune"]
    assert (s2["epochs"], s2["num_identities"], s2["num_instances"]) == (60, 16, 4)
    assert (s2["lr"], s2["weight_decay"], s2["bias_lr_factor"]) == (5e-6, 1e-4, 2.0)
    assert (s2["milestones"], s2["gamma"], s2["warmup_epochs"], s2["warmup_factor"]) == (
        [30, 50], 0.1, 10, 0.1)
    assert (s2["id_loss_weight"], s2["triplet_loss_weight"], s2["i2t_loss_weight"]) == (
        0.25, 1.0, 1.0)
    assert (s2["triplet_margin"], s2["label_smoothing"]) == (0.3, 0.1)
    assert s2["augmentation"] == {"flip_p": 0.5, "padding": 10, "erasing_p": 0.5}
    assert params["model"]["sie"]["coefficient"] == 1.0
    rerank = params["evaluation"]["rerank"]
    assert (rerank["k1"], rerank["k2"], rerank["lambda_value"]) == (20, 6, 0.3)


def test_vit_b16_architecture_is_clip_vit_b16():
    arch = compose("model=vit_b16")["model"]["architecture"]
    assert (arch["vision_width"], arch["vision_layers"], arch["vision_patch_size"]) == (768, 12, 16)
    assert (arch["embed_dim"], arch["image_resolution"]) == (512, 224)


def test_command_line_group_choice_beats_the_model_default():
    assert compose("model=vit_b16", "prompt=embedded")["prompt"]["epochs"] == compose()["prompt"]["epochs"]


def dvc_stage_params():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: stage.get("params", []) for name, stage in stages.items()}


def test_dvc_yaml_declares_exactly_the_params_each_stage_reads():
    declared = dvc_stage_params()
    assert set(declared) == set(STAGE_PARAMS)
    for stage, keys in STAGE_PARAMS.items():
        assert stage in declared, f"dvc.yaml has no stage {stage}"
        assert sorted(declared[stage]) == sorted(keys), stage


def test_a_stage_sees_only_its_params():
    from clipreid.config.schema import parse_params

    view = stage_params(parse_params(compose()), "prompt")
    assert set(view) == {"method", "seed", "device", "num_workers", "launch", "dataset", "model",
                         "prompt"}
    assert set(view["dataset"]) == {"object", "num_cameras"}
