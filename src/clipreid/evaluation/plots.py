"""Tables and pictures of an evaluation: CMC curves, distance histograms, rank lists.

Tables are CSV files that ``dvc plots show`` renders (one x column, one or more y
columns); pictures are PNG files. Every file is written atomically.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from clipreid.errors import DatasetError
from clipreid.io import atomic_path

CORRECT = (0, 170, 0)  # frame of a correct match
WRONG = (220, 0, 0)  # frame of a wrong match
QUERY = (40, 90, 220)  # frame of the query
THUMB_W, THUMB_H, FRAME, GAP = 64, 128, 4, 6


def write_csv(path: str | os.PathLike, header: Sequence[str], rows) -> None:
    """A CSV table with ``header`` and ``rows``, written atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)


def write_cmc_tables(path, curves: Mapping[str, np.ndarray]) -> None:
    """``rank,<name>,...`` for rank 1..max_rank: one column per curve (fractions in [0, 1])."""
    names = list(curves)
    rows = zip(*[curves[n] for n in names])
    write_csv(path, ["rank", *names],
              ((k + 1, *(repr(float(v)) for v in row)) for k, row in enumerate(rows)))


def write_histogram_table(path, hist: Mapping) -> None:
    """``distance,positive,negative``: bin centre and the fraction of positive and of
    negative query-gallery pairs in the bin (each column sums to 1)."""
    edges = np.asarray(hist["edges"])
    centres = (edges[:-1] + edges[1:]) / 2
    pos = _fractions(hist["positive"])
    neg = _fractions(hist["negative"])
    write_csv(path, ["distance", "positive", "negative"],
              ((repr(float(c)), repr(float(p)), repr(float(n)))
               for c, p, n in zip(centres, pos, neg)))


def _fractions(counts) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    return counts / total if total > 0 else counts


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_cmc(path, curves: Mapping[str, np.ndarray]) -> None:
    """One CMC curve per entry of ``curves`` (label -> cmc), as a PNG."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for label, cmc in curves.items():
        ax.plot(np.arange(1, len(cmc) + 1), 100 * np.asarray(cmc), label=label)
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_title("CMC")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    _save(fig, path)


def plot_histogram(path, hist: Mapping, xlabel: str) -> None:
    """Positive and negative distance distributions (fractions per bin), as a PNG."""
    plt = _pyplot()
    edges = np.asarray(hist["edges"])
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for key, color in (("positive", "tab:green"), ("negative", "tab:red")):
        ax.stairs(_fractions(hist[key]), edges, label=key, color=color, fill=True, alpha=0.4)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of pairs")
    ax.set_title("query-gallery distances")
    ax.legend()
    _save(fig, path)


def _save(fig, path) -> None:
    plt = _pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(fig)


@dataclass
class RankList:
    """One row of a rank-list picture: a query and its top gallery images."""

    query_path: str
    gallery_paths: list[str]
    correct: list[bool]
    caption: str


def _thumbnail(path: str, color):
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            im = im.convert("RGB").resize((THUMB_W, THUMB_H), Image.Resampling.BILINEAR)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read image {path} for the rank list: {exc}") from exc
    return ImageOps.expand(im, border=FRAME, fill=color)


def save_rank_lists(path, rank_lists: Sequence[RankList], title: str) -> None:
    """A PNG with one row per rank list: the query (blue frame), then its top gallery
    images framed green (correct match) or red (wrong), left to right by rank."""
    from PIL import Image, ImageDraw

    if not rank_lists:
        raise DatasetError("no rank lists to draw: the evaluation had no valid query")
    cell_w, cell_h = THUMB_W + 2 * FRAME, THUMB_H + 2 * FRAME
    top_k = max(len(r.gallery_paths) for r in rank_lists)
    text_h = 14
    width = GAP + (cell_w + GAP) * (top_k + 1) + GAP
    height = text_h + GAP + len(rank_lists) * (text_h + cell_h + GAP)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.text((GAP, 2), title, fill=(0, 0, 0))
    y = text_h + GAP
    for row in rank_lists:
        draw.text((GAP, y), row.caption, fill=(0, 0, 0))
        y += text_h
        canvas.paste(_thumbnail(row.query_path, QUERY), (GAP, y))
        for i, (p, ok) in enumerate(zip(row.gallery_paths, row.correct)):
            x = GAP + (cell_w + GAP) * (i + 1) + GAP
            canvas.paste(_thumbnail(p, CORRECT if ok else WRONG), (x, y))
        y += cell_h + GAP
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
