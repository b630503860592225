"""Recommendations for the shopper: the cart's newest `recommend` model, run on this month, profile and bill.

What is already in the bill is never recommended: the model gives those
categories no probability, and they are left out here as well. An empty bill
(a new shopper, or right after checkout) recommends from month and profile
alone.

Built from the store's model versions (not from the round engine), so the
home page recommends even when the UI runs standalone. The Keras model is
built once per version and kept until a newer version appears; TensorFlow is
imported only when the first model is used.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from child_cart.models.versions import ModelCorrupt, ModelVersion, ModelVersions
from child_cart.settings import CartSettings
from child_cart.store import Product, Store
from child_cart.tasks.recommend import TOP_K, RecommendTask, ranked

log = logging.getLogger(__name__)

TOP_CATEGORIES = TOP_K
"""Categories shown: as many as the task's primary metric (top-3) scores a model on."""
PRODUCTS_PER_CATEGORY = 3
NO_MODEL = "No model has been trained on this cart yet, so there are no recommendations. They appear after the first training round."


@dataclass(frozen=True)
class Recommendation:
    """What the home page shows under "recommended for you"; `model` is None when there is nothing to show.

    `basket` is the categories the recommendation was conditioned on (those of the bill the model knows).
    """

    month: int
    profile: str
    basket: list[str] = field(default_factory=list)
    model: str | None = None
    categories: list[dict[str, Any]] = field(default_factory=list)
    products: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""


class Recommender:
    """Thread-safe: pages and API calls from several request threads share one loaded model."""

    def __init__(self, store: Store, settings: CartSettings) -> None:
        self._store = store
        self._models = ModelVersions(store, settings.data_dir)
        self._task = RecommendTask.from_settings(settings)
        self._lock = threading.Lock()
        self._loaded: tuple[str, Any] | None = None

    def recommend(self, profile: str, month: int, bill: Iterable[str] = ()) -> Recommendation:
        """Top categories not in the bill (with probabilities) and some of their products.

        `bill` is the categories already bought in this basket (in any order,
        repeats allowed; categories the model has no slot for are ignored).
        Raises ValueError for an unknown profile.
        """
        if profile not in self._task.profiles:
            raise ValueError(f"Unknown shopper profile {profile!r}; choose one of {', '.join(self._task.profiles)}.")
        basket = [c for c in self._task.categories if c in set(bill)]
        version = self._models.latest(self._task.name)
        if version is None:
            return Recommendation(month, profile, basket, message=NO_MODEL)
        try:
            probabilities = self._predict(version, month, profile, basket)
        except ModelCorrupt as exc:
            log.error("cannot recommend with %s: %s", version.id, exc)
            return Recommendation(
                month,
                profile,
                basket,
                message=f"The current model {version.id} cannot be read; ask staff to check the cart.",
            )
        best = ranked(probabilities, self._task.categories, basket, TOP_CATEGORIES)
        names = [self._task.categories[i] for i in best]
        categories: list[dict[str, Any]] = [
            {"name": name, "probability": float(probabilities[i])} for name, i in zip(names, best)
        ]
        products = [p for name in names for p in self._products_of(name)]
        return Recommendation(month, profile, basket, version.id, categories, products)

    def _predict(self, version: ModelVersion, month: int, profile: str, basket: list[str]) -> np.ndarray:
        features = np.array([self._task.encode(month, profile, basket)], dtype=np.float32)
        with self._lock:
            model = self._model(version)
            return np.asarray(model.predict(features, verbose=0), dtype=np.float64)[0]

    def _model(self, version: ModelVersion) -> Any:
        """The Keras model of `version`, built on first use (call with the lock held)."""
        if self._loaded is None or self._loaded[0] != version.id:
            model = self._task.build_model()
            model.set_weights(self._models.load_weights(version))
            self._loaded = (version.id, model)
            log.info("recommending with %s", version.id)
        return self._loaded[1]

    def _products_of(self, category: str) -> list[dict[str, Any]]:
        docs = self._store.products.find({"category": category}).sort("name", 1).limit(PRODUCTS_PER_CATEGORY)
        return [Product.from_doc(doc).model_dump() for doc in docs]
