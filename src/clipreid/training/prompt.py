"""Stage 1: learn per-identity prompt vectors against the frozen CLIP (method.md).

Image features (the projected class token, unnormalised) are computed once for every
training image; each epoch then runs over a random permutation of them in batches, and
only ``prompt_learner.ctx`` is updated, with L = SupCon(image->text) + SupCon(text->image).

Under torchrun the feature cache is computed in shares and gathered, and each process
computes the text features of its share of every batch; SupCon then sees the gathered
batch, and the prompt vectors' gradients are averaged, so the update is the
single-process one.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Sequence

import torch

from clipreid import distributed
from clipreid.features import extract
from clipreid.config.schema import PromptConfig, coerce
from clipreid.losses import supcon_loss
from clipreid.model import ClipReID
from clipreid.training import checkpoint
from clipreid.training.live import EpochLog
from clipreid.runtime import autocast, grad_scaler, progress
from clipreid.training.run import RunSettings
from clipreid.training.schedules import cosine_with_warmup

log = logging.getLogger(__name__)


@dataclass
class PromptResult:
    prompt_state: dict          # prompt_learner state dict (vectors, template embeddings)
    text_features: torch.Tensor  # (num_ids, D), one row per train label
    history: list


def freeze_for_prompt(model: ClipReID) -> list[torch.nn.Parameter]:
    """Everything frozen but the prompt vectors, which are returned."""
    for p in model.parameters():
        p.requires_grad_(False)
    model.prompt_learner.ctx.requires_grad_(True)
    return [model.prompt_learner.ctx]


def make_optimizer(params, cfg: PromptConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def batch_text_features(model: ClipReID, labels: torch.Tensor) -> torch.Tensor:
    """The text features of a batch's labels; under torchrun each process computes an
    equal share (the last label repeated to fill it) and the shares are gathered, with
    gradients, in order."""
    process = distributed.current()
    if process.world_size == 1:
        return model.text_features(labels)
    size = math.ceil(len(labels) / process.world_size)
    filled = torch.cat([labels, labels[-1:].expand(size * process.world_size - len(labels))])
    mine = filled[process.rank * size: (process.rank + 1) * size]
    return distributed.all_gather(model.text_features(mine))[: len(labels)]


def train_step(model: ClipReID, optimizer, scaler, image_feats: torch.Tensor,
               labels: torch.Tensor, device: torch.device, amp: str) -> float:
    """One stage-1 update on a batch of cached image features; returns the loss. Under
    torchrun every process gets the whole batch and computes the same loss."""
    with autocast(device, amp):
        text_feats = batch_text_features(model, labels)
    text_feats = text_feats.float()
    loss = supcon_loss(image_feats, text_feats, labels, labels) + supcon_loss(
        text_feats, image_feats, labels, labels
    )
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    # Each process's share of the gradient arrives n times over (every process's
    # identical loss flows back through the gather): the mean over processes is the
    # single-process gradient.
    distributed.sync_gradients([model.prompt_learner.ctx])
    scaler.step(optimizer)
    scaler.update()
    return float(loss.detach())


@torch.no_grad()
def all_text_features(model: ClipReID, num_classes: int, device, batch_size: int = 256):
    model.eval()
    out = []
    for start in range(0, num_classes, batch_size):
        labels = torch.arange(start, min(start + batch_size, num_classes), device=device)
        out.append(model.text_features(labels).float().cpu())
    return torch.cat(out)


def train_prompts(model: ClipReID, paths: Sequence[str], labels: Sequence[int],
                  camids: Sequence[int], cfg: PromptConfig, run: RunSettings) -> PromptResult:
    """Run stage 1, checkpointing every epoch and resuming from ``run.checkpoint_dir``."""
    cfg = coerce(PromptConfig, cfg, "prompt")
    device = run.device
    model.to(device).eval()
    params = freeze_for_prompt(model)
    optimizer = make_optimizer(params, cfg)
    scaler = grad_scaler(device, cfg.amp)
    start_epoch, history = checkpoint.resume(
        run, optimizer, scaler, lambda state: model.prompt_learner.ctx.data.copy_(state["ctx"]),
        "prompt")
    epoch_log = EpochLog(run.live_dir, history, enabled=run.process.is_main)

    # The frozen CLIP image encoder as it is: no SIE camera embedding (an untrained table
    # at this point), as the authors' stage 1 computes these features.
    # Under torchrun, each process computes a share of it; the shares are gathered.
    start, stop = distributed.shard(len(paths), run.process)
    image_feats = distributed.gather_shards(extract(
        lambda x, c: model.image_encoder(x).proj,
        paths[start:stop], camids[start:stop], run.input_size, run.preprocess,
        cfg.feature_batch_size, device, run.num_workers, cfg.amp,
        "prompt: caching image features",
    ).to(device), len(paths))
    targets = torch.as_tensor(list(labels), device=device)
    n, batch = len(targets), int(cfg.batch_size)

    epochs = int(cfg.epochs)
    for epoch in progress(range(start_epoch, epochs + 1), desc="prompt", unit="epoch",
                          initial=start_epoch - 1, total=epochs,
                          disable=not run.process.is_main):
        lr = cosine_with_warmup(epoch, cfg.lr, epochs, cfg.warmup_epochs,
                                cfg.warmup_lr, cfg.min_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        generator = torch.Generator().manual_seed(run.seed * 100003 + epoch)
        order = torch.randperm(n, generator=generator).to(device)
        total, steps = 0.0, 0
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            total += train_step(model, optimizer, scaler, image_feats[idx], targets[idx],
                                device, cfg.amp)
            steps += 1
        epoch_log.log({"loss": total / max(steps, 1), "lr": lr})
        checkpoint.save_epoch(run, epoch, optimizer, scaler, epoch_log.history,
                              ctx=model.prompt_learner.ctx.detach().cpu())
    epoch_log.close()
    num_classes = model.prompt_learner.ctx.shape[0]
    return PromptResult(
        prompt_state={k: v.detach().cpu() for k, v in model.prompt_learner.state_dict().items()},
        text_features=all_text_features(model, num_classes, device),
        history=epoch_log.history,
    )
