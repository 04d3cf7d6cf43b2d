"""Training throughput: the input pipeline, stage-2 steps and the stage-1 feature pass.

1. Input pipeline alone (images per second of augmented P x K batches, 16 x 4): the PIL
   loader stage 2 used before (DataLoader workers decoding each JPEG, resizing and
   augmenting it with PIL every epoch, workers restarted each epoch) against the cached
   one it uses now (images decoded and resized once into a memory-mapped uint8 array,
   batches gathered from it and augmented as tensors with torchvision.transforms.v2),
   at the embedded input size (128 x 64) and ViT-B/16's (256 x 128), on the synthetic
   Market-1501-layout set (128 x 64 JPEGs, as Market's). The one-time decode is timed
   apart.
2. Stage-2 training steps (images per second; forward, the full loss, backward, Adam):
   the embedded model (vit_tiny, 128 x 64) and a ViT-B/16-shaped model with random
   weights (256 x 128), batch 64, with the device's default mixed precision (`auto`).
3. The stage-1 feature pass (images per second, test transform, frozen encoder).
4. On a GPU: model FLOP utilisation of stage 2, from the FLOPs per image that
   torch.utils.flop_counter counts on the model's shapes (forward and backward), against
   the GPU's dense bf16 peak (known for H100, H200 and A100; else --peak-tflops).

Usage: ``python benchmarks/training_benchmark.py [--device auto] [--workers 2]
[--batches 40] [--vit-b16-steps 2] [--skip-vit-b16] [--peak-tflops T]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from inference_benchmark import model_config  # noqa: E402 (one home for model shapes)

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense, SXM


def synthetic_train_set(root: Path):
    from clipreid.dataset.synthetic import write_synthetic

    write_synthetic(root, num_train_ids=100, num_test_ids=2)
    paths = sorted(str(p) for p in (root / "bounding_box_train").glob("*.jpg"))
    pids = [int(Path(p).name.split("_")[0]) for p in paths]
    labels = [sorted(set(pids)).index(pid) for pid in pids]
    camids = [int(Path(p).name.split("_")[1][1]) - 1 for p in paths]
    return paths, labels, camids


def first_batches(batches: int, epoch_batches):
    """The first ``batches`` items of ``epoch_batches(1)``, ``epoch_batches(2)``, ..."""
    done, epoch = 0, 0
    while True:
        epoch += 1
        for item in epoch_batches(epoch):
            yield item
            done += 1
            if done == batches:
                return


def pil_pipeline(paths, labels, camids, size, batches: int, workers: int) -> float:
    """Images per second of the PIL loader, as stage 2 ran it before the cache (workers
    restarted each epoch)."""
    from torch.utils.data import DataLoader

    from clipreid.config.schema import PreprocessConfig
    from clipreid.loader.images import ImageDataset
    from clipreid.loader.sampler import PKBatchSampler
    from clipreid.loader.transforms import train_transform

    dataset = ImageDataset(paths, labels, camids,
                           train_transform(size, PreprocessConfig(), 0.5, 10, 0.5))
    sampler = PKBatchSampler(labels, 16, 4, seed=0)

    def epoch_batches(epoch):
        torch.manual_seed(epoch)
        sampler.set_epoch(epoch)
        return (images for images, *_ in
                DataLoader(dataset, batch_sampler=sampler, num_workers=workers))

    start = time.perf_counter()
    count = sum(len(images) for images in first_batches(batches, epoch_batches))
    return count / (time.perf_counter() - start)


def cached_pipeline(paths, labels, size, batches: int, cache: Path, device) -> tuple[float, float]:
    """(one-time decode seconds, images per second of cached batches + tensor augmentation)."""
    from clipreid.config.schema import PreprocessConfig
    from clipreid.loader.augment import BatchAugment
    from clipreid.loader.decoded import decoded_images
    from clipreid.loader.sampler import PKBatchSampler

    start = time.perf_counter()
    decoded = decoded_images(paths, size, "bicubic", cache)
    decode_seconds = time.perf_counter() - start
    augment = BatchAugment(size, PreprocessConfig(), 0.5, 10, 0.5)
    sampler = PKBatchSampler(labels, 16, 4, seed=0)

    def epoch_batches(epoch):
        sampler.set_epoch(epoch)
        generator = torch.Generator().manual_seed(epoch)
        return (augment(torch.from_numpy(decoded[np.asarray(batch)]).to(device), generator)
                for batch in sampler)

    start = time.perf_counter()
    count = sum(len(images) for images in first_batches(batches, epoch_batches))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return decode_seconds, count / (time.perf_counter() - start)


def stage2_model(name: str, size, num_classes: int, device):
    from clipreid.model import build_reid_model
    from clipreid.training.finetune import freeze_for_finetune

    model = build_reid_model(model_config(name, size), num_classes, "person", 6).to(device)
    return model, freeze_for_finetune(model)


def stage2_steps(name: str, size, steps: int, device, amp: str) -> tuple[float, float | None]:
    """(images per second of stage-2 steps at batch 64, FLOPs per image or None)."""
    from clipreid.config.schema import FinetuneConfig
    from clipreid.runtime import grad_scaler
    from clipreid.training.finetune import (ImageForward, finetune_loss, make_optimizer,
                                            train_step)

    cfg = FinetuneConfig(amp=amp)
    model, named = stage2_model(name, size, 100, device)
    optimizer = make_optimizer(named, cfg)
    scaler = grad_scaler(device, amp)
    images = torch.randn(64, 3, *size, device=device)
    targets = torch.arange(16, device=device).repeat_interleave(4)
    text = torch.randn(100, model.classifier_proj.in_features, device=device)
    model.train()
    forward = ImageForward(model)
    train_step(forward, optimizer, scaler, images, targets, None, text, cfg, device)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        train_step(forward, optimizer, scaler, images, targets, None, text, cfg, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    flops = None
    if device.type == "cuda":
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:
            loss, _ = finetune_loss(forward, images[:8], targets[:8], None, text, cfg)
            loss.backward()
        flops = counter.get_total_flops() / 8
    return 64 * steps / seconds, flops


def feature_pass(name: str, size, paths, device) -> float:
    from clipreid.config.schema import PreprocessConfig
    from clipreid.features import extract

    model, _ = stage2_model(name, size, 100, device)
    model.eval()
    start = time.perf_counter()
    extract(lambda x, c: model.image_encoder(x).proj, paths, [0] * len(paths), size,
            PreprocessConfig(), 64, device, 0, "auto", "stage-1 features")
    return len(paths) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--vit-b16-steps", type=int, default=2)
    parser.add_argument("--skip-vit-b16", action="store_true")
    parser.add_argument("--peak-tflops", type=float)
    args = parser.parse_args()

    from clipreid.runtime import resolve_device

    device = resolve_device(args.device)
    torch.manual_seed(0)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(f"device: {name}, torch threads: {torch.get_num_threads()}, "
          f"loader workers: {args.workers}")
    sizes = {"embedded (128x64)": ("vit_tiny", (128, 64))}
    if not args.skip_vit_b16:
        sizes["ViT-B/16 (256x128)"] = ("vit_b16", (256, 128))
    with tempfile.TemporaryDirectory() as tmp:
        paths, labels, camids = synthetic_train_set(Path(tmp) / "Market-1501")
        print(f"\n1. input pipeline, {len(paths)} training images, P x K = 16 x 4, "
              f"{args.batches} batches")
        for label, (_, size) in sizes.items():
            pil = pil_pipeline(paths, labels, camids, size, args.batches, args.workers)
            decode, cached = cached_pipeline(paths, labels, size, args.batches,
                                             Path(tmp) / f"cache{size[0]}", device)
            print(f"   {label:20s} PIL loader {pil:8.1f} images/s | cached + v2 on "
                  f"{device.type} {cached:8.1f} images/s | {cached / pil:5.1f}x "
                  f"(one-time decode {decode:.1f} s)")
        print("\n2. stage-2 training steps, batch 64, amp auto")
        for label, (model, size) in sizes.items():
            steps = args.vit_b16_steps if model == "vit_b16" else 10
            ips, flops = stage2_steps(model, size, steps, device, "auto")
            line = f"   {label:20s} {ips:8.1f} images/s"
            if flops:
                peak = args.peak_tflops or next(
                    (v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
                line += f" | {flops / 1e9:.1f} GFLOP/image"
                if peak:
                    mfu = ips * flops / (peak * 1e12)
                    line += f" | MFU {100 * mfu:.1f} % of {peak:.0f} TFLOP/s"
            print(line)
        print("\n3. stage-1 feature pass (test transform, frozen encoder, batch 64)")
        for label, (model, size) in sizes.items():
            subset = paths if model == "vit_tiny" or device.type == "cuda" else paths[:128]
            print(f"   {label:20s} {feature_pass(model, size, subset, device):8.1f} "
                  f"images/s ({len(subset)} images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
