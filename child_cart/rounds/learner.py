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

MAIN, SHADOW, PERSONAL = "main", "shadow", "personal"
"""Optimizer tracks: the cart's own model, its local-only shadow (LOCAL_ONLY) and its personal fine-tuning."""


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
            self._track = MAIN
            self._tracks: dict[str, list[np.ndarray]] = {}
            self._fresh = self._built_optimizer_state()

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

    def train(
        self, weights: list[np.ndarray], epochs: int, mu: float = 0.0, head: bool = False, track: str = MAIN
    ) -> list[np.ndarray]:
        """Start from `weights`, fit on the training rows, return the new weights.

        `mu` > 0 trains with FedProx's proximal term mu/2 * ||w - weights||^2 (`tasks.proximal`). `head` then
        refits the output layer alone, where the task has one (`Task.refit_head`); `epochs` may be 0 with it.
        `track` names whose optimizer state (Adam's moments and step count) the training continues: the cart's
        own model (`MAIN`), its local-only shadow (`SHADOW`) and its personal fine-tuning (`PERSONAL`) each keep
        their own across rounds, as separate carts' optimizers would. One shared state let the shadow's steps
        steer the next round's training of the model the cart offers.
        """
        dataset = self.dataset
        if dataset is None or not len(dataset.x_train):
            raise ValueError("no training rows yet")
        with KERAS_LOCK:
            self._seed_training()
            self._switch_track(track)
            self._model.set_weights(weights)
            if epochs > 0:
                with proximal(self._model, mu):
                    self.task.fit(self._model, dataset, epochs, self.batch_size)
            if head:
                self.task.refit_head(self._model, dataset)
            return self._weights()

    def _built_optimizer_state(self) -> list[np.ndarray]:
        """Build the model's optimizer now (Keras would at the first fit) and return its untrained state: step 0,
        zero moments, the learning rate. Empty for a model without an optimizer."""
        optimizer = getattr(self._model, "optimizer", None)
        if optimizer is None:
            return []
        if not optimizer.built:
            optimizer.build(self._model.trainable_variables)
        return [np.array(v.numpy()) for v in optimizer.variables]

    def _switch_track(self, track: str) -> None:
        """Put `track`'s optimizer state in place (a new track starts untrained), keeping the current one's."""
        if track == self._track or not self._fresh:
            self._track = track
            return
        variables = self._model.optimizer.variables
        self._tracks[self._track] = [np.array(v.numpy()) for v in variables]
        for variable, value in zip(variables, self._tracks.get(track, self._fresh)):
            variable.assign(value)
        self._track = track

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

    def paired_error(self, first: list[np.ndarray], second: list[np.ndarray]) -> float | None:
        """One standard error of `first`'s held-out score minus `second`'s, from their row-by-row differences.

        Paired, because both are scored on the same rows: only the rows where they differ carry noise, so a gain of
        a point can be told from none on fewer rows than either score alone would need. None when the task's metric
        is not a mean over rows (`Task.row_scores`) or there are fewer than two held-out rows.
        """
        dataset = self.dataset
        if dataset is None or len(dataset.x_val) < 2:
            return None
        with KERAS_LOCK:
            self._use(first)
            ours = self.task.row_scores(self._model, dataset.x_val, dataset.y_val)
            self._use(second)
            theirs = self.task.row_scores(self._model, dataset.x_val, dataset.y_val)
        if ours is None or theirs is None:
            return None
        differences = ours - theirs
        return float(np.std(differences, ddof=1) / np.sqrt(len(differences)))

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
