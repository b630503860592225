"""Serving the UI from a background thread of the node process, with a clean stop.

The node runtime owns an asyncio loop for rounds and the bridge; the UI is a
WSGI app, so it runs in werkzeug's threaded server on its own thread. `stop()`
ends the open event streams first (they would otherwise hold their request
threads), then stops accepting, then joins the thread.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

from child_cart.events import EventBus
from child_cart.settings import CartSettings
from child_cart.store import Store
from child_cart.ui.app import create_app
from child_cart.ui.context import EXTENSION
from child_cart.ui.node import NodeView

log = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0


class _QuietHandler(WSGIRequestHandler):
    """Access lines go to this module's logger at DEBUG: page polls and event streams would flood INFO."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s %s", self.command, self.path, code)


class UIServer:
    """A running UI: `url` to reach it, `stop()` (or a `with` block) to end it."""

    def __init__(self, app: Flask, host: str, port: int) -> None:
        self.app = app
        self._server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"ui-{self.port}", daemon=True)

    @property
    def host(self) -> str:
        host = self._server.server_address[0]  # typed for every socket family; a TCP server's is always str
        return host if isinstance(host, str) else bytes(host).decode()

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 asked for any free port)."""
        return self._server.server_port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> UIServer:
        self._thread.start()
        log.info("cart UI on %s (admin: %s/admin)", self.url, self.url)
        return self

    def stop(self) -> None:
        """Close event streams, stop serving, release the port; safe to call twice."""
        self.app.extensions[EXTENSION].stream.close()
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(STOP_TIMEOUT)
        self._server.server_close()
        log.info("cart UI on %s stopped", self.url)

    def __enter__(self) -> UIServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def serve(app: Flask, host: str, port: int) -> UIServer:
    """Start serving `app` on host:port (0 = any free port) from a daemon thread."""
    return UIServer(app, host, port).start()


def start_ui(settings: CartSettings, store: Store, bus: EventBus, node: NodeView) -> UIServer:
    """What the node runtime calls: build the app and serve it on UI_HOST:UI_PORT."""
    return serve(create_app(settings, store, bus, node), settings.ui_host, settings.ui_port)
