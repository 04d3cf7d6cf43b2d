"""Image inspection: one read per file, hash and full decode from the bytes, in a pool."""

from __future__ import annotations

import hashlib

import pytest
from PIL import ImageFile
from validation_datasets import Record, write_image

from clipreid.validation.images import FIELDS, inspect_image, inspect_images


@pytest.fixture
def files(tmp_path):
    """A good JPEG, a truncated one, an empty file, a text file, a folder, a missing path."""
    good = tmp_path / "good.jpg"
    write_image(good, Record("train", 1, 0, size=(20, 40)))
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "text.jpg"
    text.write_text("not an image")
    folder = tmp_path / "folder.jpg"
    folder.mkdir()
    return {"good": good, "truncated": truncated, "empty": empty, "text": text, "folder": folder,
            "missing": tmp_path / "missing.jpg"}  # fmt: skip


def _info(path) -> dict:
    return dict(zip(FIELDS, inspect_image(str(path)), strict=True))


def test_good_image_is_measured_and_hashed(files):
    info = _info(files["good"])
    data = files["good"].read_bytes()
    assert info["exists"] and info["decodes"] and info["error"] == ""
    assert (info["width"], info["height"], info["mode"]) == (20, 40, "RGB")
    assert info["bytes"] == len(data) and info["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    "name, exists, decodes, error",
    [
        ("truncated", True, False, "does not decode: image file is truncated"),
        ("empty", True, False, "empty file (0 bytes)"),
        ("text", True, False, "does not decode: not an image format PIL knows"),
        ("folder", False, None, "cannot read"),
        ("missing", False, None, "file not found"),
    ],
)
def test_bad_files_are_told_apart(files, name, exists, decodes, error):
    info = _info(files[name])
    assert (info["exists"], info["decodes"]) == (exists, decodes)
    assert info["error"].startswith(error)
    assert info["width"] is None


def test_truncated_images_fail_even_if_the_caller_allows_them(files, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    paths = [str(files["good"]), str(files["truncated"])]
    assert [r[4] for r in inspect_images(paths, workers=1)] == [True, False]
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored


def test_pool_gives_the_same_answers_in_order(files):
    paths = [str(p) for p in files.values()] * 3
    assert inspect_images(paths, workers=2, min_parallel=0) == inspect_images(paths, workers=1)
