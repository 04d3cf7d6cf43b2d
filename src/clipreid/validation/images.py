"""Image file inspection: existence, size in bytes, content hash, full decode, pixel size.

Each file is read once; the SHA-256 of its bytes and a full PIL decode (``Image.load``)
both work from those bytes. Many files are inspected by a pool of worker processes.
This module imports only the standard library and PIL, so that a worker process starts
quickly.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
from pathlib import Path

from PIL import Image, ImageFile, UnidentifiedImageError

# The fields of one inspection, in this order (a tuple per file keeps the pool's traffic small).
FIELDS = ("path", "exists", "bytes", "sha256", "decodes", "width", "height", "mode", "error")


def inspect_image(path: str) -> tuple:
    """Inspect one image file; return a tuple of :data:`FIELDS`.

    ``decodes`` is None when the file could not be read at all (missing, a folder),
    False when it is empty or does not decode in full, True otherwise. ``error`` says why
    in words ('' when all is well)."""
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
            img.load()  # full decode: a truncated or corrupt file raises here
            width, height = img.size
            mode = img.mode
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


def inspect_images(paths: list[str], workers: int = 2, min_parallel: int = 256) -> list[tuple]:
    """Inspect ``paths`` (in order) with a pool of ``workers`` processes.

    With one worker, or fewer than ``min_parallel`` files (where starting processes costs
    more than it saves), the files are inspected in this process. Worker processes are
    started with ``spawn``, which is safe whatever threads the caller runs; so a script
    that calls this must keep its work under ``if __name__ == "__main__":``."""
    paths = list(paths)
    if workers <= 1 or len(paths) < max(2, min_parallel):
        saved = ImageFile.LOAD_TRUNCATED_IMAGES
        _strict_decoding()
        try:
            return [inspect_image(p) for p in paths]
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = saved
    chunksize = max(1, min(256, len(paths) // (workers * 8)))
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes=workers, initializer=_strict_decoding) as pool:
        return pool.map(inspect_image, paths, chunksize=chunksize)
