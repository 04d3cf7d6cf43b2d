"""Mixed precision by name (`prompt.amp`, `finetune.amp`, `evaluation.amp`): what each
name means on each device, and bf16 training steps on the CPU against float32."""

import copy
import dataclasses

import pytest
import torch

from clipreid.config.schema import FinetuneConfig, PromptConfig, from_dict
from clipreid.errors import ConfigError
from clipreid.model import build_reid_model
from clipreid.runtime import amp_dtype, autocast, grad_scaler
from clipreid.training import finetune, prompt

CPU = torch.device("cpu")
CUDA = torch.device("cuda")  # a device object only: nothing runs on it

# bf16 keeps 8 significant bits (a relative rounding error up to 2^-9 per operand). On
# these tiny random models the first loss (same weights, forward precision only) moves
# by about 1 %; Adam then turns small gradient differences into full-size steps for
# weights whose gradient is near zero, and after 3 updates the losses differ by up to
# 3 % (measured: 10.27 vs 10.17, then 5.34 vs 5.48). 5 % bounds that; the bf16 and fp32
# losses must also differ, or autocast did not take effect.
RELATIVE_TOLERANCE = 0.05
STEPS = 4


def test_amp_names_resolve_per_device(monkeypatch):
    assert amp_dtype("auto", CPU) is None          # float32 on the CPU unless asked
    assert amp_dtype("off", CUDA) is None
    assert amp_dtype("bf16", CPU) is torch.bfloat16
    assert amp_dtype("fp16", CPU) is torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert amp_dtype("auto", CUDA) is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert amp_dtype("auto", CUDA) is torch.float16
    with pytest.raises(ConfigError, match="amp 'true' must be one of auto, bf16, fp16, off"):
        amp_dtype("true", CPU)


def test_only_fp16_scales_gradients():
    assert grad_scaler(CPU, "fp16").is_enabled()
    for mode in ("bf16", "off", "auto"):
        assert not grad_scaler(CPU, mode).is_enabled()


def test_autocast_computes_in_the_named_dtype():
    a, b = torch.randn(4, 8), torch.randn(8, 4)
    with autocast(CPU, "bf16"):
        assert (a @ b).dtype is torch.bfloat16
    with autocast(CPU, "auto"):
        assert (a @ b).dtype is torch.float32


FINETUNE = from_dict(FinetuneConfig, {
    "num_identities": 2, "num_instances": 2, "lr": 1e-3, "id_loss_weight": 0.25,
    "augmentation": {"flip_p": 0.5, "padding": 2, "erasing_p": 0.5}})


def finetune_losses(model, amp: str) -> list[float]:
    model = copy.deepcopy(model)
    named = finetune.freeze_for_finetune(model)
    optimizer = finetune.make_optimizer(named, FINETUNE)
    cfg = dataclasses.replace(FINETUNE, amp=amp)
    scaler = grad_scaler(CPU, amp)
    generator = torch.Generator().manual_seed(0)
    targets = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    text = torch.randn(4, 32, generator=generator)
    model.train()
    losses = []
    for _ in range(STEPS):
        images = torch.randn(8, 3, 64, 32, generator=generator)
        parts = finetune.train_step(finetune.ImageForward(model), optimizer, scaler, images, targets, None, text,
                                    cfg, CPU)
        losses.append(parts["loss"])
    return losses


def test_bf16_stage2_steps_stay_within_tolerance_of_fp32(tiny_vit_cfg):
    torch.manual_seed(0)
    model = build_reid_model(tiny_vit_cfg, num_classes=4, object_noun="person", num_cameras=2)
    fp32, bf16 = finetune_losses(model, "off"), finetune_losses(model, "bf16")
    assert fp32 != bf16    # autocast took effect
    for a, b in zip(fp32, bf16):
        assert b == pytest.approx(a, rel=RELATIVE_TOLERANCE)


def test_bf16_stage1_steps_stay_within_tolerance_of_fp32(tiny_vit_cfg):
    torch.manual_seed(0)
    model = build_reid_model(tiny_vit_cfg, num_classes=4, object_noun="person", num_cameras=2)
    cfg = from_dict(PromptConfig, {})   # the published lr, 2e-3
    generator = torch.Generator().manual_seed(0)
    feats = torch.randn(8, 32, generator=generator)
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    runs = {}
    for amp in ("off", "bf16"):
        trained = copy.deepcopy(model)
        optimizer = prompt.make_optimizer(prompt.freeze_for_prompt(trained), cfg)
        scaler = grad_scaler(CPU, amp)
        runs[amp] = [prompt.train_step(trained, optimizer, scaler, feats, labels, CPU, amp)
                     for _ in range(STEPS)]
    assert runs["off"] != runs["bf16"]
    for a, b in zip(runs["off"], runs["bf16"]):
        assert b == pytest.approx(a, rel=RELATIVE_TOLERANCE)
