"""Every image is read as the 8-bit RGB a viewer shows: one test per mode, with the pixel
values expected."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clipreid.loader.images import read_rgb
from clipreid.validation.images import FIELDS, inspect_image


def pixels(path) -> list:
    return np.asarray(read_rgb(str(path))).tolist()


def test_16_bit_grayscale_is_scaled_not_clipped_to_white(tmp_path):
    path = tmp_path / "depth.png"
    Image.fromarray(np.array([[0, 256, 32768, 65535]], dtype=np.uint16)).save(path)
    assert Image.open(path).mode == "I;16"
    assert pixels(path) == [[[0, 0, 0], [1, 1, 1], [128, 128, 128], [255, 255, 255]]]


def test_palette_with_transparency_and_alpha_lie_over_white(tmp_path):
    rgba = np.array([[[200, 10, 10, 255], [200, 10, 10, 0], [0, 0, 200, 128]]], np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    assert pixels(tmp_path / "alpha.png") == [[[200, 10, 10], [255, 255, 255], [127, 127, 227]]]
    palette = Image.new("P", (2, 1))
    palette.putpalette([0, 0, 0, 10, 200, 10] + [0] * 762)
    palette.putdata([0, 1])
    palette.save(tmp_path / "palette.png", transparency=0)
    assert pixels(tmp_path / "palette.png") == [[[255, 255, 255], [10, 200, 10]]]


def test_grayscale_and_cmyk_become_rgb(tmp_path):
    Image.fromarray(np.array([[0, 77, 255]], np.uint8), "L").save(tmp_path / "gray.png")
    assert pixels(tmp_path / "gray.png") == [[[0, 0, 0], [77, 77, 77], [255, 255, 255]]]
    cmyk = Image.new("CMYK", (1, 1), (0, 255, 255, 0))  # full magenta and yellow: red
    cmyk.save(tmp_path / "cmyk.tif")
    assert pixels(tmp_path / "cmyk.tif") == [[[255, 0, 0]]]


def test_exif_orientation_turns_the_picture_upright(tmp_path):
    """A camera's portrait shot stored landscape with orientation 6 (rotate 90 degrees
    clockwise to view): read tall, as a viewer shows it."""
    stored = np.zeros((2, 3, 3), np.uint8)
    stored[0, 0] = (255, 0, 0)  # top-left of the stored pixels
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(tmp_path / "portrait.png", exif=exif)
    shown = np.asarray(read_rgb(str(tmp_path / "portrait.png")))
    assert shown.shape == (3, 2, 3)
    assert shown[0, 1].tolist() == [255, 0, 0]  # now at the top-right


def test_floating_point_pixels_are_refused_by_validation_naming_why(tmp_path):
    path = tmp_path / "float.tif"
    Image.fromarray(np.array([[0.5, 2.0]], np.float32), "F").save(path)
    info = dict(zip(FIELDS, inspect_image(str(path))))
    assert info["decodes"] is False and "floating-point" in info["error"]


def test_an_image_over_the_size_limit_is_measured_but_not_decoded(tmp_path, monkeypatch):
    path = tmp_path / "huge.png"
    Image.new("L", (5000, 8)).save(path)

    def no_load(self):
        raise AssertionError("the oversized image was decoded")

    monkeypatch.setattr(Image.Image, "load", no_load)
    from PIL import PngImagePlugin
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", no_load)
    info = dict(zip(FIELDS, inspect_image(str(path), max_side=4096)))
    assert (info["width"], info["height"], info["decodes"]) == (5000, 8, None)
    assert "5000 x 8 pixels, over the limit of 4096 a side: not decoded" in info["error"]


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_ordinary_images_are_unchanged(tmp_path, mode):
    array = np.arange(12, dtype=np.uint8).reshape(2, 2, 3) * 20
    Image.fromarray(array).convert(mode).save(tmp_path / "x.png")
    expected = np.asarray(Image.fromarray(array).convert(mode).convert("RGB")).tolist()
    assert pixels(tmp_path / "x.png") == expected
