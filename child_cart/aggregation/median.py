"""Coordinate-wise median (Yin et al. 2018): robust while fewer than half the updates are bad."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from child_cart.aggregation.base import Aggregator, Update, require_robust_quorum, sorted_stack


class Median(Aggregator):
    name = "median"

    def combine(self, updates: Sequence[Update]) -> list[np.ndarray]:
        n = len(updates)
        require_robust_quorum(self.name, n, "(the median of two is their mean)")
        return [_middle(sorted_stack(updates, i), n).astype(layer.dtype) for i, layer in enumerate(updates[0].weights)]


def _middle(ordered: np.ndarray, n: int) -> np.ndarray:
    if n % 2:
        return ordered[n // 2]
    return (ordered[n // 2 - 1] + ordered[n // 2]) / 2
