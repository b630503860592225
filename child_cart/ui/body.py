"""Reading a JSON request body: bounded in size, a JSON object, and valid against a pydantic model.

Each way a body can be wrong gets its own status, so a client can tell them
apart: 415 not JSON, 413 too big, 400 not parseable, 422 wrong fields. The
whole-request limit (MAX_CONTENT_LENGTH) is sized for image uploads; JSON
routes check their own, smaller limit here before parsing.
"""

from __future__ import annotations

import json
from typing import TypeVar

from flask import current_app, request
from pydantic import BaseModel, ValidationError

from child_cart.ui.errors import ApiError, field_errors

Model = TypeVar("Model", bound=BaseModel)

MAX_JSON_BYTES_KEY = "FEDCART_MAX_JSON_BYTES"


def json_object(limit: int | None = None) -> dict:
    """The body as a JSON object (no schema yet), at most `limit` bytes (default: UI_MAX_JSON_BYTES); raises ApiError."""
    limit = limit or current_app.config[MAX_JSON_BYTES_KEY]
    if not request.is_json:
        raise ApiError(415, "not_json", "Send a JSON body with Content-Type: application/json.")
    if (request.content_length or 0) > limit:
        raise _too_large(limit)
    raw = request.get_data(cache=True)
    if len(raw) > limit:
        raise _too_large(limit)
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "bad_json", f"The body is not valid JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "The body must be a JSON object.")
    return data


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413, "request_entity_too_large", f"The JSON body is larger than this route accepts ({limit} bytes)."
    )


def json_body(model: type[Model], limit: int | None = None) -> Model:
    """The body validated (strictly: "3" is not 3) against `model`; raises ApiError."""
    return validated(model, json_object(limit))


def validated(model: type[Model], data: dict, strict: bool = True) -> Model:
    """`data` checked against `model`; wrong or missing fields become a 422 naming each field.

    JSON bodies are checked strictly; query strings and forms (where every value
    is text) are checked with `strict=False`, which still refuses "abc" for a number.
    """
    try:
        return model.model_validate(data, strict=strict)
    except ValidationError as exc:
        raise ApiError(422, "invalid_fields", "Some fields are missing or wrong.", field_errors(exc)) from exc
