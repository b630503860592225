"""Krum (Blanchard et al. 2017): keep the update closest to its n - f - 2 nearest neighbours.

With f assumed attackers among n updates, an honest update sits in a tight
cluster, so its summed squared distance to its n - f - 2 nearest others is
small; the rule returns that one update unchanged. The paper needs n > 2f + 2.

The round settings refuse an f that the configured k cannot bear. When fewer
peers answer than were asked, Krum adapts f to the updates it has, as Flower's
Krum does: the largest f with n > 2f + 2 (`bearable_f`), never more than
configured, and says so in `notes` (the round log's `aggregation_notes`). Below 3
updates no f fits and the rule refuses with a reason.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from child_cart.aggregation.base import Aggregator, Update, require_robust_quorum

log = logging.getLogger(__name__)


def bearable_f(n: int) -> int:
    """The largest f Krum can assume among `n` updates (n > 2f + 2); -1 when even f = 0 does not fit."""
    return (n - 3) // 2


def min_updates(f: int) -> int:
    """Fewest updates Krum needs to assume `f` attackers: 2f + 3."""
    return 2 * f + 3


class Krum(Aggregator):
    name = "krum"

    def __init__(self, f: int = 1) -> None:
        if f < 0:
            raise ValueError("f must be >= 0")
        super().__init__()
        self.f = f

    def combine(self, updates: Sequence[Update]) -> list[np.ndarray]:
        return [w.copy() for w in updates[self.select(updates)].weights]

    def effective_f(self, n: int) -> int:
        """The f used with `n` updates: the configured f, lowered to what n can bear; raises when none fits."""
        require_robust_quorum(self.name, n, "to pick one by its nearest neighbours")
        f = min(self.f, bearable_f(n))
        if f < self.f:
            note = f"krum: {n} updates bear f={f}, not the configured f={self.f}; used f={f}"
            log.info("%s this round", note)
            if note not in self.notes:
                self.notes.append(note)
        return f

    def select(self, updates: Sequence[Update]) -> int:
        """Index of the update Krum keeps."""
        scores = self.scores(updates)
        return int(np.argmin(scores))

    def scores(self, updates: Sequence[Update]) -> np.ndarray:
        """Each update's sum of squared distances to its n - f - 2 nearest others (f as `effective_f` adapts it)."""
        n = len(updates)
        nearest = n - self.effective_f(n) - 2  # at least f + 1, since n > 2f + 2
        distances = _pairwise_sq_distances(updates)
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
