"""Recommendations from the cart's newest model version (a real Keras model, untrained but well-formed)."""

from __future__ import annotations

import pytest

from child_cart.models.versions import ModelVersions
from child_cart.store import Store
from child_cart.tasks.recommend import RecommendTask

from .conftest import Api


@pytest.fixture
def model_id(settings, store: Store) -> str:
    task = RecommendTask.from_settings(settings)
    weights = task.build_model(seed=0).get_weights()
    return ModelVersions(store, settings.data_dir).save(task.name, weights, samples=0, metrics={"accuracy": 0.25}).id


def test_recommends_top_categories_and_their_products(api: Api, model_id: str):
    response = api.call("GET", "/api/recommendations?profile=athlete")
    assert response.status_code == 200
    body = response.get_json()
    assert body["model"] == model_id and body["profile"] == "athlete" and 1 <= body["month"] <= 12
    probabilities = [c["probability"] for c in body["categories"]]
    assert (
        len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0
    )
    top = {c["name"] for c in body["categories"]}
    assert body["products"] and {p["category"] for p in body["products"]} <= top


def test_profile_on_the_bill_is_used_when_none_is_given(api: Api, model_id: str):
    api.call("PUT", "/api/bill/profile", json={"profile": "vegan"})
    assert api.call("GET", "/api/recommendations").get_json()["profile"] == "vegan"


def test_unreadable_model_gives_a_message_not_an_error(api: Api, settings, store: Store, model_id: str):
    version = ModelVersions(store, settings.data_dir).get(model_id)
    (settings.data_dir / version.weights_path).write_bytes(b"damaged")
    body = api.call("GET", "/api/recommendations?profile=student").get_json()
    assert body["model"] is None and model_id in body["message"]
