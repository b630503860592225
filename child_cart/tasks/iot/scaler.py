"""Feature standardisation that lives inside the model, as its first layer.

The scaler's mean, variance and sample count are non-trainable weights, read
at every call, so they travel with the model through every exchange and
aggregation (FedAvg of the means is the pooled mean) and every row the model
ever scores is scaled by the same statistics, whatever batch it comes in.
(Keras' own Normalization layer copies its statistics into constants when it
is built, so `set_weights` would not reach them: hence this small layer.)

The scaler is fitted once per model lineage, on the rows the task hands it
(benign training rows for the anomaly autoencoder): a fresh model has count 0,
any trained or aggregated one has a positive count and keeps its statistics.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from child_cart.tasks.base import import_keras

LAYER = "scaler"
MIN_VARIANCE = 1e-6  # a feature constant in the fitted rows would otherwise divide by zero


def layer() -> Any:
    """A new, unfitted scaler layer (mean 0, variance 1, count 0)."""
    return _layer_class()(name=LAYER)


@functools.cache
def _layer_class() -> type:
    keras = import_keras()
    layer_base: Any = keras.layers.Layer

    class Standardize(layer_base):  # type: ignore[misc]  # Keras ships no types: its Layer is Any here
        """(x - mean) / sqrt(variance), with the statistics as non-trainable weights."""

        def build(self, input_shape: tuple) -> None:
            width = input_shape[-1]
            self.mean = self.add_weight(name="mean", shape=(width,), initializer="zeros", trainable=False)
            self.variance = self.add_weight(name="variance", shape=(width,), initializer="ones", trainable=False)
            self.count = self.add_weight(name="count", shape=(), initializer="zeros", trainable=False)

        def call(self, inputs: Any) -> Any:
            return keras.ops.divide(keras.ops.subtract(inputs, self.mean), keras.ops.sqrt(self.variance))

    return Standardize


def is_fitted(model: Any) -> bool:
    """True when the model's scaler already holds statistics."""
    return statistics(model)[2] > 0


def fit_once(model: Any, x: np.ndarray) -> bool:
    """Set the scaler from `x` unless it is already fitted; True when it was set now."""
    if is_fitted(model):
        return False
    if len(x) == 0:
        raise ValueError("no rows to fit the scaler on")
    data = np.asarray(x, dtype=np.float64)
    mean, variance = data.mean(axis=0), np.maximum(data.var(axis=0), MIN_VARIANCE)
    model.get_layer(LAYER).set_weights([mean.astype(np.float32), variance.astype(np.float32), np.float32(len(data))])
    return True


def statistics(model: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """(mean, variance, count) the model scales with."""
    mean, variance, count = model.get_layer(LAYER).get_weights()
    return np.asarray(mean), np.asarray(variance), float(count)
