"""Local training: fit a task's model on a cart's rows and score it on the held-out ones.

Used by `fedcart train` and by federated rounds (which pass the aggregated
weights in as `initial_weights`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from child_cart.tasks.base import Dataset, Task, fit_keras

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """A trained model, its held-out metrics and how much data it saw."""

    model: Any
    train_samples: int
    val_samples: int
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def weights(self) -> list[np.ndarray]:
        return [np.asarray(w) for w in self.model.get_weights()]


def train(
    task: Task,
    rows: list[dict],
    epochs: int,
    batch_size: int,
    seed: int = 0,
    initial_weights: list[np.ndarray] | None = None,
    progress: bool = False,
) -> TrainResult:
    """Build (or start from `initial_weights`), fit on the training rows, evaluate on the held-out rows.

    With no held-out rows the metrics stay empty: scoring on training rows
    would flatter the model.
    """
    dataset = task.make_dataset(rows)
    if len(dataset.x_train) == 0:
        raise ValueError(f"no training rows for task {task.name} ({len(rows)} rows in all)")
    model = task.build_model(seed=seed)
    if initial_weights is not None:
        model.set_weights(initial_weights)
    started = time.perf_counter()
    task.fit(model, dataset, epochs, batch_size, progress)
    seconds = time.perf_counter() - started
    task.calibrate(model, dataset)
    metrics = task.evaluate(model, dataset.x_val, dataset.y_val) if len(dataset.x_val) else {}
    if not metrics:
        log.warning("no held-out rows: model trained but not scored")
    log.info("trained %s on %d rows in %.1f s: %s", task.name, len(dataset.x_train), seconds, metrics)
    return TrainResult(model, len(dataset.x_train), len(dataset.x_val), seconds, metrics)


def fit(model: Any, dataset: Dataset, epochs: int, batch_size: int, progress: bool = False) -> None:
    """Supervised Keras fit on the training tensors (what `Task.fit` does by default)."""
    fit_keras(model, dataset.x_train, dataset.y_train, epochs, batch_size, progress)
