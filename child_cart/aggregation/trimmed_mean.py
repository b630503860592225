"""Coordinate-wise trimmed mean (Yin et al. 2018): drop the extremes at each coordinate, average the rest."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from child_cart.aggregation.base import Aggregator, Update, sorted_stack


class TrimmedMean(Aggregator):
    name = "trimmed_mean"

    def __init__(self, trim_ratio: float = 0.2) -> None:
        if not 0 <= trim_ratio < 0.5:
            raise ValueError("trim_ratio must be in [0, 0.5)")
        self.trim_ratio = trim_ratio

    def combine(self, updates: Sequence[Update]) -> list[np.ndarray]:
        n = len(updates)
        cut = int(n * self.trim_ratio)
        return [
            sorted_stack(updates, i)[cut : n - cut].mean(axis=0).astype(layer.dtype)
            for i, layer in enumerate(updates[0].weights)
        ]
