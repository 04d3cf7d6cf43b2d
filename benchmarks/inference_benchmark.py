"""Inference speed: `clipreid embed` throughput per backend, and gallery search latency.

1. Embedding (images per second, end to end: JPEG decode, preprocessing from the model's
   metadata, model, on the CPU threads given): onnxruntime fp32, onnxruntime int8
   (dynamic quantisation) and torch eager, for the embedded model (vit_tiny, 128 x 64)
   and a ViT-B/16-shaped model (256 x 128), both with random weights built here; with the
   ratios and the smallest per-image cosine similarity of int8 to fp32.
2. Search (milliseconds per query, one query at a time): galleries of 10^4, 10^5 and
   10^6 random L2-normalised 1,280-d features in identities of 10 (centre + noise, as
   re-ID features cluster), queries drawn from gallery identities; exact (FAISS inner-product scan, as
   `clipreid search`) and approximate (HNSW, IVF), median and p99 latency, build time and
   recall@10 of the approximate ones against exact search.

Usage: ``python benchmarks/inference_benchmark.py [--threads 2] [--skip-vit-b16]
[--sizes 10000 100000 1000000] [--hnsw-max 100000]``
(HNSW is built up to --hnsw-max entries: its build takes long for millions on few cores.)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]


def model_config(name: str, input_size):
    from clipreid.config.schema import ModelConfig, from_dict

    data = yaml.safe_load((ROOT / "conf" / "model" / f"{name}.yaml").read_text())
    data = {k: v for k, v in data.items() if k != "defaults"}
    data.update(clip_name=None, weights=None, source="src/clipreid/model/backbone.py",
                input_size=list(input_size))
    return from_dict(ModelConfig, data, "model")


def write_images(folder: Path, count: int, size) -> list[str]:
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        h, w = size
        array = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(array).save(path, quality=90)
        paths.append(str(path))
    return paths


def embedding_speed(name: str, model_name: str, input_size, count: int, threads: int,
                    work: Path) -> None:
    import torch

    from clipreid.config.schema import Params
    from clipreid.embed import Source, embed
    from clipreid.export import export_onnx, write_precision_variants
    from clipreid.model import build_reid_model
    from clipreid.model.saved import save_reid_model

    torch.set_num_threads(threads)
    cfg = model_config(model_name, input_size)
    folder = work / model_name
    folder.mkdir()
    model = build_reid_model(cfg, 100, "person", 6).eval()
    save_reid_model(folder / "reid.pt", model, dataclasses.replace(Params(), model=cfg), 100)
    paths = write_images(folder / "images", count, input_size)
    export_onnx(model, paths[:8], [0] * 8, {"opset": 18, "max_abs_diff": 1e-3,
                                            "num_images": 8},
                folder / "reid.onnx", folder / "m.json", folder / "r.json",
                input_size=input_size, preprocess=cfg.preprocess)
    write_precision_variants(folder / "reid.onnx", folder / "reid.fp16.onnx",
                             folder / "reid.int8.onnx")
    source = Source(paths)
    runs = {"onnxruntime fp32": (folder / "reid.onnx", "onnx"),
            "onnxruntime int8": (folder / "reid.int8.onnx", "onnx"),
            "torch eager": (folder / "reid.pt", "torch")}
    speed, feats = {}, {}
    for label, (path, backend) in runs.items():
        embed(Source(paths[:16]), path, backend, 16, threads)  # warm-up
        start = time.perf_counter()
        feats[label] = embed(source, path, backend, 16, threads).features
        speed[label] = count / (time.perf_counter() - start)
    fp32 = feats["onnxruntime fp32"]
    cosine = (feats["onnxruntime int8"] * fp32).sum(1).min()
    print(f"\n{name} ({input_size[0]} x {input_size[1]}, {count} images, batch 16, "
          f"{threads} threads):")
    for label, value in speed.items():
        print(f"  {label:18s} {value:8.1f} images/s")
    print(f"  int8 / fp32: {speed['onnxruntime int8'] / speed['onnxruntime fp32']:.2f}x; "
          f"fp32 / torch: {speed['onnxruntime fp32'] / speed['torch eager']:.2f}x; "
          f"min cosine int8 vs fp32 {cosine:.5f}")


def latency(index, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    times, found = [], []
    for q in queries:
        start = time.perf_counter()
        _, idx = index.search(q[None, :], k)
        times.append(time.perf_counter() - start)
        found.append(idx[0])
    return np.array(times) * 1000, np.array(found)


def search_speed(size: int, hnsw_max: int, threads: int, num_queries: int = 100) -> None:
    import faiss

    from clipreid.gallery import faiss_index

    faiss.omp_set_num_threads(threads)
    rng = np.random.default_rng(size)
    # identities of 10 images: a random centre each, every image the centre plus noise of
    # about 0.7 of its length (cosine ~0.7 within an identity, ~0 across), L2-normalised;
    # queries are further images of gallery identities
    centres = rng.standard_normal((size // 10, 1280), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    gallery = np.empty((size, 1280), dtype=np.float32)
    for start in range(0, size, 100_000):
        stop = min(start + 100_000, size)
        block = centres[np.arange(start, stop) // 10]
        block += 0.02 * rng.standard_normal(block.shape, dtype=np.float32)
        gallery[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    queries = centres[rng.choice(len(centres), num_queries, replace=False)]
    queries = queries + 0.02 * rng.standard_normal(queries.shape, dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    print(f"\ngallery of {size:,} x 1,280-d ({gallery.nbytes / 2**30:.2f} GiB), "
          f"{num_queries} queries one at a time, top 10, {threads} threads:")
    exact_index = faiss_index(gallery, "exact")
    ms, exact = latency(exact_index, queries)
    del exact_index
    print(f"  exact  median {np.median(ms):8.2f} ms  p99 {np.percentile(ms, 99):8.2f} ms")
    for kind in ("hnsw", "ivf"):
        if kind == "hnsw" and size > hnsw_max:
            print(f"  hnsw   not built above {hnsw_max:,} entries (--hnsw-max)")
            continue
        start = time.perf_counter()
        index = faiss_index(gallery, kind)
        built = time.perf_counter() - start
        ms, found = latency(index, queries)
        recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(found, exact)])
        print(f"  {kind:5s}  median {np.median(ms):8.2f} ms  p99 {np.percentile(ms, 99):8.2f} "
              f"ms  recall@10 {recall:.3f}  (built in {built:.0f} s)")
        del index


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-vit-b16", action="store_true")
    parser.add_argument("--skip-embedding", action="store_true")
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--hnsw-max", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_embedding:
            embedding_speed("embedded model (vit_tiny)", "vit_tiny", [128, 64], 512,
                            args.threads, Path(tmp))
            if not args.skip_vit_b16:
                embedding_speed("ViT-B/16-shaped model", "vit_b16", [256, 128], 96,
                                args.threads, Path(tmp))
    for size in args.sizes:
        search_speed(size, args.hnsw_max, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
