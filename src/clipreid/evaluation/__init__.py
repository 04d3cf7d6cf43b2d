"""Evaluation: Market-protocol metrics (mAP, CMC, mINP), k-reciprocal re-ranking, query
expansion, and the tables and pictures of the ``evaluate`` stage.

- :func:`evaluate`: metrics of a given (Q, G) distance matrix;
- :func:`evaluate_features`: metrics of query and gallery features, block by block;
- :func:`k_reciprocal_rerank`, :func:`alpha_query_expansion`: the optional variants;
- :func:`run_evaluation`: what the ``evaluate`` stage calls.
"""

from clipreid.evaluation.distance import DISTANCES, pairwise_distance
from clipreid.evaluation.metrics import default_block_size, evaluate, evaluate_features
from clipreid.evaluation.query_expansion import alpha_query_expansion
from clipreid.evaluation.rerank import k_reciprocal_rerank
from clipreid.evaluation.results import METRIC_KEYS, run_evaluation

__all__ = ["DISTANCES", "METRIC_KEYS", "alpha_query_expansion", "default_block_size",
           "evaluate", "evaluate_features", "k_reciprocal_rerank", "pairwise_distance",
           "run_evaluation"]
