"""Image file inspection: existence, size in bytes, content hash, full decode, pixel size.

Each file is read once; the SHA-256 of its bytes and a full PIL decode (``Image.load``)
both work from those bytes. Many files are inspected by a pool of worker processes.
This module imports only the standard library, PIL and numpy (through the pixel
conversion the loader uses), so that a worker process starts quickly.
"""

from __future__ import annotations

import functools
import hashlib
import io
import multiprocessing
from pathlib import Path

from PIL import Image, ImageFile, UnidentifiedImageError

from clipreid.loader.pixels import to_rgb

# The fields of one inspection, in this order (a tuple per file keeps the pool's traffic small).
FIELDS = ("path", "exists", "bytes", "sha256", "decodes", "width", "height", "mode", "error")


def inspect_image(path: str, max_side: int | None = None) -> tuple:
    """Inspect one image file; return a tuple of :data:`FIELDS`.

    ``decodes`` is None when the file could not be read at all (missing, a folder) or is
    larger than ``max_side`` pixels a side (not decoded: its size comes from its header),
    False when it is empty, does not decode in full, or has no 8-bit RGB rendering, True
    otherwise. ``error`` says why in words ('' when all is well)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return (path, False, 0, None, None, None, None, None, "file not found")
    except OSError as exc:  # a folder, no permission, ...
        return (path, False, 0, None, None, None, None, None, f"cannot read: {exc.strerror or exc}")
    digest = hashlib.sha256(data).hexdigest()
    if not data:
        return (path, True, 0, digest, False, None, None, None, "empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            mode = img.mode
            if max_side is not None and max(width, height) > max_side:
                return (path, True, len(data), digest, None, width, height, mode,
                        f"{width} x {height} pixels, over the limit of {max_side} a side: "
                        "not decoded")
            img.load()  # full decode: a truncated or corrupt file raises here
            to_rgb(img)  # the 8-bit RGB the loader will read

    except UnidentifiedImageError:
        return (
            path,
            True,
            len(data),
            digest,
            False,
            None,
            None,
            None,
            "does not decode: not an image format PIL knows",
        )
    except Exception as exc:  # PIL raises many types on corrupt data; all mean "does not decode"
        return (path, True, len(data), digest, False, None, None, None, f"does not decode: {exc}")
    return (path, True, len(data), digest, True, width, height, mode, "")


def _strict_decoding() -> None:
    """Pool initializer: a truncated image must fail to decode, whatever a caller set."""
    ImageFile.LOAD_TRUNCATED_IMAGES = False


def inspect_images(paths: list[str], workers: int = 2, min_parallel: int = 256,
                   max_side: int | None = None) -> list[tuple]:
    """Inspect ``paths`` (in order) with a pool of ``workers`` processes; images over
    ``max_side`` pixels a side are not decoded (see :func:`inspect_image`).

    With one worker, or fewer than ``min_parallel`` files (where starting processes costs
    more than it saves), the files are inspected in this process. Worker processes are
    started with ``spawn``, which is safe whatever threads the caller runs; so a script
    that calls this must keep its work under ``if __name__ == "__main__":``."""
    paths = list(paths)
    if workers <= 1 or len(paths) < max(2, min_parallel):
        saved = ImageFile.LOAD_TRUNCATED_IMAGES
        _strict_decoding()
        try:
            return [inspect_image(p, max_side) for p in paths]
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = saved
    chunksize = max(1, min(256, len(paths) // (workers * 8)))
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes=workers, initializer=_strict_decoding) as pool:
        return pool.map(functools.partial(inspect_image, max_side=max_side), paths,
                        chunksize=chunksize)
