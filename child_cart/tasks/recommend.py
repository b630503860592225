"""The default task: recommend what to add next from the month, the shopper's profile and the bill so far.

A training row is one step of a basket: (month, profile, the categories
already in the basket) -> the next *new* category put in. The items of a
basket are walked in their `position` order; an item whose category is
already in the basket is not a row (it adds nothing new to recommend), but
every item counts as context for the ones after it. Rows stored before
baskets were recorded are single-item baskets (`child_cart.store.rows.basket_of`).

Input row (the layout the Android app reproduces from the golden vectors):
index 0 = sin(2*pi*(month-1)/12), index 1 = cos(2*pi*(month-1)/12), then a
one-hot of the profile over the catalogue's profile order, then a multi-hot
of the categories already in the basket (bill, or shopping list on the
phone) over the catalogue's category order. Output: one probability per
category, in the catalogue's category order; the model itself gives 0 to
every category already in the basket, so it never recommends what is there.
The cyclical month keeps December next to January.

The held-out split is by basket id: every row of a basket lands on the same
side, so no basket's prefix is trained on while its next step is scored.

Metrics on held-out rows: `accuracy` (top-1: the next category is the
first recommendation), `top3_accuracy` and `recall_at_5` (the next category
is among the first 3 / 5 recommendations; with one next category per row
this is recall@5 as session-based recommenders report it), and the
cross-entropy `loss`. The primary metric, by which the acceptance rule picks a
model and the swarm gain is measured, is `top3_accuracy`: the home page shows
three recommendations, so what a shopper meets is whether the next category is
among them. It is also less noisy on a cart's few held-out rows than top-1.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from child_cart.settings import CartSettings
from child_cart.store import Catalogue, load_catalogue
from child_cart.store.rows import basket_of
from child_cart.tasks.base import Dataset, Task, import_keras, predict
from child_cart.tasks.head_refit import Head, Rows, refit_head
from child_cart.tasks.split import is_validation

log = logging.getLogger(__name__)

MONTHS = 12
MONTH_FEATURES = 2
TOP_K = 3
RECALL_K = 5
HIT_METRICS = {"accuracy": 1, "top3_accuracy": TOP_K, "recall_at_5": RECALL_K}
"""Each metric that counts a hit when the next category is among the first k recommendations, and its k."""
GOLDEN_TOLERANCE = 1e-5
IN_BASKET_PENALTY = 1e4
"""Subtracted from the logit of every category already in the basket: its probability becomes exactly 0."""


def encode_features(
    month: int, profile: str, basket: Iterable[str], profiles: Sequence[str], categories: Sequence[str]
) -> list[float]:
    """The model's input row for one (month 1..12, profile, categories in the basket); the only place this layout is defined."""
    if not 1 <= month <= MONTHS:
        raise ValueError(f"month must be 1..12, got {month}")
    if profile not in profiles:
        raise ValueError(f"unknown profile {profile!r}")
    angle = 2 * math.pi * (month - 1) / MONTHS
    one_hot = [0.0] * len(profiles)
    one_hot[list(profiles).index(profile)] = 1.0
    multi_hot = [0.0] * len(categories)
    for category in basket:
        if category not in categories:
            raise ValueError(f"unknown category {category!r} in the basket")
        multi_hot[list(categories).index(category)] = 1.0
    return [math.sin(angle), math.cos(angle), *one_hot, *multi_hot]


def ranked(
    probabilities: Sequence[float] | np.ndarray, categories: Sequence[str], basket: Iterable[str] = (), k: int = TOP_K
) -> list[int]:
    """Indices of the k most probable categories not in the basket, best first (ties: catalogue order)."""
    scores = np.asarray(probabilities, dtype=np.float64).copy()
    excluded = [list(categories).index(c) for c in basket]
    scores[excluded] = -np.inf
    order = np.argsort(-scores, kind="stable")
    return [int(i) for i in order[: min(k, len(categories) - len(set(excluded)))]]


def top_categories(
    probabilities: Sequence[float] | np.ndarray, categories: Sequence[str], k: int = TOP_K, basket: Iterable[str] = ()
) -> list[str]:
    """The k most probable category names not in the basket, best first (ties: catalogue order)."""
    return [categories[i] for i in ranked(probabilities, categories, basket, k)]


@dataclass(frozen=True)
class Step:
    """One training row: in basket `basket`, after `before`, the shopper added `category` next."""

    basket: str
    month: int
    profile: str
    before: tuple[str, ...]
    category: str


def basket_steps(rows: Iterable[dict]) -> list[Step]:
    """Purchase rows -> the next-new-category steps of their baskets (baskets in order of first appearance)."""
    baskets: dict[str, list[tuple[int, dict]]] = {}
    for row in rows:
        key, position = basket_of(row)
        baskets.setdefault(key, []).append((position, row))
    steps = []
    for key, items in baskets.items():
        seen: list[str] = []
        for _, row in sorted(items, key=lambda item: item[0]):
            if row["category"] in seen:
                continue
            steps.append(Step(key, int(row["month"]), row["profile"], tuple(seen), row["category"]))
            seen.append(row["category"])
    return steps


class RecommendTask(Task):
    """Month + shopper profile + basket so far -> probabilities of the next category (softmax)."""

    name = "recommend"
    primary_metric = "top3_accuracy"
    phone_model = True

    def __init__(
        self,
        catalogue: Catalogue | None = None,
        val_fraction: float = 0.2,
        hidden_units: int = 32,
        learning_rate: float = 0.01,
        basket_aware: bool = True,
    ) -> None:
        """`basket_aware=False` is the baseline that sees month and profile only (still never repeats the basket)."""
        super().__init__(val_fraction)
        schema = catalogue or load_catalogue()
        self.profiles = schema.profile_names
        self.categories = schema.category_names
        self.hidden_units = hidden_units
        self.learning_rate = learning_rate
        self.basket_aware = basket_aware

    @classmethod
    def from_settings(cls, settings: CartSettings | None) -> RecommendTask:
        """The task as a cart's settings configure it (catalogue file, validation share)."""
        if settings is None:
            return cls()
        return cls(load_catalogue(settings.catalogue_path), val_fraction=settings.val_fraction)

    @property
    def basket_offset(self) -> int:
        """Where the basket multi-hot starts in an input row."""
        return MONTH_FEATURES + len(self.profiles)

    @property
    def input_size(self) -> int:
        return self.basket_offset + len(self.categories)

    def encode(self, month: int, profile: str, basket: Iterable[str] = ()) -> list[float]:
        """`encode_features` with this task's profile and category order."""
        return encode_features(month, profile, basket, self.profiles, self.categories)

    def build_model(self, seed: int | None = None) -> Any:
        keras = import_keras()
        if seed is not None:
            keras.utils.set_random_seed(seed)
        features = keras.Input(shape=(self.input_size,), name="features")
        seen = features if self.basket_aware else features[:, : self.basket_offset]
        hidden = keras.layers.Dense(self.hidden_units, activation="relu", name="hidden")(seen)
        logits = keras.layers.Dense(len(self.categories), name="logits")(hidden)
        in_basket = features[:, self.basket_offset :]
        output = keras.layers.Softmax(name="categories")(logits - IN_BASKET_PENALTY * in_basket)
        model = keras.Model(features, output, name="recommend")
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=self.learning_rate),
            loss="sparse_categorical_crossentropy",
            steps_per_execution=16,
        )
        return model

    def make_dataset(self, rows: list[dict]) -> Dataset:
        train: list[Step] = []
        val: list[Step] = []
        for step in basket_steps(self._usable(rows)):
            (val if is_validation(step.basket, self.val_fraction) else train).append(step)
        return Dataset(*self._tensors(train), *self._tensors(val))

    def evaluate(self, model: Any, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        if len(x) == 0:
            raise ValueError("no rows to evaluate on")
        probabilities = np.asarray(predict(model, x), dtype=np.float64)
        return score(probabilities, y, in_basket=x[:, self.basket_offset :])

    def row_scores(self, model: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """1 where the next category is among the primary metric's first k recommendations, else 0."""
        probabilities = np.asarray(predict(model, x), dtype=np.float64)
        return (ranks(probabilities, y, x[:, self.basket_offset :]) < HIT_METRICS[self.primary_metric]).astype(float)

    def refit_head(self, model: Any, dataset: Dataset) -> bool:
        """Refit the `logits` layer on the hidden layer's features of the training rows (`head_refit`), with the
        in-basket penalty as the logits' fixed offset, as the model applies it."""
        if not len(dataset.x_train):
            return False
        keras = import_keras()
        body = keras.Model(model.inputs, model.get_layer("hidden").output)
        rows = Rows(
            predict(body, dataset.x_train),
            -IN_BASKET_PENALTY * dataset.x_train[:, self.basket_offset :].astype(np.float64),
            dataset.y_train,
        )
        layer = model.get_layer("logits")
        fitted = refit_head(rows, Head(*layer.get_weights()))
        layer.set_weights([fitted.kernel, fitted.bias])
        return True

    def reference_inputs(self) -> np.ndarray:
        """The golden vectors' inputs, in their order."""
        return np.array([self.encode(m, p, b) for m, p, b in self._cases()], dtype=np.float32)

    def golden_vectors(self, predict: Callable[[np.ndarray], np.ndarray], model_sha256: str) -> dict:
        """The golden-vector file the Android app's tests read (format agreed with the app's authors)."""
        inputs = self.reference_inputs()
        outputs = np.asarray(predict(inputs), dtype=np.float64)
        cases = [
            {
                "month": month,
                "profile": profile,
                "basket": list(basket),
                "input": [float(v) for v in row_in],
                "output": [float(v) for v in row_out],
                "top3": top_categories(row_out, self.categories, basket=basket),
            }
            for (month, profile, basket), row_in, row_out in zip(self._cases(), inputs, outputs)
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

    def _cases(self) -> list[tuple[int, str, tuple[str, ...]]]:
        """Every month x profile with an empty basket, one category and two (cycling through all categories)."""
        count = len(self.categories)
        cases = []
        for month in range(1, MONTHS + 1):
            for p, profile in enumerate(self.profiles):
                first = (month + p) % count
                pair = tuple(self.categories[i] for i in sorted({(first + 1) % count, (first + 4) % count}))
                for basket in ((), (self.categories[first],), pair):
                    cases.append((month, profile, basket))
        return cases

    def _usable(self, rows: list[dict]) -> list[dict]:
        """Rows this model can learn from; others (a profile or category it has no slot for) are skipped."""
        profiles, categories = set(self.profiles), set(self.categories)
        usable = [r for r in rows if r.get("profile") in profiles and r.get("category") in categories]
        if len(usable) < len(rows):
            log.warning("skipped %d rows with a profile or category the model does not know", len(rows) - len(usable))
        return usable

    def _tensors(self, steps: list[Step]) -> tuple[np.ndarray, np.ndarray]:
        x = np.array([self.encode(s.month, s.profile, s.before) for s in steps], dtype=np.float32)
        y = np.array([self.categories.index(s.category) for s in steps], dtype=np.int32)
        return x.reshape(len(steps), self.input_size), y


def score(probabilities: np.ndarray, labels: np.ndarray, in_basket: np.ndarray | None = None) -> dict[str, float]:
    """Top-1, top-3, recall@5 and cross-entropy of predicted probabilities against the true next categories.

    Categories marked in `in_basket` (rows x categories, 1 = already in the
    basket) are never counted as recommended, whatever the model gave them.
    """
    labels = np.asarray(labels, dtype=np.int64)
    rank = ranks(probabilities, labels, in_basket)
    picked = np.asarray(probabilities, dtype=np.float64)[np.arange(len(labels)), labels]
    return {
        **{metric: float(np.mean(rank < k)) for metric, k in HIT_METRICS.items()},
        "loss": float(np.mean(-np.log(np.clip(picked, 1e-7, 1.0)))),
    }


def ranks(probabilities: np.ndarray, labels: np.ndarray, in_basket: np.ndarray | None = None) -> np.ndarray:
    """Each row's rank (0 = first) of its true next category among the recommendations, in-basket ones left out."""
    scores = np.asarray(probabilities, dtype=np.float64)
    if in_basket is not None:
        scores = np.where(np.asarray(in_basket) > 0, -np.inf, scores)
    order = np.argsort(-scores, axis=1, kind="stable")
    return np.argmax(order == np.asarray(labels, dtype=np.int64)[:, None], axis=1)
