"""The ``evaluate`` stage's library function: metrics of every variant, tables, pictures.

:func:`run_evaluation` takes the test features and labels, the query/gallery partitions
of the protocol and the ``evaluation`` config group (a plain mapping), and writes the
metrics JSON and the plots folder. It reads no config file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from clipreid.errors import ConfigError, DatasetError
from clipreid.evaluation import inputs
from clipreid.evaluation.distance import DISTANCES, pairwise_distance
from clipreid.evaluation.metrics import evaluate, evaluate_features
from clipreid.evaluation.plots import (RankList, plot_cmc, plot_histogram, save_rank_lists,
                                       write_cmc_table, write_histogram_table)
from clipreid.evaluation.query_expansion import alpha_query_expansion
from clipreid.evaluation.rerank import k_reciprocal_rerank
from clipreid.io import atomic_dir, write_json

#: The keys of the metrics JSON, per variant.
METRIC_KEYS = ("mAP", "rank1", "rank5", "rank10", "mINP")


@dataclass(frozen=True)
class RerankSettings:
    enabled: bool = False
    k1: int = 20
    k2: int = 6
    lambda_value: float = 0.3


@dataclass(frozen=True)
class QueryExpansionSettings:
    enabled: bool = False
    top_k: int = 5
    alpha: float = 3.0


@dataclass(frozen=True)
class PlotSettings:
    num_queries: int = 4  # best and worst queries drawn (each)
    top_k: int = 10  # gallery images per rank list
    histogram_bins: int = 100


@dataclass(frozen=True)
class EvaluationSettings:
    """The ``evaluation`` config group (keys not listed here are left to other code)."""

    distance: str = "euclidean"
    max_rank: int = 50
    block_size: int | None = None  # None: sized by metrics.default_block_size
    remove_same_camera: bool = True
    rerank: RerankSettings = field(default_factory=RerankSettings)
    query_expansion: QueryExpansionSettings = field(default_factory=QueryExpansionSettings)
    plots: PlotSettings = field(default_factory=PlotSettings)


def _typed(group: str, key: str, value, default):
    """``value`` checked against the type of ``default`` (ConfigError naming the key)."""
    name = f"evaluation.{group + '.' if group else ''}{key}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        return value
    if isinstance(default, int) or (default is None and key == "block_size"):
        if value is None and default is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        return int(value)
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        return float(value)
    return value


def _group(cls, cfg, group: str):
    if cfg is None:
        return cls()
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"evaluation.{group} must be a mapping, got {type(cfg).__name__}")
    defaults = cls()
    allowed = list(cls.__dataclass_fields__)
    unknown = sorted(set(cfg) - set(allowed))
    if unknown:
        raise ConfigError(f"evaluation.{group} has unknown key(s) {unknown}; allowed: {allowed}")
    return cls(**{k: _typed(group, k, cfg[k], getattr(defaults, k)) for k in allowed if k in cfg})


def settings_from_config(cfg: Mapping | None) -> EvaluationSettings:
    """Parse the ``evaluation`` config group; missing keys take their defaults."""
    cfg = cfg or {}
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"the evaluation config must be a mapping, got {type(cfg).__name__}")
    defaults = EvaluationSettings()
    top = {}
    for key in ("distance", "max_rank", "block_size", "remove_same_camera"):
        if key in cfg:
            top[key] = _typed("", key, cfg[key], getattr(defaults, key))
    if top.get("distance", defaults.distance) not in DISTANCES:
        raise ConfigError(
            f"evaluation.distance must be one of {DISTANCES}, got {top['distance']!r}")
    if top.get("max_rank", defaults.max_rank) < 10:
        raise ConfigError(f"evaluation.max_rank must be at least 10 (rank10 is reported), "
                          f"got {top['max_rank']}")
    settings = EvaluationSettings(
        **top,
        rerank=_group(RerankSettings, cfg.get("rerank"), "rerank"),
        query_expansion=_group(QueryExpansionSettings, cfg.get("query_expansion"),
                               "query_expansion"),
        plots=_group(PlotSettings, cfg.get("plots"), "plots"),
    )
    if not 0.0 <= settings.rerank.lambda_value <= 1.0:
        raise ConfigError("evaluation.rerank.lambda_value must be in [0, 1], "
                          f"got {settings.rerank.lambda_value}")
    if settings.query_expansion.alpha < 0:
        raise ConfigError(f"evaluation.query_expansion.alpha must be >= 0, "
                          f"got {settings.query_expansion.alpha}")
    return settings


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


def _average(summaries: list[dict]) -> dict:
    """Mean of each metric over partitions; with several, also their (sample) std."""
    out = {k: float(np.mean([s[k] for s in summaries])) for k in METRIC_KEYS}
    if len(summaries) > 1:
        out["std"] = {k: float(np.std([s[k] for s in summaries], ddof=1)) for k in METRIC_KEYS}
    return out


def _rank_lists(which: np.ndarray, result, qf, gf, q_pids, g_pids, q_cams, g_cams,
                q_paths, g_paths, settings: EvaluationSettings) -> list[RankList]:
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


def run_evaluation(features, pids, camids, paths, partitions, cfg: Mapping | None,
                   metrics_path: str | os.PathLike, plots_dir: str | os.PathLike) -> dict:
    """Evaluate test features under the Market protocol; write metrics and plots.

    ``features`` (N, D) of all test images (query and gallery), ``pids``/``camids`` (N,)
    int labels, ``paths`` (N,) image files (for the rank lists), ``partitions`` a list of
    (query indices, gallery indices) into those N images: one for ordinary data sets,
    several (random trials, e.g. VehicleID) whose metrics are averaged.

    Writes ``metrics_path`` (JSON): ``mAP``, ``rank1``, ``rank5``, ``rank10``, ``mINP``
    (fractions, means over partitions), ``num_partitions``, ``num_queries``,
    ``num_valid_queries``, ``std`` (per metric, with several partitions), and, when
    enabled, ``reranked`` and ``query_expansion`` objects with the same metric keys.
    Writes into ``plots_dir`` (replaced as a whole): ``cmc.csv`` (rank,cmc), and
    ``cmc_reranked.csv`` / ``cmc_query_expansion.csv`` when enabled, ``cmc.png``,
    ``distance_hist.csv`` (distance,positive,negative), ``distance_hist.png``,
    ``ranklist_best.png`` and ``ranklist_worst.png``. Histogram and rank lists come from
    the first partition. Returns the metrics written.
    """
    settings = settings_from_config(cfg)
    feats, pids, camids, paths, parts = _check_inputs(features, pids, camids, paths, partitions)
    common = dict(max_rank=settings.max_rank, remove_same_camera=settings.remove_same_camera)

    variants: dict[str, list] = {"plain": []}
    if settings.rerank.enabled:
        variants["reranked"] = []
    if settings.query_expansion.enabled:
        variants["query_expansion"] = []
    first = None
    for i, (q_idx, g_idx) in enumerate(parts):
        qf = feats[torch.as_tensor(q_idx, device=feats.device)]
        gf = feats[torch.as_tensor(g_idx, device=feats.device)]
        labels = (pids[q_idx], pids[g_idx], camids[q_idx], camids[g_idx])
        plain = evaluate_features(qf, gf, *labels, distance=settings.distance,
                                  block_size=settings.block_size,
                                  histogram_bins=settings.plots.histogram_bins if i == 0 else 0,
                                  **common)
        variants["plain"].append(plain)
        if i == 0:
            first = (plain, qf, gf, labels, q_idx, g_idx)
        if settings.rerank.enabled:
            r = settings.rerank
            dist = k_reciprocal_rerank(qf, gf, k1=r.k1, k2=r.k2, lambda_value=r.lambda_value,
                                       distance=settings.distance, block_size=settings.block_size)
            variants["reranked"].append(evaluate(dist, *labels, **common))
            del dist
        if settings.query_expansion.enabled:
            e = settings.query_expansion
            qe = alpha_query_expansion(qf, gf, top_k=e.top_k, alpha=e.alpha,
                                       block_size=settings.block_size)
            variants["query_expansion"].append(
                evaluate_features(qe, gf, *labels, distance=settings.distance,
                                  block_size=settings.block_size, **common))

    metrics = _average([_summary(r) for r in variants["plain"]])
    metrics["num_partitions"] = len(parts)
    metrics["num_queries"] = _mean_count([r["num_queries"] for r in variants["plain"]])
    metrics["num_valid_queries"] = _mean_count([r["num_valid_queries"] for r in variants["plain"]])
    for name in ("reranked", "query_expansion"):
        if name in variants:
            metrics[name] = _average([_summary(r) for r in variants[name]])

    _write_plots(plots_dir, variants, first, pids, camids, paths, settings)
    write_json(metrics_path, metrics)
    return metrics


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
        for name, cmc in curves.items():
            write_cmc_table(out / ("cmc.csv" if name == "plain" else f"cmc_{name}.csv"), cmc)
        plot_cmc(out / "cmc.png", curves)
        write_histogram_table(out / "distance_hist.csv", plain["distance_histogram"])
        plot_histogram(out / "distance_hist.png", plain["distance_histogram"], label)
        for name, which in (("best", best), ("worst", worst)):
            lists = _rank_lists(which, plain, qf, gf, q_pids, g_pids, q_cams, g_cams,
                                q_paths, g_paths, settings)
            save_rank_lists(out / f"ranklist_{name}.png", lists,
                            f"{name} queries by AP (green: correct match, red: wrong)")
