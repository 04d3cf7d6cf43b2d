"""Image transforms of method.md: training augmentation and the test-time transform."""

from __future__ import annotations

from typing import Sequence

import torchvision.transforms as T
from torchvision.transforms import InterpolationMode

MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)


def test_transform(size: Sequence[int]) -> T.Compose:
    """Resize to (H, W) with bilinear interpolation (torchvision's default, which the
    official test transform uses; training resizes bicubic), then normalise (mean 0.5,
    std 0.5). The stage-1 feature cache, evaluation and export all use it."""
    return T.Compose(
        [
            T.Resize(tuple(size), interpolation=InterpolationMode.BILINEAR),
            T.ToTensor(),
            T.Normalize(MEAN, STD),
        ]
    )


def train_transform(
    size: Sequence[int],
    flip_p: float = 0.5,
    padding: int = 10,
    erasing_p: float = 0.5,
) -> T.Compose:
    """Resize, random horizontal flip, pad then random crop back to (H, W), normalise,
    random erasing of one rectangle filled with random values per pixel."""
    return T.Compose(
        [
            T.Resize(tuple(size), interpolation=InterpolationMode.BICUBIC),
            T.RandomHorizontalFlip(p=flip_p),
            T.Pad(padding),
            T.RandomCrop(tuple(size)),
            T.ToTensor(),
            T.Normalize(MEAN, STD),
            T.RandomErasing(p=erasing_p, value="random"),
        ]
    )
