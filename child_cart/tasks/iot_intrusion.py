"""Tasks `iot-intrusion` and `iot-intrusion-forest`: attack or not, from a weather sensor's readings.

TON_IoT's weather telemetry: temperature, pressure, humidity and the time of
day, with a skewed label (about 86% normal). Input row: temperature, pressure,
humidity, sin and cos of the hour (so 23:59 sits next to 00:00).

`iot-intrusion` is a small Keras classifier (scaler in the model, fitted once
on the training rows, then sigmoid output = P(attack)). `iot-intrusion-forest`
grows a random forest instead, held as plain arrays (`iot.forest`): a forest
cannot be averaged, so its rounds join the peers' trees (`tree_union` /
`tree_vote` aggregation, which the task asks the engine for), and every round a
cart grows fresh trees on its own rows. Both call a row an attack when
P(attack) >= 0.5 and report the same per-sample metrics.
"""

from __future__ import annotations

import logging
import math
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from child_cart.settings import CartSettings
from child_cart.tasks.base import Dataset, fit_keras, import_keras, predict
from child_cart.tasks.iot import scaler
from child_cart.tasks.iot.detector import DetectionTask, cross_entropy, usable
from child_cart.tasks.iot.forest import TreeForest
from child_cart.tasks.iot.metrics import Detection
from child_cart.tasks.iot.rows import WEATHER, targets
from child_cart.tasks.split import split_rows

log = logging.getLogger(__name__)

FEATURE_NAMES = ("temperature", "pressure", "humidity", "hour_sin", "hour_cos")
DECISION = 0.5


def encode(row: dict) -> list[float]:
    """The input row for one reading; the only place this layout is defined."""
    angle = 2 * math.pi * float(row["hour"]) / 24.0
    return [float(row["temperature"]), float(row["pressure"]), float(row["humidity"]), math.sin(angle), math.cos(angle)]


def _readable(row: dict) -> bool:
    values = [row.get(name) for name in ("temperature", "pressure", "humidity", "hour")]
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


class WeatherDetection(DetectionTask):
    """What both weather classifiers share: rows -> tensors, and P(attack) -> decisions."""

    schema = WEATHER

    def make_dataset(self, rows: list[dict]) -> Dataset:
        train, val = split_rows(usable(rows, WEATHER, _readable), self.val_fraction)
        return Dataset(*_tensors(train), *_tensors(val))

    def detect(self, model: Any, x: np.ndarray, y: np.ndarray) -> Detection:
        probability = self.attack_probability(model, x)
        return Detection(y[:, 0], (probability >= DECISION).astype(np.int64), probability, y[:, 1])

    def loss(self, detection: Detection) -> float:
        return cross_entropy(detection)

    def decision_thresholds(self, model: Any) -> list[float]:
        return [DECISION]

    @abstractmethod
    def attack_probability(self, model: Any, x: np.ndarray) -> np.ndarray:
        """P(attack) per row."""


class IntrusionTask(WeatherDetection):
    """A Keras binary classifier over the five weather features."""

    name = "iot-intrusion"

    def __init__(
        self, layers: Sequence[int] = (32, 16), learning_rate: float = 5e-3, val_fraction: float = 0.2
    ) -> None:
        super().__init__(val_fraction)
        self.layers, self.learning_rate = tuple(layers), learning_rate

    @classmethod
    def from_settings(cls, settings: CartSettings | None) -> IntrusionTask:
        """The task as a cart's settings configure it (IOT_INTRUSION_*, VAL_FRACTION)."""
        if settings is None:
            return cls()
        return cls(settings.iot_intrusion_layers, settings.iot_intrusion_learning_rate, settings.val_fraction)

    def build_model(self, seed: int | None = None) -> Any:
        """features -> scaler -> hidden layers -> sigmoid P(attack)."""
        keras = import_keras()
        if seed is not None:
            keras.utils.set_random_seed(seed)
        hidden = [
            keras.layers.Dense(units, activation="relu", name=f"hidden_{i}") for i, units in enumerate(self.layers)
        ]
        model = keras.Sequential(
            [
                keras.Input(shape=(len(FEATURE_NAMES),), name="features"),
                scaler.layer(),
                *hidden,
                keras.layers.Dense(1, activation="sigmoid", name="attack"),
            ],
            name="iot_intrusion",
        )
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=self.learning_rate), loss="binary_crossentropy")
        return model

    def fit(self, model: Any, dataset: Dataset, epochs: int, batch_size: int, progress: bool = False) -> None:
        """Fit the scaler on the training rows (first time only), then the classifier on their labels."""
        scaler.fit_once(model, dataset.x_train)
        fit_keras(model, dataset.x_train, dataset.y_train[:, 0].astype(np.float32), epochs, batch_size, progress)

    def attack_probability(self, model: Any, x: np.ndarray) -> np.ndarray:
        return np.asarray(predict(model, np.asarray(x, dtype=np.float32)), dtype=np.float64).reshape(len(x))


class ForestIntrusionTask(WeatherDetection):
    """A random forest over the five weather features, exchanged as arrays and joined by tree union."""

    name = "iot-intrusion-forest"

    def __init__(
        self, trees: int = 20, depth: int = 8, aggregator: str = "tree_union", val_fraction: float = 0.2
    ) -> None:
        super().__init__(val_fraction)
        self.trees, self.depth, self.aggregator = trees, depth, aggregator

    @classmethod
    def from_settings(cls, settings: CartSettings | None) -> ForestIntrusionTask:
        """The task as a cart's settings configure it (IOT_FOREST_*, VAL_FRACTION)."""
        if settings is None:
            return cls()
        return cls(
            settings.iot_forest_trees, settings.iot_forest_depth, settings.iot_forest_aggregator, settings.val_fraction
        )

    def build_model(self, seed: int | None = None) -> TreeForest:
        """An untrained forest (every tree says benign) of the configured size."""
        return TreeForest(len(FEATURE_NAMES), self.trees, self.depth, seed=seed or 0)

    def fit(self, model: TreeForest, dataset: Dataset, epochs: int, batch_size: int, progress: bool = False) -> None:
        """Grow fresh trees on this cart's training rows (epochs and batches mean nothing to a forest)."""
        model.fit(dataset.x_train, dataset.y_train[:, 0])

    def attack_probability(self, model: TreeForest, x: np.ndarray) -> np.ndarray:
        return model.predict_proba(x)


def _tensors(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    x = np.array([encode(row) for row in rows], dtype=np.float32).reshape(len(rows), len(FEATURE_NAMES))
    return x, targets(rows)
