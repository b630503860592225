"""The shopper's JSON API: products (search, categories), the bill, scanning, checkout, receipts and
recommendations (no login needed).

Every state-changing route here still needs the CSRF token (X-CSRFToken
header), which the home page carries; the read-only routes (`/api/products`
for the Android app, `/api/health` for monitors) need nothing. A receipt is
read by its checkout id, which only the checkout's answer gives out.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from flask import Blueprint, Response, jsonify, request

from child_cart import qr
from child_cart.qr import QRPayload
from child_cart.shop import Bill
from child_cart.ui.body import json_body, validated
from child_cart.ui.context import cart_ui
from child_cart.ui.errors import ApiError, shopper_errors
from child_cart.ui.present import bill_json, category_json, product_json, products_json, receipt_json
from child_cart.ui.schemas import AddItem, Checkout, ProductQuery, RemoveItem, ScanFrame, SetProfile

log = logging.getLogger(__name__)

api_shop = Blueprint("api_shop", __name__, url_prefix="/api")

IMAGE_FIELD = "image"
DATA_URL_OVERHEAD = 4 / 3
DATA_URL_SLACK = 1024


@api_shop.get("/health")
def health() -> Response:
    ui = cart_ui()
    return jsonify(status="ok", node_id=ui.node.node_id, connected=ui.node.connected, store=ui.store.backend)


@api_shop.get("/products")
def products() -> Response:
    """Every product, or those matching `q` (words in the name) and/or in `category`, best matches first."""
    query = validated(ProductQuery, request.args.to_dict(), strict=False)
    ui = cart_ui()
    if not query.q.strip() and query.category is None:
        return jsonify(products=products_json(ui.store), currency=ui.settings.currency)
    with shopper_errors():
        found = ui.shop.find(query.q, query.category)
    return jsonify(products=[product_json(p) for p in found], currency=ui.settings.currency)


@api_shop.get("/categories")
def categories() -> Response:
    return jsonify(categories=[category_json(c, n) for c, n in cart_ui().shop.categories()])


@api_shop.get("/profiles")
def profiles() -> Response:
    return jsonify(profiles=cart_ui().catalogue.profile_names)


@api_shop.get("/bill")
def bill() -> Response:
    with shopper_errors():
        return jsonify(bill=_bill(cart_ui().shop.bill()))


@api_shop.post("/bill/items")
def add_item() -> Response:
    body = json_body(AddItem)
    with shopper_errors():
        return jsonify(bill=_bill(cart_ui().shop.add(body.product_id, body.quantity)))


@api_shop.delete("/bill/items/<product_id>")
def remove_item(product_id: str) -> Response:
    query = validated(RemoveItem, request.args.to_dict(), strict=False)
    with shopper_errors():
        return jsonify(bill=_bill(cart_ui().shop.remove(product_id, query.quantity)))


@api_shop.delete("/bill")
def clear_bill() -> Response:
    with shopper_errors():
        return jsonify(bill=_bill(cart_ui().shop.clear()))


@api_shop.put("/bill/profile")
def set_profile() -> Response:
    body = json_body(SetProfile)
    with shopper_errors():
        return jsonify(bill=_bill(cart_ui().shop.set_profile(body.profile)))


@api_shop.post("/scan/image")
def scan_image() -> Response:
    upload = request.files.get(IMAGE_FIELD)
    if upload is None:
        raise ApiError(400, "no_image", f"Send the picture as multipart/form-data field {IMAGE_FIELD!r}.")
    limit = cart_ui().max_upload_bytes
    data = upload.read(limit + 1)
    return _add_scanned(lambda: qr.decode_image(data, limit))


@api_shop.post("/scan/frame")
def scan_frame() -> Response:
    limit = cart_ui().max_upload_bytes
    body = json_body(ScanFrame, limit=int(limit * DATA_URL_OVERHEAD) + DATA_URL_SLACK)
    return _add_scanned(lambda: qr.decode_data_url(body.frame, limit))


@api_shop.post("/checkout")
def checkout() -> tuple[Response, int]:
    body = json_body(Checkout)
    ui = cart_ui()
    with shopper_errors():
        receipt = ui.shop.checkout(body.profile, now=ui.clock())
        fresh = ui.shop.bill()
    shown = receipt_json(receipt, ui.settings.currency)
    ui.bus.publish("checkout", shown)
    return jsonify(receipt=shown, bill=_bill(fresh)), 201


@api_shop.get("/receipts/<checkout_id>")
def receipt(checkout_id: str) -> Response:
    """A finished checkout's receipt (the checkout's answer names its id and the printable page's URL)."""
    ui = cart_ui()
    with shopper_errors():
        return jsonify(receipt=receipt_json(ui.shop.receipt(checkout_id), ui.settings.currency))


@api_shop.get("/recommendations")
def recommendations() -> Response:
    """What to add next, from the month, the profile and what the cart's current bill already holds."""
    ui = cart_ui()
    with shopper_errors():
        bill = ui.shop.bill()
    profile = request.args.get("profile") or bill.profile
    if not profile:
        raise ApiError(422, "no_profile", "Choose a shopper profile (?profile=...) to get recommendations.")
    try:
        recommendation = ui.recommender.recommend(profile, ui.clock().month, [line.category for line in bill.lines])
    except ValueError as exc:
        raise ApiError(422, "unknown_profile", str(exc)) from exc
    return jsonify(dataclasses.asdict(recommendation))


def _add_scanned(decode: Callable[[], QRPayload]) -> Response:
    """Decode, then add the product; the reply names what was added so the page can say so."""
    with shopper_errors():
        payload = decode()
        bill = cart_ui().shop.add_scanned(payload)
    line = next(line for line in bill.lines if line.product_id == payload.id)
    added = {"id": line.product_id, "name": line.name, "price": line.price_cents / 100, "category": line.category}
    log.info("scanned %s", payload.id)
    return jsonify(added=added, bill=_bill(bill))


def _bill(bill: Bill) -> dict:
    return bill_json(bill, cart_ui().settings.currency)
