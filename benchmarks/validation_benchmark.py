"""Benchmark of the data validation at Market-1501 size.

Writes a Market-1501-sized data set (by default 32,217 JPEGs at 128x64: 12,936 train,
3,368 query, 15,913 gallery of which 2,793 distractors, i.e. Market after junk removal)
into a temporary folder, then runs ``run_validation`` on it with the Data Docs and prints
the time of each phase and the images inspected per second.

    .venv/bin/python benchmarks/validation_benchmark.py [--images N] [--workers 2]
        [--no-docs] [--compare-workers] [--keep DIR]

``--compare-workers`` also times the image inspection alone with 1 worker and with
``--workers``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

MARKET = {"train": 12936, "query": 3368, "gallery": 15913}
DISTRACTORS = 2793
NUM_CAMERAS = 6
TRAIN_IDS, TEST_IDS = 751, 750
FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}


def plan_rows(total: int, root: Path, seed: int = 0) -> list[tuple[str, int, int, str]]:
    """(path, pid, camid, split) rows in Market proportions, every query with a gallery
    image of its identity on another camera."""
    rng = np.random.default_rng(seed)
    scale = total / sum(MARKET.values())
    counts = {split: max(1, round(n * scale)) for split, n in MARKET.items()}
    distractors = round(DISTRACTORS * scale)
    train_ids = np.arange(2, 2 + 2 * TRAIN_IDS, 2)
    test_ids = np.arange(3, 3 + 2 * TEST_IDS, 2)
    rows, seq = [], 0

    def add(split: str, pid: int, camid: int) -> None:
        nonlocal seq
        seq += 1
        name = f"{pid:04d}_c{camid + 1}s1_{seq:06d}_00.jpg"
        rows.append((str(root / FOLDERS[split] / name), int(pid), int(camid), split))

    for i in range(counts["train"]):
        add("train", train_ids[i % len(train_ids)], int(rng.integers(NUM_CAMERAS)))
    query_cams = {}
    for i in range(counts["query"]):
        pid = test_ids[i % len(test_ids)]
        camid = int(rng.integers(NUM_CAMERAS))
        query_cams.setdefault(pid, set()).add(camid)
        add("query", pid, camid)
    gallery_real = counts["gallery"] - distractors
    for i in range(gallery_real):
        pid = test_ids[i % len(test_ids)]
        # the first gallery image of an identity sits on a camera none of its queries use
        used = query_cams.get(pid, set())
        free = [c for c in range(NUM_CAMERAS) if c not in used] or [0]
        camid = free[0] if i < len(test_ids) else int(rng.integers(NUM_CAMERAS))
        add("gallery", pid, camid)
    for _ in range(distractors):
        add("gallery", 0, int(rng.integers(NUM_CAMERAS)))
    return rows


def write_jpeg(job: tuple[str, int]) -> None:
    """Write one 128x64 JPEG: a smooth random colour field with a little noise."""
    path, seed = job
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (8, 4, 3), dtype=np.uint8)
    image = Image.fromarray(coarse, "RGB").resize((64, 128), Image.BILINEAR)
    pixels = np.asarray(image, dtype=np.int16) + rng.integers(-16, 17, (128, 64, 3))
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB").save(path, quality=85)


def build_dataset(root: Path, total: int, workers: int) -> Path:
    """Write the images and the manifest under ``root``; return the manifest's path."""
    from clipreid.dataset.manifest import make_manifest, save_manifest

    for folder in FOLDERS.values():
        (root / folder).mkdir(parents=True, exist_ok=True)
    rows = plan_rows(total, root)
    jobs = [(path, i) for i, (path, *_rest) in enumerate(rows)]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.map(write_jpeg, jobs, chunksize=256)
    manifest = root / "manifest.csv"
    save_manifest(make_manifest(rows, source=str(root)), manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=sum(MARKET.values()))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-docs", action="store_true", help="skip the Data Docs")
    parser.add_argument("--compare-workers", action="store_true")
    parser.add_argument(
        "--keep", type=Path, help="write the data set and reports here and keep them"
    )
    args = parser.parse_args(argv)

    root = args.keep or Path(tempfile.mkdtemp(prefix="clipreid-validation-bench-"))
    try:
        t0 = time.perf_counter()
        manifest = build_dataset(root / "market", args.images, args.workers)
        build_s = time.perf_counter() - t0
        sizes = [os.path.getsize(p) for p in list((root / "market" / "query").iterdir())[:200]]
        print(
            f"data set: {args.images} JPEGs at 128x64 (~{np.mean(sizes) / 1024:.1f} KiB each), "
            f"written in {build_s:.1f} s"
        )

        if args.compare_workers:
            import pandas as pd

            from clipreid.validation.images import inspect_images

            paths = pd.read_csv(manifest)["path"].tolist()
            for workers in sorted({1, args.workers}):
                t0 = time.perf_counter()
                inspect_images(paths, workers)
                seconds = time.perf_counter() - t0
                print(
                    f"inspect only, {workers} worker(s): {seconds:.2f} s, "
                    f"{len(paths) / seconds:,.0f} images/s"
                )

        from clipreid.validation import run_validation

        dataset_cfg = {
            "name": "market1501-sized",
            "num_cameras": NUM_CAMERAS,
            "format": "market1501",
        }
        docs = None if args.no_docs else root / "reports" / "data_docs"
        t0 = time.perf_counter()
        outcome = run_validation(
            manifest,
            dataset_cfg,
            {"workers": args.workers},
            root / "reports" / "validation.json",
            docs,
        )
        total_s = time.perf_counter() - t0
        seconds = outcome.seconds
        images = outcome.summary_data["images"]
        print(outcome.summary())
        print(
            f"images: {images['inspected']} read + hashed + decoded with {args.workers} workers in "
            f"{seconds['images']:.2f} s ({images['inspected'] / seconds['images']:,.0f} images/s)"
        )
        print(
            "phases (s): "
            + ", ".join(f"{k} {v:.2f}" for k, v in seconds.items())
            + f"; run_validation wall {total_s:.2f} s"
        )
        return 0 if outcome.ok else 1
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
