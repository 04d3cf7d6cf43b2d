"""Stage 1 updates only the prompt vectors, stage 2 nothing on the text side; both resume
from their last checkpoint after an interruption exactly where they stopped."""

import copy

import numpy as np
import pytest
import torch
from PIL import Image

from clipreid.model import build_reid_model
import dataclasses

from clipreid.config.schema import FinetuneConfig, PreprocessConfig, PromptConfig, from_dict
from clipreid.training import checkpoint, finetune, prompt
from clipreid.training.live import EpochLog
from clipreid.training.run import RunSettings

CPU = torch.device("cpu")

PROMPT = from_dict(PromptConfig, {"epochs": 3, "batch_size": 8, "lr": 1e-2, "weight_decay": 1e-4, "warmup_epochs": 1,
          "warmup_lr": 1e-3, "min_lr": 1e-6, "feature_batch_size": 16, "amp": "auto"})
FINETUNE = from_dict(FinetuneConfig, {"epochs": 3, "num_identities": 2, "num_instances": 2, "lr": 1e-3,
          "bias_lr_factor": 2.0, "weight_decay": 1e-4, "weight_decay_bias": 1e-4,
          "milestones": [2], "gamma": 0.1, "warmup_epochs": 1, "warmup_factor": 0.1,
          "id_loss_weight": 0.25, "triplet_loss_weight": 1.0, "i2t_loss_weight": 1.0,
          "triplet_margin": 0.3, "label_smoothing": 0.1,
          "augmentation": {"flip_p": 0.5, "padding": 2, "erasing_p": 0.5}, "amp": "auto"})


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """4 identities x 3 images (64x32 JPEGs), labels and cameras."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths, labels, camids = [], [], []
    for label in range(4):
        colour = rng.integers(0, 255, size=3)
        for i in range(3):
            pixels = np.clip(colour + rng.normal(0, 20, size=(64, 32, 3)), 0, 255)
            path = root / f"{label}_{i}.jpg"
            Image.fromarray(pixels.astype(np.uint8)).save(path)
            paths.append(str(path))
            labels.append(label)
            camids.append(i % 2)
    return paths, labels, camids


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def changed_keys(before, model):
    after = model.state_dict()
    return {k for k in before if not torch.equal(before[k], after[k])}


def test_stage1_step_changes_only_the_prompt_vectors(tiny_vit_cfg):
    model = build_reid_model(tiny_vit_cfg, num_classes=4, object_noun="person", num_cameras=2)
    params = prompt.freeze_for_prompt(model)
    optimizer = prompt.make_optimizer(params, PROMPT)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    before = snapshot(model)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    loss = prompt.train_step(model, optimizer, scaler, torch.randn(6, 32), labels,
                                      CPU, amp="off")
    assert loss > 0
    assert changed_keys(before, model) == {"prompt_learner.ctx"}
    assert all(p.requires_grad is False for n, p in model.named_parameters()
               if n != "prompt_learner.ctx")


def test_stage2_step_changes_nothing_on_the_text_side(tiny_vit_cfg):
    model = build_reid_model(tiny_vit_cfg, num_classes=4, object_noun="person", num_cameras=2)
    named = finetune.freeze_for_finetune(model)
    optimizer = finetune.make_optimizer(named, FINETUNE)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    before = snapshot(model)
    model.train()
    targets = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    parts = finetune.train_step(finetune.ImageForward(model), optimizer, scaler, torch.randn(8, 3, 64, 32),
                                   targets, None, torch.randn(4, 32), FINETUNE, CPU)
    assert parts["loss"] > 0
    changed = changed_keys(before, model)
    text_side = {k for k in before if k.startswith(("text_encoder.", "prompt_learner."))}
    assert text_side and not (changed & text_side)
    image_params = {n for n, _ in model.image_side_parameters()}
    moved = changed & image_params
    assert "image_encoder.visual.conv1.weight" in moved and "classifier.weight" in moved
    assert "bottleneck.bias" not in moved and torch.all(model.bottleneck.bias == 0)


def test_stage2_bias_groups_get_factor_and_their_weight_decay(tiny_vit_cfg):
    model = build_reid_model(tiny_vit_cfg, num_classes=4, object_noun="person", num_cameras=0)
    named = finetune.freeze_for_finetune(model)
    optimizer = finetune.make_optimizer(named, dataclasses.replace(FINETUNE, weight_decay_bias=0.5))
    by_param = {id(g["params"][0]): g for g in optimizer.param_groups}
    for name, p in named:
        group = by_param[id(p)]
        if "bias" in name:
            assert group["base_lr"] == pytest.approx(2e-3) and group["weight_decay"] == 0.5
        else:
            assert group["base_lr"] == pytest.approx(1e-3) and group["weight_decay"] == 1e-4
    finetune.set_lr(optimizer, 0, FINETUNE)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * optimizer.param_groups[0]["base_lr"])


def run_settings(tmp, fingerprint):
    return RunSettings(input_size=[64, 32], preprocess=PreprocessConfig(), device=CPU, seed=0,
                       checkpoint_dir=str(tmp / "ckpt"),
                       fingerprint=fingerprint, live_dir=str(tmp / "live"),
                       decoded_dir=str(tmp / "decoded"))


class Interrupt(Exception):
    pass


def interrupt_after(monkeypatch, epochs_done):
    """Make the next run die right after its ``epochs_done``-th epoch's checkpoint."""
    original = checkpoint.save_checkpoint
    calls = {"n": 0}

    def save_then_maybe_die(directory, state):
        original(directory, state)
        calls["n"] += 1
        if calls["n"] == epochs_done:
            raise Interrupt()

    monkeypatch.setattr(checkpoint, "save_checkpoint", save_then_maybe_die)


def run_stage1(cfg, images, tmp, fingerprint="fp"):
    model = build_reid_model(cfg, num_classes=4, object_noun="person", num_cameras=2)
    paths, labels, camids = images
    result = prompt.train_prompts(model, paths, labels, camids, PROMPT,
                                           run_settings(tmp, fingerprint))
    return result


def test_stage1_resumes_after_interruption(tiny_vit_cfg, images, tmp_path, monkeypatch):
    straight = run_stage1(tiny_vit_cfg, images, tmp_path / "a")
    with monkeypatch.context() as m:
        interrupt_after(m, 2)
        with pytest.raises(Interrupt):
            run_stage1(tiny_vit_cfg, images, tmp_path / "b")
    resumed = run_stage1(tiny_vit_cfg, images, tmp_path / "b")
    assert torch.allclose(resumed.prompt_state["ctx"], straight.prompt_state["ctx"], atol=1e-6)
    assert torch.allclose(resumed.text_features, straight.text_features, atol=1e-5)
    assert [round(r["loss"], 5) for r in resumed.history] == [
        round(r["loss"], 5) for r in straight.history]
    assert len(resumed.history) == 3
    lines = (tmp_path / "b" / "live" / "plots" / "metrics" / "loss.tsv").read_text().splitlines()
    assert len(lines) == 1 + 3  # header + every epoch, the ones before the interruption too


def test_stage1_ignores_a_checkpoint_of_another_configuration(tiny_vit_cfg, images, tmp_path,
                                                               monkeypatch):
    with monkeypatch.context() as m:
        interrupt_after(m, 2)
        with pytest.raises(Interrupt):
            run_stage1(tiny_vit_cfg, images, tmp_path, fingerprint="old")
    calls = []
    original = prompt.train_step
    monkeypatch.setattr(prompt, "train_step",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    run_stage1(tiny_vit_cfg, images, tmp_path, fingerprint="new")
    assert len(calls) == 3 * 2  # all 3 epochs (12 images / batch 8 = 2 steps each)


def run_stage2(cfg, images, tmp):
    model = build_reid_model(cfg, num_classes=4, object_noun="person", num_cameras=2)
    paths, labels, camids = images
    text_features = torch.randn(4, 32, generator=torch.Generator().manual_seed(1))
    finetune.train_finetune(model, text_features, paths, labels, camids, FINETUNE,
                          run_settings(tmp, "fp"))
    return model


def test_stage2_resumes_after_interruption(tiny_vit_cfg, images, tmp_path, monkeypatch):
    straight = run_stage2(tiny_vit_cfg, images, tmp_path / "a")
    with monkeypatch.context() as m:
        interrupt_after(m, 1)
        with pytest.raises(Interrupt):
            run_stage2(tiny_vit_cfg, images, tmp_path / "b")
    resumed = run_stage2(tiny_vit_cfg, images, tmp_path / "b")
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-5), name


def test_epoch_log_replays_history(tmp_path):
    log = EpochLog(str(tmp_path), [{"loss": 3.0}, {"loss": 2.0}])
    log.log({"loss": 1.0})
    log.close()
    rows = (tmp_path / "plots" / "metrics" / "loss.tsv").read_text().splitlines()
    assert [r.split("\t")[-1] for r in rows[1:]] == ["3.0", "2.0", "1.0"]
    assert copy.deepcopy(log.history) == [{"loss": 3.0}, {"loss": 2.0}, {"loss": 1.0}]


def test_stage1_features_ignore_the_untrained_camera_embeddings(tiny_vit_cfg, images, tmp_path):
    """With SIE on, stage 1 still reads the plain frozen encoder (as the authors do)."""
    tiny_vit_cfg["sie"] = {"enabled": True, "coefficient": 3.0}
    model = build_reid_model(tiny_vit_cfg, num_classes=4, object_noun="person", num_cameras=2)
    seen = []
    original = model.image_encoder.forward
    model.image_encoder.forward = lambda x, cam=None: seen.append(cam) or original(x, cam)
    paths, labels, camids = images
    prompt.train_prompts(model, paths, labels, camids, dataclasses.replace(PROMPT, epochs=1),
                                  run_settings(tmp_path, "fp"))
    assert seen and all(cam is None for cam in seen)
