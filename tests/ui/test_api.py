"""The JSON API through Flask's test client: every route's happy path, and a table of bad requests
that must each get a clear 4xx JSON error and change nothing."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from cartnet.files import sha256_hex, write_atomic
from child_cart.models.versions import ModelVersions
from child_cart.rounds import settings as round_settings
from child_cart.rounds.roundlog import log_round
from child_cart.store import Store

from .conftest import MAX_JSON, MAX_UPLOAD, NODE_ID, Api, multipart, round_record
from .images import blank_png, data_url, foreign_qr_png, product, product_png, unknown_product_png


def _image(png: bytes) -> dict[str, Any]:
    return {"image": png}


# --- happy paths ---------------------------------------------------------------------------------


def test_health_and_products_for_the_android_app(api: Api):
    health = api.call("GET", "/api/health").get_json()
    assert health == {"status": "ok", "node_id": NODE_ID, "connected": False, "store": "embedded"}
    products = api.call("GET", "/api/products").get_json()["products"]
    assert len(products) == 50
    assert all(set(p) == {"id", "name", "price", "category"} for p in products)
    assert {"id": "P001", "name": "Bananas 1 kg", "price": 1.69, "category": "produce"} in products


def test_search_by_name_and_browse_by_category(api: Api):
    def found(query: str) -> list[str]:
        response = api.call("GET", f"/api/products?{query}")
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        assert body["currency"] == "EUR"
        return [p["id"] for p in body["products"]]

    assert found("q=milk") == ["P027", "P006"], "names starting with the word first, then names holding it"
    assert found("q=MILK%20whole") == ["P006"], "every word must match, case ignored"
    assert found("q=cr%C3%A8me") == [] and found("q=ice%20CREAM") == ["P031"]
    assert found("q=gr%C3%A9ek") == ["P007"], "accents ignored"
    assert found("category=dairy") == ["P010", "P007", "P008", "P009", "P006"], "by name"
    assert found("q=salted&category=snacks") == ["P026", "P028"]
    assert found("q=nothing-like-this") == []
    assert len(found("q=%20%20")) == 50, "blank text is no filter: the whole catalogue"


def test_categories_in_catalogue_order_with_labels_and_counts(api: Api):
    categories = api.call("GET", "/api/categories").get_json()["categories"]
    assert categories[0] == {"name": "produce", "label": "Produce", "products": 5}
    assert {"name": "meat_fish", "label": "Meat & fish", "products": 5} in categories
    assert sum(c["products"] for c in categories) == 50


def test_profiles_come_from_the_catalogue(api: Api):
    assert api.call("GET", "/api/profiles").get_json()["profiles"][:2] == ["student", "family"]


def test_bill_add_remove_clear(api: Api):
    bill = api.call("POST", "/api/bill/items", json={"product_id": "P001", "quantity": 3}).get_json()["bill"]
    assert (bill["item_count"], bill["total_cents"], bill["currency"]) == (3, 3 * 169, "EUR")
    bill = api.call("DELETE", "/api/bill/items/P001?quantity=1").get_json()["bill"]
    assert bill["lines"][0]["quantity"] == 2
    api.call("POST", "/api/bill/items", json={"product_id": "P002"})
    bill = api.call("DELETE", "/api/bill/items/P001").get_json()["bill"]
    assert [line["product_id"] for line in bill["lines"]] == ["P002"]
    bill = api.call("DELETE", "/api/bill").get_json()["bill"]
    assert bill["lines"] == [] and bill["total_cents"] == 0
    assert api.call("GET", "/api/bill").get_json()["bill"] == bill


def test_scan_uploaded_image_adds_the_product(api: Api):
    response = api.call("POST", "/api/scan/image", **_image(product_png("P003")))
    assert response.status_code == 200
    body = response.get_json()
    assert body["added"] == {
        "id": "P003",
        "name": product("P003").name,
        "price": product("P003").price,
        "category": "produce",
    }
    assert body["bill"]["lines"][0]["product_id"] == "P003"


def test_scan_camera_frame_adds_the_product(api: Api):
    response = api.call("POST", "/api/scan/frame", json={"frame": data_url(product_png("P002"))})
    assert response.status_code == 200
    assert response.get_json()["added"]["id"] == "P002"


def test_checkout_records_rows_and_announces_them(api: Api, store: Store, bus):
    events = bus.subscribe()
    api.call("POST", "/api/bill/items", json={"product_id": "P001", "quantity": 2})
    api.call("PUT", "/api/bill/profile", json={"profile": "family"})
    response = api.call("POST", "/api/checkout", json={})
    assert response.status_code == 201
    body = response.get_json()
    assert (body["receipt"]["rows"], body["receipt"]["profile"], body["receipt"]["total_cents"]) == (2, "family", 338)
    assert body["bill"]["lines"] == []
    assert store.purchases.count_documents({"profile": "family"}) == 2
    assert events.get_nowait()["type"] == "checkout"


def test_checkout_answers_with_a_receipt_that_can_be_read_back(api: Api):
    api.call("POST", "/api/bill/items", json={"product_id": "P001", "quantity": 2})
    api.call("POST", "/api/bill/items", json={"product_id": "P006"})
    api.call("DELETE", "/api/bill/items/P001?quantity=1")
    api.call("POST", "/api/bill/items", json={"product_id": "P001", "quantity": 2})
    receipt = api.call("POST", "/api/checkout", json={"profile": "senior"}).get_json()["receipt"]
    checkout_id = receipt["checkout_id"]
    assert receipt["order_number"] == checkout_id[:8].upper()
    assert receipt["url"] == f"/receipt/{checkout_id}"
    assert (receipt["item_count"], receipt["total_cents"], receipt["currency"]) == (4, 3 * 169 + 115, "EUR")
    assert [(line["product_id"], line["quantity"], line["subtotal_cents"]) for line in receipt["lines"]] == [
        ("P001", 3, 3 * 169),
        ("P006", 1, 115),
    ]
    read = api.call("GET", f"/api/receipts/{checkout_id}").get_json()["receipt"]
    assert read == receipt, "read back from the purchase rows, the receipt is the one checkout gave"
    page = api.client.get(receipt["url"]).get_data(as_text=True)
    assert receipt["order_number"] in page and "€6.22" in page and "Bananas 1 kg" in page


def test_prices_follow_the_currency_setting(settings, store, bus, node):
    from flask.testing import FlaskClient

    from child_cart.ui import create_app

    app = create_app(settings.model_copy(update={"currency": "CHF"}), store, bus, node)
    client: FlaskClient = app.test_client()
    assert client.get("/api/products?q=bananas").get_json()["currency"] == "CHF"
    page = client.get("/").get_data(as_text=True)
    assert 'name="currency" content="CHF" data-symbol="CHF "' in page and "CHF 0.00" in page


def test_a_bad_currency_setting_is_refused():
    from pydantic import ValidationError

    from child_cart.settings import CartSettings

    with pytest.raises(ValidationError, match="currency"):
        CartSettings(_env_file=None, currency="euro")


def test_recommendations_without_a_model_say_so(api: Api):
    body = api.call("GET", "/api/recommendations?profile=student").get_json()
    assert body["model"] is None and body["categories"] == []
    assert "No model has been trained" in body["message"]


def test_recommendations_read_the_basket_from_the_current_bill(api: Api, store: Store):
    assert api.call("GET", "/api/recommendations?profile=student").get_json()["basket"] == []
    api.call("POST", "/api/bill/items", json={"product_id": "P009"})
    api.call("POST", "/api/bill/items", json={"product_id": "P001", "quantity": 2})
    api.call("POST", "/api/bill/items", json={"product_id": "P002"})
    body = api.call("GET", "/api/recommendations?profile=student").get_json()
    assert body["basket"] == ["produce", "dairy"], "the bill's categories, once each, in the model's order"
    api.call("PUT", "/api/bill/profile", json={"profile": "family"})
    api.call("POST", "/api/checkout", json={})
    after = api.call("GET", "/api/recommendations?profile=family").get_json()
    assert after["basket"] == [] and after["profile"] == "family"


def test_login_session_logout(api: Api):
    assert api.call("GET", "/api/session").get_json() == {"admin": False}
    assert api.login().get_json()["admin"] is True
    assert api.call("GET", "/api/session").get_json() == {"admin": True}
    assert api.call("POST", "/api/logout").get_json() == {"admin": False}
    assert api.call("GET", "/api/cart").status_code == 401


def test_admin_cart_counts(admin_api: Api, store: Store):
    api = admin_api
    api.call("POST", "/api/bill/items", json={"product_id": "P001"})
    api.call("POST", "/api/checkout", json={"profile": "senior"})
    cart = api.call("GET", "/api/cart").get_json()
    assert cart["node_id"] == NODE_ID and cart["connected"] is False and cart["model"] is None
    assert cart["task"] == "recommend"
    assert cart["counts"] == {"products": 50, "purchases": 1, "rounds": 0, "models": 0}
    assert api.call("GET", "/api/peers").get_json() == {"peers": []}


def test_admin_rounds_oldest_first_with_limit(admin_api: Api, store: Store):
    for n in range(5):
        log_round(store, round_record(n))
    rounds = admin_api.call("GET", "/api/rounds").get_json()["rounds"]
    assert [r["round"] for r in rounds] == [0, 1, 2, 3, 4]
    assert rounds[4]["aggregated"]["accuracy"] == pytest.approx(0.43)
    assert [r["round"] for r in admin_api.call("GET", "/api/rounds?limit=2").get_json()["rounds"]] == [3, 4]


def _stored_model(store: Store, settings, exported: bool) -> str:
    models = ModelVersions(store, settings.data_dir)
    version = models.save("recommend", [np.zeros((2, 2), np.float32)], samples=10, metrics={"accuracy": 0.5})
    if exported:
        data = b"TFL3 fake model bytes"
        relative = "models/recommend-fake.tflite"
        write_atomic(models.path(relative), data)
        models.attach(version.id, tflite_path=relative, tflite_sha256=sha256_hex(data))
    return version.id


def test_admin_models_and_tflite_download(admin_api: Api, store: Store, settings):
    plain = _stored_model(store, settings, exported=False)
    exported = _stored_model(store, settings, exported=True)
    listed = admin_api.call("GET", "/api/models").get_json()["models"]
    assert [m["id"] for m in listed] == [exported, plain]
    assert listed[0]["tflite_url"] == f"/api/models/{exported}/tflite" and listed[1]["tflite_url"] is None
    download = admin_api.call("GET", listed[0]["tflite_url"])
    assert download.status_code == 200 and download.data == b"TFL3 fake model bytes"
    assert f"{exported}.tflite" in download.headers["Content-Disposition"]
    refused = admin_api.call("GET", f"/api/models/{plain}/tflite")
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (409, "not_exported")


def test_admin_settings_read_and_partial_update(admin_api: Api, store: Store, bus):
    events = bus.subscribe()
    body = admin_api.call("GET", "/api/settings").get_json()
    assert body["settings"] == round_settings.RoundSettings().model_dump()
    assert [f["name"] for f in body["fields"]][:2] == ["aggregator", "k"]
    response = admin_api.call("PUT", "/api/settings", json={"aggregator": "krum", "k": 5, "tolerance": 0})
    assert response.status_code == 200
    stored = round_settings.load(store)
    assert (stored.aggregator, stored.k, stored.tolerance) == ("krum", 5, 0.0)
    assert events.get_nowait()["type"] == "settings"


# --- bad requests: clear 4xx JSON, nothing changed ---------------------------------------------

JSON = "application/json"
HUGE_JSON = json.dumps({"product_id": "P001", "pad": "x" * (MAX_JSON + 10)})

BAD_REQUESTS = (
    [
        # (id, method, path, request kwargs, status, error code)
        (
            "add-not-json-content",
            "POST",
            "/api/bill/items",
            {"data": "product_id=P001", "content_type": "text/plain"},
            415,
            "not_json",
        ),
        ("add-broken-json", "POST", "/api/bill/items", {"data": "{product_id:", "content_type": JSON}, 400, "bad_json"),
        ("add-json-array", "POST", "/api/bill/items", {"json": ["P001"]}, 400, "bad_json"),
        ("add-missing-field", "POST", "/api/bill/items", {"json": {}}, 422, "invalid_fields"),
        ("add-id-wrong-type", "POST", "/api/bill/items", {"json": {"product_id": 1}}, 422, "invalid_fields"),
        (
            "add-quantity-as-text",
            "POST",
            "/api/bill/items",
            {"json": {"product_id": "P001", "quantity": "2"}},
            422,
            "invalid_fields",
        ),
        (
            "add-quantity-zero",
            "POST",
            "/api/bill/items",
            {"json": {"product_id": "P001", "quantity": 0}},
            422,
            "invalid_fields",
        ),
        (
            "add-quantity-bool",
            "POST",
            "/api/bill/items",
            {"json": {"product_id": "P001", "quantity": True}},
            422,
            "invalid_fields",
        ),
        (
            "add-unknown-field",
            "POST",
            "/api/bill/items",
            {"json": {"product_id": "P001", "price": 0}},
            422,
            "invalid_fields",
        ),
        ("add-unknown-product", "POST", "/api/bill/items", {"json": {"product_id": "NOPE"}}, 404, "unknown_product"),
        (
            "add-too-many",
            "POST",
            "/api/bill/items",
            {"json": {"product_id": "P001", "quantity": 99}},
            422,
            "bad_quantity",
        ),
        (
            "add-huge-body",
            "POST",
            "/api/bill/items",
            {"data": HUGE_JSON, "content_type": JSON},
            413,
            "request_entity_too_large",
        ),
        ("remove-not-on-bill", "DELETE", "/api/bill/items/P002", {}, 404, "not_in_bill"),
        ("remove-quantity-text", "DELETE", "/api/bill/items/P001?quantity=lots", {}, 422, "invalid_fields"),
        ("remove-quantity-negative", "DELETE", "/api/bill/items/P001?quantity=-1", {}, 422, "invalid_fields"),
        ("profile-unknown", "PUT", "/api/bill/profile", {"json": {"profile": "alien"}}, 422, "unknown_profile"),
        ("profile-wrong-type", "PUT", "/api/bill/profile", {"json": {"profile": ["student"]}}, 422, "invalid_fields"),
        (
            "scan-no-file",
            "POST",
            "/api/scan/image",
            {"data": {}, "content_type": "multipart/form-data"},
            400,
            "no_image",
        ),
        ("scan-not-an-image", "POST", "/api/scan/image", _image(b"GIF? no, just text"), 422, "not_an_image"),
        ("scan-empty-file", "POST", "/api/scan/image", _image(b""), 422, "not_an_image"),
        ("scan-no-code", "POST", "/api/scan/image", _image(blank_png()), 422, "no_code"),
        ("scan-foreign-code", "POST", "/api/scan/image", _image(foreign_qr_png()), 422, "bad_payload"),
        ("scan-unknown-product", "POST", "/api/scan/image", _image(unknown_product_png()), 404, "unknown_product"),
        (
            "scan-over-upload-limit",
            "POST",
            "/api/scan/image",
            _image(b"\x89PNG" + b"\0" * (MAX_UPLOAD + 10)),
            413,
            "too_large",
        ),
        (
            "scan-over-body-limit",
            "POST",
            "/api/scan/image",
            _image(b"\0" * (3 * MAX_UPLOAD)),
            413,
            "request_entity_too_large",
        ),
        ("frame-not-data-url", "POST", "/api/scan/frame", {"json": {"frame": "hello"}}, 422, "bad_data_url"),
        (
            "frame-bad-base64",
            "POST",
            "/api/scan/frame",
            {"json": {"frame": "data:image/png;base64,@@@@"}},
            422,
            "bad_data_url",
        ),
        ("frame-wrong-type", "POST", "/api/scan/frame", {"json": {"frame": 7}}, 422, "invalid_fields"),
        ("checkout-no-profile", "POST", "/api/checkout", {"json": {}}, 422, "no_profile"),
        ("checkout-unknown-profile", "POST", "/api/checkout", {"json": {"profile": "alien"}}, 422, "unknown_profile"),
        ("checkout-profile-wrong-type", "POST", "/api/checkout", {"json": {"profile": 3}}, 422, "invalid_fields"),
        ("checkout-no-body", "POST", "/api/checkout", {}, 415, "not_json"),
        ("search-too-long", "GET", "/api/products?q=" + "x" * 65, {}, 422, "invalid_fields"),
        ("search-unknown-category", "GET", "/api/products?category=toys", {}, 422, "unknown_category"),
        ("search-empty-category", "GET", "/api/products?category=", {}, 422, "invalid_fields"),
        ("search-unknown-parameter", "GET", "/api/products?name=milk", {}, 422, "invalid_fields"),
        ("receipt-unknown-order", "GET", "/api/receipts/" + "0" * 32, {}, 404, "unknown_receipt"),
        ("receipt-bad-order-number", "GET", "/api/receipts/P001", {}, 422, "bad_order_number"),
        ("receipt-short-order-number", "GET", "/api/receipts/ABCDEF12", {}, 422, "bad_order_number"),
        ("receipt-wrong-method", "DELETE", "/api/receipts/" + "0" * 32, {}, 405, "method_not_allowed"),
        ("recommend-no-profile", "GET", "/api/recommendations", {}, 422, "no_profile"),
        ("recommend-unknown-profile", "GET", "/api/recommendations?profile=alien", {}, 422, "unknown_profile"),
        ("login-wrong-password", "POST", "/api/login", {"json": {"password": "guess"}}, 401, "wrong_password"),
        ("login-missing-password", "POST", "/api/login", {"json": {}}, 422, "invalid_fields"),
        ("login-password-number", "POST", "/api/login", {"json": {"password": 1234}}, 422, "invalid_fields"),
        ("unknown-route", "GET", "/api/nowhere", {}, 404, "not_found"),
        ("wrong-method", "POST", "/api/health", {}, 405, "method_not_allowed"),
    ]
    + [
        (f"anonymous-{path}", "GET", path, {}, 401, "login_required")
        for path in (
            "/api/cart",
            "/api/peers",
            "/api/swarm",
            "/api/rounds",
            "/api/models",
            "/api/models/x/tflite",
            "/api/settings",
            "/api/events",
        )
    ]
    + [
        ("anonymous-put-settings", "PUT", "/api/settings", {"json": {"k": 9}}, 401, "login_required"),
    ]
)

ADMIN_BAD_REQUESTS = [
    ("settings-below-minimum", "PUT", "/api/settings", {"json": {"k": 0}}, 422, "invalid_fields"),
    ("settings-number-as-text", "PUT", "/api/settings", {"json": {"k": "3"}}, 422, "invalid_fields"),
    ("settings-unknown-aggregator", "PUT", "/api/settings", {"json": {"aggregator": "mean"}}, 422, "invalid_fields"),
    ("settings-unknown-field", "PUT", "/api/settings", {"json": {"learning_rate": 0.1}}, 422, "invalid_fields"),
    ("settings-one-bad-of-two", "PUT", "/api/settings", {"json": {"k": 4, "tolerance": 2.0}}, 422, "invalid_fields"),
    ("settings-broken-json", "PUT", "/api/settings", {"data": "{", "content_type": JSON}, 400, "bad_json"),
    (
        "settings-huge-body",
        "PUT",
        "/api/settings",
        {"data": json.dumps({"k": 4, "x": "y" * MAX_JSON}), "content_type": JSON},
        413,
        "request_entity_too_large",
    ),
    ("rounds-limit-zero", "GET", "/api/rounds?limit=0", {}, 422, "invalid_fields"),
    ("rounds-limit-text", "GET", "/api/rounds?limit=all", {}, 422, "invalid_fields"),
    ("rounds-bad-task", "GET", "/api/rounds?task=Not%20A%20Task", {}, 422, "invalid_fields"),
    ("rounds-unknown-parameter", "GET", "/api/rounds?order=desc", {}, 422, "invalid_fields"),
    ("models-unknown-task", "GET", "/api/models?task=weather", {}, 422, "unknown_task"),
    ("models-bad-task", "GET", "/api/models?task=%3Cscript%3E", {}, 422, "invalid_fields"),
    ("swarm-wrong-method", "POST", "/api/swarm", {}, 405, "method_not_allowed"),
    ("tflite-unknown-model", "GET", "/api/models/recommend-v999999/tflite", {}, 404, "unknown_model"),
]


def _snapshot(store: Store) -> dict[str, Any]:
    """Everything a bad request could have changed."""
    return {
        name: sorted(map(repr, store.collection(name).find({})))
        for name in ("bills", "purchases", "settings", "models")
    }


def _assert_refused(api: Api, store: Store, method: str, path: str, kwargs: dict, status: int, code: str) -> None:
    api.call("POST", "/api/bill/items", json={"product_id": "P001"})
    before = _snapshot(store)
    response = api.call(method, path, **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    error = response.get_json()["error"]
    assert error["code"] == code
    assert len(error["message"]) > 10
    assert _snapshot(store) == before


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"), [r[1:] for r in BAD_REQUESTS], ids=[r[0] for r in BAD_REQUESTS]
)
def test_bad_request_refused_and_nothing_changes(api: Api, store: Store, method, path, kwargs, status, code):
    _assert_refused(api, store, method, path, kwargs, status, code)


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [r[1:] for r in ADMIN_BAD_REQUESTS],
    ids=[r[0] for r in ADMIN_BAD_REQUESTS],
)
def test_bad_admin_request_refused_and_nothing_changes(
    admin_api: Api, store: Store, method, path, kwargs, status, code
):
    _assert_refused(admin_api, store, method, path, kwargs, status, code)


def test_invalid_fields_are_named(admin_api: Api):
    error = admin_api.call("PUT", "/api/settings", json={"k": 0, "aggregator": "mean"}).get_json()["error"]
    assert set(error["fields"]) == {"k", "aggregator"}


def test_checkout_of_an_empty_bill_is_refused(api: Api, store: Store):
    response = api.call("POST", "/api/checkout", json={"profile": "student"})
    assert (response.status_code, response.get_json()["error"]["code"]) == (422, "empty_bill")
    assert store.purchases.count_documents({}) == 0


STATE_CHANGING = [
    ("POST", "/api/bill/items", {"json": {"product_id": "P001"}}),
    ("DELETE", "/api/bill/items/P001", {}),
    ("DELETE", "/api/bill", {}),
    ("PUT", "/api/bill/profile", {"json": {"profile": "student"}}),
    ("POST", "/api/scan/image", _image(product_png())),
    ("POST", "/api/scan/frame", {"json": {"frame": data_url(product_png())}}),
    ("POST", "/api/checkout", {"json": {"profile": "student"}}),
    ("POST", "/api/login", {"json": {"password": "x"}}),
    ("POST", "/api/logout", {}),
    ("PUT", "/api/settings", {"json": {"k": 9}}),
]


@pytest.mark.parametrize("token", ["", "forged-token"], ids=["missing", "forged"])
@pytest.mark.parametrize(("method", "path", "kwargs"), STATE_CHANGING, ids=[f"{m} {p}" for m, p, _ in STATE_CHANGING])
def test_state_changing_routes_need_the_csrf_token(admin_api: Api, store: Store, method, path, kwargs, token):
    admin_api.call("POST", "/api/bill/items", json={"product_id": "P001"})
    before = _snapshot(store)
    response = admin_api.client.open(
        path, method=method, headers={"X-CSRFToken": token} if token else {}, **multipart(kwargs)
    )
    assert (response.status_code, response.get_json()["error"]["code"]) == (400, "csrf")
    assert _snapshot(store) == before
    assert admin_api.call("GET", "/api/session").get_json() == {"admin": True}
