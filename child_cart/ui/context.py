"""Everything a request handler needs, built once per app and reached through `cart_ui()`.

Blueprints stay free of globals: the app factory puts one `CartUI` into
`app.extensions`, so two apps (two carts in one test process) never share state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask import current_app

from child_cart.events import EventBus
from child_cart.models.versions import ModelVersions
from child_cart.settings import CartSettings
from child_cart.shop import Shop
from child_cart.store import Catalogue, Store
from child_cart.tasks.recommender import Recommender
from child_cart.ui.node import NodeView
from child_cart.ui.stream import EventStream
from child_cart.ui.throttle import LoginThrottle

EXTENSION = "fedcart_ui"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class CartUI:
    """The cart's parts as the UI uses them."""

    settings: CartSettings
    store: Store
    bus: EventBus
    node: NodeView
    catalogue: Catalogue
    shop: Shop
    models: ModelVersions
    recommender: Recommender
    stream: EventStream
    throttle: LoginThrottle
    password_hash: str
    clock: Callable[[], datetime] = field(default=utc_now)

    @property
    def max_upload_bytes(self) -> int:
        return self.settings.max_upload_bytes


def cart_ui() -> CartUI:
    """The `CartUI` of the app handling the current request."""
    return current_app.extensions[EXTENSION]
