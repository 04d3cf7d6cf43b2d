"""The real configuration, at full size, on CPU: OpenAI-format ViT-B/16 and RN50 weights
with random values (fp16 tensors under OpenAI's names, as their files hold), and the
published recipes run end to end on a tiny Market-1501-layout set (epochs and images cut
to a minimum): prepare, validate, both stages, evaluation, export with its parity check.
The published shapes are asserted: a 16 x 8 patch grid at 256 x 128 (21 x 10 with OLP),
1,280-d ViT and 3,072-d RN50 features."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from clipreid.config.compose import compose
from clipreid.config.schema import parse_params
from clipreid.dataset.synthetic import write_synthetic
from clipreid.model.backbone import build_clip
from clipreid.model.saved import load_card, load_model
from clipreid.model.reid import build_reid_model
from clipreid.stages import evaluate, export, finetune, prepare, prompt, validate

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = ["prompt.epochs=1", "prompt.warmup_epochs=0", "prompt.batch_size=8",
           "prompt.feature_batch_size=8", "finetune.epochs=1", "finetune.num_identities=2",
           "finetune.num_instances=2", "evaluation.batch_size=8", "export.num_images=3",
           "num_workers=0", "device=cpu"]


def architecture(model: str) -> dict:
    """CLIP's constructor arguments of conf/model/<model>.yaml (the published sizes)."""
    return yaml.safe_load((ROOT / "conf" / "model" / f"{model}.yaml").read_text())["architecture"]


def openai_weights(path: Path, architecture: dict) -> Path:
    """A state dict as OpenAI's files hold it: fp16 tensors under CLIP's names, with the
    input_resolution / context_length / vocab_size entries."""
    model_cfg = {"architecture": architecture, "arch": "vit" if isinstance(
        architecture["vision_layers"], int) else "resnet"}
    state = {k: v.half() for k, v in build_clip(model_cfg).state_dict().items()}
    state["input_resolution"] = torch.tensor(architecture["image_resolution"])
    state["context_length"] = torch.tensor(architecture["context_length"])
    state["vocab_size"] = torch.tensor(architecture["vocab_size"])
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    root = tmp_path_factory.mktemp("full_size") / "Market-1501"
    write_synthetic(root, num_train_ids=4, num_test_ids=3, num_cameras=6,
                    train_images_per_id=[2, 2], train_cameras_per_id=[2, 2],
                    test_cameras_per_id=[2, 2], query_cameras_per_id=[1, 1],
                    gallery_images_per_id=[2, 2], num_distractors=0, num_junk=0)
    return root


def recipe(name: str, weights: Path, data: Path, *extra: str):
    return parse_params(compose(ROOT / "conf", [f"experiment={name}", f"dataset.root={data}",
                                                f"model.weights={weights}", *extra]))


def run_pipeline(params, workdir: Path, monkeypatch) -> dict:
    monkeypatch.chdir(workdir)
    prepare.run(params)
    assert validate.run(params).ok
    prompt.run(params)
    finetune.run(params)
    metrics = evaluate.run(params)
    exported = export.run(params)
    return {"metrics": metrics, "export": exported}


@pytest.mark.parametrize("name,arch_name,grid,dim", [
    ("vit_clipreid_sie_olp_market1501", "vit_b16", (21, 10), 1280),
    ("rn50_clipreid_market1501", "rn50", (16, 8), 3072),
])
def test_a_published_recipe_runs_end_to_end_at_full_size(name, arch_name, grid, dim, market,
                                                         tmp_path, monkeypatch):
    weights = openai_weights(tmp_path / f"{arch_name}.pt", architecture(arch_name))
    params = recipe(name, weights, market, *MINIMAL)
    workdir = tmp_path / "project"
    workdir.mkdir()
    result = run_pipeline(params, workdir, monkeypatch)

    model = load_model(workdir / "models" / "reid.pt")
    card = load_card(workdir / "models" / "reid.pt")
    assert card.feature_dim == dim == result["export"]["feature_dim"]
    assert result["export"]["max_abs_diff"] <= params.export.max_abs_diff
    if arch_name == "vit_b16":
        pos = model.image_encoder.visual.positional_embedding
        assert tuple(pos.shape) == (1 + grid[0] * grid[1], 768)
        assert model.image_encoder.visual.conv1.stride == (12, 12)
        assert tuple(model.camera_embedding.shape) == (6, 768)
        assert card.model.sie.enabled and card.model.sie.coefficient == 1.0
    else:
        pos = model.image_encoder.visual.attnpool.positional_embedding
        assert tuple(pos.shape) == (1 + grid[0] * grid[1], 2048)
        assert card.model.preprocess.mean == [0.485, 0.456, 0.406]
    metrics = json.loads((workdir / "metrics" / "evaluation.json").read_text())
    assert 0.0 <= metrics["mAP"] <= 1.0
    assert "mAP_gap" in metrics or params.evaluation.expected.mAP is None
    with torch.no_grad():
        feats = model.test_features(torch.randn(2, 3, 256, 128),
                                    torch.tensor([0, 5]) if card.model.sie.enabled else None)
    assert tuple(feats.shape) == (2, dim)


def test_the_plain_vit_recipe_has_a_16_by_8_grid(market, tmp_path):
    weights = openai_weights(tmp_path / "ViT-B-16.pt", architecture("vit_b16"))
    params = recipe("vit_clipreid_market1501", weights, market)
    model = build_reid_model(params.model, 4, "person", 6)
    assert tuple(model.image_encoder.visual.positional_embedding.shape) == (129, 768)
    with torch.no_grad():
        assert tuple(model.eval().test_features(torch.randn(1, 3, 256, 128)).shape) == (1, 1280)
