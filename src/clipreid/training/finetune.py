"""Stage 2: fine-tune the image encoder against the frozen text features (method.md).

Loss = w_id * (CE_ls(classifier) + CE_ls(classifier_proj))
     + w_tri * (triplet(last) + triplet(main) + triplet(proj))
     + w_i2t * CE_ls(proj @ text_features^T),
on P x K batches with the training augmentation; the text side stays frozen. The paper's
baseline (``method: baseline``) has no text features: its loss is the first two terms.

Under torchrun the model trains as DistributedDataParallel: each process takes P / n of
every batch's identities; the triplet loss mines positives and negatives in the global
batch (gathered features) and the BN necks normalise with the global batch's statistics
(distributed.GlobalBatchNorm1d), so the update is the single-process one."""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from clipreid import distributed

from clipreid.loader.augment import BatchAugment
from clipreid.loader.decoded import decoded_images
from clipreid.loader.sampler import PKBatchSampler
from clipreid.config.schema import FinetuneConfig, coerce
from clipreid.losses import batch_hard_triplet_loss, cross_entropy_label_smooth
from clipreid.model import ClipReID
from clipreid.training import checkpoint
from clipreid.training.live import EpochLog
from clipreid.runtime import autocast, grad_scaler, progress
from clipreid.training.run import RunSettings
from clipreid.training.schedules import warmup_multistep_factor

log = logging.getLogger(__name__)


def freeze_for_finetune(model: ClipReID) -> list[tuple[str, torch.nn.Parameter]]:
    """Text side frozen; image side trainable (the BN necks' biases stay frozen at 0).
    Returns the trainable named parameters."""
    for _, p in model.text_side_parameters():
        p.requires_grad_(False)
    trainable = []
    for name, p in model.image_side_parameters():
        frozen_bias = name in ("bottleneck.bias", "bottleneck_proj.bias")
        p.requires_grad_(not frozen_bias)
        if not frozen_bias:
            trainable.append((name, p))
    return trainable


def make_optimizer(named_params, cfg: FinetuneConfig) -> torch.optim.Optimizer:
    """Adam; biases get ``bias_lr_factor`` x lr and ``weight_decay_bias``."""
    groups = []
    for name, p in named_params:
        is_bias = "bias" in name
        groups.append({
            "params": [p],
            "base_lr": cfg.lr * (cfg.bias_lr_factor if is_bias else 1.0),
            "weight_decay": cfg.weight_decay_bias if is_bias else cfg.weight_decay,
        })
    for group in groups:
        group["lr"] = group["base_lr"]
    return torch.optim.Adam(groups, lr=cfg.lr)


class ImageForward(nn.Module):
    """Stage 2's trainable forward: image features and both classifiers' logits, as one
    module (what DistributedDataParallel wraps)."""

    def __init__(self, model: ClipReID):
        super().__init__()
        self.model = model

    def forward(self, images, camids):
        feats = self.model.image_features(images, camids)
        return (feats, *self.model.classify(feats))


def finetune_loss(forward: nn.Module, images, targets, camids, text_features,
                  cfg: FinetuneConfig):
    """The weighted stage-2 loss of one batch and its parts (for logging); without
    ``text_features`` (the baseline) there is no image-to-text term. ``forward`` is an
    :class:`ImageForward` (DDP-wrapped under torchrun)."""
    feats, logits, logits_proj = forward(images, camids)
    eps = cfg.label_smoothing
    id_loss = cross_entropy_label_smooth(logits, targets, eps) + cross_entropy_label_smooth(
        logits_proj, targets, eps)
    everyone = distributed.all_gather(targets)
    tri_loss = sum(batch_hard_triplet_loss(f, targets, cfg.triplet_margin,
                                           distributed.all_gather(f), everyone)
                   for f in (feats.last, feats.main, feats.proj))
    loss = cfg.id_loss_weight * id_loss + cfg.triplet_loss_weight * tri_loss
    accuracy = (logits.argmax(1) == targets).float().mean()
    parts = {"id_loss": id_loss, "triplet_loss": tri_loss, "accuracy": accuracy}
    if text_features is not None:
        i2t_logits = feats.proj.float() @ text_features.t()
        parts["i2t_loss"] = cross_entropy_label_smooth(i2t_logits, targets, eps)
        loss = loss + cfg.i2t_loss_weight * parts["i2t_loss"]
    return loss, parts


def train_step(forward, optimizer, scaler, images, targets, camids, text_features, cfg,
               device) -> dict[str, float]:
    """One stage-2 update; returns the loss and its parts (means over the processes)."""
    with autocast(device, cfg.amp):
        loss, parts = finetune_loss(forward, images, targets, camids, text_features, cfg)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    values = distributed.all_reduce_mean(
        torch.stack([loss.detach().float(), *(v.detach().float() for v in parts.values())]))
    return dict(zip(["loss", *parts], values.tolist()))


def distribute(model: ClipReID, device: torch.device) -> nn.Module:
    """The forward to train: DDP over :class:`ImageForward` under torchrun, with the BN
    necks on global-batch statistics; the plain ImageForward alone."""
    forward = ImageForward(model)
    if distributed.current().world_size == 1:
        return forward
    return DistributedDataParallel(forward, device_ids=[device.index] if device.type == "cuda"
                                   else None)


def set_lr(optimizer, epoch: int, cfg: FinetuneConfig) -> float:
    factor = warmup_multistep_factor(epoch, cfg.milestones, cfg.gamma,
                                     cfg.warmup_epochs, cfg.warmup_factor)
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor
    return cfg.lr * factor


def train_finetune(model: ClipReID, text_features: torch.Tensor | None, paths: Sequence[str],
                   labels: Sequence[int], camids: Sequence[int], cfg: FinetuneConfig,
                   run: RunSettings) -> list:
    """Run stage 2 on ``model`` in place, checkpointing every epoch and resuming from
    ``run.checkpoint_dir``; returns the per-epoch history. ``text_features`` None: the
    baseline (no image-to-text loss)."""
    cfg = coerce(FinetuneConfig, cfg, "finetune")
    device, process = run.device, run.process
    model.to(device)
    if process.world_size > 1:
        model.bottleneck = distributed.GlobalBatchNorm1d.replacing(model.bottleneck)
        model.bottleneck_proj = distributed.GlobalBatchNorm1d.replacing(model.bottleneck_proj)
    named = freeze_for_finetune(model)
    optimizer = make_optimizer(named, cfg)
    scaler = grad_scaler(device, cfg.amp)
    start_epoch, history = checkpoint.resume(
        run, optimizer, scaler, lambda state: model.load_state_dict(state["model"]), "finetune")
    epoch_log = EpochLog(run.live_dir, history, enabled=process.is_main)
    forward = distribute(model, device)

    # Decoded and resized once (cached on disk; the cache's lock lets one process of a
    # node build it while the others wait), augmented as uint8 batches on the device.
    decoded = decoded_images(paths, run.input_size, run.preprocess.train_interpolation,
                             run.decoded_dir)
    aug = cfg.augmentation
    augment = BatchAugment(run.input_size, run.preprocess, aug.flip_p, aug.padding,
                           aug.erasing_p)
    labels_t, camids_t = torch.as_tensor(list(labels)), torch.as_tensor(list(camids))
    sampler = PKBatchSampler(labels, cfg.num_identities, cfg.num_instances, seed=run.seed,
                             rank=process.rank, world_size=process.world_size)
    if text_features is not None:
        text_features = text_features.to(device).float()
    use_cams = model.camera_embedding is not None

    epochs = int(cfg.epochs)
    for epoch in progress(range(start_epoch, epochs + 1), desc="finetune", unit="epoch",
                          initial=start_epoch - 1, total=epochs, disable=not process.is_main):
        # Every random draw of an epoch follows from (seed, epoch), the same in every
        # process: a resumed epoch is drawn again exactly (sampler, augmentation, dropout).
        epoch_seed = run.seed * 100003 + epoch
        torch.manual_seed(epoch_seed)
        generator = torch.Generator().manual_seed(epoch_seed)
        sampler.set_epoch(epoch)
        lr = set_lr(optimizer, epoch, cfg)
        model.train()
        sums: dict[str, float] = {}
        steps = 0
        for batch in sampler.global_batches():
            draws = augment.sample(len(batch), generator)    # the global batch's draws
            mine = sampler.share(batch)
            first = process.rank * len(mine)
            index = torch.as_tensor(mine)
            images = torch.from_numpy(decoded[np.asarray(mine)])
            if device.type == "cuda":
                images = images.pin_memory()
            images = augment.apply(images.to(device, non_blocking=True),
                                   draws.rows(first, first + len(mine)))
            parts = train_step(forward, optimizer, scaler, images, labels_t[index].to(device),
                               camids_t[index].to(device) if use_cams else None,
                               text_features, cfg, device)
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
            steps += 1
        epoch_log.log({**{k: v / max(steps, 1) for k, v in sums.items()}, "lr": lr})
        checkpoint.save_epoch(run, epoch, optimizer, scaler, epoch_log.history, model={
            k: v.detach().cpu() for k, v in model.state_dict().items()})
    epoch_log.close()
    model.eval()
    return epoch_log.history
