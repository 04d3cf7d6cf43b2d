"""Pixels as a viewer shows them: every image becomes the same 8-bit RGB, whatever its mode.
Imports only numpy and PIL, so the validation's worker processes start quickly."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

#: Modes of 16- and 32-bit integer grayscale: scaled to 8 bits (16-bit PNGs open so).
WIDE_GRAY = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def to_rgb(img: Image.Image) -> Image.Image:
    """The 8-bit RGB picture a viewer shows of ``img``: turned upright by its EXIF
    orientation, 16-bit grayscale scaled to 8 bits (not clipped to white), transparency
    laid over white, palette, grayscale and CMYK converted. Floating-point pixels have no
    standard rendering: ValueError."""
    img = ImageOps.exif_transpose(img)
    if img.mode in WIDE_GRAY:
        wide = np.asarray(img, dtype=np.int64)
        img = Image.fromarray((np.clip(wide, 0, 65535) >> 8).astype(np.uint8), "L")
    if img.mode == "F":
        raise ValueError("32-bit floating-point pixels have no standard 8-bit rendering; "
                         "save the image as 8- or 16-bit")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    return img.convert("RGB")
