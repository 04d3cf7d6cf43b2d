"""The test-time and training transforms resize as the official code does: bilinear at test
time (torchvision's default), bicubic in training."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from clipreid.config.schema import PreprocessConfig
from clipreid.loader import transforms


def image(seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (97, 45, 3), dtype=np.uint8))


def normalised(resized: Image.Image) -> torch.Tensor:
    array = np.asarray(resized, dtype=np.float32) / 255.0
    return (torch.from_numpy(array).permute(2, 0, 1) - 0.5) / 0.5


def test_the_test_transform_resizes_bilinear_then_normalises():
    img = image()
    got = transforms.test_transform((64, 32), PreprocessConfig())(img)
    assert got.shape == (3, 64, 32)
    bilinear = normalised(img.resize((32, 64), Image.BILINEAR))
    bicubic = normalised(img.resize((32, 64), Image.BICUBIC))
    assert torch.allclose(got, bilinear, atol=1e-6)
    assert not torch.allclose(got, bicubic, atol=1e-2)


def test_training_resizes_bicubic():
    img = image(1)
    transform = transforms.train_transform((64, 32), PreprocessConfig(), flip_p=0.0, padding=0,
                                           erasing_p=0.0)
    got = transform(img)  # no flip, no padding (the crop is the whole image), no erasing
    assert torch.allclose(got, normalised(img.resize((32, 64), Image.BICUBIC)), atol=1e-6)


def test_normalisation_and_interpolation_come_from_the_preprocess_config():
    """The RN50 recipes normalise with ImageNet's mean and std (configs/person/
    cnn_clipreid.yml:17-18); the interpolation can be switched per phase."""
    img = image(2)
    imagenet = PreprocessConfig(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225],
                                test_interpolation="bicubic")
    got = transforms.test_transform((64, 32), imagenet)(img)
    array = np.asarray(img.resize((32, 64), Image.BICUBIC), dtype=np.float32) / 255.0
    mean = torch.tensor(imagenet.mean).view(3, 1, 1)
    std = torch.tensor(imagenet.std).view(3, 1, 1)
    expected = (torch.from_numpy(array).permute(2, 0, 1) - mean) / std
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, normalised(img.resize((32, 64), Image.BICUBIC)), atol=1e-2)
