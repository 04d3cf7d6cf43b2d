"""Time and peak memory of the evaluation engine against the published evaluators' design.

Problems (random but structured features: identity centre + camera bias + noise whose
scale varies per image, L2-normalised by the evaluators):

- Market-1501 sized: 3,368 queries, 15,913 gallery images (2,798 distractors, pid 0),
  750 identities, 6 cameras, 1,280-d;
- MSMT17 sized: 11,659 queries, 82,161 gallery images, 3,060 identities, 15 cameras.

Measured, each in a fresh subprocess (peak memory = the child's ``ru_maxrss``, which
includes the interpreter, torch and the loaded features; the increase over the resident
size just before the timed call is printed too). On the Market-sized problem ours and the
reference take turns for several rounds, so that a slow spell of a shared machine hits
both; the fastest run of each counts, and the ratio of every round is printed too:

- ours: ``evaluate_features`` (features in, metrics out);
- reference: the published evaluators' design, written here from the definition: the
  distance matrix (torch, the published formula), a full ``np.argsort`` of every row, then
  a per-query numpy loop; run on MSMT17 sizes only if it fits in the available memory;
- re-ranking (Market sized): ``k_reciprocal_rerank`` against a straightforward numpy
  reading of Zhong et al. (2017) with dense N x N matrices.

Usage: ``python benchmarks/evaluation_benchmark.py [--quick] [--skip-msmt] [--skip-rerank]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZES = {
    "market": dict(num_query=3368, num_gallery=15913, num_distractors=2798, num_ids=750,
                   num_cams=6, dim=1280, noise=2.1),
    "msmt": dict(num_query=11659, num_gallery=82161, num_distractors=0, num_ids=3060,
                 num_cams=15, dim=1280, noise=2.6),
}
QUICK_SIZES = {
    "market": dict(num_query=300, num_gallery=1500, num_distractors=200, num_ids=80,
                   num_cams=6, dim=256, noise=2.1),
    "msmt": dict(num_query=600, num_gallery=5000, num_distractors=0, num_ids=200,
                 num_cams=15, dim=256, noise=2.6),
}
MAX_RANK = 50
GIB = 1024**3


# --- the problems ---------------------------------------------------------------------
def make_problem(size: dict, seed: int, out_dir: Path) -> None:
    """Write qf, gf (float32) and the labels of a synthetic problem as .npy files."""
    rng = np.random.default_rng(seed)
    dim, ids, cams = size["dim"], size["num_ids"], size["num_cams"]
    centres = rng.standard_normal((ids + 1, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    cam_bias = rng.standard_normal((cams, dim)).astype(np.float32)
    cam_bias *= 0.3 / np.linalg.norm(cam_bias, axis=1, keepdims=True)

    def features(pids, camids, own_centres=None):
        out = np.empty((len(pids), dim), dtype=np.float32)
        for a in range(0, len(pids), 8192):  # in chunks: bounded memory
            p, c = pids[a:a + 8192], camids[a:a + 8192]
            base = centres[p] if own_centres is None else own_centres[a:a + 8192]
            scale = size["noise"] * rng.lognormal(0.0, 0.35, (len(p), 1)).astype(np.float32)
            noise = rng.standard_normal((len(p), dim), dtype=np.float32) / np.sqrt(dim)
            out[a:a + 8192] = base + cam_bias[c] + scale * noise
        return out

    nq, ng, nd = size["num_query"], size["num_gallery"], size["num_distractors"]
    q_pids = rng.integers(1, ids + 1, nq)
    q_cams = rng.integers(0, cams, nq)
    g_pids = np.concatenate([rng.integers(1, ids + 1, ng - nd), np.zeros(nd, dtype=np.int64)])
    g_cams = rng.integers(0, cams, ng)
    gf = features(g_pids, g_cams)
    if nd:  # distractors: people of their own, absent from the queries
        others = rng.standard_normal((nd, dim)).astype(np.float32)
        others /= np.linalg.norm(others, axis=1, keepdims=True)
        gf[ng - nd:] = features(g_pids[ng - nd:], g_cams[ng - nd:], own_centres=others)
    arrays = dict(qf=features(q_pids, q_cams), gf=gf, q_pids=q_pids, g_pids=g_pids,
                  q_cams=q_cams, g_cams=g_cams)
    for name, a in arrays.items():
        np.save(out_dir / f"{name}.npy", a)


def load_problem(data_dir: Path) -> dict:
    return {name: np.load(data_dir / f"{name}.npy")
            for name in ("qf", "gf", "q_pids", "g_pids", "q_cams", "g_cams")}


# --- the reference evaluator ----------------------------------------------------------
def reference_distances(qf: np.ndarray, gf: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances of L2-normalised features, the published formula."""
    import torch

    q = torch.nn.functional.normalize(torch.from_numpy(qf), dim=1)
    g = torch.nn.functional.normalize(torch.from_numpy(gf), dim=1)
    m, n = len(q), len(g)
    dist = q.pow(2).sum(dim=1, keepdim=True).expand(m, n) + \
        g.pow(2).sum(dim=1, keepdim=True).expand(n, m).t()
    dist.addmm_(q, g.t(), beta=1, alpha=-2)
    return dist.numpy()


def reference_metrics(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=MAX_RANK,
                      kind="quicksort") -> dict:
    """Full argsort of every row, then per query: drop same-identity same-camera images,
    read CMC, AP and INP off the match vector."""
    indices = np.argsort(distmat, axis=1, kind=kind)
    matches = (g_pids[indices] == q_pids[:, None]).astype(np.int32)
    all_cmc, all_ap, all_inp = [], [], []
    for q in range(len(q_pids)):
        order = indices[q]
        keep = ~((g_pids[order] == q_pids[q]) & (g_cams[order] == q_cams[q]))
        raw = matches[q][keep]
        if not raw.any():
            continue
        cum = raw.cumsum()
        hits = np.flatnonzero(raw)
        all_inp.append(cum[hits[-1]] / (hits[-1] + 1.0))
        all_cmc.append(np.minimum(cum, 1)[:max_rank])
        precision = cum / np.arange(1, len(cum) + 1)
        all_ap.append((precision * raw).sum() / raw.sum())
    cmc = np.asarray(all_cmc, dtype=np.float64).sum(axis=0) / len(all_cmc)
    return {"mAP": float(np.mean(all_ap)), "cmc": cmc, "mINP": float(np.mean(all_inp))}


def reference_rerank(qf, gf, k1=20, k2=6, lambda_value=0.3, kind="quicksort") -> np.ndarray:
    """Zhong et al. (2017) read straight: dense N x N distances, argsort, V and V_qe.
    (``kind="stable"`` breaks distance ties by index, as our implementation does.)"""
    x = np.concatenate([qf, gf])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    nq, n = len(qf), len(x)
    d = x @ x.T
    d *= -2
    d += 2
    np.maximum(d, 0, out=d)
    d /= d.max(axis=1, keepdims=True)
    ranking = np.argsort(d, axis=1, kind=kind)[:, :max(k1 + 1, k2)].copy()
    k_half = int(round(k1 / 2))

    def reciprocal(p, k):
        forward = ranking[p, :k + 1]
        return forward[(ranking[forward, :k + 1] == p).any(axis=1)]

    v = np.zeros((n, n), dtype=np.float32)
    for p in range(n):
        r = reciprocal(p, k1)
        expanded = r
        for c in r:
            r_half = reciprocal(c, k_half)
            if len(np.intersect1d(r_half, r)) > 2 / 3 * len(r_half):
                expanded = np.append(expanded, r_half)
        expanded = np.unique(expanded)
        w = np.exp(-d[p, expanded].astype(np.float64))
        v[p, expanded] = w / w.sum()
    if k2 > 1:
        v_qe = np.zeros_like(v)
        for p in range(n):
            v_qe[p] = v[ranking[p, :k2]].mean(axis=0)
        v = v_qe
        del v_qe
    rows, cols = np.nonzero(v)
    by_col = np.argsort(cols, kind="stable")
    col_start = np.searchsorted(cols[by_col], np.arange(n + 1))
    final = np.empty((nq, n - nq), dtype=np.float32)
    for i in range(nq):
        shared = np.zeros(n, dtype=np.float64)
        for j in np.flatnonzero(v[i]):
            holders = rows[by_col[col_start[j]:col_start[j + 1]]]
            shared[holders] += np.minimum(v[i, j], v[holders, j])
        jaccard = 1 - shared[nq:] / (2 - shared[nq:])
        final[i] = (1 - lambda_value) * jaccard + lambda_value * d[i, nq:]
    return final


# --- measurements, each in its own process --------------------------------------------
def rss_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def child(kind: str, data_dir: Path, result_path: Path, repeat: int, check: bool) -> None:
    import torch

    from clipreid.evaluation import (default_block_size, evaluate, evaluate_features,
                                     k_reciprocal_rerank)
    from clipreid.evaluation.distance import GalleryDistances, normalize, pairwise_distance

    p = load_problem(data_dir)
    labels = (p["q_pids"], p["g_pids"], p["q_cams"], p["g_cams"])
    before = rss_bytes()
    extra = {}
    times, dist_times = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        if kind == "ours":
            result = evaluate_features(p["qf"], p["gf"], *labels, max_rank=MAX_RANK)
            # untimed in "seconds": the similarity products alone, right after, as
            # evaluate_features computes them (interleaved, so both see the same load)
            t1 = time.perf_counter()
            gallery = GalleryDistances(torch.from_numpy(p["gf"]), "euclidean",
                                       torch.device("cpu"))
            qn = normalize(torch.from_numpy(p["qf"]))
            block = default_block_size(len(p["gf"]))
            for a in range(0, len(qn), block):
                gallery.similarities(qn[a:a + block])
            dist_times.append(time.perf_counter() - t1)
            times.append(t1 - t0)
            continue
        elif kind == "reference":
            t1 = time.perf_counter()
            dist = reference_distances(p["qf"], p["gf"])
            extra["distance_seconds"] = time.perf_counter() - t1
            result = reference_metrics(dist, *labels)
            del dist
        elif kind == "ours_rerank":
            dist = k_reciprocal_rerank(p["qf"], p["gf"])
        elif kind == "reference_rerank":
            dist = reference_rerank(p["qf"], p["gf"])
        elif kind == "reference_rerank_stable":
            dist = reference_rerank(p["qf"], p["gf"], kind="stable")
        else:
            raise ValueError(kind)
        times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if dist_times:
        extra["distance_seconds"] = min(dist_times)
    if "rerank" in kind:  # untimed: metrics of the re-ranked distances, and the matrix
        np.save(data_dir / f"{kind}.npy", dist)
        result = evaluate(dist, *labels, max_rank=MAX_RANK)
    if kind == "reference" and check:  # untimed: the same ranking on our distances
        ours_dist = pairwise_distance(p["qf"], p["gf"]).numpy()
        same = reference_metrics(ours_dist, *labels, kind="stable")
        extra["on_our_distances"] = {"mAP": same["mAP"], "mINP": same["mINP"],
                                     "cmc": same["cmc"].tolist()}
    out = {"seconds": min(times), "all_seconds": times, "peak_rss": peak, "rss_before": before,
           "threads": torch.get_num_threads(), **extra}
    if result is not None:
        out.update(mAP=result["mAP"], mINP=result["mINP"], cmc=np.asarray(result["cmc"]).tolist())
    result_path.write_text(json.dumps(out))


def measure(kind: str, data_dir: Path, repeat: int = 1, check: bool = True) -> dict:
    """Run ``kind`` ``repeat`` times in a fresh process; ``check``: also its untimed
    cross-checks."""
    result_path = data_dir / f"{kind}.json"
    cmd = [sys.executable, __file__, "--child", kind, "--data", str(data_dir),
           "--result", str(result_path), "--repeat", str(repeat)]
    subprocess.run(cmd + (["--check"] if check else []), check=True)
    return json.loads(result_path.read_text())


def measure_alternately(kinds: tuple[str, ...], data_dir: Path, rounds: int,
                        repeat: int) -> list[dict]:
    """Each of ``kinds`` measured in ``rounds`` rounds, taking turns (so that a slow spell
    of the machine hits all of them), ``repeat`` timed runs per process. The result of
    each kind: its first round's, with ``seconds`` the fastest run of all rounds,
    ``round_seconds`` the fastest of each round and ``peak_rss`` the largest."""
    runs = {kind: [] for kind in kinds}
    for r in range(rounds):
        for kind in kinds:
            runs[kind].append(measure(kind, data_dir, repeat, check=r == 0))
    merged = []
    for kind in kinds:
        first = dict(runs[kind][0])
        first["round_seconds"] = [run["seconds"] for run in runs[kind]]
        first["seconds"] = min(first["round_seconds"])
        first["peak_rss"] = max(run["peak_rss"] for run in runs[kind])
        if "distance_seconds" in first:
            first["distance_seconds"] = min(run["distance_seconds"] for run in runs[kind])
        merged.append(first)
    return merged


def available_bytes() -> int:
    import psutil

    return psutil.virtual_memory().available


# --- report ---------------------------------------------------------------------------
def gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB"


def describe(name: str, r: dict) -> str:
    return (f"  {name:<22} {r['seconds']:8.2f} s   peak RSS {gib(r['peak_rss'])} "
            f"(+{gib(r['peak_rss'] - r['rss_before'])} over the loaded data)   "
            f"mAP {r['mAP']:.4f} R1 {r['cmc'][0]:.4f} mINP {r['mINP']:.4f}")


def metric_gap(a: dict, b: dict) -> float:
    return max(abs(a["mAP"] - b["mAP"]), abs(a["mINP"] - b["mINP"]),
               float(np.max(np.abs(np.asarray(a["cmc"]) - np.asarray(b["cmc"])))))


def run_evaluation_problem(name: str, size: dict, root: Path, rounds: int,
                           repeat: int) -> None:
    data = root / name
    data.mkdir()
    print(f"\n== {name}: {size['num_query']} queries x {size['num_gallery']} gallery, "
          f"{size['num_ids']} ids, {size['num_cams']} cameras, {size['dim']}-d", flush=True)
    make_problem(size, seed=0, out_dir=data)
    cells = size["num_query"] * size["num_gallery"]
    # distance matrix (float32) + argsort indices + g_pids[indices] (int64) + matches (int32)
    need = cells * (4 + 8 + 8 + 4)
    avail = available_bytes()
    if need > 0.7 * avail:
        ours = measure("ours", data, repeat)
        print(describe("ours (features in)", ours) +
              f"   (similarity products alone {ours['distance_seconds']:.2f} s)", flush=True)
        print(f"  reference: skipped, it needs about {gib(need)} (distance matrix "
              f"{gib(cells * 4)}, argsort indices {gib(cells * 8)}, their identities "
              f"{gib(cells * 8)}, match matrix {gib(cells * 4)}) and {gib(avail)} is "
              "available on this machine")
        return
    print(f"  {rounds} rounds, ours and the reference taking turns, each a fresh process "
          f"timing {repeat} runs; the fastest run counts", flush=True)
    ours, ref = measure_alternately(("ours", "reference"), data, rounds, repeat)
    print(describe("ours (features in)", ours) +
          f"   (similarity products alone {ours['distance_seconds']:.2f} s)")
    print(describe("reference", ref) + f"   (distances {ref['distance_seconds']:.2f} s)")
    per_round = [r / o for r, o in zip(ref["round_seconds"], ours["round_seconds"])]
    print(f"  speed-up: {ref['seconds'] / ours['seconds']:.1f}x (per round "
          f"{', '.join(f'{x:.1f}x' for x in per_round)})   peak RSS reference/ours: "
          f"{ref['peak_rss'] / ours['peak_rss']:.1f}x")
    ours_rank = ours["seconds"] - ours["distance_seconds"]
    ref_rank = ref["seconds"] - ref["distance_seconds"]
    ratio = f"{ref_rank / ours_rank:.0f}x" if ours_rank > 0.05 else "n/a (too short to tell)"
    print(f"  ranking alone (total minus distances): ours {ours_rank:.2f} s, reference "
          f"{ref_rank:.2f} s -> {ratio}; distances: ours {ours['distance_seconds']:.2f} s "
          f"(similarities by numpy's BLAS), reference {ref['distance_seconds']:.2f} s (torch, "
          "published formula)")
    gap = metric_gap(ours, ref["on_our_distances"])
    print(f"  metrics vs reference on the same distances (stable ties): max |diff| = {gap:.2e}"
          f" -> {'agree' if gap <= 1e-9 else 'DIFFER'}")
    gap = metric_gap(ours, ref)
    print(f"  metrics vs reference on its own float32 distances: max |diff| = {gap:.2e}"
          f" -> {'agree' if gap <= 1e-4 else 'DIFFER'} (tolerance 1e-4: rounding of "
          "near-equal distances)")


def run_rerank_problem(size: dict, root: Path) -> None:
    data = root / "market_rerank"
    data.mkdir()
    n = size["num_query"] + size["num_gallery"]
    print(f"\n== re-ranking (k1 20, k2 6, lambda 0.3): {size['num_query']} + "
          f"{size['num_gallery']} images", flush=True)
    make_problem(size, seed=1, out_dir=data)
    ours = measure("ours_rerank", data)
    print(describe("ours", ours), flush=True)
    # N x N distances (float32) + argsort (int64) + V and V_qe (float32)
    need = n * n * (4 + 8 + 4 + 4)
    avail = available_bytes()
    if need > 0.7 * avail:
        print(f"  reference: skipped, it needs about {gib(need)} and {gib(avail)} is available")
        return
    ref = measure("reference_rerank", data)
    print(describe("reference", ref), flush=True)
    print(f"  speed-up: {ref['seconds'] / ours['seconds']:.1f}x   peak RSS reference/ours: "
          f"{ref['peak_rss'] / ours['peak_rss']:.1f}x")
    ours_dist = np.load(data / "ours_rerank.npy")
    diff = np.abs(ours_dist - np.load(data / "reference_rerank.npy"))
    print(f"  vs reference (unstable argsort, as published): re-ranked distances max |diff| "
          f"{diff.max():.2e} ({(diff > 1e-5).sum()} entries > 1e-5), metrics max |diff| "
          f"{metric_gap(ours, ref):.2e}")
    stable = measure("reference_rerank_stable", data)
    diff = np.abs(ours_dist - np.load(data / "reference_rerank_stable.npy"))
    gap = metric_gap(ours, stable)
    print(f"  vs reference with distance ties broken by index as ours ({stable['seconds']:.1f} s): "
          f"distances max |diff| {diff.max():.2e}, metrics max |diff| {gap:.2e} -> "
          f"{'agree' if diff.max() <= 1e-5 and gap <= 1e-6 else 'DIFFER'}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small problems (seconds)")
    parser.add_argument("--skip-msmt", action="store_true")
    parser.add_argument("--skip-rerank", action="store_true")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of ours and the reference taking turns (Market size)")
    parser.add_argument("--repeat", type=int, default=2,
                        help="timed runs per process (the fastest of all counts)")
    parser.add_argument("--check", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, Path(args.data), Path(args.result), args.repeat, args.check)
        return
    sizes = QUICK_SIZES if args.quick else SIZES
    print(f"CPU threads: {os.cpu_count()}, available memory {gib(available_bytes())}")
    with tempfile.TemporaryDirectory(prefix="eval_bench_") as tmp:
        root = Path(tmp)
        run_evaluation_problem("market", sizes["market"], root, args.rounds, args.repeat)
        if not args.skip_msmt:
            run_evaluation_problem("msmt", sizes["msmt"], root, 1, 1)
        if not args.skip_rerank:
            run_rerank_problem(sizes["market"], root)


if __name__ == "__main__":
    main()
