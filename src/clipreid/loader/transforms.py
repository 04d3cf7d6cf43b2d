"""Image transforms of method.md: training augmentation and the test-time transform, both
built from ``model.input_size`` and ``model.preprocess`` (the model's preprocessing)."""

from __future__ import annotations

from typing import Sequence

import torchvision.transforms as T
from torchvision.transforms import InterpolationMode

from clipreid.config.schema import PreprocessConfig, coerce

INTERPOLATION = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC}


def test_transform(size: Sequence[int], preprocess: PreprocessConfig) -> T.Compose:
    """Resize to (H, W) with ``preprocess.test_interpolation`` (bilinear in every official
    recipe: torchvision's default, which the official test transform uses), then
    normalise. The stage-1 feature cache, evaluation and export all use it."""
    preprocess = coerce(PreprocessConfig, preprocess, "model.preprocess")
    return T.Compose(
        [
            T.Resize(tuple(size), interpolation=INTERPOLATION[preprocess.test_interpolation]),
            T.ToTensor(),
            T.Normalize(preprocess.mean, preprocess.std),
        ]
    )


def train_transform(
    size: Sequence[int],
    preprocess: PreprocessConfig,
    flip_p: float = 0.5,
    padding: int = 10,
    erasing_p: float = 0.5,
) -> T.Compose:
    """Resize (``preprocess.train_interpolation``, bicubic as published), random horizontal
    flip, pad then random crop back to (H, W), normalise, random erasing of one rectangle
    filled with random values per pixel."""
    preprocess = coerce(PreprocessConfig, preprocess, "model.preprocess")
    return T.Compose(
        [
            T.Resize(tuple(size), interpolation=INTERPOLATION[preprocess.train_interpolation]),
            T.RandomHorizontalFlip(p=flip_p),
            T.Pad(padding),
            T.RandomCrop(tuple(size)),
            T.ToTensor(),
            T.Normalize(preprocess.mean, preprocess.std),
            T.RandomErasing(p=erasing_p, value="random"),
        ]
    )
