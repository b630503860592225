"""Task `iot-anomaly`: an autoencoder that learns a device's benign traffic and flags what it cannot reconstruct.

N-BaIoT's detector: train on benign rows only, score a row by its reconstruction
error (mean squared residual over the scaled features), call it an attack above
a threshold of mean + k * std of the errors on held-out benign rows.

Three disjoint sets of rows, all chosen by row-id hashes (stable everywhere):
validation (the usual `val_fraction`, benign and attack, for metrics only);
calibration (a share of the remaining *benign* rows, for the threshold only);
training (the other benign rows; attack rows outside validation are not used).

Scaling lives in the model (`scaler`): fitted once on benign training rows, it
travels and is averaged with the weights, and the same statistics scale every
row the model scores. The threshold does not travel: it belongs to one set of
weights (an average of thresholds is not the threshold of the averaged model)
and to the benign traffic it is judged on, so `calibrate` recomputes it on this
cart's own calibration rows whenever the weights change (after training and
after aggregation). With scope `device` each device gets its own threshold
(where it has enough calibration rows), else one global threshold is used.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from child_cart.settings import CartSettings
from child_cart.tasks.base import Dataset, fit_keras, import_keras, predict
from child_cart.tasks.iot import scaler
from child_cart.tasks.iot.detector import DetectionTask, usable
from child_cart.tasks.iot.metrics import Detection
from child_cart.tasks.iot.nbaiot import FEATURES
from child_cart.tasks.iot.rows import TRAFFIC, targets
from child_cart.tasks.split import is_validation, split_rows

log = logging.getLogger(__name__)

Scope = Literal["global", "device"]
DEFAULT_LAYERS = (86, 58, 38, 29)
MIN_DEVICE_ROWS = 20


class NotCalibrated(RuntimeError):
    """The model's weights changed since its threshold was computed (or it never was)."""


@dataclass(frozen=True)
class Threshold:
    """Reconstruction-error thresholds for one set of weights: global, and per device code where known."""

    weights_digest: str
    value: float
    per_device: dict[int, float] = field(default_factory=dict)

    def for_devices(self, devices: np.ndarray) -> np.ndarray:
        """Each row's threshold: its device's own, else the global one."""
        return np.array([self.per_device.get(int(d), self.value) for d in devices], dtype=np.float64)


class AnomalyTask(DetectionTask):
    """Benign-only autoencoder over traffic statistics; reconstruction error above threshold = attack."""

    name = "iot-anomaly"
    schema = TRAFFIC

    def __init__(
        self,
        features: int = FEATURES,
        layers: Sequence[int] = DEFAULT_LAYERS,
        k: float = 3.0,
        scope: Scope = "device",
        calibration_fraction: float = 0.25,
        val_fraction: float = 0.2,
        learning_rate: float = 1e-3,
    ) -> None:
        super().__init__(val_fraction)
        if features < 1 or not layers or min(layers) < 1:
            raise ValueError("the autoencoder needs features >= 1 and at least one layer of >= 1 units")
        if scope not in ("global", "device"):
            raise ValueError(f"threshold scope must be 'global' or 'device', got {scope!r}")
        self.features, self.layers, self.k, self.scope = features, tuple(layers), k, scope
        self.calibration_fraction, self.learning_rate = calibration_fraction, learning_rate

    @classmethod
    def from_settings(cls, settings: CartSettings | None) -> AnomalyTask:
        """The task as a cart's settings configure it (IOT_ANOMALY_*, IOT_THRESHOLD_*, VAL_FRACTION)."""
        if settings is None:
            return cls()
        return cls(
            settings.iot_anomaly_features,
            settings.iot_anomaly_layers,
            settings.iot_threshold_k,
            settings.iot_threshold_scope,
            settings.iot_calibration_fraction,
            settings.val_fraction,
            settings.iot_anomaly_learning_rate,
        )

    def build_model(self, seed: int | None = None) -> Any:
        """features -> scaler -> encoder -> decoder; the output is the residual (reconstruction - scaled input)."""
        keras = import_keras()
        if seed is not None:
            keras.utils.set_random_seed(seed)
        inputs = keras.Input(shape=(self.features,), name="features")
        scaled = scaler.layer()(inputs)
        hidden = scaled
        for i, units in enumerate([*self.layers, *reversed(self.layers[:-1])]):
            hidden = keras.layers.Dense(units, activation="relu", name=f"dense_{i}")(hidden)
        reconstruction = keras.layers.Dense(self.features, name="reconstruction")(hidden)
        residual = keras.layers.Subtract(name="residual")([reconstruction, scaled])
        model = keras.Model(inputs, residual, name="iot_anomaly")
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=self.learning_rate), loss="mse")
        return model

    def make_dataset(self, rows: list[dict]) -> Dataset:
        """Training = benign non-validation rows minus the calibration share; see the module docstring."""
        rows = usable(rows, TRAFFIC, lambda row: len(row.get("features", ())) == self.features)
        train, val = split_rows(rows, self.val_fraction)
        benign = [row for row in train if int(row["label"]) == 0]
        calibration = [row for row in benign if is_validation(f"calibration:{row['_id']}", self.calibration_fraction)]
        held = {row["_id"] for row in calibration}
        fitting = [row for row in benign if row["_id"] not in held]
        return Dataset(*self._tensors(fitting), *self._tensors(val), *self._tensors(calibration))

    def fit(self, model: Any, dataset: Dataset, epochs: int, batch_size: int, progress: bool = False) -> None:
        """Fit the scaler (first time only) and then the autoencoder x -> x, on benign training rows only."""
        benign = dataset.x_train[dataset.y_train[:, 0] == 0]
        if len(benign) == 0:
            raise ValueError("no benign training rows for the autoencoder")
        if scaler.fit_once(model, benign):
            log.info("scaler fitted on %d benign training rows", len(benign))
        fit_keras(model, benign, np.zeros_like(benign), epochs, batch_size, progress)

    def calibrate(self, model: Any, dataset: Dataset) -> None:
        """Threshold(s) = mean + k * std of reconstruction errors on the held-out benign calibration rows."""
        if dataset.x_calib is None or dataset.y_calib is None or len(dataset.x_calib) == 0:
            raise ValueError("no held-out benign rows to set the anomaly threshold on")
        errors = self.reconstruction_errors(model, dataset.x_calib)
        devices = dataset.y_calib[:, 1]
        per_device = {}
        if self.scope == "device":
            per_device = {
                int(d): self._limit(errors[devices == d])
                for d in np.unique(devices)
                if np.sum(devices == d) >= MIN_DEVICE_ROWS
            }
        model.anomaly_threshold = Threshold(weights_digest(model), self._limit(errors), per_device)

    def reconstruction_errors(self, model: Any, x: np.ndarray) -> np.ndarray:
        """Per-sample mean squared residual in scaled units."""
        residual = predict(model, np.asarray(x, dtype=np.float32)).reshape(len(x), self.features)
        return np.mean(residual.astype(np.float64) ** 2, axis=1)

    def threshold(self, model: Any) -> Threshold:
        """The model's threshold, refusing one computed for other weights."""
        found = getattr(model, "anomaly_threshold", None)
        if found is None or found.weights_digest != weights_digest(model):
            raise NotCalibrated("the model's weights changed since its threshold was set: calibrate it first")
        return found

    def detect(self, model: Any, x: np.ndarray, y: np.ndarray) -> Detection:
        limits = self.threshold(model).for_devices(y[:, 1])
        errors = self.reconstruction_errors(model, x)
        return Detection(y[:, 0], (errors > limits).astype(np.int64), errors, y[:, 1])

    def loss(self, detection: Detection) -> float:
        """Mean reconstruction error of the benign rows (what training minimises)."""
        benign = detection.y_true == 0
        return float(np.mean(detection.score[benign] if benign.any() else detection.score))

    def decision_thresholds(self, model: Any) -> list[float]:
        threshold = self.threshold(model)
        return list(threshold.per_device.values()) or [threshold.value]

    def evaluate(self, model: Any, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        return {**super().evaluate(model, x, y), "threshold": self.threshold(model).value}

    def _limit(self, errors: np.ndarray) -> float:
        return float(np.mean(errors) + self.k * np.std(errors))

    def _tensors(self, rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        x = np.array([row["features"] for row in rows], dtype=np.float32).reshape(len(rows), self.features)
        return x, targets(rows)


def weights_digest(model: Any) -> str:
    """A fingerprint of a model's current weights (ties a threshold to the weights it was computed for)."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()
