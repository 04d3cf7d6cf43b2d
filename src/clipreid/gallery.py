"""A searchable gallery: `clipreid index build|add` and `clipreid search`.

An index is a folder:

- ``index.json``: the model it was built with (path and SHA-256: queries must be embedded
  with the same file), the model's metadata, the distance, the kind (``exact`` or
  ``hnsw``) and the number of entries;
- ``entries.csv``: per gallery image its resolved path, the SHA-256 of its bytes (the same
  image added twice is recognised by it), and its identity and camera when given;
- ``features.npy``: the L2-normalised descriptors, one row per entry;
- ``hnsw.faiss`` / ``ivf.faiss``: the approximate index, for ``kind: hnsw`` (a graph,
  good recall, slow to build for millions) or ``kind: ivf`` (inverted lists over k-means
  cells, quick to build) only.

Exact search is a FAISS inner-product scan (``IndexFlatIP``) of the normalised features:
its ranking is the evaluator's (distances ``2 - 2 s``, squared Euclidean on normalised
features, or ``1 - s`` for cosine). The approximate index (FAISS HNSW) is for galleries of
millions; ``benchmarks/inference_benchmark.py`` prints its recall@10 against exact search.
Every write replaces the folder atomically.
"""

from __future__ import annotations

import contextlib
import csv
import html
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipreid.embed import Embedding, Source, embed, read_source
from clipreid.errors import ClipReidError, ConfigError, DatasetError
from clipreid.io import atomic_dir, atomic_path, file_sha256

log = logging.getLogger(__name__)

FORMAT = 1
KINDS = ("exact", "hnsw", "ivf")
APPROXIMATE = ("hnsw", "ivf")
DISTANCES = ("euclidean", "cosine")
HNSW_NEIGHBOURS = 32        # M: links per node
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 128
IVF_PROBES = 32             # cells searched per query
IVF_TRAINING = 100_000      # at most this many features train the k-means cells


@dataclass
class Gallery:
    """An index folder, read."""

    info: dict                 # index.json
    entries: list[dict]        # entries.csv rows: path, sha256, pid, camid ('' when unknown)
    features: np.ndarray       # (N, D) float32


def similarity_to_distance(sim: np.ndarray, distance: str) -> np.ndarray:
    """The evaluator's distance (clipreid.evaluation.distance) from cosine similarities."""
    from clipreid.evaluation.distance import similarity_to_distance as convert

    return convert(np.array(sim, dtype=np.float32), distance)


def faiss_index(features: np.ndarray, kind: str):
    import faiss

    dim = features.shape[1]
    if kind == "exact":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    elif kind == "ivf":
        cells = max(1, min(int(4 * np.sqrt(len(features))), len(features) // 39))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, cells,
                                   faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(0).permutation(len(features))[:IVF_TRAINING]
        index.train(np.ascontiguousarray(features[np.sort(sample)], dtype=np.float32))
        index.nprobe = min(IVF_PROBES, cells)
    else:
        raise ConfigError(f"index kind {kind!r}: choose one of {', '.join(KINDS)}")
    index.add(np.ascontiguousarray(features, dtype=np.float32))
    return index


def read_index(folder: str | os.PathLike) -> Gallery:
    folder = Path(folder)
    info_path = folder / "index.json"
    if not info_path.is_file():
        raise ClipReidError(f"{folder} is no gallery index (no index.json): build one with "
                            "`clipreid index build SRC -o DIR`")
    try:
        info = json.loads(info_path.read_text())
        with open(folder / "entries.csv", newline="", encoding="utf-8") as f:
            entries = list(csv.DictReader(f))
        features = np.load(folder / "features.npy")
        for line, entry in enumerate(entries, start=2):
            for key in ("pid", "camid"):
                if entry.get(key, "") != "" and not entry[key].lstrip("-").isdigit():
                    raise ValueError(f"entries.csv line {line}: {key} {entry[key]!r}")
    except (OSError, ValueError) as exc:
        raise ClipReidError(f"index {folder} is damaged ({exc}); rebuild it with `clipreid "
                            "index build`") from None
    if info.get("format") != FORMAT:
        raise ClipReidError(f"{info_path}: format {info.get('format')!r}, this version reads "
                            f"{FORMAT}; rebuild the index")
    if len(entries) != features.shape[0] or features.shape[0] != info["count"]:
        raise ClipReidError(f"{folder}: entries.csv, features.npy and index.json disagree on "
                            "the number of entries; rebuild the index")
    return Gallery(info, entries, features)


def _open_mode(folder: Path) -> None:
    """Folders made by mkdtemp are private (0700): give them the usual mode."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)


@contextlib.contextmanager
def index_lock(folder: str | os.PathLike):
    """An exclusive lock on the index ``folder`` (a file beside it: the folder itself is
    replaced by every write), so that two `index add` runs cannot lose each other's
    entries; the second waits."""
    import fcntl

    folder = Path(folder).resolve()
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def require_replaceable(folder: str | os.PathLike, ours: tuple[str, ...], what: str) -> None:
    """Refuse to replace ``folder`` when it holds anything but ``ours`` (the files this
    command writes there): it is someone else's folder or file."""
    folder = Path(folder)
    if not folder.exists():
        return
    if not folder.is_dir():
        raise ClipReidError(f"{folder} exists and is a file: give a new folder for {what}")
    foreign = sorted(p.name for p in folder.iterdir() if p.name not in ours)
    if foreign:
        raise ClipReidError(f"{folder} holds files that are not {what} ({', '.join(foreign[:5])}"
                            f"{' ...' if len(foreign) > 5 else ''}): give a new or empty "
                            "folder; nothing was written")


INDEX_FILES = ("index.json", "entries.csv", "features.npy", "hnsw.faiss", "ivf.faiss")
RESULT_FILES = ("results.json", "results.csv", "ranklists")


def write_index(folder: str | os.PathLike, gallery: Gallery) -> None:
    import faiss

    with atomic_dir(folder) as tmp:
        tmp = Path(tmp)
        _open_mode(tmp)
        np.save(tmp / "features.npy", gallery.features)
        with open(tmp / "entries.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["path", "sha256", "pid", "camid"])
            writer.writeheader()
            writer.writerows(gallery.entries)
        kind = gallery.info["kind"]
        if kind in APPROXIMATE:
            faiss.write_index(faiss_index(gallery.features, kind), str(tmp / f"{kind}.faiss"))
        (tmp / "index.json").write_text(json.dumps(gallery.info, indent=2) + "\n")


def _entries(embedding: Embedding, source: Source, digests: list[str]) -> list[dict]:
    rows = []
    for path, index, digest in zip(embedding.paths, embedding.indices, digests):
        rows.append({"path": path, "sha256": digest,
                     "pid": source.pids[index] if source.pids is not None else "",
                     "camid": source.camids[index] if source.camids is not None else ""})
    return rows


def _unique_new(source: Source, known: set[str]) -> tuple[Source, list[str], list[str]]:
    """The images of ``source`` whose bytes are not in ``known`` (nor earlier in source),
    their digests, and the paths left out as duplicates."""
    keep, digests, duplicates = [], [], []
    seen = set(known)
    for i, path in enumerate(source.paths):
        try:
            digest = file_sha256(path)
        except OSError:
            digest = f"unreadable:{path}"  # embed reports it (stop or skip)
        if digest in seen:
            duplicates.append(path)
            continue
        seen.add(digest)
        keep.append(i)
        digests.append(digest)

    def pick(values):
        return None if values is None else [values[i] for i in keep]

    return (Source([source.paths[i] for i in keep], pick(source.camids), pick(source.pids)),
            digests, duplicates)


def build_index(src, out_dir, model_path, backend: str = "onnx", kind: str = "exact",
                distance: str = "euclidean", batch_size: int = 32, threads: int | None = None,
                on_error: str = "stop") -> dict:
    """Embed the gallery ``src`` with ``model_path`` and write the index ``out_dir``."""
    if kind not in KINDS:
        raise ConfigError(f"index kind {kind!r}: choose one of {', '.join(KINDS)}")
    if distance not in DISTANCES:
        raise ConfigError(f"distance {distance!r}: choose one of {', '.join(DISTANCES)}")
    require_replaceable(out_dir, INDEX_FILES, "a gallery index")
    source, digests, duplicates = _unique_new(read_source(src), set())
    embedding = embed(source, model_path, backend, batch_size, threads, on_error)
    digests = [digests[i] for i in embedding.indices]
    info = {"format": FORMAT, "kind": kind, "distance": distance, "backend": backend,
            "model": {"path": str(Path(model_path).resolve()),
                      "sha256": file_sha256(model_path)},
            "metadata": embedding.metadata, "count": len(embedding.paths)}
    with index_lock(out_dir):
        write_index(out_dir, Gallery(info, _entries(embedding, source, digests),
                                     embedding.features))
    return {"count": info["count"], "duplicates": duplicates, "skipped": embedding.skipped}


def _model_of(gallery: Gallery, model_path, folder) -> str:
    """The model file to embed with: the index's own, checked by content."""
    path = str(model_path or gallery.info["model"]["path"])
    if not Path(path).is_file():
        raise ClipReidError(f"{path} (the model of index {folder}) not found; pass it with "
                            "--model")
    if file_sha256(path) != gallery.info["model"]["sha256"]:
        raise ClipReidError(f"{path} is not the model index {folder} was built with (its "
                            "SHA-256 differs): features of two models cannot be compared; "
                            "rebuild the index with this model, or pass the index's model")
    return path


def add_to_index(src, index_dir, model_path=None, batch_size: int = 32,
                 threads: int | None = None, on_error: str = "stop") -> dict:
    """Embed only the images of ``src`` that the index does not hold (by content) and add
    them; existing entries are not recomputed."""
    with index_lock(index_dir):
        return _add(src, index_dir, model_path, batch_size, threads, on_error)


def _add(src, index_dir, model_path, batch_size, threads, on_error) -> dict:
    gallery = read_index(index_dir)
    model = _model_of(gallery, model_path, index_dir)
    known = {e["sha256"] for e in gallery.entries}
    source, digests, duplicates = _unique_new(read_source(src), known)
    for path in duplicates:
        log.info("already in the index (same bytes): %s", path)
    added = 0
    skipped = []
    if source.paths:
        embedding = embed(source, model, gallery.info["backend"], batch_size, threads, on_error)
        digests = [digests[i] for i in embedding.indices]
        gallery.entries += _entries(embedding, source, digests)
        gallery.features = np.concatenate([gallery.features, embedding.features])
        gallery.info["count"] = len(gallery.entries)
        write_index(index_dir, gallery)
        added, skipped = len(embedding.paths), embedding.skipped
    return {"added": added, "duplicates": duplicates, "skipped": skipped,
            "count": len(gallery.entries)}


def search_features(gallery: Gallery, queries: np.ndarray, top_k: int,
                    folder=None) -> tuple[np.ndarray, np.ndarray]:
    """(indices, distances), each (Q, k), nearest first, for L2-normalised ``queries``."""
    import faiss

    k = min(int(top_k), len(gallery.entries))
    if k < 1:
        raise ConfigError(f"top-k {top_k}: must be >= 1 (and the index must not be empty)")
    kind = gallery.info["kind"]
    if kind in APPROXIMATE and folder is not None:
        index = faiss.read_index(str(Path(folder) / f"{kind}.faiss"))
        if kind == "hnsw":
            index.hnsw.efSearch = max(HNSW_EF_SEARCH, k)
        else:
            index.nprobe = min(IVF_PROBES, index.nlist)
    else:
        index = faiss_index(gallery.features, gallery.info["kind"])
    sims, idx = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    # an approximate index may find fewer than k (FAISS pads with -1): those are last
    sims = np.where(idx < 0, -np.inf, sims)
    with np.errstate(over="ignore", invalid="ignore"):
        dist = similarity_to_distance(sims, gallery.info["distance"])
    # nearest first, ties by gallery index (the evaluator's rule)
    order = np.lexsort((idx, dist), axis=1)
    return np.take_along_axis(idx, order, 1), np.take_along_axis(dist, order, 1)


def auto_threshold(gallery: Gallery, folder) -> float:
    """The strictest calibrated threshold (lowest false match rate) of the index's model:
    the exported ONNX model carries them (fitted by `evaluate`, see the model card)."""
    meta = gallery.info.get("metadata", {})
    fits = meta.get("thresholds") or []
    fitted_on = meta.get("distance", "euclidean")  # evaluate's default
    if not fits:
        raise ClipReidError(f"index {folder}: its model carries no calibrated thresholds "
                            "(they are in the ONNX model `clipreid export` writes; an index "
                            "built with --backend torch has none): pass --threshold "
                            "<distance>")
    if fitted_on != gallery.info["distance"]:
        raise ClipReidError(f"index {folder} ranks by {gallery.info['distance']} distance but "
                            f"the thresholds were fitted on {fitted_on} distances; "
                            f"rebuild the index with --distance {fitted_on}")
    strictest = min(fits, key=lambda t: t["fmr_target"])
    log.info("threshold auto: distance %.6g (false match rate %g on the test split, true "
             "match rate %.3f)", strictest["distance"], strictest["fmr_target"],
             strictest["tmr"])
    return float(strictest["distance"])


def search(query_src, index_dir, out_dir, top_k: int = 10, model_path=None,
           threshold: float | str | None = None, batch_size: int = 32,
           threads: int | None = None, on_error: str = "stop") -> list[dict]:
    """The ``top_k`` gallery matches of every query image; writes ``out_dir/results.json``,
    ``results.csv`` and one rank-list page per query (``ranklists/``). With ``threshold``
    (a distance, or ``"auto"``: :func:`auto_threshold`), matches farther than it are
    marked ``"match": false`` (no match)."""
    gallery = read_index(index_dir)
    if threshold == "auto":
        threshold = auto_threshold(gallery, index_dir)
    elif threshold is not None:
        try:
            threshold = float(threshold)
        except ValueError:
            threshold = float("nan")
        if not (threshold >= 0 and np.isfinite(threshold)):
            raise ConfigError(f"--threshold {threshold!r}: a distance (a finite number >= 0) "
                              "or auto") from None
    require_replaceable(out_dir, RESULT_FILES, "search results")
    model = _model_of(gallery, model_path, index_dir)
    source = read_source(query_src)
    embedding = embed(source, model, gallery.info["backend"], batch_size, threads, on_error)
    idx, dist = search_features(gallery, embedding.features, top_k, index_dir)
    results = []
    for q, path in enumerate(embedding.paths):
        matches = []
        for g, d in zip(idx[q].tolist(), dist[q].tolist()):
            if g < 0:
                continue
            entry = gallery.entries[g]
            match = {"path": entry["path"], "distance": float(d)}
            for key in ("pid", "camid"):
                if entry[key] != "":
                    match[key] = int(entry[key])
            if threshold is not None:
                match["match"] = bool(d <= threshold)
            matches.append(match)
        results.append({"query": path, "matches": matches})
    write_results(out_dir, results, threshold)
    return results


def write_results(out_dir, results: list[dict], threshold: float | None) -> None:
    out_dir = Path(out_dir)
    with atomic_path(out_dir / "results.json") as tmp:
        tmp.write_text(json.dumps(results, indent=2) + "\n")
    with atomic_path(out_dir / "results.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["query", "rank", "path", "distance", "match"])
        for r in results:
            for rank, m in enumerate(r["matches"], start=1):
                writer.writerow([r["query"], rank, m["path"], f"{m['distance']:.6f}",
                                 "" if threshold is None else int(m["match"])])
    with atomic_dir(out_dir / "ranklists") as tmp:
        _open_mode(Path(tmp))
        for q, r in enumerate(results):
            (Path(tmp) / f"query_{q:05d}.html").write_text(rank_list_page(r, threshold))


def rank_list_page(result: dict, threshold: float | None) -> str:
    """One query and its matches as a self-contained HTML page (images by file URI)."""
    def figure(path, caption, colour):
        uri = html.escape(Path(path).as_uri())
        return (f'<figure style="display:inline-block;margin:4px;border:3px solid {colour}">'
                f'<img src="{uri}" height="160"><figcaption style="font:12px sans-serif">'
                f'{html.escape(caption)}</figcaption></figure>')

    cells = [figure(result["query"], "query", "#444")]
    for rank, m in enumerate(result["matches"], start=1):
        no_match = threshold is not None and not m["match"]
        caption = f"{rank}: {m['distance']:.4f}" + (" (no match)" if no_match else "")
        cells.append(figure(m["path"], caption, "#c33" if no_match else "#3a3"))
    title = html.escape(Path(result["query"]).name)
    return (f"<!doctype html><meta charset=utf-8><title>{title}</title>"
            f"<h3 style='font:14px sans-serif'>{html.escape(result['query'])}</h3>"
            + "".join(cells) + "\n")


__all__ = ["build_index", "add_to_index", "search", "read_index", "search_features"]
