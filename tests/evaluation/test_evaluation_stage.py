"""run_evaluation: files and keys written, partitions averaged, config and input errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from clipreid.errors import ConfigError, DatasetError
from clipreid.config.schema import EvaluationConfig, from_dict
from clipreid.evaluation import evaluate_features, run_evaluation

METRICS = ("mAP", "rank1", "rank5", "rank10", "mINP")
TMR = ("tmr_at_fmr_1e-2", "tmr_at_fmr_1e-3")


@pytest.fixture
def problem(tmp_path):
    """60 test images of 6 identities on 3 cameras; images are tiny coloured PNGs."""
    rng = np.random.default_rng(0)
    n = 60
    pids = np.repeat(np.arange(1, 7), 10)
    camids = np.tile(np.arange(3), 20)
    centres = rng.standard_normal((7, 12))
    feats = (centres[pids] + 1.2 * rng.standard_normal((n, 12))).astype(np.float32)
    paths = []
    for i in range(n):
        path = tmp_path / "images" / f"{i:03d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", (16, 32), tuple(int(c) for c in rng.integers(0, 255, 3))).save(path)
        paths.append(str(path))
    is_query = np.zeros(n, dtype=bool)
    is_query[::5] = True
    partition = (np.flatnonzero(is_query), np.flatnonzero(~is_query))
    return feats, pids, camids, paths, partition


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_plain_run_writes_metrics_and_plots(problem, tmp_path):
    feats, pids, camids, paths, (q, g) = problem
    cfg = {"max_rank": 20, "batch_size": 64, "plots": {"num_queries": 3, "top_k": 5}}
    metrics_path, plots = tmp_path / "out" / "metrics.json", tmp_path / "out" / "plots"
    report_path = tmp_path / "out" / "report.json"
    returned = run_evaluation(feats, pids, camids, paths, [(q, g)], cfg, metrics_path,
                              report_path, plots)

    written = json.loads(metrics_path.read_text())
    assert written == returned
    # headline numbers only, flat: then the true match rates at the fitted thresholds
    assert list(written) == [*METRICS, "tmr_at_fmr_1e-2", "tmr_at_fmr_1e-3"]
    direct = evaluate_features(feats[q], feats[g], pids[q], pids[g], camids[q], camids[g],
                               max_rank=20)
    assert written["mAP"] == pytest.approx(direct["mAP"], abs=1e-12)
    assert written["mINP"] == pytest.approx(direct["mINP"], abs=1e-12)
    for k in (1, 5, 10):
        assert written[f"rank{k}"] == pytest.approx(direct["cmc"][k - 1], abs=1e-12)
    assert all(0 <= written[k] <= 1 for k in METRICS)
    report = json.loads(report_path.read_text())
    assert report["num_partitions"] == 1 and report["num_queries"] == len(q)
    assert "std" not in report

    cmc = read_csv(plots / "cmc.csv")
    assert [int(r["rank"]) for r in cmc] == list(range(1, 21))
    np.testing.assert_allclose([float(r["cmc"]) for r in cmc], direct["cmc"])
    hist = read_csv(plots / "distance_hist.csv")
    assert list(hist[0]) == ["distance", "positive", "negative"] and len(hist) == 100
    assert sum(float(r["positive"]) for r in hist) == pytest.approx(1.0)
    assert sum(float(r["negative"]) for r in hist) == pytest.approx(1.0)
    for name in ("cmc.png", "distance_hist.png", "ranklist_best.png", "ranklist_worst.png"):
        with Image.open(plots / name) as im:
            assert im.format == "PNG"
    assert list(cmc[0]) == ["rank", "cmc"]  # no re-ranked or QE column when disabled


def test_rank_list_frames_show_correct_and_wrong_matches(problem, tmp_path):
    feats, pids, camids, paths, (q, g) = problem
    run_evaluation(feats, pids, camids, paths, [(q, g)], {"plots": {"num_queries": 1}},
                   tmp_path / "m.json", tmp_path / "r.json", tmp_path / "plots")
    with Image.open(tmp_path / "plots" / "ranklist_best.png") as im:
        pixels = np.asarray(im.convert("RGB")).reshape(-1, 3)
    colours = {tuple(p) for p in pixels[::7]}
    assert (40, 90, 220) in colours  # query frame
    assert (0, 170, 0) in colours  # the best query's first match is correct


def test_variants_and_partitions_are_averaged(problem, tmp_path):
    feats, pids, camids, paths, _ = problem
    rng = np.random.default_rng(1)
    parts = []
    for _ in range(3):
        perm = rng.permutation(len(feats))
        parts.append((perm[:15], perm[15:]))
    cfg = {"rerank": {"enabled": True, "k1": 6, "k2": 3},
           "query_expansion": {"enabled": True, "top_k": 2},
           "plots": {"num_queries": 2, "top_k": 4, "histogram_bins": 20}}
    metrics = run_evaluation(feats, pids, camids, paths, parts, cfg, tmp_path / "m.json",
                             tmp_path / "r.json", tmp_path / "plots")
    report = json.loads((tmp_path / "r.json").read_text())
    per_part = [evaluate_features(feats[a], feats[b], pids[a], pids[b], camids[a], camids[b])
                for a, b in parts]
    assert report["num_partitions"] == 3
    assert metrics["mAP"] == pytest.approx(np.mean([r["mAP"] for r in per_part]), abs=1e-12)
    assert report["std"]["mAP"] == pytest.approx(np.std([r["mAP"] for r in per_part], ddof=1))
    assert metrics["rank1"] == pytest.approx(np.mean([r["cmc"][0] for r in per_part]))
    assert set(metrics) == {k + suffix for k in METRICS for suffix in ("", "_rerank", "_qe")
                            } | set(TMR)
    assert all(0 <= v <= 1 for v in metrics.values())
    assert set(report["std"]) == set(metrics) - set(TMR)  # thresholds: the first partition
    cmc = read_csv(tmp_path / "plots" / "cmc.csv")
    assert list(cmc[0]) == ["rank", "cmc", "cmc_rerank", "cmc_qe"] and len(cmc) == 50
    assert len(read_csv(tmp_path / "plots" / "distance_hist.csv")) == 20


def test_settings_defaults_and_errors():
    s = from_dict(EvaluationConfig, {"batch_size": 256})
    assert (s.distance, s.max_rank, s.block_size, s.remove_same_camera) == \
        ("euclidean", 50, None, True)
    assert (s.rerank.enabled, s.rerank.k1, s.rerank.k2, s.rerank.lambda_value) == \
        (False, 20, 6, 0.3)
    assert (s.query_expansion.enabled, s.query_expansion.top_k, s.query_expansion.alpha) == \
        (False, 5, 3.0)
    assert (s.plots.num_queries, s.plots.top_k, s.plots.histogram_bins) == (4, 10, 100)
    for cfg, message in [({"distance": "l1"}, "evaluation.distance"),
                         ({"max_rank": 5}, ">= 10"),
                         ({"block_size": 0}, "evaluation.block_size"),
                         ({"remove_same_camera": "yes"}, "true or false"),
                         ({"rerank": {"k_1": 3}}, r"unknown key\(s\) \['evaluation.rerank.k_1'\]"),
                         ({"rerank": {"lambda_value": 2}}, "lambda_value"),
                         ({"query_expansion": {"alpha": -1}}, "alpha"),
                         ({"plots": {"top_k": 0}}, "evaluation.plots.top_k")]:
        with pytest.raises(ConfigError, match=message):
            from_dict(EvaluationConfig, cfg, "evaluation")


def test_bad_inputs_name_the_problem(problem, tmp_path):
    feats, pids, camids, paths, (q, g) = problem
    out = (tmp_path / "m.json", tmp_path / "r.json", tmp_path / "plots")
    nan_feats = feats.copy()
    nan_feats[7, 2] = np.inf
    cases = [
        ((feats, pids[:-1], camids, paths, [(q, g)]), "pids has 59"),
        ((feats, pids, camids, paths[:-1], [(q, g)]), "paths has 59"),
        ((nan_feats, pids, camids, paths, [(q, g)]), "row 7"),
        ((feats, pids, camids, paths, []), "non-empty list"),
        ((feats, pids, camids, paths, [(q[:0], g)]), "empty query set"),
        ((feats, pids, camids, paths, [(q, np.append(g, 99))]), "outside 0..59"),
        ((feats, pids, camids, paths, [(q, np.append(g, q[0]))]), "both query and gallery"),
    ]
    for args, message in cases:
        with pytest.raises(DatasetError, match=message):
            run_evaluation(*args, {}, *out)
    assert not out[0].exists()


def test_missing_image_is_named(problem, tmp_path):
    feats, pids, camids, paths, (q, g) = problem
    paths = [p.replace("images", "nowhere") for p in paths]
    with pytest.raises(DatasetError, match="cannot read image .*nowhere"):
        run_evaluation(feats, pids, camids, paths, [(q, g)], {}, tmp_path / "m.json",
                       tmp_path / "r.json", tmp_path / "plots")


def test_the_split_digest_names_exactly_what_is_measured(problem, tmp_path):
    """Same images, labels and partitions: the same digest; any change to an image's
    content, identity, camera or path, or to the partitions: another one. It is written to
    the report when given."""
    import pandas as pd

    from clipreid.evaluation.protocols import split_digest

    _, pids, camids, paths, partition = problem
    test = pd.DataFrame({"path": [f"q/{i}.jpg" for i in range(len(pids))], "pid": pids,
                         "camid": camids, "sha256": [f"{i:064x}" for i in range(len(pids))],
                         "label": 0})
    base = split_digest(test, [partition])
    assert split_digest(test.copy(), [partition]) == base
    assert split_digest(test.assign(label=1), [partition]) == base  # not a test label
    changed = {
        "content": test.assign(sha256=test["sha256"].where(test.index != 3, "f" * 64)),
        "identity": test.assign(pid=np.where(test.index == 3, 99, pids)),
        "camera": test.assign(camid=np.where(test.index == 3, 2, (camids + 1) % 3)),
        "path": test.assign(path=test["path"].where(test.index != 3, "q/other.jpg")),
    }
    digests = {name: split_digest(frame, [partition]) for name, frame in changed.items()}
    q, g = partition
    digests["partition"] = split_digest(test, [(q[1:], np.sort(np.r_[g, q[0]]))])
    digests["trials"] = split_digest(test, [partition, partition])
    assert base not in digests.values() and len(set(digests.values())) == len(digests)

    feats = problem[0]
    run_evaluation(feats, pids, camids, paths, [partition], {}, tmp_path / "m.json",
                   tmp_path / "r.json", tmp_path / "plots", test_split=base)
    assert json.loads((tmp_path / "r.json").read_text())["test_split"] == base


def test_evaluation_extracts_fp32_features_unless_amp_is_asked(monkeypatch):
    """`evaluation.amp` is off by default (fp32 test features, as the official code), and
    the evaluate stage passes it to the feature extraction (autocast of that name)."""
    import torch

    from clipreid.config.schema import Params
    from clipreid.stages import evaluate as stage

    assert from_dict(EvaluationConfig, {}).amp == "off"
    assert Params.__dataclass_fields__["evaluation"].default_factory().amp == "off"

    class Model(torch.nn.Module):
        def test_features(self, images, camids=None):
            return images

    passed = {}
    monkeypatch.setattr(stage, "load_manifest", lambda path: None)
    monkeypatch.setattr(stage, "test_partitions", lambda *a: (FakeTest(), []))
    monkeypatch.setattr(stage, "load_reid_model", lambda *a: Model())
    monkeypatch.setattr(stage, "image_paths", lambda test, root: ["a.png"])
    monkeypatch.setattr(stage, "split_digest", lambda *a: "digest")
    monkeypatch.setattr(stage, "run_evaluation", lambda *a, **k: {})
    monkeypatch.setattr(stage, "test_features",
                        lambda *a, **k: passed.update(amp=k.get("amp")))
    for amp in ("off", "auto", "bf16", "fp16"):
        params = Params(evaluation=EvaluationConfig(amp=amp))
        stage.run(params)
        assert passed["amp"] == amp


class FakeTest(dict):
    """The columns the evaluate stage reads from the test rows."""

    def __init__(self):
        import pandas as pd

        super().__init__(pid=pd.Series([1]), camid=pd.Series([0]))


def test_a_named_recipe_reports_its_gap_to_the_published_result(problem, tmp_path, caplog):
    """With `evaluation.expected` set (a recipe of conf/experiment/), the metrics hold the
    gap to the published mAP and rank-1 and the report says whether it is reproduced."""
    feats, pids, camids, paths, (q, g) = problem
    plain = run_evaluation(feats, pids, camids, paths, [(q, g)], {}, tmp_path / "m0.json",
                           tmp_path / "r0.json", tmp_path / "p0")
    assert "mAP_gap" not in plain and "expected" not in json.loads(
        (tmp_path / "r0.json").read_text())

    published = {"recipe": "vit_clipreid_market1501", "mAP": plain["mAP"] + 0.05,
                 "rank1": plain["rank1"] - 0.2, "tolerance": 0.01}
    got = run_evaluation(feats, pids, camids, paths, [(q, g)], {"expected": published},
                         tmp_path / "m.json", tmp_path / "r.json", tmp_path / "p")
    assert got["mAP_gap"] == pytest.approx(-0.05)
    assert got["rank1_gap"] == pytest.approx(0.2)
    report = json.loads((tmp_path / "r.json").read_text())["expected"]
    assert report["recipe"] == "vit_clipreid_market1501" and report["reproduced"] is False
    assert "below the published result" in caplog.text

    within = {**published, "mAP": plain["mAP"] + 0.005, "rank1": None}
    got = run_evaluation(feats, pids, camids, paths, [(q, g)], {"expected": within},
                         tmp_path / "m2.json", tmp_path / "r2.json", tmp_path / "p2")
    assert "rank1_gap" not in got and got["mAP_gap"] == pytest.approx(-0.005)
    assert json.loads((tmp_path / "r2.json").read_text())["expected"]["reproduced"] is True

    # a run that differs from the published one (another backbone chosen on top) is not
    # compared: no gap, and the report names the difference
    required = {**published, "requires": {"model.name": "vit_b16", "method": "clipreid"}}
    run_params = {"method": "clipreid", "model": {"name": "rn50"}}
    got = run_evaluation(feats, pids, camids, paths, [(q, g)], {"expected": required},
                         tmp_path / "m3.json", tmp_path / "r3.json", tmp_path / "p3",
                         run_params=run_params)
    assert "mAP_gap" not in got and "rank1_gap" not in got
    report = json.loads((tmp_path / "r3.json").read_text())["expected"]
    assert report["comparable"] is False
    assert report["differs"] == ["model.name='rn50' (the published run: 'vit_b16')"]
    got = run_evaluation(feats, pids, camids, paths, [(q, g)], {"expected": required},
                         tmp_path / "m4.json", tmp_path / "r4.json", tmp_path / "p4",
                         run_params={**run_params, "model": {"name": "vit_b16"}})
    assert "mAP_gap" in got


def test_match_thresholds_hold_their_false_match_rate_on_cross_camera_pairs(problem,
                                                                            tmp_path):
    """Each fitted threshold, checked against every cross-camera query-gallery pair
    counted directly: at most the target fraction of different-identity pairs fall within
    it, and the reported true match rate is the fraction of same-identity pairs that do."""
    from clipreid.evaluation.distance import pairwise_distance

    feats, pids, camids, paths, (q, g) = problem
    cfg = {"thresholds": {"false_match_rates": [0.1, 0.02], "bins": 40000}}
    metrics = run_evaluation(feats, pids, camids, paths, [(q, g)], cfg, tmp_path / "m.json",
                             tmp_path / "r.json", tmp_path / "p")
    report = json.loads((tmp_path / "r.json").read_text())
    dist = pairwise_distance(feats[q], feats[g], "euclidean").numpy()
    cross = camids[q][:, None] != camids[g][None, :]
    same = pids[q][:, None] == pids[g][None, :]
    genuine, impostor = dist[cross & same], dist[cross & ~same]
    assert len(report["thresholds"]) == 2
    for fit in report["thresholds"]:
        t = fit["distance"]
        assert np.mean(impostor <= t) <= fit["fmr_target"] + 1e-12
        assert np.mean(impostor <= t) == pytest.approx(fit["fmr"], abs=1e-9)
        assert np.mean(genuine <= t) == pytest.approx(fit["tmr"], abs=1e-9)
        # the next bin would break the target: the threshold is as loose as allowed
        assert np.mean(impostor <= t + 4.0 / 40000 * 3) > fit["fmr_target"] or t >= 4.0 - 1e-3
    assert metrics["tmr_at_fmr_1e-1"] == report["thresholds"][0]["tmr"]
    assert metrics["tmr_at_fmr_2e-2"] == report["thresholds"][1]["tmr"]
    assert report["thresholds"][0]["distance"] >= report["thresholds"][1]["distance"]
    roc = read_csv(tmp_path / "p" / "roc.csv")
    tmr = [float(r["tmr"]) for r in roc]
    assert list(roc[0]) == ["fmr", "tmr"] and tmr == sorted(tmr) and tmr[-1] == 1.0
