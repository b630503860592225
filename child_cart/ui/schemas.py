"""The JSON bodies the API accepts: one strict model per request, unknown fields refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from child_cart.shop import MAX_QUANTITY, MAX_QUERY_CHARS

MAX_PASSWORD_CHARS = 1024


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AddItem(_Body):
    product_id: str = Field(min_length=1, max_length=64)
    quantity: int = Field(1, ge=1, le=MAX_QUANTITY)


class RemoveItem(_Body):
    quantity: int | None = Field(None, ge=1, le=MAX_QUANTITY)


class ProductQuery(_Body):
    """`GET /api/products?q=...&category=...`: search by name, browse by category, or both."""

    q: str = Field("", max_length=MAX_QUERY_CHARS)
    category: str | None = Field(None, min_length=1, max_length=64)


class ScanFrame(_Body):
    frame: str = Field(min_length=1, description="A camera frame as a data:image/...;base64 URL")


class SetProfile(_Body):
    profile: str = Field(min_length=1, max_length=64)


class Checkout(_Body):
    profile: str | None = Field(None, min_length=1, max_length=64)


class Login(_Body):
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_CHARS)
