"""`clipreid index build|add` and `clipreid search`: exact search ranks the test split's
gallery as the evaluator does; adding images embeds only new content; the index refuses
queries of another model; the approximate index finds what the exact one finds; the
results are written as JSON, CSV and one page per query."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch

from clipreid.cli import main
from clipreid.config.schema import ModelConfig, Params
from clipreid.dataset.prepare import prepare_manifest
from clipreid.dataset.synthetic import write_synthetic
from clipreid.embed import embed, read_source
from clipreid.errors import ClipReidError
from clipreid.evaluation.distance import pairwise_distance
from clipreid.export import export_onnx
from clipreid.gallery import add_to_index, build_index, read_index, search, search_features
from clipreid.model import build_reid_model
from clipreid.model.saved import save_reid_model

MODEL = ModelConfig(input_size=[64, 32])


THRESHOLDS = [{"fmr_target": 0.01, "distance": 0.8, "fmr": 0.009, "tmr": 0.7},
              {"fmr_target": 0.001, "distance": 0.5, "fmr": 0.0009, "tmr": 0.4}]


def export_model(folder, seed: int, thresholds=None):
    model_cfg = dataclasses.replace(MODEL, init_seed=seed)
    model = build_reid_model(model_cfg, 5, "person", 6).eval()
    params = dataclasses.replace(Params(), model=model_cfg)
    save_reid_model(folder / "reid.pt", model, params, 5)
    probe = folder / "probe.png"
    from PIL import Image

    Image.new("RGB", (32, 64), (120, 30, 200)).save(probe)
    export_onnx(model, [str(probe)] * 2, [0, 0], {"opset": 18, "max_abs_diff": 1e-4,
                                                    "num_images": 2},
                folder / "reid.onnx", folder / "m.json", folder / "r.json",
                input_size=[64, 32], preprocess=MODEL.preprocess,
                extra_metadata={"thresholds": thresholds or THRESHOLDS,
                                "distance": "euclidean"})
    return folder / "reid.onnx"


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    """A Market-layout test split as two CSVs (query, gallery) with pid and camid, and
    the exported model."""
    root = tmp_path_factory.mktemp("gallery")
    data = root / "market"
    write_synthetic(data, num_train_ids=2, num_test_ids=25, num_distractors=20, num_junk=0)
    manifest = prepare_manifest({"name": "market1501", "format": "market1501",
                                 "root": str(data), "source": str(data), "object": "person",
                                 "num_cameras": 6})
    files = {}
    for part in ("query", "gallery"):
        rows = manifest[manifest["split"] == part]
        files[part] = root / f"{part}.csv"
        with open(files[part], "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "pid", "camid"])
            writer.writerows([str(data / p), pid, cam] for p, pid, cam in
                             zip(rows["path"], rows["pid"], rows["camid"]))
    (root / "model").mkdir()
    return root, files, export_model(root / "model", seed=0)


def test_exact_search_ranks_as_the_evaluator(split, tmp_path):
    root, files, model = split
    build_index(files["gallery"], tmp_path / "index", model)
    results = search(files["query"], tmp_path / "index", tmp_path / "out", top_k=10)

    gallery = read_index(tmp_path / "index")
    queries = embed(read_source(files["query"]), model).features
    dist = pairwise_distance(torch.from_numpy(queries), torch.from_numpy(gallery.features),
                             "euclidean").numpy()
    position = {e["path"]: i for i, e in enumerate(gallery.entries)}
    assert len(results) == queries.shape[0] > 20
    for q, result in enumerate(results):
        expected = np.argsort(dist[q], kind="stable")[:10]  # the evaluator's ranking
        got = [position[m["path"]] for m in result["matches"]]
        got_dist = np.array([m["distance"] for m in result["matches"]])
        np.testing.assert_allclose(got_dist, dist[q][expected], atol=1e-5)
        for rank, (g, e) in enumerate(zip(got, expected.tolist())):
            if g != e:  # only a tie may swap two images
                assert abs(dist[q][g] - dist[q][e]) < 1e-5, (q, rank)
        assert str(result["matches"][0]["pid"]) == gallery.entries[got[0]]["pid"] != ""


def test_adding_embeds_only_new_content(split, tmp_path):
    root, files, model = split
    with open(files["gallery"], newline="") as f:
        rows = list(csv.DictReader(f))
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    copy = tmp_path / "same_bytes_other_name.jpg"
    shutil.copy(rows[0]["path"], copy)
    for path, part in ((first, rows[:60]), (second, rows[40:])):
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["path", "pid", "camid"])
            writer.writeheader()
            writer.writerows(part)
    with open(second, "a", newline="") as f:
        csv.writer(f).writerow([str(copy), rows[0]["pid"], rows[0]["camid"]])

    build_index(first, tmp_path / "index", model)
    before = read_index(tmp_path / "index")
    result = add_to_index(second, tmp_path / "index")
    assert result["added"] == len(rows) - 60
    assert sorted(result["duplicates"]) == sorted([r["path"] for r in rows[40:60]] + [str(copy)])
    after = read_index(tmp_path / "index")
    assert after.info["count"] == len(rows) == len(after.entries)
    assert np.array_equal(after.features[:60], before.features)  # not recomputed
    full = tmp_path / "full"
    build_index(files["gallery"], full, model)
    np.testing.assert_allclose(after.features, read_index(full).features, atol=1e-6)
    assert [e["path"] for e in after.entries] == [e["path"] for e in read_index(full).entries]
    again = add_to_index(second, tmp_path / "index")
    assert again["added"] == 0 and read_index(tmp_path / "index").info["count"] == len(rows)


def test_queries_of_another_model_are_refused(split, tmp_path):
    root, files, model = split
    build_index(files["gallery"], tmp_path / "index", model)
    (tmp_path / "other").mkdir()
    other = export_model(tmp_path / "other", seed=1)
    with pytest.raises(ClipReidError, match="not the model index .* was built with"):
        search(files["query"], tmp_path / "index", tmp_path / "out", model_path=other)
    with pytest.raises(ClipReidError, match="no gallery index"):
        search(files["query"], tmp_path, tmp_path / "out")


def test_the_approximate_index_finds_what_exact_search_finds(split, tmp_path):
    root, files, model = split
    build_index(files["gallery"], tmp_path / "exact", model)
    queries = embed(read_source(files["query"]), model).features
    exact, _ = search_features(read_index(tmp_path / "exact"), queries, 10)
    for kind in ("hnsw", "ivf"):
        build_index(files["gallery"], tmp_path / kind, model, kind=kind)
        assert (tmp_path / kind / f"{kind}.faiss").is_file()
        approx, _ = search_features(read_index(tmp_path / kind), queries, 10, tmp_path / kind)
        recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact)])
        assert recall >= 0.95, (kind, recall)


def test_the_commands_write_results_with_a_threshold(split, tmp_path, capsys):
    root, files, model = split
    assert main(["index", "build", str(files["gallery"]), "-o", str(tmp_path / "index"),
                 "--model", str(model)]) == 0
    assert main(["search", str(files["query"]), "--index", str(tmp_path / "index"),
                 "--top-k", "5", "-o", str(tmp_path / "out"), "--threshold", "0.5"]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert all(len(r["matches"]) == 5 for r in results)
    for r in results:
        assert [m["match"] for m in r["matches"]] == [m["distance"] <= 0.5 for m in r["matches"]]
    with open(tmp_path / "out" / "results.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 5 * len(results)
    pages = sorted((tmp_path / "out" / "ranklists").glob("*.html"))
    assert len(pages) == len(results)
    assert results[0]["matches"][0]["path"].split("/")[-1] in pages[0].read_text()
    assert "wrote" in capsys.readouterr().out


def test_threshold_auto_is_the_models_strictest_calibrated_one(split, tmp_path):
    root, files, model = split
    build_index(files["gallery"], tmp_path / "plain", model)
    plain = search(files["query"], tmp_path / "plain", tmp_path / "out0", top_k=20)
    middle = float(np.median([m["distance"] for r in plain for m in r["matches"]]))
    (tmp_path / "calibrated").mkdir()
    fits = [{**THRESHOLDS[0], "distance": 4.0}, {**THRESHOLDS[1], "distance": middle}]
    model = export_model(tmp_path / "calibrated", seed=0, thresholds=fits)
    build_index(files["gallery"], tmp_path / "index", model)
    results = search(files["query"], tmp_path / "index", tmp_path / "out", top_k=20,
                     threshold="auto")
    marks = [(m["distance"] <= middle, m["match"]) for r in results for m in r["matches"]]
    assert all(expected == got for expected, got in marks)
    assert {got for _, got in marks} == {True, False}  # the threshold splits the matches
    build_index(files["gallery"], tmp_path / "cosine", model, distance="cosine")
    with pytest.raises(ClipReidError, match="fitted on euclidean distances"):
        search(files["query"], tmp_path / "cosine", tmp_path / "out2", threshold="auto")
    build_index(files["gallery"], tmp_path / "torch", model.parent / "reid.pt",
                backend="torch")
    with pytest.raises(ClipReidError, match="carries no calibrated thresholds"):
        search(files["query"], tmp_path / "torch", tmp_path / "out3", threshold="auto")


def test_foreign_folders_are_never_replaced_and_damage_is_named(split, tmp_path):
    root, files, model = split
    mine = tmp_path / "my_documents"
    mine.mkdir()
    (mine / "thesis.txt").write_text("precious")
    with pytest.raises(ClipReidError, match="holds files that are not a gallery index"):
        build_index(files["gallery"], mine, model)
    assert (mine / "thesis.txt").read_text() == "precious"
    build_index(files["gallery"], tmp_path / "index", model)
    build_index(files["gallery"], tmp_path / "index", model)  # an index is rebuilt in place
    with pytest.raises(ClipReidError, match="holds files that are not search results"):
        search(files["query"], tmp_path / "index", mine)
    with pytest.raises(Exception, match="finite number"):
        search(files["query"], tmp_path / "index", tmp_path / "out", threshold="nan")
    (tmp_path / "index" / "entries.csv").unlink()
    with pytest.raises(ClipReidError, match="is damaged.*rebuild it"):
        read_index(tmp_path / "index")


def test_concurrent_adds_lose_nothing(split, tmp_path):
    """Two `index add` at once: the index lock makes the second wait for the first."""
    import threading

    root, files, model = split
    with open(files["gallery"], newline="") as f:
        rows = list(csv.DictReader(f))
    parts = [rows[:50], rows[50:80], rows[80:110]]
    paths = []
    for i, part in enumerate(parts):
        paths.append(tmp_path / f"part{i}.csv")
        with open(paths[-1], "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["path", "pid", "camid"])
            writer.writeheader()
            writer.writerows(part)
    build_index(paths[0], tmp_path / "index", model)
    errors = []

    def add(path):
        try:
            add_to_index(path, tmp_path / "index")
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(p,)) for p in paths[1:]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert read_index(tmp_path / "index").info["count"] == 110
