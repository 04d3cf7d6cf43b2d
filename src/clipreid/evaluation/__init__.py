"""Evaluation: Market-protocol metrics (mAP, CMC, mINP), k-reciprocal re-ranking, query
expansion, and the pictures and tables of the ``evaluate`` stage."""

from clipreid.evaluation.distance import DISTANCES, pairwise_distance
from clipreid.evaluation.metrics import default_block_size, evaluate, evaluate_features

__all__ = ["DISTANCES", "default_block_size", "evaluate", "evaluate_features",
           "pairwise_distance"]
