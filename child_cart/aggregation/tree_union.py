"""Tree union: join the peers' forests into one by pooling their trees (a forest cannot be averaged).

A forest travels as arrays whose first axis is the tree (`child_cart.tasks.iot.forest`),
the last array holding each tree's vote. Joining forests concatenates every
array along that axis and sets the votes:

- `tree_union`: every tree votes equally (a random forest grown on all carts'
  trees, as if one cart had grown them all);
- `tree_vote`:  each cart's forest weighs by its training rows (clipped to
  `SAMPLE_CLIP_FACTOR` x the round's median claim, as in FedAvg), shared among
  its trees in their existing proportions (weighted voting).

Forests may differ in how many trees they hold; every per-tree shape and dtype
must match.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from child_cart.aggregation.base import AggregationError, Aggregator, Update, clipped_samples


class TreeUnion(Aggregator):
    name = "tree_union"

    def __init__(self, by_samples: bool = False) -> None:
        super().__init__()
        self.by_samples = by_samples

    def aggregate(self, updates: Sequence[Update]) -> list[np.ndarray]:
        """Join forests; layouts are checked per tree, since tree counts may differ."""
        if not updates:
            raise AggregationError("no updates to aggregate")
        _check_forests(updates)
        return self.combine(updates)

    def combine(self, updates: Sequence[Update]) -> list[np.ndarray]:
        """Every per-tree array concatenated along the tree axis, then the votes set by the rule."""
        arrays = [np.concatenate([u.weights[i] for u in updates]) for i in range(len(updates[0].weights) - 1)]
        return [*arrays, self._votes(updates)]

    def _votes(self, updates: Sequence[Update]) -> np.ndarray:
        dtype = updates[0].weights[-1].dtype
        if not self.by_samples:
            total = sum(len(u.weights[-1]) for u in updates)
            return np.full(total, 1.0 / total, dtype=dtype)
        counts = clipped_samples(updates)
        if counts.sum() <= 0:
            raise AggregationError("tree_vote needs a positive total sample count")
        shares = counts / counts.sum()
        return np.concatenate([share * _normalised(u) for share, u in zip(shares, updates)]).astype(dtype)


class TreeVote(TreeUnion):
    name = "tree_vote"

    def __init__(self) -> None:
        super().__init__(by_samples=True)


def _normalised(update: Update) -> np.ndarray:
    votes = update.weights[-1].astype(np.float64)
    total = votes.sum()
    if total <= 0:
        raise AggregationError(f"forest from {update.source[:8]} has no positive votes")
    return votes / total


def _check_forests(updates: Sequence[Update]) -> None:
    first = updates[0].weights
    if len(first) < 2:
        raise AggregationError("a forest update holds per-tree arrays and a vote array")
    for update in updates:
        weights = update.weights
        if len(weights) != len(first):
            raise AggregationError(f"update from {update.source[:8]} has {len(weights)} tensors, expected {len(first)}")
        trees = len(weights[-1])
        for i, (a, b) in enumerate(zip(weights, first)):
            if a.ndim == 0 or a.shape[0] != trees or a.shape[1:] != b.shape[1:] or a.dtype != b.dtype:
                raise AggregationError(
                    f"update from {update.source[:8]}: tensor {i} is {a.dtype}{a.shape}, not a forest like the others"
                )
