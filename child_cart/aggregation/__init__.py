"""Aggregation rules for federated rounds, by name: the one place a new rule plugs in."""

from __future__ import annotations

from child_cart.aggregation.base import AggregationError, Aggregator, Update
from child_cart.aggregation.fedavg import FedAvg
from child_cart.aggregation.krum import Krum
from child_cart.aggregation.median import Median
from child_cart.aggregation.tree_union import TreeUnion, TreeVote
from child_cart.aggregation.trimmed_mean import TrimmedMean

__all__ = ["AggregationError", "Aggregator", "Update", "make_aggregator", "AGGREGATORS", "TREE_AGGREGATORS"]

AGGREGATORS = ("fedavg", "median", "trimmed_mean", "krum")
# Rules for tree ensembles (a task whose models are forests asks for one of these itself).
TREE_AGGREGATORS = ("tree_union", "tree_vote")


def make_aggregator(name: str, trim_ratio: float = 0.2, krum_f: int = 1) -> Aggregator:
    """The aggregator called `name`, configured from the round settings."""
    if name == FedAvg.name:
        return FedAvg()
    if name == Median.name:
        return Median()
    if name == TrimmedMean.name:
        return TrimmedMean(trim_ratio)
    if name == Krum.name:
        return Krum(krum_f)
    if name == TreeUnion.name:
        return TreeUnion()
    if name == TreeVote.name:
        return TreeVote()
    raise KeyError(f"unknown aggregator {name!r}; known: {', '.join(AGGREGATORS + TREE_AGGREGATORS)}")
