"""mAP / CMC / mINP against a brute-force definition, hand-computed cases, tie rule,
block-size independence, and both candidate paths (sparse pairs, dense rows)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clipreid.errors import ConfigError, DatasetError
from clipreid.evaluation import evaluate, evaluate_features, pairwise_distance
from clipreid.evaluation import distance, ranking


def brute_force(dist, q_pids, g_pids, q_cams, g_cams, max_rank, remove_same_camera=True):
    """The protocol, the obvious way: per query, drop same-identity same-camera gallery
    images, stable-argsort the rest, read the metrics off the match vector."""
    dist = np.asarray(dist, dtype=np.float64)
    aps, inps, cmcs = [], [], []
    for i in range(dist.shape[0]):
        keep = np.ones(len(g_pids), dtype=bool)
        if remove_same_camera:
            keep = ~((g_pids == q_pids[i]) & (g_cams == q_cams[i]))
        order = np.argsort(dist[i], kind="stable")
        order = order[keep[order]]
        match = g_pids[order] == q_pids[i]
        if not match.any():
            continue
        hit_ranks = np.flatnonzero(match) + 1
        precisions = [(j + 1) / r for j, r in enumerate(hit_ranks)]
        aps.append(sum(precisions) / len(precisions))
        inps.append(len(hit_ranks) / hit_ranks[-1])
        cmcs.append([1.0 if hit_ranks[0] <= k else 0.0 for k in range(1, max_rank + 1)])
    return float(np.mean(aps)), np.mean(cmcs, axis=0), float(np.mean(inps)), len(aps)


def random_problem(rng, num_q, num_g, num_ids=6, num_cams=3, levels=5):
    """Labels with distractors (pid 0 only in the gallery) and quantised distances, so
    ties, same-camera positives and queries without a valid match all occur."""
    q_pids = rng.integers(1, num_ids, num_q)
    g_pids = rng.integers(0, num_ids, num_g)
    q_cams = rng.integers(0, num_cams, num_q)
    g_cams = rng.integers(0, num_cams, num_g)
    dist = rng.integers(0, levels, (num_q, num_g)).astype(np.float64) / 4
    return dist, q_pids, g_pids, q_cams, g_cams


def assert_matches_brute_force(result, dist, q_pids, g_pids, q_cams, g_cams, max_rank,
                               remove_same_camera=True):
    m_ap, cmc, m_inp, num_valid = brute_force(dist, q_pids, g_pids, q_cams, g_cams, max_rank,
                                              remove_same_camera)
    assert result["num_valid_queries"] == num_valid
    assert result["mAP"] == pytest.approx(m_ap, abs=1e-9)
    assert result["mINP"] == pytest.approx(m_inp, abs=1e-9)
    np.testing.assert_allclose(result["cmc"], cmc, atol=1e-9, rtol=0)
    assert len(result["cmc"]) == max_rank


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("block_size", [1, 3, 17, None])
@pytest.mark.parametrize("dtype, offset", [(np.float64, 0.0), (np.float32, 0.0),
                                           (np.float32, -0.5)])
def test_evaluate_equals_brute_force_with_ties(seed, block_size, dtype, offset):
    """float32 distances >= 0 take the packed-key path; float64 and negative ones the
    general path."""
    rng = np.random.default_rng(seed)
    problem = random_problem(rng, num_q=int(rng.integers(5, 40)), num_g=int(rng.integers(5, 90)))
    problem = ((problem[0] + offset).astype(dtype),) + problem[1:]
    result = evaluate(*problem, max_rank=12, block_size=block_size)
    assert_matches_brute_force(result, *problem, max_rank=12)
    # the skipped queries are exactly those without a correct match on another camera
    dist, q_pids, g_pids, q_cams, g_cams = problem
    has_match = [((g_pids == p) & (g_cams != c)).any() for p, c in zip(q_pids, q_cams)]
    np.testing.assert_array_equal(~np.isnan(result["ap"]), has_match)


def test_packed_keys_path_is_taken_only_where_exact():
    vals = np.array([0.0, 1.5], dtype=np.float32)
    assert ranking._fits_in_keys(vals, 2000, 80_000)
    assert not ranking._fits_in_keys(vals.astype(np.float64), 2000, 80_000)
    assert not ranking._fits_in_keys(vals - 1, 2000, 80_000)
    assert not ranking._fits_in_keys(vals, 2**20, 2**20)  # does not fit in 63 bits
    # -0.0 and +0.0 are equal distances: the tie rule, not the sign bit, orders them
    result = evaluate(np.array([[0.0, -0.0, 0.0]], dtype=np.float32), [1], [2, 1, 2], [0],
                      [1, 1, 1], max_rank=3)
    np.testing.assert_allclose(result["cmc"], [0, 1, 1])


@pytest.mark.parametrize("dense_row", [0, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_row_path_equals_brute_force(monkeypatch, dense_row, dtype):
    """Rows with many candidates are ranked by a per-row sort: force it for every row
    (0) or for some (5), ties included."""
    monkeypatch.setattr(ranking, "DENSE_ROW", dense_row)
    for seed in range(4):
        rng = np.random.default_rng(100 + seed)
        problem = random_problem(rng, num_q=30, num_g=60, levels=4)
        problem = (problem[0].astype(dtype),) + problem[1:]
        for block_size in (1, 7, None):
            result = evaluate(*problem, max_rank=10, block_size=block_size)
            assert_matches_brute_force(result, *problem, max_rank=10)


def test_without_camera_filtering():
    rng = np.random.default_rng(7)
    problem = random_problem(rng, num_q=25, num_g=50)
    result = evaluate(*problem, max_rank=10, remove_same_camera=False)
    assert_matches_brute_force(result, *problem, max_rank=10, remove_same_camera=False)


def test_float32_tensor_and_continuous_distances():
    rng = np.random.default_rng(3)
    _, q_pids, g_pids, q_cams, g_cams = random_problem(rng, 20, 70)
    dist = torch.rand(20, 70, generator=torch.Generator().manual_seed(0))
    result = evaluate(dist, torch.from_numpy(q_pids), g_pids, q_cams, g_cams, max_rank=10)
    assert_matches_brute_force(result, dist.numpy(), q_pids, g_pids, q_cams, g_cams, 10)


def test_low_precision_and_integer_inputs_are_accepted():
    rng = np.random.default_rng(12)
    dist, q_pids, g_pids, q_cams, g_cams = random_problem(rng, 15, 40)
    labels = (q_pids, g_pids, q_cams, g_cams)
    expected = evaluate(dist, *labels, max_rank=10)
    for variant in (dist.astype(np.float16), torch.from_numpy(dist).to(torch.bfloat16),
                    (dist * 4).astype(np.int64)):  # quarter steps: exact in all three
        assert evaluate(variant, *labels, max_rank=10)["mAP"] == pytest.approx(expected["mAP"])
    feats = torch.from_numpy(dyadic_features(rng, 55))
    half = evaluate_features(feats[:15].to(torch.bfloat16), feats[15:].half(), *labels)
    full = evaluate_features(feats[:15], feats[15:], *labels)
    assert half["mAP"] == pytest.approx(full["mAP"], abs=1e-12)


def test_hand_computed_single_query():
    """Gallery (distance, pid, cam): g0 (0.1, 2, 0), g1 (0.2, 1, 0) same camera -> junk,
    g2 (0.3, 1, 1) correct, g3 (0.4, 3, 1), g4 (0.5, 1, 2) correct, g5 (0.6, 0, 1).
    After removing g1 the ranking is g0, g2, g3, g4, g5: correct at ranks 2 and 4.
    AP = (1/2 + 2/4) / 2 = 0.5; CMC = [0, 1, 1, ...]; INP = 2 / 4 = 0.5."""
    dist = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])
    g_pids = np.array([2, 1, 1, 3, 1, 0])
    g_cams = np.array([0, 0, 1, 1, 2, 1])
    result = evaluate(dist, [1], g_pids, [0], g_cams, max_rank=5)
    assert result["mAP"] == pytest.approx(0.5)
    assert result["mINP"] == pytest.approx(0.5)
    np.testing.assert_allclose(result["cmc"], [0, 1, 1, 1, 1])
    assert result["first_rank"].tolist() == [2]
    assert result["num_positives"].tolist() == [2]
    # the same-camera match counts when camera filtering is off: ranks 2, 3, 5
    off = evaluate(dist, [1], g_pids, [0], g_cams, max_rank=5, remove_same_camera=False)
    assert off["mAP"] == pytest.approx((1 / 2 + 2 / 3 + 3 / 5) / 3)
    assert off["mINP"] == pytest.approx(3 / 5)


def test_tie_rule_lower_gallery_index_first():
    """All distances equal: the ranking is the gallery order. Correct match at index 2
    ranks 3rd; moved to index 0 it ranks 1st."""
    g_cams = np.array([1, 1, 1, 1])
    result = evaluate(np.zeros((1, 4)), [5], [7, 8, 5, 9], [0], g_cams, max_rank=4)
    assert result["mAP"] == pytest.approx(1 / 3)
    np.testing.assert_allclose(result["cmc"], [0, 0, 1, 1])
    result = evaluate(np.zeros((1, 4)), [5], [5, 8, 7, 9], [0], g_cams, max_rank=4)
    assert result["mAP"] == pytest.approx(1.0)


def test_two_queries_one_skipped_and_cmc_past_gallery_size():
    """Query 1 has only a same-camera match: skipped. CMC longer than the gallery keeps
    its last value."""
    dist = np.array([[0.5, 0.1, 0.9], [0.2, 0.3, 0.4]])
    result = evaluate(dist, [1, 2], [1, 3, 2], [0, 0], [1, 1, 0], max_rank=6)
    assert result["num_queries"] == 2 and result["num_valid_queries"] == 1
    assert np.isnan(result["ap"][1]) and np.isnan(result["inp"][1])
    assert result["mAP"] == pytest.approx(0.5)
    np.testing.assert_allclose(result["cmc"], [0, 1, 1, 1, 1, 1])


def dyadic_features(rng, n, dim=4):
    """Unit vectors with entries +-1/2: every product and distance is exact in float32,
    so distances (and their many ties) do not depend on how the product is blocked."""
    return (rng.integers(0, 2, (n, dim)) * 2 - 1).astype(np.float32) / 2


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_evaluate_features_equals_evaluate_for_any_block_size(distance):
    rng = np.random.default_rng(11)
    qf, gf = dyadic_features(rng, 40), dyadic_features(rng, 90)
    _, q_pids, g_pids, q_cams, g_cams = random_problem(rng, 40, 90)
    labels = (q_pids, g_pids, q_cams, g_cams)
    dist = pairwise_distance(qf, gf, distance)
    reference = evaluate(dist, *labels, max_rank=15)
    assert_matches_brute_force(reference, dist.numpy(), *labels, max_rank=15)
    for block_size in (1, 2, 7, 40, None):
        result = evaluate_features(qf, gf, *labels, distance=distance, block_size=block_size,
                                   max_rank=15)
        for key in ("mAP", "mINP"):
            assert result[key] == pytest.approx(reference[key], abs=1e-9)
        np.testing.assert_allclose(result["cmc"], reference["cmc"], atol=1e-9, rtol=0)
        np.testing.assert_array_equal(result["first_rank"], reference["first_rank"])


def test_distances_of_normalised_features():
    q = np.array([[3.0, 4.0]], dtype=np.float32)  # normalised: (0.6, 0.8)
    g = np.array([[0.0, 2.0], [-1.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(pairwise_distance(q, g, "euclidean").numpy(),
                               [[2 - 2 * 0.8, 2 + 2 * 0.6]], atol=1e-6)
    np.testing.assert_allclose(pairwise_distance(q, g, "cosine").numpy(),
                               [[1 - 0.8, 1 + 0.6]], atol=1e-6)


def test_continuous_features_match_brute_force_on_their_distances():
    rng = np.random.default_rng(5)
    centres = rng.standard_normal((6, 32))
    _, q_pids, g_pids, q_cams, g_cams = random_problem(rng, 50, 200)
    qf = (centres[q_pids] + rng.standard_normal((50, 32))).astype(np.float32)
    gf = (centres[g_pids] + rng.standard_normal((200, 32))).astype(np.float32)
    result = evaluate_features(qf, gf, q_pids, g_pids, q_cams, g_cams, max_rank=20,
                               block_size=16, histogram_bins=8)
    dist = pairwise_distance(qf, gf).numpy()
    assert_matches_brute_force(result, dist, q_pids, g_pids, q_cams, g_cams, 20)
    hist = result["distance_histogram"]
    same_id = q_pids[:, None] == g_pids[None, :]
    same_cam = q_cams[:, None] == g_cams[None, :]
    assert hist["positive"].sum() == (same_id & ~same_cam).sum()
    assert hist["negative"].sum() == (~same_id).sum()
    expected = np.histogram(dist[same_id & ~same_cam], bins=hist["edges"])[0]
    np.testing.assert_array_equal(hist["positive"], expected)


def test_torch_block_equals_numpy_block():
    """The GPU code of the candidate search, run on CPU tensors, gives the same result."""
    rng = np.random.default_rng(9)
    dist, q_pids, g_pids, q_cams, g_cams = random_problem(rng, 12, 40)
    same = ranking.SameIdentityIndex(g_pids, g_cams).lookup(q_pids, q_cams, True)
    by_numpy = ranking._NumpyBlock(dist.copy(), *same)
    by_torch = ranking._TorchBlock(torch.from_numpy(dist.copy()), *same)
    np.testing.assert_array_equal(by_numpy.counts, by_torch.counts)
    for which in (np.arange(12), np.array([1, 4, 5, 11])):
        for a, b in zip(by_numpy.candidates(which), by_torch.candidates(which)):
            np.testing.assert_array_equal(a, b)
        for (d_a, m_a), (d_b, m_b) in zip(by_numpy.rows(which), by_torch.rows(which)):
            np.testing.assert_array_equal(d_a, d_b)
            np.testing.assert_array_equal(m_a, m_b)


@pytest.mark.parametrize("bad, message", [
    (lambda p: {**p, "q_pids": p["q_pids"][:-1]}, "q_pids has"),
    (lambda p: {**p, "g_camids": p["g_camids"][:-1]}, "g_camids has"),
    (lambda p: {**p, "distmat": p["distmat"][:, :0], "g_pids": p["g_pids"][:0],
                "g_camids": p["g_camids"][:0]}, "gallery is empty"),
    (lambda p: {**p, "distmat": np.where(np.eye(3, 4, dtype=bool), np.nan, p["distmat"])},
     "NaN or infinite"),
    (lambda p: {**p, "q_pids": np.array([0.5, 1, 2])}, "integer labels"),
    (lambda p: {**p, "q_pids": np.array([7, 8, 9])}, "no query has a correct match"),
])
def test_bad_inputs_raise_clear_errors(bad, message):
    good = dict(distmat=np.arange(12.0).reshape(3, 4), q_pids=np.array([1, 2, 3]),
                g_pids=np.array([1, 2, 3, 1]), q_camids=np.array([0, 0, 0]),
                g_camids=np.array([1, 1, 1, 1]))
    with pytest.raises(DatasetError, match=message):
        evaluate(**bad(good))


def test_bad_features_raise_clear_errors():
    qf, gf = np.ones((2, 3), np.float32), np.ones((3, 3), np.float32)
    labels = ([1, 2], [1, 2, 2], [0, 0], [1, 1, 1])
    with pytest.raises(DatasetError, match="qf has NaN"):
        evaluate_features(np.array([[1, np.nan, 0], [1, 1, 1]]), gf, *labels)
    with pytest.raises(DatasetError, match="dimensions"):
        evaluate_features(qf, np.ones((3, 4)), *labels)
    with pytest.raises(DatasetError, match="qf is empty"):
        evaluate_features(np.ones((0, 3)), gf, [], [1, 2, 2], [], [1, 1, 1])
    with pytest.raises(ConfigError, match="block_size"):
        evaluate_features(qf, gf, *labels, block_size=0)
    with pytest.raises(ConfigError, match="max_rank"):
        evaluate_features(qf, gf, *labels, max_rank=0)
    with pytest.raises(ConfigError, match="histogram_bins"):
        evaluate_features(qf, gf, *labels, histogram_bins=-1)
    with pytest.raises(ValueError, match="distance"):
        evaluate_features(qf, gf, *labels, distance="manhattan")


def test_torch_code_path_gives_the_same_results(monkeypatch):
    """GPUs take the torch code path; run it on CPU tensors and compare with numpy's."""
    rng = np.random.default_rng(21)
    centres = rng.standard_normal((6, 16))
    _, q_pids, g_pids, q_cams, g_cams = random_problem(rng, 30, 120)
    qf = torch.from_numpy((centres[q_pids] + rng.standard_normal((30, 16))).astype(np.float32))
    gf = torch.from_numpy((centres[g_pids] + rng.standard_normal((120, 16))).astype(np.float32))
    labels = (q_pids, g_pids, q_cams, g_cams)
    dyadic_q, dyadic_g = (torch.from_numpy(dyadic_features(rng, n)) for n in (30, 120))
    runs = []
    for numpy_on_cpu in (True, False):
        monkeypatch.setattr(distance, "NUMPY_ON_CPU", numpy_on_cpu)
        runs.append((
            evaluate_features(qf, gf, *labels, block_size=7, histogram_bins=10),
            evaluate_features(dyadic_q, dyadic_g, *labels, block_size=7, distance="cosine"),
            evaluate(torch.rand(30, 120, generator=torch.Generator().manual_seed(1)), *labels),
            distance.smallest_k(pairwise_distance(qf, gf), 5),
        ))
    for numpy_run, torch_run in zip(*runs):
        if isinstance(numpy_run, np.ndarray):
            np.testing.assert_array_equal(numpy_run, torch_run)
            continue
        for key in ("mAP", "mINP"):
            assert torch_run[key] == pytest.approx(numpy_run[key], abs=1e-6)
        np.testing.assert_allclose(torch_run["cmc"], numpy_run["cmc"], atol=1e-6)
    np.testing.assert_array_equal(runs[0][0]["distance_histogram"]["positive"],
                                  runs[1][0]["distance_histogram"]["positive"])
    # dyadic features: exact distances, so identical results to the last digit
    assert runs[0][1]["mAP"] == runs[1][1]["mAP"]


@pytest.mark.parametrize("dtype, similarity", [(np.float32, False), (np.float64, False),
                                               (np.float32, True)])
@pytest.mark.parametrize("farthest", [2.0, 0.24])
def test_worst_case_block_memory_stays_within_the_budget(dtype, similarity, farthest):
    """Every gallery image a candidate (each query's positives are its farthest images,
    farthest=2), or just under a quarter of them in every row (0.24, the joint sort's
    worst case): the ranking's working memory per distance stays under
    BYTES_PER_DISTANCE, which sizes the default blocks; for distance blocks and for the
    similarity blocks of evaluate_features (cosine: similarity = 1 - distance)."""
    import tracemalloc

    from clipreid.evaluation import metrics

    rng = np.random.default_rng(0)
    num_q, num_g = 40, 3000
    g_pids, g_cams = rng.integers(0, 50, num_g), rng.integers(0, 6, num_g)
    q_pids, q_cams = rng.integers(0, 50, num_q), rng.integers(0, 6, num_q)
    same = ranking.SameIdentityIndex(g_pids, g_cams).lookup(q_pids, q_cams, True)
    dist = rng.random((num_q, num_g)).astype(dtype)
    rows = np.arange(num_q)[:, None]
    dist[rows, same[0]] = np.where(same[1], farthest, dist[rows, same[0]])
    scale = None
    if similarity:
        dist = 1 - dist
        scale = distance.SimilarityScale("cosine", dim=1280)
    tracemalloc.start()
    ranking.rank_block(dist, *same, scale=scale)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert (peak + dist.nbytes) / dist.size <= metrics.BYTES_PER_DISTANCE


def near_tie_similarities(rng, num_q, num_g, dim=1280):
    """Similarities packed within a few float32 steps of each other (many round to the
    same distance) and some a little over 1 (clamped to distance 0), as a product of
    normalised ``dim``-d features can give."""
    base = rng.choice(np.array([0.2, 0.9, 1.0, -0.7], dtype=np.float32), (num_q, num_g))
    steps = rng.integers(-6, 7, (num_q, num_g)).astype(np.float32)
    return (base + steps * np.spacing(base)).astype(np.float32)


@pytest.mark.parametrize("distance_kind", ["euclidean", "cosine"])
@pytest.mark.parametrize("dense_row", [2048, 0, 5])
def test_ranking_similarities_equals_ranking_their_distances(monkeypatch, distance_kind,
                                                             dense_row):
    """The CPU evaluator ranks similarity blocks and turns into distances only the
    candidates: the ranks equal those of the whole block's distances, and the
    brute-force definition on them, where rounding merges many similarities into one
    distance (ties decided by gallery index), on both candidate paths."""
    monkeypatch.setattr(ranking, "DENSE_ROW", dense_row)
    scale = distance.SimilarityScale(distance_kind, dim=1280)
    for seed in range(4):
        rng = np.random.default_rng(200 + seed)
        _, q_pids, g_pids, q_cams, g_cams = random_problem(rng, 25, 80, num_ids=4)
        sim = near_tie_similarities(rng, 25, 80)
        dist = scale.to_distance(sim.copy())
        assert len(np.unique(dist)) < len(np.unique(sim))  # rounding made ties
        same = ranking.SameIdentityIndex(g_pids, g_cams).lookup(q_pids, q_cams, True)
        by_sim = ranking.rank_block(sim.copy(), *same, scale=scale)
        by_dist = ranking.rank_block(dist.copy(), *same)
        for field in ("ap", "first_rank", "last_rank", "num_pos"):
            np.testing.assert_array_equal(getattr(by_sim, field), getattr(by_dist, field))
        result = evaluate(dist, q_pids, g_pids, q_cams, g_cams, max_rank=10)
        assert_matches_brute_force(result, dist, q_pids, g_pids, q_cams, g_cams, 10)
        np.testing.assert_array_equal(result["first_rank"], by_sim.first_rank)


def test_similarity_margin_covers_rounding_and_clamping():
    """Every similarity whose distance equals that of a lower-bound similarity s0 lies
    within the margin below s0: checked over float32 neighbourhoods of many s0."""
    for kind in ("euclidean", "cosine"):
        scale = distance.SimilarityScale(kind, dim=1280)
        for s0 in np.array([-1.0, -0.7, 0.0, 1e-9, 0.2, 0.5, 0.9, 1.0, 1.0001], np.float32):
            near = s0 + np.arange(-4000, 4000, dtype=np.float32) * np.spacing(np.float32(2))
            near = np.concatenate([near.astype(np.float32),
                                   np.nextafter(s0, -np.inf, dtype=np.float32)[None]])
            d0 = scale.to_distance(np.array([s0]))[0]
            merged = near[(scale.to_distance(near.copy()) <= d0) & (near < s0)]
            assert merged.size == 0 or s0 - merged.min() < scale.margin


def test_similarities_do_not_depend_on_the_block_size():
    """Each entry of the similarity block is the same whatever the block size, single
    rows and products too small for BLAS's main kernel included. To the last bit on the
    CPUs this was written on; on an AMD EPYC with AVX2 (2026-12-01) OpenBLAS (and MKL)
    sum some entries in another order for other row counts, whatever the padding, so the
    bound is one float32 rounding of the result (relative 2^-23, absolute 1e-7 near 0)."""
    rng = np.random.default_rng(4)
    for dim, num_g in [(4, 5), (16, 90), (256, 5), (256, 500), (1280, 300)]:
        gallery = distance.GalleryDistances(
            torch.from_numpy(rng.standard_normal((num_g, dim)).astype(np.float32)),
            "euclidean", torch.device("cpu"))
        qn = distance.normalize(torch.from_numpy(
            rng.standard_normal((23, dim)).astype(np.float32)))
        whole = gallery.similarities(qn).numpy()
        for block in (1, 2, 3, 22):
            parts = np.concatenate([gallery.similarities(qn[a:a + block]).numpy()
                                    for a in range(0, 23, block)])
            np.testing.assert_allclose(parts, whole, rtol=2 ** -22, atol=1e-7)


def test_continuous_features_give_the_same_ranks_for_any_block_size():
    rng = np.random.default_rng(8)
    centres = rng.standard_normal((5, 64))
    _, q_pids, g_pids, q_cams, g_cams = random_problem(rng, 45, 150, num_ids=5)
    qf = (centres[q_pids] + 2 * rng.standard_normal((45, 64))).astype(np.float32)
    gf = (centres[g_pids] + 2 * rng.standard_normal((150, 64))).astype(np.float32)
    labels = (q_pids, g_pids, q_cams, g_cams)
    results = [evaluate_features(qf, gf, *labels, block_size=b) for b in (1, 4, 45, None)]
    reference = evaluate(pairwise_distance(qf, gf), *labels)
    for result in results:
        np.testing.assert_array_equal(result["first_rank"], reference["first_rank"])
        np.testing.assert_array_equal(result["ap"], reference["ap"])


@pytest.mark.parametrize("threads", [2, 3])
def test_threads_rank_slices_of_rows_with_the_same_result(monkeypatch, threads):
    rng = np.random.default_rng(30)
    dist, q_pids, g_pids, q_cams, g_cams = random_problem(rng, 40, 70)
    same = ranking.SameIdentityIndex(g_pids, g_cams).lookup(q_pids, q_cams, True)
    monkeypatch.setattr(ranking, "RANKING_THREADS", 1)
    alone = ranking.rank_block(dist.copy(), *same)
    monkeypatch.setattr(ranking, "RANKING_THREADS", threads)
    monkeypatch.setattr(ranking, "MIN_ROWS_PER_THREAD", 1)
    together = ranking.rank_block(dist.copy(), *same)
    for field in ("ap", "first_rank", "last_rank", "num_pos"):
        np.testing.assert_array_equal(getattr(together, field), getattr(alone, field))
    result = evaluate(dist, q_pids, g_pids, q_cams, g_cams, max_rank=10)
    assert_matches_brute_force(result, dist, q_pids, g_pids, q_cams, g_cams, 10)


@pytest.mark.parametrize("dense_row", [2048, 0])
def test_threads_rank_similarity_blocks_as_one_thread(monkeypatch, dense_row):
    """The path evaluate_features takes on large blocks: similarity blocks split among
    threads, on both candidate paths."""
    monkeypatch.setattr(ranking, "DENSE_ROW", dense_row)
    scale = distance.SimilarityScale("euclidean", dim=1280)
    rng = np.random.default_rng(31)
    _, q_pids, g_pids, q_cams, g_cams = random_problem(rng, 50, 90, num_ids=4)
    sim = near_tie_similarities(rng, 50, 90)
    same = ranking.SameIdentityIndex(g_pids, g_cams).lookup(q_pids, q_cams, True)
    expected = ranking.rank_block(scale.to_distance(sim.copy()), *same)
    monkeypatch.setattr(ranking, "MIN_ROWS_PER_THREAD", 1)
    for threads in (1, 2, 3):
        monkeypatch.setattr(ranking, "RANKING_THREADS", threads)
        got = ranking.rank_block(sim.copy(), *same, scale=scale)
        for field in ("ap", "first_rank", "last_rank", "num_pos"):
            np.testing.assert_array_equal(getattr(got, field), getattr(expected, field))
