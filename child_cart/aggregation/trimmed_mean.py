"""Coordinate-wise trimmed mean (Yin et al. 2018): drop the extremes at each coordinate, average the rest.

`trim_count` says how many updates go from each side: ceil(n x ratio), so any
ratio above 0 trims at least one from each side (a floor would trim nothing
from 4 updates at 0.2), bounded so at least one update remains. With fewer
than 3 updates nothing can be trimmed and kept, so the rule refuses.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from child_cart.aggregation.base import Aggregator, Update, require_robust_quorum, sorted_stack

log = logging.getLogger(__name__)

_EPSILON = 1e-9  # n x ratio is computed in floats: 10 x 0.3 is 3.0000000000000004, which must still trim 3


def wanted_trim(n: int, ratio: float) -> int:
    """Updates the ratio asks to trim from each side of `n`: ceil(n x ratio), at least 1 when ratio > 0."""
    if ratio <= 0:
        return 0
    return max(1, math.ceil(n * ratio - _EPSILON))


def trim_count(n: int, ratio: float) -> int:
    """Updates actually trimmed from each side of `n`: `wanted_trim`, bounded so at least one update remains."""
    return min(wanted_trim(n, ratio), (n - 1) // 2)


class TrimmedMean(Aggregator):
    name = "trimmed_mean"

    def __init__(self, trim_ratio: float = 0.2) -> None:
        if not 0 <= trim_ratio < 0.5:
            raise ValueError("trim_ratio must be in [0, 0.5)")
        super().__init__()
        self.trim_ratio = trim_ratio

    def combine(self, updates: Sequence[Update]) -> list[np.ndarray]:
        n = len(updates)
        if self.trim_ratio > 0:
            require_robust_quorum(self.name, n, "to trim one from each side and keep one")
        cut = trim_count(n, self.trim_ratio)
        if cut < wanted_trim(n, self.trim_ratio):
            log.info(
                "trimmed_mean: ratio %g asks %d of %d per side; trimming %d",
                self.trim_ratio,
                wanted_trim(n, self.trim_ratio),
                n,
                cut,
            )
        return [
            sorted_stack(updates, i)[cut : n - cut].mean(axis=0).astype(layer.dtype)
            for i, layer in enumerate(updates[0].weights)
        ]
