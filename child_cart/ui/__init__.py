"""The cart's Flask UI: home (scan, bill, checkout, recommendations), admin pages, JSON API, live events.

The node runtime calls `start_ui(settings, store, bus, node)`; tests and
standalone use build the app with `create_app` and an `OfflineNode`.
`fedcart node` serves `starting.py`'s page from `server.UIServer.starting` before
anything heavy is imported, so the names below load on first use: importing
`child_cart.ui.server` must not pull in Flask and the app.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from child_cart.ui.app import create_app
    from child_cart.ui.node import NodeView, OfflineNode
    from child_cart.ui.server import UIServer, serve, start_ui

__all__ = ["NodeView", "OfflineNode", "UIServer", "create_app", "serve", "start_ui"]

_HOMES = {
    "create_app": "child_cart.ui.app",
    "NodeView": "child_cart.ui.node",
    "OfflineNode": "child_cart.ui.node",
    "UIServer": "child_cart.ui.server",
    "serve": "child_cart.ui.server",
    "start_ui": "child_cart.ui.server",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
