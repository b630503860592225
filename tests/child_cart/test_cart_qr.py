"""QR data collection: code -> image (rotated, scaled, noisy, JPEG) -> decode -> bill; every bad input refused."""

from __future__ import annotations

import base64
import functools
import io
import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import segno
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from child_cart import qr
from child_cart.qr import ScanError
from child_cart.shop import Shop
from child_cart.store import Product, Store


def to_image(png: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)


def pad(image: np.ndarray, margin: int = 80) -> np.ndarray:
    return cv2.copyMakeBorder(image, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=(255, 255, 255))


def rotate(degrees: float) -> Callable[[np.ndarray], np.ndarray]:
    def apply(image: np.ndarray) -> np.ndarray:
        padded = pad(image)
        h, w = padded.shape[:2]
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
        return cv2.warpAffine(padded, matrix, (w, h), borderValue=(255, 255, 255))

    return apply


def scale(factor: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda image: cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)


def noise(sigma: float) -> Callable[[np.ndarray], np.ndarray]:
    def apply(image: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(7)
        return np.clip(image.astype(np.float64) + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)

    return apply


def photo(image: np.ndarray) -> np.ndarray:
    """A dim, blurred, off-white capture, like a phone camera in a shop."""
    blurred = cv2.GaussianBlur(pad(image, 40), (5, 5), 1.2)
    return (blurred.astype(np.float64) * 0.6 + 40).astype(np.uint8)


TRANSFORMS = {
    "plain": lambda image: image,
    "rotated-30": rotate(30),
    "rotated-90": rotate(90),
    "rotated-200": rotate(200),
    "scaled-half": scale(0.5),
    "scaled-2.5x": scale(2.5),
    "noise": noise(50),
    "photo": photo,
}


def encode(image: np.ndarray, kind: str) -> bytes:
    ok, data = cv2.imencode(kind, image, [cv2.IMWRITE_JPEG_QUALITY, 70] if kind == ".jpg" else [])
    assert ok
    return data.tobytes()


@pytest.mark.parametrize("kind", [".png", ".jpg"])
@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
def test_a_code_survives_image_transforms_and_lands_on_the_bill(
    store: Store, catalogue, transform: str, kind: str
) -> None:
    product = catalogue.products[7]
    image = TRANSFORMS[transform](to_image(qr.make_png(product, scale=6)))
    bill = Shop(store, "cart-qr", catalogue).scan_image(encode(image, kind))
    assert [(line.product_id, line.quantity) for line in bill.lines] == [(product.id, 1)]
    assert bill.total_cents == product.price_cents


def test_a_browser_camera_frame_data_url_is_scanned(store: Store, catalogue) -> None:
    product = catalogue.products[0]
    jpeg = encode(photo(to_image(qr.make_png(product))), ".jpg")
    url = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
    bill = Shop(store, "cart-cam", catalogue).scan_data_url(url)
    assert bill.lines[0].product_id == product.id


def test_two_copies_of_the_same_code_are_one_product(catalogue) -> None:
    code = to_image(qr.make_png(catalogue.products[3], scale=4))
    assert qr.decode_frame(np.hstack([code, code])).id == catalogue.products[3].id


def test_qr_make_writes_a_decodable_code_per_product(tmp_path: Path, catalogue) -> None:
    written = qr.write_codes(catalogue.products, tmp_path / "codes", scale=4)
    assert len(written) == len(catalogue.products)
    assert (tmp_path / "codes" / "index.html").read_text().count("<img") == len(written)
    for product, path in zip(catalogue.products, written):
        assert qr.decode_image(path.read_bytes()) == qr.parse_payload(qr.payload_text(product))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60).filter(str.strip),
    cents=st.integers(min_value=0, max_value=9_999_999),
)
def test_any_product_round_trips_through_a_code(name: str, cents: int) -> None:
    product = Product(id="P777", name=name, price=cents / 100, category="dairy")
    decoded = qr.decode_image(qr.make_png(product, scale=3))
    assert (decoded.id, decoded.name, round(decoded.price * 100), decoded.category) == ("P777", name, cents, "dairy")


def qr_png(text: str) -> bytes:
    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buffer, kind="png", scale=5, border=4)
    return buffer.getvalue()


def two_codes() -> bytes:
    left = to_image(qr_png(json.dumps({"id": "P001", "name": "Bananas 1 kg", "price": 1.69, "category": "produce"})))
    right = to_image(
        qr_png(json.dumps({"id": "P002", "name": "Gala apples 1 kg", "price": 2.49, "category": "produce"}))
    )
    return encode(np.hstack([left, right]), ".png")


@functools.cache
def pixel_bomb(side: int) -> bytes:
    """A tiny PNG file that decodes to side x side pixels (1-bit, all black, compresses to nothing)."""
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, "PNG")
    return buffer.getvalue()


def scan_upload(shop: Shop, data: bytes) -> None:
    shop.scan_image(data)


def scan_url(text: str) -> Callable[[Shop], None]:
    return lambda shop: shop.scan_data_url(text)


BAD_INPUTS: dict[str, tuple[Callable[[Shop], None], str]] = {
    "blank image": (lambda s: scan_upload(s, encode(np.full((200, 200, 3), 255, np.uint8), ".png")), "no_code"),
    "random pixels": (
        lambda s: scan_upload(s, encode(noise(90)(np.full((300, 300, 3), 128, np.uint8)), ".png")),
        "no_code",
    ),
    "several codes": (lambda s: scan_upload(s, two_codes()), "several_codes"),
    "not json": (lambda s: scan_upload(s, qr_png("https://example.com/hello")), "bad_payload"),
    "json, wrong schema": (lambda s: scan_upload(s, qr_png('{"id": "P001", "price": "cheap"}')), "bad_payload"),
    "json, extra field": (
        lambda s: scan_upload(s, qr_png('{"id":"P001","name":"x","price":1,"category":"dairy","admin":true}')),
        "bad_payload",
    ),
    "unknown product": (
        lambda s: scan_upload(s, qr_png('{"id":"P999","name":"Caviar","price":99.5,"category":"dairy"}')),
        "unknown_product",
    ),
    "not an image": (lambda s: scan_upload(s, b"%PDF-1.7 certainly not a picture"), "not_an_image"),
    "empty upload": (lambda s: scan_upload(s, b""), "not_an_image"),
    "50 MB upload": (lambda s: scan_upload(s, b"\x89PNG" + bytes(50 * 1024 * 1024)), "too_large"),
    "small PNG of 225 megapixels": (lambda s: scan_upload(s, pixel_bomb(15000)), "too_large"),
    "PNG of 64 megapixels": (lambda s: scan_upload(s, pixel_bomb(8000)), "too_large"),
    "truncated PNG": (lambda s: scan_upload(s, qr_png("{}")[:60]), "not_an_image"),
    "data URL without image": (scan_url("data:text/plain;base64,aGVsbG8="), "bad_data_url"),
    "data URL, corrupt base64": (scan_url("data:image/jpeg;base64,@@@not-base64@@@"), "bad_data_url"),
    "data URL, 50 MB": (scan_url("data:image/png;base64," + "A" * (68 * 1024 * 1024)), "too_large"),
    "no local camera": (lambda s: s.scan_camera(index=97), "no_camera"),
    "add unknown id": (lambda s: s.add("P999"), "unknown_product"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_a_bad_scan_gives_a_clear_message_and_stores_nothing(store: Store, catalogue, case: str) -> None:
    shop = Shop(store, "cart-bad", catalogue)
    shop.add("P003")
    before = (store.bills.find_one({"_id": "cart-bad"}), store.purchases.count_documents({}))
    action, code = BAD_INPUTS[case]
    with pytest.raises(ScanError) as caught:
        action(shop)
    assert caught.value.code == code
    assert len(caught.value.message) > 10 and str(caught.value) == caught.value.message
    assert (store.bills.find_one({"_id": "cart-bad"}), store.purchases.count_documents({})) == before
