"""`clipreid embed`: a user's images -> L2-normalised re-ID descriptors.

By default the exported ONNX model runs in onnxruntime, prepared with nothing but the
model's own metadata (clipreid.export.read_onnx_metadata): no params.yaml, no torch
transforms. ``backend="torch"`` runs ``models/reid.pt`` instead, prepared from the config
that file carries. Both prepare images the same way: RGB, resized straight to the model's
(H, W) with its interpolation, scaled to [0, 1], then (x - mean) / std.

Sources: a folder (its images, recursively, sorted), a glob pattern, or a CSV with a
``path`` column (relative to the CSV's folder, or absolute) and optional ``camid`` (0-based
camera ids; required by a model with SIE camera embeddings) and ``pid`` (identities, kept
by a gallery index) columns.
"""

from __future__ import annotations

import csv
import glob
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from PIL import Image

from clipreid.errors import ClipReidError, ConfigError, DatasetError
from clipreid.io import atomic_path

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
RESAMPLE = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}
BACKENDS = ("onnx", "torch")
DEFAULT_MODEL = {"onnx": "models/reid.onnx", "torch": "models/reid.pt"}


@dataclass
class Source:
    """Images to embed, in order, with their camera ids (None when not given)."""

    paths: list[str]
    camids: list[int] | None = None
    pids: list[int] | None = None


@dataclass
class Embedding:
    features: np.ndarray                 # (N, D) float32, L2-normalised
    paths: list[str]                     # resolved absolute paths, in the order of features
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (path, why)
    indices: list[int] = field(default_factory=list)   # positions in the source of ``paths``
    metadata: dict = field(default_factory=dict)       # the model's (export.onnx_metadata)


def read_source(src: str | os.PathLike) -> Source:
    """The images of ``src``: a folder, a CSV of paths, or a glob pattern."""
    text = str(src)
    path = Path(text)
    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        return Source([str(path.resolve())])
    if path.is_dir():
        paths = sorted(str(p.resolve()) for p in path.rglob("*")
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise DatasetError(f"{src}: no images in this folder (looked for "
                               f"{', '.join(IMAGE_SUFFIXES)}, recursively)")
        return Source(paths)
    if path.is_file() and path.suffix.lower() == ".csv":
        return _read_csv(path)
    if any(c in text for c in "*?["):
        paths = sorted(str(Path(p).resolve()) for p in glob.glob(text, recursive=True)
                       if Path(p).is_file())
        if not paths:
            raise DatasetError(f"{src}: the pattern matches no file")
        return Source(paths)
    raise DatasetError(f"{src}: not an image, a folder, a .csv file or a glob pattern "
                       "(quote a pattern so that the shell leaves it to this command)")


def _read_csv(path: Path) -> Source:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                           "save it as UTF-8") from None
    if not rows or "path" not in rows[0]:
        found = list(rows[0]) if rows else "no rows"
        raise DatasetError(f"{path}: needs a header with a 'path' column (and optionally "
                           f"'camid', 'pid'), and at least one row; found {found}")
    paths, camids, pids = [], [], []
    has_camid, has_pid = "camid" in rows[0], "pid" in rows[0]
    for line, row in enumerate(rows, start=2):
        value = (row.get("path") or "").strip()
        if not value:
            raise DatasetError(f"{path}, line {line}: empty path")
        paths.append(str((path.parent / value).resolve()))
        if has_camid:
            camids.append(_integer(row, "camid", path, line))
            if not 0 <= camids[-1] < 2**31:
                raise DatasetError(f"{path}, line {line}: camid {camids[-1]} is out of range "
                                   "(camera ids are 0-based, below the model's camera count)")
        if has_pid:
            pids.append(_integer(row, "pid", path, line))
    return Source(paths, camids if has_camid else None, pids if has_pid else None)


def _integer(row: Mapping[str, str], column: str, path: Path, line: int) -> int:
    try:
        return int(row[column])
    except (TypeError, ValueError):
        raise DatasetError(f"{path}, line {line}: {column} {row[column]!r} is not an "
                           "integer") from None


class Preprocessor:
    """One image file -> the (3, H, W) float32 array the model takes, from its metadata."""

    def __init__(self, metadata: Mapping[str, Any]):
        self.height, self.width = (int(v) for v in metadata["input_size"])
        self.resample = RESAMPLE[metadata["resize_interpolation"]]
        self.mean = np.asarray(metadata["mean"], dtype=np.float32).reshape(3, 1, 1)
        self.std = np.asarray(metadata["std"], dtype=np.float32).reshape(3, 1, 1)
        self.low, self.high = (float(v) for v in metadata["value_range"])
        if metadata["channel_order"] != "RGB" or metadata["layout"] != "NCHW":
            raise ClipReidError(f"unsupported input: {metadata['channel_order']} "
                                f"{metadata['layout']} (this version reads RGB NCHW)")

    def __call__(self, path: str) -> np.ndarray:
        from clipreid.loader.pixels import to_rgb

        with Image.open(path) as img:
            rgb = to_rgb(img)
        resized = rgb.resize((self.width, self.height), self.resample)
        array = np.asarray(resized, dtype=np.float32).transpose(2, 0, 1) / 255.0
        if (self.low, self.high) != (0.0, 1.0):
            array = array * (self.high - self.low) + self.low
        return (array - self.mean) / self.std


def onnx_runner(model_path, threads: int | None):
    """(metadata, run(images, camids) -> features) for an exported ONNX model."""
    import onnxruntime as ort

    from clipreid.export import read_onnx_metadata

    try:
        metadata = read_onnx_metadata(model_path)
    except ClipReidError:
        raise
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ClipReidError(f"{model_path} is not an ONNX model ({type(exc).__name__}); for a "
                            "PyTorch model file (reid.pt) pass --backend torch") from None
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])

    def run(images: np.ndarray, camids: np.ndarray | None) -> np.ndarray:
        feeds = {"images": images}
        if metadata["camera_input"]:
            feeds["camids"] = camids.astype(np.int64)
        return session.run([metadata["output"]], feeds)[0]

    return metadata, run


def torch_runner(model_path, threads: int | None):
    """(metadata, run) for a model file (reid.pt), its metadata from the config it carries."""
    import torch

    from clipreid.export import onnx_metadata
    from clipreid.model.saved import load_card, load_model

    import zipfile

    if not zipfile.is_zipfile(model_path):
        raise ClipReidError(f"{model_path} is not a PyTorch model file (reid.pt); for an "
                            "ONNX model drop --backend torch")
    if threads:
        torch.set_num_threads(int(threads))
    model, card = load_model(model_path), load_card(model_path)
    metadata = onnx_metadata(card.model.input_size, card.model.preprocess, card.feature_dim,
                             card.model.sie.enabled, card.num_cameras, card.object)

    @torch.no_grad()
    def run(images: np.ndarray, camids: np.ndarray | None) -> np.ndarray:
        cams = torch.from_numpy(camids).long() if metadata["camera_input"] else None
        return model.test_features(torch.from_numpy(images), cams).numpy()

    return metadata, run


RUNNERS: dict[str, Callable] = {"onnx": onnx_runner, "torch": torch_runner}


def embed(source: Source, model_path, backend: str = "onnx", batch_size: int = 32,
          threads: int | None = None, on_error: str = "stop") -> Embedding:
    """Descriptors of ``source``'s images with the model at ``model_path``. An image that
    cannot be read stops the run naming it (``on_error="stop"``), or is left out and
    reported (``"skip"``)."""
    from clipreid.runtime import progress

    if backend not in RUNNERS:
        raise ConfigError(f"backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if on_error not in ("stop", "skip"):
        raise ConfigError(f"on_error {on_error!r}: choose stop or skip")
    if batch_size < 1:
        raise ConfigError(f"batch size {batch_size}: must be >= 1")
    if threads is not None and threads < 1:
        raise ConfigError(f"threads {threads}: must be >= 1")
    if not Path(model_path).is_file():
        raise ClipReidError(f"{model_path} not found: run `dvc repro` (or `make repro`) first, "
                            "or pass the model file with --model")
    metadata, run = RUNNERS[backend](model_path, threads)
    if metadata["camera_input"] and source.camids is None:
        raise DatasetError(f"{model_path} uses camera ids (SIE): give the images as a CSV "
                           "with path and camid columns")
    if source.camids is not None and metadata["camera_input"]:
        top = max(source.camids)
        if top >= metadata["num_cameras"]:
            raise DatasetError(f"camid {top} is out of range: the model knows "
                               f"{metadata['num_cameras']} cameras (0..."
                               f"{metadata['num_cameras'] - 1})")
    prepare = Preprocessor(metadata)
    features, kept, kept_idx, skipped = [], [], [], []
    cams = source.camids or [0] * len(source.paths)
    batches = range(0, len(source.paths), batch_size)
    for start in progress(batches, desc="embed", unit="batch"):
        images, batch_cams = [], []
        for index, path, cam in zip(range(start, start + batch_size),
                                    source.paths[start:start + batch_size],
                                    cams[start:start + batch_size]):
            try:
                images.append(prepare(path))
            except (OSError, ValueError, Image.DecompressionBombError) as exc:
                if on_error == "stop":
                    raise DatasetError(f"image {path} cannot be read ({exc}); fix or remove "
                                       "it, or pass --on-error skip") from None
                skipped.append((path, str(exc)))
                continue
            kept.append(path)
            kept_idx.append(index)
            batch_cams.append(cam)
        if images:
            features.append(run(np.stack(images), np.asarray(batch_cams, dtype=np.int64)))
    for path, why in skipped:
        log.warning("skipped %s: %s", path, why)
    if not kept:
        raise DatasetError("no image could be read: nothing to embed")
    out = np.concatenate(features).astype(np.float32)
    return Embedding(out, kept, skipped, kept_idx, dict(metadata))


def write_npz(path: str | os.PathLike, embedding: Embedding) -> None:
    """``features`` (N x D float32) and ``paths`` (N strings), atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, features=embedding.features, paths=np.asarray(embedding.paths))


def embed_command(src, out, backend: str = "onnx", model: str | None = None,
                  batch_size: int = 32, threads: int | None = None,
                  on_error: str = "stop") -> Embedding:
    model_path = model or DEFAULT_MODEL.get(backend, "")
    if Path(out).is_dir():
        raise ClipReidError(f"{out} is a folder: give the .npz file to write")
    embedding = embed(read_source(src), model_path, backend, batch_size, threads, on_error)
    write_npz(out, embedding)
    return embedding


__all__: Sequence[str] = ("read_source", "embed", "write_npz", "Source", "Embedding")
