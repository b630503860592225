"""The local model of one cart: train on its own rows, score any weights on its held-out rows.

One compiled Keras model is kept and re-used (weights are swapped in), because
building and compiling a model costs more than a round of training on a cart's
data. Calls are blocking; the engine runs them in a worker thread under
`KERAS_LOCK`, so several carts in one process (the simulator) take turns.

Keras shuffles with one process-wide generator, so the carts of one process
learn differently from run to run, as their threads happen to reach the lock
(more so on busy CPUs). A learner given a `train_seed` re-seeds that generator
before each of its trainings, under the lock, with train_seed + trainings so far:
a seeded run then trains the same whatever the order (give carts seeds far apart;
the round tests use 1000 x the cart's index). A cart on its own (the product)
keeps the default, None, and pays nothing.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

from child_cart.tasks.base import Dataset, Task, import_keras
from child_cart.tasks.proximal import proximal

log = logging.getLogger(__name__)

KERAS_LOCK = threading.Lock()


class Learner:
    def __init__(self, task: Task, seed: int = 0, batch_size: int = 32, train_seed: int | None = None) -> None:
        self.task = task
        self.batch_size = batch_size
        self.train_seed = train_seed
        """None: training shuffles as the shared generator goes; an int: each training seeded (see the module)."""
        self.trainings = 0
        self.dataset: Dataset | None = None
        self.rows_seen = 0
        with KERAS_LOCK:
            self._model: Any = task.build_model(seed=seed)
            self.initial_weights = self._weights()

    @property
    def train_samples(self) -> int:
        return 0 if self.dataset is None else len(self.dataset.x_train)

    @property
    def val_samples(self) -> int:
        return 0 if self.dataset is None else len(self.dataset.x_val)

    def load_rows(self, rows: list[dict]) -> None:
        """Turn the cart's current rows into tensors (train/held-out split by row id)."""
        self.dataset = self.task.make_dataset(rows)
        self.rows_seen = len(rows)

    def train(self, weights: list[np.ndarray], epochs: int, mu: float = 0.0, head: bool = False) -> list[np.ndarray]:
        """Start from `weights`, fit on the training rows, return the new weights.

        `mu` > 0 trains with FedProx's proximal term mu/2 * ||w - weights||^2 (`tasks.proximal`). `head` then
        refits the output layer alone, where the task has one (`Task.refit_head`); `epochs` may be 0 with it.
        """
        dataset = self.dataset
        if dataset is None or not len(dataset.x_train):
            raise ValueError("no training rows yet")
        with KERAS_LOCK:
            self._seed_training()
            self._model.set_weights(weights)
            if epochs > 0:
                with proximal(self._model, mu):
                    self.task.fit(self._model, dataset, epochs, self.batch_size)
            if head:
                self.task.refit_head(self._model, dataset)
            return self._weights()

    def _seed_training(self) -> None:
        """Seed Keras (and numpy's global generator) with train_seed + trainings so far; called under the lock."""
        if self.train_seed is not None:
            import_keras().utils.set_random_seed(self.train_seed + self.trainings)
        self.trainings += 1

    def evaluate(self, weights: list[np.ndarray]) -> dict[str, float]:
        """Held-out metrics of `weights` (empty when this cart has no held-out rows)."""
        dataset = self.dataset
        if dataset is None or not len(dataset.x_val):
            return {}
        with KERAS_LOCK:
            self._use(weights)
            return self.task.evaluate(self._model, dataset.x_val, dataset.y_val)

    def evaluate_on(self, weights: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """Metrics of `weights` on someone else's rows (the simulator's pooled held-out set)."""
        with KERAS_LOCK:
            self._use(weights)
            return self.task.evaluate(self._model, x, y)

    def _use(self, weights: list[np.ndarray]) -> None:
        """Swap `weights` in and calibrate them on this cart's calibration rows (a threshold belongs to its weights)."""
        self._model.set_weights(weights)
        if self.dataset is not None:
            self.task.calibrate(self._model, self.dataset)

    def _weights(self) -> list[np.ndarray]:
        return [np.asarray(w) for w in self._model.get_weights()]
