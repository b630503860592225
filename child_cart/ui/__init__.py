"""The cart's Flask UI: home (scan, bill, checkout, recommendations), admin pages, JSON API, live events.

The node runtime calls `start_ui(settings, store, bus, node)`; tests and
standalone use build the app with `create_app` and an `OfflineNode`.
"""

from child_cart.ui.app import create_app
from child_cart.ui.node import NodeView, OfflineNode
from child_cart.ui.server import UIServer, serve, start_ui

__all__ = ["NodeView", "OfflineNode", "UIServer", "create_app", "serve", "start_ui"]
