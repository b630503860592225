"""Errors as the UI reports them: one JSON shape for the API, with a status code that says whose fault it was.

Every API failure is `{"error": {"code", "message"[, "fields"]}}`: `code` for
programs, `message` for people, `fields` (field -> problem) when a body failed
validation. Page routes keep Flask's HTML errors.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, Response, jsonify, request
from flask_wtf.csrf import CSRFError
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from child_cart.qr import ScanError
from child_cart.shop import BillError, CartError

log = logging.getLogger(__name__)

API_PREFIX = "/api/"

CART_ERROR_STATUS = {
    "too_large": 413,
    "unknown_product": 404,
    "not_in_bill": 404,
    "unknown_receipt": 404,
    "conflict": 409,
}
"""Status of a shop/scan error by its code; any other code is 422 (understood, but cannot be done)."""


class ApiError(Exception):
    """A request the API refuses: raised anywhere in a handler, turned into a JSON error response."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, fields: dict[str, str] | None = None) -> Response:
    """The JSON error body with its status code."""
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    response = jsonify(error=body)
    response.status_code = status
    return response


def field_errors(exc: ValidationError) -> dict[str, str]:
    """pydantic's errors as field -> readable message (the first problem of each field)."""
    fields: dict[str, str] = {}
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "body"
        fields.setdefault(name, error["msg"])
    return fields


def cart_error(exc: ScanError | BillError) -> ApiError:
    """A shopper's mistake (bad scan, unknown product, empty bill...) as an API error."""
    return ApiError(CART_ERROR_STATUS.get(exc.code, 422), exc.code, exc.message)


@contextmanager
def shopper_errors() -> Iterator[None]:
    """Inside this block a shopper's mistake (ScanError, BillError) becomes an ApiError."""
    try:
        yield
    except CartError as exc:
        raise cart_error(exc) from exc


def register_error_handlers(app: Flask) -> None:
    """JSON errors for everything under /api/; pages keep HTML."""
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)


def _api_error(exc: ApiError) -> Response:
    response = error_response(exc.status, exc.code, exc.message, exc.fields)
    response.headers.update(exc.headers)
    return response


def _csrf_error(exc: CSRFError) -> Response | tuple[str, int]:
    log.info("refused %s %s: %s", request.method, request.path, exc.description)
    message = f"{exc.description} Reload the page (or fetch /api/csrf) and send the token in the X-CSRFToken header."
    if request.path.startswith(API_PREFIX):
        return error_response(400, "csrf", message)
    return f"<h1>Form expired</h1><p>{exc.description} Go back, reload the page and try again.</p>", 400


def _http_error(exc: HTTPException) -> Response | HTTPException:
    if not request.path.startswith(API_PREFIX):
        return exc
    code = (exc.name or "error").lower().replace(" ", "_")
    return error_response(exc.code or 500, code, exc.description or exc.name)
