"""FedAvg: the sample-weighted mean (McMahan et al. 2017)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from child_cart.aggregation.base import AggregationError, Aggregator, Update, stacked


class FedAvg(Aggregator):
    name = "fedavg"

    def combine(self, updates: Sequence[Update]) -> list[np.ndarray]:
        counts = np.array([u.samples for u in updates], dtype=np.float64)
        if counts.sum() <= 0:
            raise AggregationError("FedAvg needs a positive total sample count")
        coefficients = counts / counts.sum()
        return [
            np.tensordot(coefficients.astype(layer.dtype), stacked(updates, i), axes=1).astype(layer.dtype)
            for i, layer in enumerate(updates[0].weights)
        ]
