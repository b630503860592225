"""Recommendations from the cart's newest model version (a real Keras model, untrained but well-formed),
conditioned on the cart's current bill: never what is in it, different as it grows, still there after checkout."""

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


def _recommended(api: Api, profile: str = "athlete") -> dict:
    response = api.call("GET", f"/api/recommendations?profile={profile}")
    assert response.status_code == 200
    return response.get_json()


def _add_one_of(api: Api, store: Store, category: str) -> str:
    product_id = store.products.find_one({"category": category})["_id"]
    api.call("POST", "/api/bill/items", json={"product_id": product_id})
    return product_id


def test_recommendations_never_include_what_is_in_the_bill(api: Api, store: Store, model_id: str):
    in_bill = set()
    for _ in range(4):
        top = _recommended(api)["categories"][0]["name"]
        in_bill.add(top)
        _add_one_of(api, store, top)
        body = _recommended(api)
        assert set(body["basket"]) == in_bill
        assert not {c["name"] for c in body["categories"]} & in_bill
        assert not {p["category"] for p in body["products"]} & in_bill
        assert len(body["categories"]) == 3


def test_recommendations_change_when_the_bill_changes(api: Api, store: Store, model_id: str):
    empty = _recommended(api, "family")
    _add_one_of(api, store, "baby")
    with_baby = _recommended(api, "family")
    assert with_baby["basket"] == ["baby"]
    assert with_baby["categories"] != empty["categories"]
    api.call("DELETE", "/api/bill")
    assert _recommended(api, "family")["categories"] == empty["categories"]


def test_recommendations_continue_after_checkout(api: Api, store: Store, model_id: str):
    before = _recommended(api, "senior")
    _add_one_of(api, store, before["categories"][0]["name"])
    api.call("PUT", "/api/bill/profile", json={"profile": "senior"})
    assert api.call("POST", "/api/checkout", json={}).status_code == 201
    after = _recommended(api, "senior")
    assert after["model"] == model_id and after["basket"] == []
    assert after["categories"] == before["categories"], "an empty bill: month and profile alone, as before"
