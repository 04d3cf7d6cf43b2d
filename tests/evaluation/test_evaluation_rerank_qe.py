"""k-reciprocal re-ranking against a direct reading of Zhong et al. (2017); alpha query
expansion against its definition."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clipreid.errors import ConfigError
from clipreid.evaluation import alpha_query_expansion, evaluate, k_reciprocal_rerank, rerank


def rerank_reference(qf, gf, k1, k2, lambda_value):
    """Dense N x N matrices and loops, straight from the paper's definitions."""
    x = np.concatenate([qf, gf]).astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    n, nq = len(x), len(qf)
    d = np.maximum(2 - 2 * x @ x.T, 0)
    d = d / d.max(axis=1, keepdims=True)
    ranking = np.argsort(d, axis=1, kind="stable")

    def reciprocal(p, k):
        return [g for g in ranking[p, :k + 1] if p in ranking[g, :k + 1]]

    v = np.zeros((n, n))
    for p in range(n):
        r = reciprocal(p, k1)
        expanded = set(r)
        for c in r:
            r_half = reciprocal(c, int(round(k1 / 2)))
            if len(set(r_half) & set(r)) > 2 / 3 * len(r_half):
                expanded |= set(r_half)
        members = sorted(expanded)
        w = np.exp(-d[p, members])
        v[p, members] = w / w.sum()
    if k2 > 1:
        v = np.stack([v[ranking[p, :k2]].mean(axis=0) for p in range(n)])
    jaccard = np.array([[1 - np.minimum(v[i], v[nq + j]).sum() / np.maximum(v[i], v[nq + j]).sum()
                         for j in range(n - nq)] for i in range(nq)])
    return (1 - lambda_value) * jaccard + lambda_value * d[:nq, nq:]


def clustered(rng, n, num_ids=8, dim=16, noise=0.8):
    centres = rng.standard_normal((num_ids, dim))
    pids = rng.integers(0, num_ids, n)
    return (centres[pids] + noise * rng.standard_normal((n, dim))).astype(np.float32), pids


@pytest.mark.parametrize("k1, k2, lambda_value", [(20, 6, 0.3), (5, 1, 0.3), (7, 3, 0.0),
                                                  (3, 2, 1.0), (4, 4, 0.5)])
def test_rerank_equals_reference(k1, k2, lambda_value):
    rng = np.random.default_rng(k1 * 10 + k2)
    feats, _ = clustered(rng, 70)
    qf, gf = feats[:20], feats[20:]
    ours = k_reciprocal_rerank(qf, gf, k1=k1, k2=k2, lambda_value=lambda_value, block_size=9)
    assert ours.shape == (20, 50) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, rerank_reference(qf, gf, k1, k2, lambda_value),
                               atol=1e-6, rtol=0)


def test_rerank_chunking_does_not_change_the_result(monkeypatch):
    """Large problems are processed in chunks of rows and of joined pairs: tiny chunks
    here cross every chunk boundary."""
    rng = np.random.default_rng(8)
    feats, _ = clustered(rng, 80)
    qf, gf = feats[:25], feats[25:]
    whole = k_reciprocal_rerank(qf, gf, k1=6, k2=3)
    monkeypatch.setattr(rerank, "ROW_CHUNK", 3)
    monkeypatch.setattr(rerank, "JOIN_PAIRS", 40)
    chunked = k_reciprocal_rerank(qf, gf, k1=6, k2=3, block_size=4)
    np.testing.assert_allclose(chunked, whole, atol=1e-6, rtol=0)
    np.testing.assert_allclose(chunked, rerank_reference(qf, gf, 6, 3, 0.3), atol=1e-6, rtol=0)


def test_rerank_does_not_depend_on_block_size_and_cosine_ranks_alike():
    rng = np.random.default_rng(2)
    feats, _ = clustered(rng, 90)
    qf, gf = torch.from_numpy(feats[:30]), torch.from_numpy(feats[30:])
    a = k_reciprocal_rerank(qf, gf, block_size=1)
    b = k_reciprocal_rerank(qf, gf, block_size=1000)
    np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
    # cosine distance is half the squared Euclidean one: row normalisation removes it
    c = k_reciprocal_rerank(qf, gf, distance="cosine")
    np.testing.assert_allclose(a, c, atol=1e-6, rtol=0)


def test_rerank_improves_a_clustered_problem():
    rng = np.random.default_rng(4)
    feats, pids = clustered(rng, 240, num_ids=12, dim=24, noise=1.6)
    cams = rng.integers(0, 4, 240)
    q, g = slice(0, 60), slice(60, None)
    plain = evaluate(np.asarray(((feats[q, None] - feats[None, g]) ** 2).sum(-1)),
                     pids[q], pids[g], cams[q], cams[g], max_rank=10)
    reranked = evaluate(k_reciprocal_rerank(feats[q], feats[g]), pids[q], pids[g], cams[q],
                        cams[g], max_rank=10)
    assert reranked["mAP"] > plain["mAP"]


def test_rerank_rejects_bad_settings():
    f = np.ones((3, 2), np.float32)
    with pytest.raises(ConfigError, match="k1"):
        k_reciprocal_rerank(f, f, k1=0)
    with pytest.raises(ConfigError, match="lambda_value"):
        k_reciprocal_rerank(f, f, lambda_value=1.5)


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_query_expansion_follows_its_definition():
    rng = np.random.default_rng(0)
    qf = rng.standard_normal((5, 8)).astype(np.float32)
    gf = rng.standard_normal((30, 8)).astype(np.float32)
    for top_k, alpha in ((1, 0.0), (3, 3.0), (4, 1.5)):
        out = alpha_query_expansion(qf, gf, top_k=top_k, alpha=alpha, block_size=2).numpy()
        q, g = unit(qf), unit(gf)
        sim = q @ g.T
        for i in range(len(q)):
            nearest = np.argsort(-sim[i], kind="stable")[:top_k]
            weights = np.maximum(sim[i, nearest], 0) ** alpha
            expected = unit(q[i] + weights @ g[nearest])
            np.testing.assert_allclose(out[i], expected, atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, atol=1e-6)


def test_query_expansion_ignores_dissimilar_neighbours():
    """Neighbours with negative similarity get weight 0 (for alpha > 0), so the query
    stays as it is; with alpha = 0 every neighbour weighs 1."""
    qf = np.array([[1.0, 0.0]], np.float32)
    gf = np.array([[-1.0, 0.2], [-1.0, -0.2]], np.float32)
    kept = alpha_query_expansion(qf, gf, top_k=2, alpha=2.0).numpy()
    np.testing.assert_allclose(kept, [[1.0, 0.0]], atol=1e-6)
    averaged = alpha_query_expansion(qf, gf, top_k=2, alpha=0.0).numpy()
    np.testing.assert_allclose(averaged, unit([[1 - 2 * unit([1, 0.2])[0], 0.0]]), atol=1e-6)


def test_query_expansion_rejects_bad_settings():
    f = np.ones((3, 2), np.float32)
    with pytest.raises(ConfigError, match="top_k"):
        alpha_query_expansion(f, f, top_k=0)
    with pytest.raises(ConfigError, match="alpha"):
        alpha_query_expansion(f, f, alpha=-1.0)
