"""Stage 2's training augmentation on uint8 image batches, with torchvision.transforms.v2.

The same steps and distributions as the PIL transform (transforms.train_transform, which
follows the official code): horizontal flip with ``flip_p``; zero padding by ``padding``
then a random crop back to (H, W); scaling to [0, 1] and normalisation; random erasing
with ``erasing_p`` of one rectangle (area 2-33 % of the image, aspect ratio 0.3-3.3, up
to 10 tries, as torchvision's RandomErasing) filled with standard-normal values per pixel.
The images arrive resized (clipreid.loader.decoded), so no resize happens here.

Every random draw, the erasing values included, comes from the ``torch.Generator`` passed
in, per image, on the CPU (:meth:`BatchAugment.sample`); the pixels are then transformed
where the batch lives (on the GPU when training there). A fixed generator state gives the
same batch, on any device; under DDP every process draws for the global batch and
applies its own rows' draws (:meth:`AugmentParams.rows`), as one process would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torchvision.transforms.v2.functional as F

from clipreid.config.schema import PreprocessConfig, coerce

ERASE_SCALE = (0.02, 0.33)
ERASE_RATIO = (0.3, 3.3)
ERASE_TRIES = 10


@dataclass(frozen=True)
class AugmentParams:
    """The random draws of one batch: per image a flip, a crop offset and an erased box
    with its values (``erase[i] = (top, left, height, width, values)``, or None)."""

    flip: torch.Tensor       # (B,) bool
    top: torch.Tensor        # (B,) int, 0 .. 2 * padding
    left: torch.Tensor       # (B,) int, 0 .. 2 * padding
    erase: list[tuple[int, int, int, int, torch.Tensor] | None]

    def rows(self, start: int, stop: int) -> "AugmentParams":
        """The draws of images ``start`` to ``stop`` (one process's share of a batch)."""
        return AugmentParams(self.flip[start:stop], self.top[start:stop],
                             self.left[start:stop], self.erase[start:stop])


class BatchAugment:
    """``augment(uint8 (B, 3, H, W), generator) -> float32 (B, 3, H, W)`` normalised."""

    def __init__(self, size: Sequence[int], preprocess: PreprocessConfig, flip_p: float = 0.5,
                 padding: int = 10, erasing_p: float = 0.5):
        preprocess = coerce(PreprocessConfig, preprocess, "model.preprocess")
        self.height, self.width = int(size[0]), int(size[1])
        self.mean, self.std = list(preprocess.mean), list(preprocess.std)
        self.flip_p, self.padding, self.erasing_p = float(flip_p), int(padding), float(erasing_p)

    def _erase_box(self, generator: torch.Generator):
        area = self.height * self.width
        log_ratio = (math.log(ERASE_RATIO[0]), math.log(ERASE_RATIO[1]))
        for _ in range(ERASE_TRIES):
            u = torch.rand(2, generator=generator, dtype=torch.float64).tolist()
            erase_area = area * (ERASE_SCALE[0] + (ERASE_SCALE[1] - ERASE_SCALE[0]) * u[0])
            aspect = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * u[1])
            h = int(round(math.sqrt(erase_area * aspect)))
            w = int(round(math.sqrt(erase_area / aspect)))
            if h < self.height and w < self.width:
                top = int(torch.randint(0, self.height - h + 1, (1,), generator=generator))
                left = int(torch.randint(0, self.width - w + 1, (1,), generator=generator))
                return top, left, h, w, torch.randn((3, h, w), generator=generator)
        return None

    def sample(self, batch: int, generator: torch.Generator) -> AugmentParams:
        """The random draws for ``batch`` images, in a fixed order per image."""
        flip = torch.rand(batch, generator=generator) < self.flip_p
        offsets = torch.randint(0, 2 * self.padding + 1, (batch, 2), generator=generator)
        erase = [self._erase_box(generator)
                 if float(torch.rand(1, generator=generator)) < self.erasing_p else None
                 for _ in range(batch)]
        return AugmentParams(flip, offsets[:, 0], offsets[:, 1], erase)

    def apply(self, images: torch.Tensor, params: AugmentParams) -> torch.Tensor:
        """Transform a uint8 batch with the given draws."""
        if images.dtype != torch.uint8 or images.shape[1:] != (3, self.height, self.width):
            raise ValueError(f"expected uint8 images of shape (B, 3, {self.height}, "
                             f"{self.width}), got {images.dtype} {tuple(images.shape)}")
        device = images.device
        # Flip, pad, crop: padding is symmetric, so cropping the flipped padded image at
        # ``left`` is flipping the crop of the padded image at ``2 * padding - left``.
        padded = F.pad(images, [self.padding], fill=0) if self.padding else images
        crops = []
        for image, flip, top, left in zip(padded, params.flip.tolist(), params.top.tolist(),
                                          params.left.tolist()):
            if flip:
                crops.append(F.horizontal_flip(
                    F.crop(image, top, 2 * self.padding - left, self.height, self.width)))
            else:
                crops.append(F.crop(image, top, left, self.height, self.width))
        images = torch.stack(crops)
        images = F.normalize(F.to_dtype(images, torch.float32, scale=True), self.mean,
                             self.std, inplace=True)
        for i, box in enumerate(params.erase):
            if box is not None:
                top, left, h, w, values = box
                F.erase(images[i], top, left, h, w, values.to(device), inplace=True)
        return images

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.apply(images, self.sample(images.shape[0], generator))
