"""Krum (Blanchard et al. 2017): keep the update closest to its n - f - 2 nearest neighbours.

With f assumed attackers among n updates, an honest update sits in a tight
cluster, so its summed squared distance to its n - f - 2 nearest others is
small; the rule returns that one update unchanged. Needs n > 2f + 2.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from child_cart.aggregation.base import AggregationError, Aggregator, Update


class Krum(Aggregator):
    name = "krum"

    def __init__(self, f: int = 1) -> None:
        if f < 0:
            raise ValueError("f must be >= 0")
        self.f = f

    def combine(self, updates: Sequence[Update]) -> list[np.ndarray]:
        return [w.copy() for w in updates[self.select(updates)].weights]

    def select(self, updates: Sequence[Update]) -> int:
        """Index of the update Krum keeps."""
        n = len(updates)
        if n <= 2 * self.f + 2:
            raise AggregationError(f"Krum with f={self.f} needs more than {2 * self.f + 2} updates, got {n}")
        scores = self.scores(updates)
        return int(np.argmin(scores))

    def scores(self, updates: Sequence[Update]) -> np.ndarray:
        """Each update's sum of squared distances to its n - f - 2 nearest others."""
        distances = _pairwise_sq_distances(updates)
        nearest = len(updates) - self.f - 2
        np.fill_diagonal(distances, np.inf)
        return np.sort(distances, axis=1)[:, :nearest].sum(axis=1)


def _pairwise_sq_distances(updates: Sequence[Update]) -> np.ndarray:
    """||a - b||^2 = |a|^2 + |b|^2 - 2 a.b, summed layer by layer from the Gram matrices."""
    n = len(updates)
    gram = np.zeros((n, n))
    for layer in range(len(updates[0].weights)):
        flat = np.stack([u.weights[layer].ravel() for u in updates]).astype(np.float64, copy=False)
        gram += flat @ flat.T
    norms = np.diag(gram)
    return np.maximum(norms[:, None] + norms[None, :] - 2 * gram, 0.0)
