"""What a task is: a Keras model builder, a way to turn stored rows into tensors, and metrics.

Federated rounds, training, export and the UI only talk to this interface,
so a new model (say an IoT anomaly autoencoder) is a new `Task` subclass
plus one line in the registry. TensorFlow is imported only when a model is
built or used, never when a task module is imported.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import numpy as np

from child_cart.store import Store


class Dataset(NamedTuple):
    """Training and held-out tensors, plus optional calibration rows.

    Calibration rows are held out from training *and* from validation: a task
    fits post-training parameters on them (an anomaly threshold), so neither
    the weights nor the validation score ever saw them. None: the task has none.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_calib: np.ndarray | None = None
    y_calib: np.ndarray | None = None


def fit_keras(model: Any, x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int, progress: bool = False) -> None:
    """Keras fit of x -> y, shuffled, with an epoch progress bar when asked."""
    callbacks = []
    if progress:
        from tqdm.keras import TqdmCallback

        callbacks.append(TqdmCallback(verbose=0, desc="training"))
    model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0, callbacks=callbacks)


def import_keras() -> Any:
    """Import Keras (and TensorFlow under it) on first use, without TF's C++ start-up chatter."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras


def predict(model: Any, x: np.ndarray, batch: int = 8192) -> np.ndarray:
    """Model outputs for `x` without `model.predict`'s per-call set-up (~100 ms), which dominates on cart-sized data."""
    parts = [np.asarray(model.predict_on_batch(x[i : i + batch])) for i in range(0, len(x), batch)]
    return np.concatenate(parts) if parts else np.zeros((0,), dtype=np.float32)


class Task(ABC):
    """A learning task a cart can train, share and export."""

    name: ClassVar[str]
    primary_metric: ClassVar[str]
    higher_is_better: ClassVar[bool] = True
    collection: ClassVar[str] = "purchases"
    phone_model: ClassVar[bool] = False
    """True when phones run this task's model: only then is it exported and published to the bridge."""
    # The aggregation rule this task's models need whatever the round settings say
    # (a forest cannot be averaged); None: the round settings choose.
    aggregator: str | None = None

    def __init__(self, val_fraction: float = 0.2) -> None:
        self.val_fraction = val_fraction

    @abstractmethod
    def build_model(self, seed: int | None = None) -> Any:
        """A new compiled Keras model; same seed, same initial weights."""

    @abstractmethod
    def make_dataset(self, rows: list[dict]) -> Dataset:
        """Rows -> tensors, with the held-out rows chosen by `split.is_validation`."""

    @abstractmethod
    def evaluate(self, model: Any, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """Metrics of `model` on (x, y); includes `primary_metric`."""

    def row_scores(self, model: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
        """Each row's part of `primary_metric` when that metric is a mean over rows (a hit is 1, a miss 0), so two
        models can be compared row by row (a paired standard error). None, the default: it is not (F1)."""
        return None

    def fit(self, model: Any, dataset: Dataset, epochs: int, batch_size: int, progress: bool = False) -> None:
        """Train `model` in place on the dataset's training rows.

        The default is supervised Keras training (x_train -> y_train); a task
        whose model learns differently (an autoencoder x -> x on benign rows,
        a tree ensemble that is refitted) overrides it.
        """
        fit_keras(model, dataset.x_train, dataset.y_train, epochs, batch_size, progress)

    def refit_head(self, model: Any, dataset: Dataset) -> bool:
        """Refit `model`'s output layer in place on the dataset's training rows, pulled toward the layer it holds
        (`head_refit`: personalization of the head alone). False: this task's model has no such layer, and
        nothing changed (the default)."""
        return False

    def calibrate(self, model: Any, dataset: Dataset) -> None:
        """Fit what depends on the current weights but is not a weight (an anomaly threshold).

        Called every time a model's weights change (after training, after
        taking a peer's or an aggregate's weights) and before it is evaluated.
        The default has nothing to calibrate.
        """
        return

    def rows(self, store: Store) -> list[dict]:
        """The stored rows this task learns from, in a stable order."""
        return sorted(store.collection(self.collection).find({}), key=lambda row: str(row["_id"]))

    def reference_inputs(self) -> np.ndarray | None:
        """Inputs worth checking an export on beyond the validation rows (None: just those)."""
        return None

    def golden_vectors(self, predict: Callable[[np.ndarray], np.ndarray], model_sha256: str) -> dict | None:
        """Input/output pairs for on-device tests, made with the exported model's `predict` (None: none)."""
        return None
