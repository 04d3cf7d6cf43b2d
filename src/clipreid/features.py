"""Running a model's image encoder over a list of images (test-time transform)."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch.utils.data import DataLoader

from clipreid.config.schema import PreprocessConfig
from clipreid.loader.images import ImageDataset
from clipreid.loader.transforms import test_transform
from clipreid.runtime import autocast, progress


@torch.no_grad()
def extract(
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    paths: Sequence[str],
    camids: Sequence[int],
    input_size: Sequence[int],
    preprocess: PreprocessConfig,
    batch_size: int,
    device: torch.device,
    num_workers: int = 0,
    amp: str = "off",
    desc: str = "features",
) -> torch.Tensor:
    """``fn(images, camids)`` over all ``paths`` in order, as one float32 CPU tensor."""
    dataset = ImageDataset(paths, [0] * len(paths), camids, test_transform(input_size, preprocess))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False,
                        num_workers=num_workers, pin_memory=device.type == "cuda")
    out = []
    for images, _, cams, _ in progress(loader, desc=desc, unit="batch"):
        with autocast(device, amp):
            feats = fn(images.to(device, non_blocking=True), cams.to(device))
        out.append(feats.float().cpu())
    return torch.cat(out)


def test_features(model, paths, camids, input_size, preprocess, batch_size, device,
                  num_workers=0, amp="off") -> torch.Tensor:
    """The test descriptors (L2-normalised [main, proj]) of ``paths``."""
    model.eval()  # camera ids are used only by a model with SIE camera embeddings
    return extract(model.test_features, paths, camids, input_size, preprocess, batch_size, device,
                   num_workers, amp, "test features")
