"""FedAvg: the sample-weighted mean (McMahan et al. 2017), weighted by clipped sample counts.

The counts are what each peer claims; they are clipped to `SAMPLE_CLIP_FACTOR`
times the round's median claim first (`base.clipped_samples`), so a peer cannot
take the whole mean by claiming millions of rows. FedAvg is still not robust to
poisoned weights: pick median, trimmed mean or Krum for that.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from child_cart.aggregation.base import AggregationError, Aggregator, Update, clipped_samples, stacked


class FedAvg(Aggregator):
    name = "fedavg"

    def combine(self, updates: Sequence[Update]) -> list[np.ndarray]:
        counts = clipped_samples(updates)
        if counts.sum() <= 0:
            raise AggregationError("FedAvg needs a positive total sample count")
        coefficients = counts / counts.sum()
        return [
            np.tensordot(coefficients.astype(layer.dtype), stacked(updates, i), axes=1).astype(layer.dtype)
            for i, layer in enumerate(updates[0].weights)
        ]
