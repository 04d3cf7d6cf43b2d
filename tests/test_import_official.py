"""`clipreid import-official`: checkpoints in the official code's format (its key names,
written out here from model/make_model_clipreid.py, at small widths) land where they
belong, and the imported model computes what those tensors compute."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

import clipreid
from clipreid.cli import main
from clipreid.config.compose import compose
from clipreid.dataset.synthetic import write_synthetic
from clipreid.stages import evaluate, export, prepare, validate
from clipreid.config.schema import (ArchitectureConfig, ModelConfig, Params, SieConfig,
                                    from_dict, parse_params)
from clipreid.errors import WeightsError
from clipreid.model.backbone import adapt_resnet, adapt_vit, build_clip
from clipreid.official import import_official
from clipreid.model.saved import load_card

NUM_CLASSES, NUM_CAMERAS = 5, 3
VIT = ModelConfig(input_size=[64, 32], stride=12, sie=SieConfig(enabled=True, coefficient=3.0))
RN = ModelConfig(name="rn_tiny", arch="resnet", input_size=[64, 32],
                 preprocess=from_dict(type(ModelConfig().preprocess),
                                      {"mean": [0.485, 0.456, 0.406],
                                       "std": [0.229, 0.224, 0.225]}),
                 architecture=ArchitectureConfig(vision_layers=[1, 1, 1, 1], vision_width=16))


def params_for(model: ModelConfig, method: str = "clipreid") -> Params:
    return dataclasses.replace(Params(), model=model, method=method, dataset=dataclasses.replace(
        Params().dataset, num_cameras=NUM_CAMERAS))


def official_state(model_cfg: ModelConfig, text_side: bool = True, seed: int = 0) -> dict:
    """A state dict with the official names and shapes, random values."""
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=generator) * 0.05

    clip_model = build_clip(model_cfg, load_weights=False)
    visual = clip_model.visual
    if model_cfg.arch == "vit":
        adapt_vit(visual, model_cfg.input_size, model_cfg.stride)
        main_dim, proj_dim = visual.ln_post.normalized_shape[0], visual.proj.shape[1]
    else:
        adapt_resnet(visual, model_cfg.input_size)
        main_dim, proj_dim = visual.layer4[-1].bn3.num_features, visual.attnpool.c_proj.out_features
    state = {f"image_encoder.{k}": rand(*v.shape) if v.is_floating_point() else v.clone()
             for k, v in visual.state_dict().items()}
    for key in [k for k in state if k.endswith("running_var")]:  # BN variances are positive
        state[key] = 1 + state[key].abs()
    if model_cfg.sie.enabled:
        state["cv_embed"] = rand(NUM_CAMERAS, main_dim)
    for neck, dim in (("bottleneck", main_dim), ("bottleneck_proj", proj_dim)):
        state.update({f"{neck}.weight": 1 + rand(dim), f"{neck}.bias": torch.zeros(dim),
                      f"{neck}.running_mean": rand(dim), f"{neck}.running_var": 1 + rand(dim).abs(),
                      f"{neck}.num_batches_tracked": torch.tensor(7)})
    state["classifier.weight"] = rand(NUM_CLASSES, main_dim)
    state["classifier_proj.weight"] = rand(NUM_CLASSES, proj_dim)
    if text_side:
        width = clip_model.token_embedding.weight.shape[1]
        state["prompt_learner.cls_ctx"] = rand(NUM_CLASSES, 4, width)
        state["prompt_learner.token_prefix"] = rand(1, 5, width)
        state["prompt_learner.token_suffix"] = rand(1, clip_model.context_length - 9, width)
        state["text_encoder.positional_embedding"] = rand(clip_model.context_length, width)
        state["text_encoder.text_projection"] = rand(*clip_model.text_projection.shape)
        for part in ("transformer", "ln_final"):
            state.update({f"text_encoder.{part}.{k}": rand(*v.shape)
                          for k, v in getattr(clip_model, part).state_dict().items()})
    return state


def direct_test_features(model_cfg, state, images, camids):
    """cat(main, proj), L2-normalised, computed with CLIP's own modules loaded with the
    official tensors (the official forward, written out)."""
    clip_model = build_clip(model_cfg, load_weights=False)
    v = clip_model.visual
    if model_cfg.arch == "vit":
        adapt_vit(v, model_cfg.input_size, model_cfg.stride)
    else:
        adapt_resnet(v, model_cfg.input_size)
    v.load_state_dict({k[len("image_encoder."):]: t for k, t in state.items()
                       if k.startswith("image_encoder.")})
    v.eval()
    with torch.no_grad():
        if model_cfg.arch == "vit":
            x = v.conv1(images).flatten(2).transpose(1, 2)
            cls = v.class_embedding.expand(x.shape[0], 1, -1)
            if model_cfg.sie.enabled:
                cls = cls + model_cfg.sie.coefficient * state["cv_embed"][camids].unsqueeze(1)
            x = v.ln_pre(torch.cat([cls, x], 1) + v.positional_embedding)
            x = v.transformer(x.transpose(0, 1)).transpose(0, 1)
            main = v.ln_post(x[:, 0])
            proj = main @ v.proj
        else:
            x = v.relu3(v.bn3(v.conv3(v.relu2(v.bn2(v.conv2(v.relu1(v.bn1(v.conv1(images)))))))))
            x4 = v.layer4(v.layer3(v.layer2(v.layer1(v.avgpool(x)))))
            main = x4.mean(dim=(2, 3))
            proj = v.attnpool(x4)
    return F.normalize(torch.cat([main, proj], 1), dim=1)


def direct_text_features(model_cfg, state, labels):
    """The official text forward: the whole 77-token context, EOT row, projection."""
    clip_model = build_clip(model_cfg, load_weights=False)
    clip_model.transformer.load_state_dict({k[len("text_encoder.transformer."):]: t
                                            for k, t in state.items()
                                            if k.startswith("text_encoder.transformer.")})
    clip_model.ln_final.load_state_dict({k[len("text_encoder.ln_final."):]: t
                                         for k, t in state.items()
                                         if k.startswith("text_encoder.ln_final.")})
    b = len(labels)
    prompts = torch.cat([state["prompt_learner.token_prefix"].expand(b, -1, -1),
                         state["prompt_learner.cls_ctx"][labels],
                         state["prompt_learner.token_suffix"].expand(b, -1, -1)], 1)
    with torch.no_grad():
        x = prompts + state["text_encoder.positional_embedding"]
        x = clip_model.transformer(x.transpose(0, 1)).transpose(0, 1)
        x = clip_model.ln_final(x)
        eot = 11  # "A photo of a X X X X person." tokenises to EOT at position 11
        return x[:, eot] @ state["text_encoder.text_projection"]


WHERE = {  # official name -> our name, for the test's check (written from the official code)
    "cv_embed": "camera_embedding",
    "prompt_learner.cls_ctx": "prompt_learner.ctx",
    "prompt_learner.token_prefix": "prompt_learner.prefix",
    "prompt_learner.token_suffix": "prompt_learner.suffix",
}


def ours_of(key: str) -> str:
    if key in WHERE:
        return WHERE[key]
    if key.startswith("image_encoder."):
        return "image_encoder.visual." + key[len("image_encoder."):]
    return key  # bottleneck*, classifier*, text_encoder.* keep their names


@pytest.mark.parametrize("model_cfg,prefix", [(VIT, ""), (VIT, "module."), (RN, "module.")],
                         ids=["vit-sie-olp", "vit-sie-olp-ddp", "rn50-shaped"])
def test_every_official_tensor_lands_where_it_belongs(model_cfg, prefix, tmp_path):
    state = official_state(model_cfg)
    ckpt = tmp_path / "official.pth"
    torch.save({prefix + k: v for k, v in state.items()}, ckpt)
    summary = import_official(ckpt, params_for(model_cfg), tmp_path / "out")
    assert summary["tensors"] == len(state)
    model = clipreid.load_model(tmp_path / "out" / "reid.pt")
    ours = model.state_dict()
    for key, tensor in state.items():
        assert torch.equal(ours[ours_of(key)], tensor), key
    groups = {k.split(".")[0] for k in state}
    assert groups >= {"image_encoder", "bottleneck", "bottleneck_proj", "classifier",
                      "classifier_proj", "prompt_learner", "text_encoder"}
    assert ("cv_embed" in state) == model_cfg.sie.enabled

    images = torch.randn(3, 3, *model_cfg.input_size)
    camids = torch.tensor([0, 2, 1])
    with torch.no_grad():
        got = model.test_features(images, camids if model_cfg.sie.enabled else None)
    assert torch.allclose(got, direct_test_features(model_cfg, state, images, camids),
                          atol=1e-5)
    labels = torch.tensor([4, 0, 2])
    with torch.no_grad():
        text = model.text_features(labels)
    assert torch.allclose(text, direct_text_features(model_cfg, state, labels), atol=1e-4)

    card = load_card(tmp_path / "out" / "reid.pt")
    assert (card.num_classes, card.method, card.model.stride) == (
        NUM_CLASSES, "clipreid", model_cfg.stride)
    prompts = torch.load(tmp_path / "out" / "prompts.pt", weights_only=True)
    assert torch.allclose(prompts["text_features"][labels], text, atol=1e-6)


def test_a_baseline_checkpoint_has_no_text_side(tmp_path):
    cfg = dataclasses.replace(VIT, sie=SieConfig())
    state = official_state(cfg, text_side=False)
    torch.save(state, tmp_path / "base.pth")
    with pytest.raises(WeightsError, match="baseline checkpoint"):
        import_official(tmp_path / "base.pth", params_for(cfg), tmp_path / "clipreid")
    summary = import_official(tmp_path / "base.pth", params_for(cfg, "baseline"), tmp_path / "b")
    assert summary["written"] == [str(tmp_path / "b" / "reid.pt")]
    model = clipreid.load_model(tmp_path / "b" / "reid.pt")
    assert torch.equal(model.classifier.weight, state["classifier.weight"])


def test_shape_mismatches_are_listed_with_the_config_key_before_anything_loads(tmp_path):
    state = official_state(VIT)  # stride 12 (OLP) and SIE
    torch.save(state, tmp_path / "olp.pth")
    plain = dataclasses.replace(VIT, stride=16, sie=SieConfig())
    with pytest.raises(WeightsError) as info:
        import_official(tmp_path / "olp.pth", params_for(plain), tmp_path / "out")
    text = str(info.value)
    assert "image_encoder.positional_embedding (11, 128) vs ours " \
           "image_encoder.visual.positional_embedding (9, 128)" in text
    assert "model.input_size and model.stride" in text
    assert "cv_embed (3, 128)" in text and "model.sie.enabled=true" in text
    assert not (tmp_path / "out").exists()

    wider = dataclasses.replace(VIT, architecture=ArchitectureConfig(vision_width=64))
    with pytest.raises(WeightsError, match=r"image_encoder.conv1.weight \(128, 3, 16, 16\) vs "
                                           r"ours .*\(64, 3, 16, 16\): set model"):
        import_official(tmp_path / "olp.pth", params_for(wider), tmp_path / "out")


def test_the_command_imports_with_a_named_recipe(tmp_path, monkeypatch, capsys):
    """A recipe's SIE/OLP settings reach the import (with the tiny backbone swapped in, as
    the full-size one is exercised by tests/test_full_size.py)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    cfg = dataclasses.replace(VIT, stride=12, sie=SieConfig(enabled=True, coefficient=1.0),
                              input_size=[256, 128])
    state = official_state(dataclasses.replace(cfg), seed=1)
    state["cv_embed"] = torch.randn(6, 128)  # Market-1501: 6 cameras
    torch.save(state, tmp_path / "ViT-B-16_60.pth")
    monkeypatch.chdir(root)
    code = main(["import-official", str(tmp_path / "ViT-B-16_60.pth"), "--experiment",
                 "vit_clipreid_sie_olp_market1501", "-o", str(tmp_path / "out"),
                 "-S", "model=vit_tiny", "-S", "model.input_size=[256,128]",
                 "-S", "model.stride=12"])
    assert code == 0, capsys.readouterr().err
    card = load_card(tmp_path / "out" / "reid.pt")
    assert (card.model.stride, card.model.sie.enabled, card.num_cameras) == (12, True, 6)
    assert "imported" in capsys.readouterr().out

    # evaluate and export accept the imported file, with params composed for the recipe
    data = tmp_path / "Market-1501"
    write_synthetic(data, num_train_ids=3, num_test_ids=3, num_cameras=6,
                    train_images_per_id=[2, 2], train_cameras_per_id=[2, 2],
                    test_cameras_per_id=[2, 2], query_cameras_per_id=[1, 1],
                    gallery_images_per_id=[2, 2], num_distractors=0, num_junk=0)
    params = parse_params(compose(root / "conf", [
        "experiment=vit_clipreid_sie_olp_market1501", f"dataset.root={data}", "model=vit_tiny",
        "model.input_size=[256,128]", "model.stride=12", "num_workers=0", "device=cpu",
        "export.num_images=2"]))
    work = tmp_path / "project"
    work.mkdir()
    monkeypatch.chdir(work)
    prepare.run(params)
    assert validate.run(params).ok
    metrics = evaluate.run(params, model_path=tmp_path / "out" / "reid.pt")
    # the recipe's published mAP is known, but this run uses another backbone: no gap
    assert "mAP_gap" not in metrics
    report = json.loads((work / "reports" / "evaluation.json").read_text())["expected"]
    assert report["comparable"] is False and "model.name='vit_tiny'" in report["differs"][0]
    exported = export.run(params, model_path=tmp_path / "out" / "reid.pt")
    assert exported["feature_dim"] == 256


def test_files_that_are_no_training_checkpoint_are_named(tmp_path):
    """OpenAI's weights (a TorchScript archive) and pickles with objects are refused with
    what to pass instead; a camera table of another size names dataset.num_cameras."""
    import zipfile

    archive = tmp_path / "ViT-B-16.pt"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ViT-B-16/code/__torch__.py", "")
    with pytest.raises(WeightsError, match="TorchScript archive.*training script saves"):
        import_official(archive, params_for(VIT), tmp_path / "out")

    import argparse

    pickled = tmp_path / "objects.pth"
    torch.save({"args": argparse.Namespace(lr=1.0), "weight": torch.zeros(2)}, pickled)
    with pytest.raises(WeightsError, match="re-save its tensors as a plain state dict"):
        import_official(pickled, params_for(VIT), tmp_path / "out")

    state = official_state(VIT)
    state["cv_embed"] = torch.randn(NUM_CAMERAS * 4, 128)  # cameras x views (SIE_VIEW)
    torch.save(state, tmp_path / "views.pth")
    with pytest.raises(WeightsError, match="camera table has 12 rows, dataset.num_cameras is 3"):
        import_official(tmp_path / "views.pth", params_for(VIT), tmp_path / "out")
    assert not (tmp_path / "out").exists()
