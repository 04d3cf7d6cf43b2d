"""A torch Dataset over manifest rows: decoded RGB image, label, camera, row index."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from PIL import Image
from torch.utils.data import Dataset

from clipreid.errors import DatasetError
from clipreid.loader.pixels import to_rgb


def read_rgb(path: str) -> Image.Image:
    """Open an image as the 8-bit RGB a viewer shows (see :func:`to_rgb`)."""
    try:
        with Image.open(path) as img:
            return to_rgb(img)
    except FileNotFoundError:
        raise DatasetError(f"image {path} not found; re-run `prepare` or fix dataset.root")
    except (OSError, ValueError) as exc:
        raise DatasetError(f"image {path} cannot be decoded ({exc}); the `validate` stage "
                           "reports such files") from exc


class ImageDataset(Dataset):
    """Items are ``(image_tensor, label, camid, index)``; ``labels`` is whatever target the
    caller wants (train labels for training, pids for evaluation)."""

    def __init__(
        self,
        paths: Sequence[str],
        labels: Sequence[int],
        camids: Sequence[int],
        transform: Callable,
    ):
        if not (len(paths) == len(labels) == len(camids)):
            raise ValueError("ImageDataset: paths, labels and camids differ in length")
        self.paths = list(paths)
        self.labels = [int(x) for x in labels]
        self.camids = [int(x) for x in camids]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        image = self.transform(read_rgb(self.paths[index]))
        return image, torch.tensor(self.labels[index]), torch.tensor(self.camids[index]), index
