"""Images for scan tests: real product codes (child_cart's own generator) and the ways a picture can be wrong."""

from __future__ import annotations

import base64
import io

import cv2
import numpy as np
import segno

from child_cart import qr
from child_cart.store import Product, load_catalogue


def product(product_id: str = "P001") -> Product:
    found = load_catalogue().product(product_id)
    assert found is not None
    return found


def product_png(product_id: str = "P001") -> bytes:
    return qr.make_png(product(product_id), scale=6)


def unknown_product_png() -> bytes:
    return qr.make_png(Product(id="Z999", name="Moon cheese", price=9.99, category="dairy"), scale=6)


def foreign_qr_png() -> bytes:
    buffer = io.BytesIO()
    segno.make("https://example.org/not-a-product").save(buffer, kind="png", scale=6, border=4)
    return buffer.getvalue()


def blank_png() -> bytes:
    return cv2.imencode(".png", np.full((120, 120, 3), 255, dtype=np.uint8))[1].tobytes()


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def camera_video(png: bytes, width: int = 640, height: int = 480) -> bytes:
    """A one-frame Y4M video of the code on a white page: Chromium's fake camera plays it in a loop."""
    code = cv2.imdecode(np.frombuffer(png, dtype=np.uint8), cv2.IMREAD_COLOR)
    side = min(width, height) * 3 // 4
    code = cv2.resize(code, (side, side), interpolation=cv2.INTER_NEAREST)
    frame = np.full((height, width, 3), 255, dtype=np.uint8)
    top, left = (height - side) // 2, (width - side) // 2
    frame[top : top + side, left : left + side] = code
    planes = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420)
    header = f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode("ascii")
    return header + b"FRAME\n" + planes.tobytes()
