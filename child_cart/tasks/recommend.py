"""The default task: recommend product categories from the month and the shopper's profile.

Input row (the layout the Android app reproduces from the golden vectors):
index 0 = sin(2*pi*(month-1)/12), index 1 = cos(2*pi*(month-1)/12), then a
one-hot of the profile over the catalogue's profile order. Output: one
probability per category, in the catalogue's category order. The cyclical
month keeps December next to January.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from child_cart.settings import CartSettings
from child_cart.store import Catalogue, load_catalogue
from child_cart.tasks.base import Dataset, Task, import_keras, predict
from child_cart.tasks.split import split_rows

log = logging.getLogger(__name__)

MONTHS = 12
TOP_K = 3
GOLDEN_TOLERANCE = 1e-5


def encode_features(month: int, profile: str, profiles: Sequence[str]) -> list[float]:
    """The model's input row for one (month 1..12, profile); the only place this layout is defined."""
    if not 1 <= month <= MONTHS:
        raise ValueError(f"month must be 1..12, got {month}")
    angle = 2 * math.pi * (month - 1) / MONTHS
    one_hot = [0.0] * len(profiles)
    one_hot[list(profiles).index(profile)] = 1.0
    return [math.sin(angle), math.cos(angle), *one_hot]


def top_categories(probabilities: Sequence[float], categories: Sequence[str], k: int = TOP_K) -> list[str]:
    """The k most probable category names, best first (ties: catalogue order)."""
    order = np.argsort(-np.asarray(probabilities, dtype=np.float64), kind="stable")
    return [categories[i] for i in order[:k]]


class RecommendTask(Task):
    """Month + shopper profile -> category probabilities (softmax)."""

    name = "recommend"
    primary_metric = "accuracy"
    phone_model = True

    def __init__(
        self,
        catalogue: Catalogue | None = None,
        val_fraction: float = 0.2,
        hidden_units: int = 32,
        learning_rate: float = 0.01,
    ) -> None:
        super().__init__(val_fraction)
        schema = catalogue or load_catalogue()
        self.profiles = schema.profile_names
        self.categories = schema.category_names
        self.hidden_units = hidden_units
        self.learning_rate = learning_rate

    @classmethod
    def from_settings(cls, settings: CartSettings | None) -> RecommendTask:
        """The task as a cart's settings configure it (catalogue file, validation share)."""
        if settings is None:
            return cls()
        return cls(load_catalogue(settings.catalogue_path), val_fraction=settings.val_fraction)

    @property
    def input_size(self) -> int:
        return 2 + len(self.profiles)

    def encode(self, month: int, profile: str) -> list[float]:
        """`encode_features` with this task's profile order."""
        return encode_features(month, profile, self.profiles)

    def build_model(self, seed: int | None = None) -> Any:
        keras = import_keras()
        if seed is not None:
            keras.utils.set_random_seed(seed)
        model = keras.Sequential(
            [
                keras.Input(shape=(self.input_size,), name="features"),
                keras.layers.Dense(self.hidden_units, activation="relu", name="hidden"),
                keras.layers.Dense(len(self.categories), activation="softmax", name="categories"),
            ],
            name="recommend",
        )
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=self.learning_rate),
            loss="sparse_categorical_crossentropy",
            steps_per_execution=16,
        )
        return model

    def make_dataset(self, rows: list[dict]) -> Dataset:
        train, val = split_rows(self._usable(rows), self.val_fraction)
        return Dataset(*self._tensors(train), *self._tensors(val))

    def evaluate(self, model: Any, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        if len(x) == 0:
            raise ValueError("no rows to evaluate on")
        probabilities = np.asarray(predict(model, x), dtype=np.float64)
        return score(probabilities, y)

    def reference_inputs(self) -> np.ndarray:
        """Every month x every profile, in the golden vectors' order."""
        return np.array([self.encode(m, p) for m, p in self._cases()], dtype=np.float32)

    def golden_vectors(self, predict: Callable[[np.ndarray], np.ndarray], model_sha256: str) -> dict:
        """The golden-vector file the Android app's tests read (format agreed with the app's authors)."""
        inputs = self.reference_inputs()
        outputs = np.asarray(predict(inputs), dtype=np.float64)
        cases = [
            {
                "month": month,
                "profile": profile,
                "input": [float(v) for v in row_in],
                "output": [float(v) for v in row_out],
                "top3": top_categories(row_out, self.categories),
            }
            for (month, profile), row_in, row_out in zip(self._cases(), inputs, outputs)
        ]
        return {
            "task": self.name,
            "model_sha256": model_sha256,
            "months": MONTHS,
            "profiles": list(self.profiles),
            "categories": list(self.categories),
            "input_size": self.input_size,
            "tolerance": GOLDEN_TOLERANCE,
            "cases": cases,
        }

    def _cases(self) -> list[tuple[int, str]]:
        return [(month, profile) for month in range(1, MONTHS + 1) for profile in self.profiles]

    def _usable(self, rows: list[dict]) -> list[dict]:
        """Rows this model can learn from; others (a profile or category it has no slot for) are skipped."""
        profiles, categories = set(self.profiles), set(self.categories)
        usable = [r for r in rows if r.get("profile") in profiles and r.get("category") in categories]
        if len(usable) < len(rows):
            log.warning("skipped %d rows with a profile or category the model does not know", len(rows) - len(usable))
        return usable

    def _tensors(self, rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        x = np.array([self.encode(int(r["month"]), r["profile"]) for r in rows], dtype=np.float32)
        y = np.array([self.categories.index(r["category"]) for r in rows], dtype=np.int32)
        return x.reshape(len(rows), self.input_size), y


def score(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, top-3 accuracy and cross-entropy of predicted probabilities against true labels."""
    labels = np.asarray(labels, dtype=np.int64)
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, :TOP_K]
    picked = probabilities[np.arange(len(labels)), labels]
    return {
        "accuracy": float(np.mean(top[:, 0] == labels)),
        "top3_accuracy": float(np.mean((top == labels[:, None]).any(axis=1))),
        "loss": float(np.mean(-np.log(np.clip(picked, 1e-7, 1.0)))),
    }
