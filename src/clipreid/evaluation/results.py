"""The ``evaluate`` stage's library function: metrics of every variant, tables, pictures.

:func:`run_evaluation` takes the test features and labels, the query/gallery partitions
of the protocol and the ``evaluation`` config group (a plain mapping), and writes the
metrics JSON and the plots folder. It reads no config file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from clipreid.config.schema import EvaluationConfig, ExpectedConfig, coerce
from clipreid.errors import DatasetError
from clipreid.evaluation import inputs
from clipreid.evaluation.distance import pairwise_distance
from clipreid.evaluation.metrics import evaluate, evaluate_features
from clipreid.evaluation.plots import (RankList, plot_cmc, plot_histogram, save_rank_lists,
                                       write_cmc_tables, write_csv, write_histogram_table)
from clipreid.evaluation.query_expansion import alpha_query_expansion
from clipreid.evaluation.rerank import k_reciprocal_rerank
from clipreid.evaluation.thresholds import fit_thresholds, rate_name, roc_table
from clipreid.io import atomic_dir, write_json

log = logging.getLogger(__name__)

#: The headline metrics, per variant; a variant's keys carry its suffix (``mAP_rerank``).
METRIC_KEYS = ("mAP", "rank1", "rank5", "rank10", "mINP")
#: Variant name -> suffix of its metric keys and of its CMC column.
VARIANTS = {"plain": "", "rerank": "_rerank", "qe": "_qe"}
LABELS = {"plain": "plain", "rerank": "re-ranked", "qe": "query expansion"}


def _check_inputs(features, pids, camids, paths, partitions):
    feats = inputs.features(features, "features")
    pids = inputs.labels(pids, "pids")
    camids = inputs.labels(camids, "camids")
    paths = list(paths)
    inputs.check_lengths([("features", len(feats)), ("pids", len(pids)),
                          ("camids", len(camids)), ("paths", len(paths))])
    if not isinstance(partitions, Sequence) or isinstance(partitions, (str, bytes)) \
            or len(partitions) == 0:
        raise DatasetError("partitions must be a non-empty list of (query indices, "
                           "gallery indices) pairs")
    checked = []
    for i, part in enumerate(partitions):
        if len(part) != 2:
            raise DatasetError(f"partition {i} must be a (query indices, gallery indices) pair")
        pair = []
        for name, idx in zip(("query", "gallery"), part):
            idx = inputs.labels(idx, f"the {name} indices of partition {i}")
            if len(idx) == 0:
                raise DatasetError(f"partition {i} has an empty {name} set")
            if idx.min() < 0 or idx.max() >= len(feats):
                raise DatasetError(f"partition {i} has {name} indices outside 0..{len(feats) - 1}")
            pair.append(idx)
        if np.intersect1d(pair[0], pair[1]).size:
            raise DatasetError(f"partition {i} puts some images in both query and gallery; "
                               "an image cannot be its own gallery match")
        checked.append(tuple(pair))
    return feats, pids, camids, paths, checked


def _summary(result: Mapping) -> dict:
    cmc = result["cmc"]
    return {"mAP": result["mAP"], "rank1": float(cmc[0]), "rank5": float(cmc[4]),
            "rank10": float(cmc[9]), "mINP": result["mINP"]}


def _average(summaries: list[dict], suffix: str) -> dict:
    """Mean of each metric over partitions, keys with ``suffix``."""
    return {k + suffix: float(np.mean([s[k] for s in summaries])) for k in METRIC_KEYS}


def _spread(summaries: list[dict], suffix: str) -> dict:
    """Sample standard deviation of each metric over partitions (several only)."""
    if len(summaries) < 2:
        return {}
    return {k + suffix: float(np.std([s[k] for s in summaries], ddof=1)) for k in METRIC_KEYS}


def _rank_lists(which: np.ndarray, result, qf, gf, q_pids, g_pids, q_cams, g_cams,
                q_paths, g_paths, settings: EvaluationConfig) -> list[RankList]:
    """Rank lists of the queries ``which`` (indices into the partition's queries)."""
    dist = pairwise_distance(qf[torch.as_tensor(which, device=qf.device)], gf,
                             settings.distance).cpu().numpy()
    lists = []
    for row, q in enumerate(which.tolist()):
        order = np.argsort(dist[row], kind="stable")
        if settings.remove_same_camera:
            junk = (g_pids[order] == q_pids[q]) & (g_cams[order] == q_cams[q])
            order = order[~junk]
        top = order[:settings.plots.top_k]
        lists.append(RankList(
            query_path=q_paths[q], gallery_paths=[g_paths[g] for g in top],
            correct=[bool(g_pids[g] == q_pids[q]) for g in top],
            caption=f"query {q} (id {q_pids[q]}): AP {result['ap'][q]:.3f}"))
    return lists


def run_evaluation(features, pids, camids, paths, partitions, settings: EvaluationConfig,
                   metrics_path: str | os.PathLike, report_path: str | os.PathLike,
                   plots_dir: str | os.PathLike, test_split: str | None = None,
                   run_params: Mapping | None = None) -> dict:
    """Evaluate test features under the Market protocol; write metrics, report and plots.

    ``features`` (N, D) of all test images (query and gallery), ``pids``/``camids`` (N,)
    int labels, ``paths`` (N,) image files (for the rank lists), ``partitions`` a list of
    (query indices, gallery indices) into those N images: one for ordinary data sets,
    several (random trials, e.g. VehicleID) whose metrics are averaged.

    Writes ``metrics_path`` (JSON, flat, the headline numbers only): ``mAP``, ``rank1``,
    ``rank5``, ``rank10``, ``mINP`` (fractions, means over partitions), and the same with
    ``_rerank`` / ``_qe`` when re-ranking / query expansion are enabled. Writes
    ``report_path`` (JSON, not a metric): counts (``num_partitions``, ``num_queries``,
    ``num_valid_queries``), with several partitions ``std`` per metric, and ``test_split``
    (the split's identity, e.g. :func:`~clipreid.evaluation.protocols.split_digest`) when
    given. With a published result in ``settings.expected`` (a named recipe), the metrics
    also hold ``mAP_gap`` / ``rank1_gap`` (measured minus published) and the report an
    ``expected`` block (:func:`gap_to_expected`; ``run_params``, the run's params as plain
    data, are checked against the recipe's ``requires``). Writes into
    ``plots_dir`` (replaced as a whole): ``cmc.csv`` (rank, cmc, and cmc_rerank / cmc_qe
    when enabled), ``cmc.png``, ``distance_hist.csv`` (distance, positive, negative),
    ``distance_hist.png``, ``ranklist_best.png`` and ``ranklist_worst.png``. Histogram and
    rank lists come from the first partition, and so do the match thresholds: the report's
    ``thresholds`` (per target false match rate of ``settings.thresholds``: the distance,
    the FMR and TMR reached), their TMRs as metrics (``tmr_at_fmr_1e-2``, ...), and
    ``roc.csv`` (fmr, tmr) in ``plots_dir``. Returns the metrics written.
    """
    settings = coerce(EvaluationConfig, settings, "evaluation")
    feats, pids, camids, paths, parts = _check_inputs(features, pids, camids, paths, partitions)
    common = dict(max_rank=settings.max_rank, remove_same_camera=settings.remove_same_camera)

    variants: dict[str, list] = {"plain": []}
    if settings.rerank.enabled:
        variants["rerank"] = []
    if settings.query_expansion.enabled:
        variants["qe"] = []
    first = None
    for i, (q_idx, g_idx) in enumerate(parts):
        qf = feats[torch.as_tensor(q_idx, device=feats.device)]
        gf = feats[torch.as_tensor(g_idx, device=feats.device)]
        labels = (pids[q_idx], pids[g_idx], camids[q_idx], camids[g_idx])
        plain = evaluate_features(qf, gf, *labels, distance=settings.distance,
                                  block_size=settings.block_size,
                                  histogram_bins=settings.plots.histogram_bins if i == 0 else 0,
                                  pair_bins=settings.thresholds.bins if i == 0 else 0,
                                  **common)
        variants["plain"].append(plain)
        if i == 0:
            first = (plain, qf, gf, labels, q_idx, g_idx)
        if settings.rerank.enabled:
            r = settings.rerank
            dist = k_reciprocal_rerank(qf, gf, k1=r.k1, k2=r.k2, lambda_value=r.lambda_value,
                                       distance=settings.distance, block_size=settings.block_size)
            variants["rerank"].append(evaluate(dist, *labels, **common))
            del dist
        if settings.query_expansion.enabled:
            e = settings.query_expansion
            qe = alpha_query_expansion(qf, gf, top_k=e.top_k, alpha=e.alpha,
                                       block_size=settings.block_size)
            variants["qe"].append(
                evaluate_features(qe, gf, *labels, distance=settings.distance,
                                  block_size=settings.block_size, **common))

    metrics, spread = {}, {}
    for name, results in variants.items():
        summaries = [_summary(r) for r in results]
        metrics.update(_average(summaries, VARIANTS[name]))
        spread.update(_spread(summaries, VARIANTS[name]))
    report = {
        "num_partitions": len(parts),
        "num_queries": _mean_count([r["num_queries"] for r in variants["plain"]]),
        "num_valid_queries": _mean_count([r["num_valid_queries"] for r in variants["plain"]]),
    }
    if spread:
        report["std"] = spread
    if test_split is not None:
        report["test_split"] = test_split
    thresholds = fit_thresholds(first[0]["pair_histogram"],
                                settings.thresholds.false_match_rates)
    report["thresholds"] = thresholds
    metrics.update({rate_name(t["fmr_target"]): t["tmr"] for t in thresholds})
    if not thresholds:
        log.warning("no match thresholds: the test split has no cross-camera pairs of the "
                    "same identity, or none of different identities")
    expected = gap_to_expected(metrics, settings.expected, run_params or {})
    if expected is not None:
        report["expected"] = expected
        metrics.update({f"{k}_gap": expected[f"{k}_gap"] for k in ("mAP", "rank1")
                        if f"{k}_gap" in expected})

    _write_plots(plots_dir, variants, first, pids, camids, paths, settings)
    write_json(report_path, report)
    write_json(metrics_path, metrics)
    return metrics


def _lookup(tree: Mapping, dotted: str):
    for part in dotted.split("."):
        if not isinstance(tree, Mapping) or part not in tree:
            return "<absent>"
        tree = tree[part]
    return tree


def gap_to_expected(metrics: dict, expected: ExpectedConfig, run_params: Mapping) -> dict | None:
    """The measured metrics against a recipe's published ones: for each of mAP and rank-1
    that has a published value, ``<name>_gap`` = measured - published, and ``reproduced``
    (no gap below -tolerance: reaching or beating the published number counts). A run
    whose params differ from the recipe's ``requires`` (``run_params``: plain nested data)
    is not compared: ``comparable`` false, with the differences. None when no published
    value is set."""
    published = {k: getattr(expected, k) for k in ("mAP", "rank1")
                 if getattr(expected, k) is not None}
    if not published:
        return None
    out = {"recipe": expected.recipe, "tolerance": expected.tolerance}
    differs = [f"{key}={_lookup(run_params, key)!r} (the published run: {value!r})"
               for key, value in expected.requires.items()
               if _lookup(run_params, key) != value]
    if differs:
        log.warning("recipe %s: this run differs from the published one (%s): no gap to its "
                    "numbers is reported", expected.recipe, "; ".join(differs))
        return {**out, "comparable": False, "differs": differs}
    out["comparable"] = True
    for name, value in published.items():
        out[name] = value
        out[f"{name}_gap"] = float(metrics[name]) - float(value)
    out["reproduced"] = all(out[f"{k}_gap"] >= -expected.tolerance for k in published)
    words = ", ".join(f"{k} {metrics[k]:.4f} vs {v:.4f} published ({out[f'{k}_gap']:+.4f})"
                      for k, v in published.items())
    if out["reproduced"]:
        log.info("recipe %s: %s: within %.3f", expected.recipe, words, expected.tolerance)
    else:
        log.warning("recipe %s: %s: below the published result by more than %.3f",
                    expected.recipe, words, expected.tolerance)
    return out


def _mean_count(counts: list[int]):
    return counts[0] if len(set(counts)) == 1 else float(np.mean(counts))


def _write_plots(plots_dir, variants, first, pids, camids, paths, settings) -> None:
    plain, qf, gf, labels, q_idx, g_idx = first
    q_pids, g_pids, q_cams, g_cams = labels
    curves = {name: np.mean([r["cmc"] for r in results], axis=0)
              for name, results in variants.items()}
    valid = np.flatnonzero(~np.isnan(plain["ap"]))
    n = settings.plots.num_queries
    best = valid[np.argsort(-plain["ap"][valid], kind="stable")[:n]]
    worst = valid[np.argsort(plain["ap"][valid], kind="stable")[:n]]
    q_paths = [paths[i] for i in q_idx.tolist()]
    g_paths = [paths[i] for i in g_idx.tolist()]
    label = "squared Euclidean distance" if settings.distance == "euclidean" else "cosine distance"
    with atomic_dir(plots_dir) as out:
        out = Path(out)
        write_cmc_tables(out / "cmc.csv", {f"cmc{VARIANTS[name]}": cmc
                                           for name, cmc in curves.items()})
        plot_cmc(out / "cmc.png", {LABELS[name]: cmc for name, cmc in curves.items()})
        write_histogram_table(out / "distance_hist.csv", plain["distance_histogram"])
        write_csv(out / "roc.csv", ["fmr", "tmr"], roc_table(plain["pair_histogram"]))
        plot_histogram(out / "distance_hist.png", plain["distance_histogram"], label)
        for name, which in (("best", best), ("worst", worst)):
            lists = _rank_lists(which, plain, qf, gf, q_pids, g_pids, q_cams, g_cams,
                                q_paths, g_paths, settings)
            save_rank_lists(out / f"ranklist_{name}.png", lists,
                            f"{name} queries by AP (green: correct match, red: wrong)")
