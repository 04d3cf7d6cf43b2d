"""Backbone adaptation, prompt construction, weights loading, and the test descriptor."""

import pytest
import torch

from clipreid.errors import WeightsError
from clipreid.model import build_reid_model
from clipreid.model.backbone import (
    build_clip,
    resize_positional_embedding,
    vit_grid,
)
from clipreid.model.text_encoder import placeholder_positions, prompt_template, tokenize


# --- positional-embedding resizing ------------------------------------------------------
def test_resize_keeps_class_row_and_interpolates_bilinearly():
    pos = torch.tensor([[9.0], [0.0], [1.0], [2.0], [3.0]])  # class row, then 2x2 grid
    out = resize_positional_embedding(pos, (2, 2), (4, 4))
    assert out.shape == (17, 1)
    assert out[0, 0] == 9.0
    grid = out[1:, 0].reshape(4, 4)
    # align_corners=False: source x = (x + 0.5) / 2 - 0.5, clamped to the border
    assert torch.allclose(grid[0], torch.tensor([0.0, 0.25, 0.75, 1.0]))
    assert torch.allclose(grid[:, 0], torch.tensor([0.0, 0.5, 1.5, 2.0]))


def test_resize_to_same_grid_is_identity():
    pos = torch.randn(1 + 14 * 14, 8)
    assert torch.equal(resize_positional_embedding(pos, (14, 14), (14, 14)), pos)


def test_resize_of_vit_b16_grid_to_256x128():
    pos = torch.randn(197, 768)
    assert resize_positional_embedding(pos, (14, 14), (16, 8)).shape == (129, 768)


def test_grid_sizes_of_method_md():
    assert vit_grid((256, 128), 16, 16) == (16, 8)
    assert vit_grid((256, 128), 16, 12) == (21, 10)  # overlapping patches


def test_resize_rejects_wrong_row_count():
    with pytest.raises(ValueError, match="expected 1 \\+ 3x3"):
        resize_positional_embedding(torch.randn(5, 2), (3, 3), (2, 2))


@pytest.mark.parametrize("stride,grid", [(16, (4, 2)), (12, (5, 2))])
def test_vit_adapted_to_non_square_input_and_stride(tiny_vit_cfg, stride, grid):
    tiny_vit_cfg["stride"] = stride
    model = build_reid_model(tiny_vit_cfg, num_classes=3, object_noun="person", num_cameras=2)
    visual = model.image_encoder.visual
    assert visual.conv1.stride == (stride, stride)
    assert visual.positional_embedding.shape[0] == 1 + grid[0] * grid[1]
    feats = model.image_features(torch.randn(2, 3, 64, 32))
    assert feats.main.shape == (2, 64) and feats.proj.shape == (2, 32)


def test_resnet_layer4_has_stride_one(tiny_rn_cfg):
    model = build_reid_model(tiny_rn_cfg, num_classes=3, object_noun="person", num_cameras=2)
    visual = model.image_encoder.visual
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        stem = visual.avgpool(visual.relu3(visual.bn3(visual.conv3(visual.relu2(visual.bn2(
            visual.conv2(visual.relu1(visual.bn1(visual.conv1(x))))))))))
        x3 = visual.layer3(visual.layer2(visual.layer1(stem)))
        x4 = visual.layer4(x3)
    assert x3.shape[-2:] == x4.shape[-2:] == (4, 2)  # output stride 16, not 32
    assert visual.attnpool.positional_embedding.shape[0] == 1 + 4 * 2
    feats = model.image_features(torch.randn(2, 3, 64, 32))
    assert feats.last.shape == (2, 8 * 4 * 4) and feats.main.shape == (2, 8 * 8 * 4)
    assert feats.proj.shape == (2, 32)


# --- prompts ----------------------------------------------------------------------------
@pytest.mark.parametrize("noun", ["person", "vehicle"])
def test_prompt_token_positions(noun):
    tokens = tokenize(prompt_template(noun), 77)
    # <start> a photo of a X X X X noun . <end>
    assert placeholder_positions(tokens) == [5, 6, 7, 8]
    assert tokens[0, 0].item() == 49406 and tokens[0, 11].item() == 49407
    assert int(tokens.argmax()) == 11 and (tokens[0, 12:] == 0).all()


def test_prompts_place_identity_vectors_between_template_embeddings(tiny_vit_cfg):
    clip_model = build_clip(tiny_vit_cfg)
    model = build_reid_model(tiny_vit_cfg, num_classes=5, object_noun="person", num_cameras=0)
    learner = model.prompt_learner
    labels = torch.tensor([3, 0, 3])
    prompts = learner(labels)
    assert prompts.shape == (3, 77, 32)
    assert torch.equal(prompts[:, 5:9], learner.ctx[labels])
    template = clip_model.token_embedding(learner.tokens)[0]
    assert torch.allclose(prompts[0, :5], template[:5])   # <start> a photo of a
    assert torch.allclose(prompts[0, 9:], template[9:])   # person . <end> padding
    assert learner.eot_index == 11
    assert learner.ctx.std().item() == pytest.approx(0.02, rel=0.2)


def test_text_encoder_truncation_is_exact(tiny_vit_cfg):
    """Running only up to the end-of-text token equals the full 77-token causal pass."""
    clip_model = build_clip(tiny_vit_cfg)
    model = build_reid_model(tiny_vit_cfg, num_classes=4, object_noun="person", num_cameras=0)
    enc = model.text_encoder
    labels = torch.arange(4)
    prompts = model.prompt_learner(labels)
    full = prompts + enc.positional_embedding
    full = clip_model.transformer(full.transpose(0, 1)).transpose(0, 1)
    reference = clip_model.ln_final(full)[:, 11] @ clip_model.text_projection
    assert torch.allclose(model.text_features(labels), reference, atol=1e-5)


# --- weights ----------------------------------------------------------------------------
def test_missing_weights_name_the_expected_file(tiny_vit_cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    cache = str(tmp_path / ".cache" / "clip" / "ViT-B-16.pt")  # the conf default
    cfg = {**tiny_vit_cfg, "clip_name": "ViT-B/16", "weights": cache, "source": cache}
    with pytest.raises(WeightsError) as err:
        build_clip(cfg)
    message = str(err.value)
    assert cache in message
    assert "model.weights" in message and "https://" in message
    nope = str(tmp_path / "nope.pt")
    with pytest.raises(WeightsError, match="nope.pt not found"):
        build_clip({**cfg, "weights": nope, "source": nope})


def test_weights_load_from_state_dict_file(tiny_vit_cfg, tmp_path):
    source = build_clip({**tiny_vit_cfg, "init_seed": 7})
    path = tmp_path / "weights.pt"
    torch.save(source.state_dict(), path)
    loaded = build_clip({**tiny_vit_cfg, "clip_name": "ViT-B/16", "weights": str(path),
                         "source": str(path)})
    for (name, a), (_, b) in zip(source.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name


@pytest.fixture
def archive(tiny_vit_cfg, tmp_path):
    """A TorchScript archive of a tiny CLIP (OpenAI's release format), and its model."""
    source = build_clip({**tiny_vit_cfg, "init_seed": 3})
    image, text = torch.randn(1, 3, 32, 32), tokenize("a photo", 77)
    path = tmp_path / "ViT-B-16.pt"
    torch.jit.trace(source, (image, text), check_trace=False).save(str(path))
    return path, source


def test_weights_load_from_torchscript_archive_of_openai(tiny_vit_cfg, archive, monkeypatch):
    """OpenAI's archives are recognised by their SHA-256 (here the planted archive's digest
    stands in for one of clip's list)."""
    from clipreid.model import backbone

    path, source = archive
    monkeypatch.setattr(backbone, "openai_digests", lambda: {backbone.file_sha256(path)})
    loaded = build_clip({**tiny_vit_cfg, "clip_name": "ViT-B/16", "weights": str(path),
                         "source": str(path)})
    assert torch.equal(loaded.visual.proj, source.visual.proj)
    assert torch.equal(loaded.text_projection, source.text_projection)


def test_another_archive_is_refused_before_its_code_can_run(tiny_vit_cfg, archive,
                                                             monkeypatch):
    from clipreid.model import backbone

    path, source = archive
    cfg = {**tiny_vit_cfg, "clip_name": "ViT-B/16", "weights": str(path), "source": str(path)}

    def no_load(*args, **kwargs):
        raise AssertionError("torch.jit.load ran on an untrusted archive")

    with monkeypatch.context() as patch:
        patch.setattr(torch.jit, "load", no_load)
        with pytest.raises(WeightsError, match="not one of OpenAI's released CLIP files.*"
                                               "runs the code inside it"):
            build_clip(cfg)
    assert backbone.file_sha256(path) not in backbone.openai_digests()
    monkeypatch.setenv(backbone.TRUST_ARCHIVE_ENV, "1")  # the user's explicit trust
    assert torch.equal(build_clip(cfg).visual.proj, source.visual.proj)


def test_architecture_mismatch_is_reported(tiny_vit_cfg, tmp_path):
    path = tmp_path / "w.pt"
    torch.save(build_clip(tiny_vit_cfg).state_dict(), path)
    cfg = {**tiny_vit_cfg, "clip_name": "ViT-B/16", "weights": str(path), "source": str(path),
           "architecture": {**tiny_vit_cfg["architecture"], "vision_layers": 3}}
    with pytest.raises(WeightsError, match="does not match model.architecture"):
        build_clip(cfg)


# --- test descriptor --------------------------------------------------------------------
def test_test_features_concatenate_main_and_proj_before_bn_normalised(tiny_vit_cfg):
    model = build_reid_model(tiny_vit_cfg, num_classes=3, object_noun="person", num_cameras=0)
    model.eval()
    x = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        f = model.image_features(x)
        expected = torch.nn.functional.normalize(torch.cat([f.main, f.proj], 1), dim=1)
        got = model.test_features(x)
    assert got.shape == (3, 96)
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.allclose(got.norm(dim=1), torch.ones(3))


def test_sie_adds_scaled_camera_embedding_to_class_token(tiny_vit_cfg):
    tiny_vit_cfg["sie"] = {"enabled": True, "coefficient": 1.0}
    model = build_reid_model(tiny_vit_cfg, num_classes=3, object_noun="person", num_cameras=4)
    model.eval()
    assert model.camera_embedding.shape == (4, 64)
    x = torch.randn(1, 3, 64, 32).repeat(2, 1, 1, 1)
    with torch.no_grad():
        f = model.test_features(x, torch.tensor([0, 3]))
    assert not torch.allclose(f[0], f[1])  # same image, other camera, other descriptor
    with pytest.raises(ValueError, match="camera id"):
        model.test_features(x)


@pytest.mark.parametrize("coefficient", [0.5, 3.0])
def test_the_sie_coefficient_scales_the_camera_embedding(tiny_vit_cfg, coefficient):
    """Coefficient c on embedding E gives the features of coefficient 1 on c * E, and not
    those of coefficient 1 on E (3.0 is the official configs' default; their README's
    commands use 1.0)."""
    tiny_vit_cfg["sie"] = {"enabled": True, "coefficient": coefficient}
    scaled = build_reid_model(tiny_vit_cfg, num_classes=3, object_noun="person", num_cameras=4)
    assert scaled.sie_coefficient == coefficient
    tiny_vit_cfg["sie"] = {"enabled": True, "coefficient": 1.0}
    unit = build_reid_model(tiny_vit_cfg, num_classes=3, object_noun="person", num_cameras=4)
    unit.load_state_dict(scaled.state_dict())
    x, camids = torch.randn(3, 3, 64, 32), torch.tensor([0, 2, 3])
    scaled.eval(), unit.eval()
    with torch.no_grad():
        got = scaled.test_features(x, camids)
        unscaled = unit.test_features(x, camids)
        unit.camera_embedding.mul_(coefficient)
        expected = unit.test_features(x, camids)
    assert torch.allclose(got, expected, atol=1e-6)
    assert not torch.allclose(got, unscaled, atol=1e-4)
