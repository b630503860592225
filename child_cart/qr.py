"""Product QR codes: make them (segno) and read them (OpenCV + pyzbar) from uploads, browser frames and cameras.

A code carries a small JSON object `{"id", "name", "price", "category"}` as
text (pyzbar re-encodes binary payloads, so text is what round-trips).
Whatever goes wrong while reading one ends as a `ScanError` with a code a
program can branch on and a message a shopper can read; nothing is stored.
"""

from __future__ import annotations

import base64
import binascii
import html
import io
import json
import logging
import re
import warnings
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
import segno
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pyzbar.pyzbar import ZBarSymbol
from pyzbar.pyzbar import decode as zbar_decode

from child_cart.store.catalogue import Product

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 8 * 1024 * 1024
MAX_PIXELS = 50_000_000
NOT_OURS = "This QR code is not a fedcart product code."
NOT_AN_IMAGE = "The upload is not an image that can be read (use PNG or JPEG)."
DATA_URL_PREFIX = re.compile(r"^data:image/[a-z0-9.+-]+;base64,", re.IGNORECASE)


class ScanError(ValueError):
    """A scan that produced no product: `code` for programs, `message` for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class QRPayload(BaseModel):
    """What a product code says about itself; anything else in the JSON is not our schema."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    price: float = Field(ge=0.0, le=100_000.0)
    category: str = Field(min_length=1, max_length=64)


def payload_text(product: Product) -> str:
    """The JSON text printed into a product's code (compact, stable key order)."""
    body = {"id": product.id, "name": product.name, "price": product.price, "category": product.category}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def parse_payload(text: str) -> QRPayload:
    """Check a decoded code against the product schema."""
    try:
        return QRPayload.model_validate_json(text)
    except ValidationError as exc:
        log.info("rejected QR payload %.80r: %s", text, exc.errors()[0]["msg"])
        raise ScanError("bad_payload", NOT_OURS) from exc


def make_png(product: Product, scale: int = 8) -> bytes:
    """A printable PNG of the product's code, with the 4-module quiet zone scanners need.

    UTF-8 is declared with an ECI header: without it zbar guesses the
    charset and reads "é" or "¡" back as Japanese.
    """
    buffer = io.BytesIO()
    code = segno.make(payload_text(product), error="m", micro=False, encoding="utf-8", eci=True)
    code.save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()


def write_codes(products: Iterable[Product], out_dir: Path, scale: int = 8) -> list[Path]:
    """Write one PNG per product plus an `index.html` sheet (name, price, code) to print."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written, rows = [], []
    for product in products:
        path = out_dir / f"{product.id}.png"
        path.write_bytes(make_png(product, scale))
        written.append(path)
        rows.append(
            f"<figure><img src='{html.escape(path.name)}' alt='{html.escape(product.id)}'>"
            f"<figcaption>{html.escape(product.name)} &middot; {product.price:.2f}</figcaption></figure>"
        )
    sheet = "<!doctype html><meta charset='utf-8'><title>fedcart product codes</title>\n" + "\n".join(rows)
    (out_dir / "index.html").write_text(sheet + "\n", encoding="utf-8")
    log.info("wrote %d product codes to %s", len(written), out_dir)
    return written


def decode_frame(frame: np.ndarray) -> QRPayload:
    """Read exactly one product code from a decoded image (BGR, BGRA or grey)."""
    texts = _find_codes(_grey(frame))
    if not texts:
        raise ScanError("no_code", "No QR code found. Hold the code flat, in focus and fully in view.")
    if len(texts) > 1:
        raise ScanError("several_codes", f"{len(texts)} different QR codes in view. Scan one product at a time.")
    return parse_payload(texts[0])


def decode_image(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> QRPayload:
    """Read one product code from uploaded image bytes (PNG, JPEG, WebP, ...)."""
    _check_size(len(data), max_bytes)
    if not data:
        raise ScanError("not_an_image", "The upload is empty.")
    _check_pixels(data)
    frame = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        raise ScanError("not_an_image", NOT_AN_IMAGE)
    return decode_frame(frame)


def decode_data_url(url: str, max_bytes: int = DEFAULT_MAX_BYTES) -> QRPayload:
    """Read one product code from a browser camera frame sent as `data:image/...;base64,...`."""
    match = DATA_URL_PREFIX.match(url)
    if match is None:
        raise ScanError("bad_data_url", "The camera frame is not a base64 image data URL.")
    encoded = url[match.end() :]
    _check_size(len(encoded) * 3 // 4, max_bytes)
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ScanError("bad_data_url", "The camera frame's base64 data is corrupt.") from exc
    return decode_image(data, max_bytes)


def read_camera(index: int = 0) -> np.ndarray:
    """Grab one frame from a local camera (cv2.VideoCapture)."""
    capture = cv2.VideoCapture(index)
    try:
        if not capture.isOpened():
            raise ScanError("no_camera", f"No camera at index {index} on this cart.")
        ok, frame = capture.read()
    finally:
        capture.release()
    if not ok or frame is None:
        raise ScanError("no_camera", f"Camera {index} gave no picture.")
    return frame


def scan_camera(index: int = 0) -> QRPayload:
    """Read one product code from the cart's own camera."""
    return decode_frame(read_camera(index))


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise ScanError("too_large", f"The image is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB.")


def _check_pixels(data: bytes) -> None:
    """Refuse decompression bombs from the header alone.

    OpenCV decodes whatever it is given: a 100 KB PNG that claims
    30000x30000 pixels costs it 5 GB and ten seconds. Pillow reads just the
    header, so the size is known before anything is allocated.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as header:
                width, height = header.size
    except Image.DecompressionBombError as exc:
        raise ScanError("too_large", "The image has far too many pixels.") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ScanError("not_an_image", NOT_AN_IMAGE) from exc
    if width * height > MAX_PIXELS:
        raise ScanError(
            "too_large", f"The image is {width}x{height} pixels; the limit is {MAX_PIXELS / 1e6:.0f} megapixels."
        )


def _grey(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return frame
    conversion = cv2.COLOR_BGRA2GRAY if frame.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(frame, conversion)


def _find_codes(grey: np.ndarray) -> list[str]:
    """Distinct QR texts in the image; retries a binarised copy when the plain one shows none.

    Two copies of the same code count once: they name one product.
    """
    for image in (grey, _binarise(grey)):
        texts = sorted({_text(r.data) for r in zbar_decode(image, symbols=[ZBarSymbol.QRCODE])})
        if texts:
            return texts
    return []


def _binarise(grey: np.ndarray) -> np.ndarray:
    """Blur away sensor noise, then Otsu-threshold: rescues noisy or low-contrast photos."""
    blurred = cv2.GaussianBlur(grey, (5, 5), 0)
    return cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[1]


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScanError("bad_payload", NOT_OURS) from exc
