"""Training images decoded and resized once, into a uint8 array memory-mapped from disk.

Stage 2 reads every training image in every epoch. Instead of decoding the JPEG and
resizing it with PIL each time, each image is decoded and resized to the input size
once (``model.preprocess.train_interpolation``, as the PIL transform did) into an
``(N, 3, H, W)`` uint8 ``.npy`` file; epochs then gather batches from it and augment them
as tensors (:mod:`clipreid.loader.augment`).

The file is named by a key over everything that decides its contents: the image paths
in order, each file's size and modification time, the input size and the interpolation.
A changed manifest, a replaced image or another input size gives another key; the files
of other keys in the folder are removed when a new one is built. The folder is resume
state like the checkpoints (layout.decoded_cache), not a DVC output, and git-ignored.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from clipreid.io import atomic_path
from clipreid.loader.images import read_rgb
from clipreid.runtime import progress

log = logging.getLogger(__name__)

FORMAT = 1
RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


def cache_key(paths: Sequence[str], size: Sequence[int], interpolation: str) -> str:
    """Digest of the images (path, size, modification time, in order) and the resize."""
    h = hashlib.sha256(json.dumps([FORMAT, list(map(int, size)), interpolation]).encode())
    for path in paths:
        stat = os.stat(path)
        h.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]


def decode_resized(path: str, size: Sequence[int], interpolation: str) -> np.ndarray:
    """One image as (3, H, W) uint8, resized as the training transform resizes it."""
    height, width = int(size[0]), int(size[1])
    image = read_rgb(path).resize((width, height), RESAMPLE[interpolation])
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)


def build(paths, size, interpolation, cache_dir: Path, path: Path, threads) -> None:
    """Write the cache file ``path`` (under the folder's lock), removing other keys' files
    and what killed builds left."""
    for stale in [*cache_dir.glob("*.npy"), *cache_dir.glob(".*.tmp")]:
        log.info("removing a decoded-image cache of other inputs (or a killed build): %s",
                 stale)
        stale.unlink(missing_ok=True)
    height, width = int(size[0]), int(size[1])
    threads = threads or min(8, os.cpu_count() or 1)
    with atomic_path(path) as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                          shape=(len(paths), 3, height, width))
        with ThreadPoolExecutor(threads) as pool:  # PIL releases the GIL while decoding
            decoded = pool.map(lambda p: decode_resized(p, size, interpolation), paths)
            for i, image in enumerate(progress(decoded, total=len(paths), unit="image",
                                               desc="decoding training images once")):
                array[i] = image
        array.flush()
        del array


def decoded_images(paths: Sequence[str], size: Sequence[int], interpolation: str,
                   cache_dir: str | os.PathLike, threads: int | None = None) -> np.ndarray:
    """The (N, 3, H, W) uint8 array of ``paths``, memory-mapped read-only: the cached file
    when its key matches, else built now (decoded in threads, written atomically)."""
    cache_dir = Path(cache_dir)
    key = cache_key(paths, size, interpolation)
    path = cache_dir / f"{key}.npy"
    if path.is_file():
        return np.load(path, mmap_mode="r")
    cache_dir.mkdir(parents=True, exist_ok=True)
    # One build at a time per folder (two runs, or a node's processes): the second waits,
    # then finds the file built; nobody removes a file another run is writing.
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.is_file():
            build(paths, size, interpolation, cache_dir, path, threads)
    return np.load(path, mmap_mode="r")
