"""Serving the UI from a background thread of the node process on waitress, with bounds and a clean stop.

The node runtime owns an asyncio loop for rounds and the bridge; the UI is a
WSGI app, so it runs in waitress (a production WSGI server) on a thread of its
own. Waitress reads and writes every connection from that one thread and runs
requests on a fixed pool of worker threads, so the cart's settings bound what
the UI can take: UI_THREADS workers (requests beyond them wait in a queue),
UI_CONNECTION_LIMIT open connections (beyond it new ones wait in the listen
backlog), UI_CHANNEL_TIMEOUT seconds for a connection with no request running
(idle keep-alive, or a request that stopped arriving), request headers of at most
MAX_HEADER_BYTES, bodies of at most Flask's MAX_CONTENT_LENGTH, and
UI_MAX_STREAMS live-update streams (each holds a worker; `stream.py`).

A cart process starts its server before the node is ready (`UIServer.starting`:
the port answers at once with `starting.StartingApp`, a 503 that says the cart is
loading its model runtime) and swaps in the full Flask app when the node is up
(`mount`): one listening socket throughout, so the URL never refuses a connection.
This module imports neither Flask nor the app until the app is built.

With a UI certificate and key (UI_TLS_CERT/UI_TLS_KEY, or the data dir's `tls/` files from
`fedcart enrol --role cart --tls-host NAME`) the UI serves HTTPS only: waitress listens on
127.0.0.1 at a private port, told the scheme is https, and `tls.TLSTerminator` takes the
public port, with a handshake deadline and the same connection limit (`tls.py`).

`stop()` ends the open event streams first (they would otherwise hold their
workers), lets running requests finish while their output is still sent, then
closes every connection and the listening socket, all within STOP_TIMEOUT.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from waitress import wasyncore
from waitress.server import create_server

from cartnet import tls
from cartnet.identity import Identity
from child_cart.settings import CartSettings
from child_cart.ui.starting import StartingApp, StartResponse
from child_cart.ui.tls import Peers, TLSTerminator, handshake_seconds, ui_tls_files

if TYPE_CHECKING:
    from flask import Flask

    from child_cart.events import EventBus
    from child_cart.store import Store
    from child_cart.ui.context import CartUI
    from child_cart.ui.node import NodeView

log = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0
MAX_HEADER_BYTES = 64 * 1024
MULTIPART_SLACK = 64 * 1024
LOOP_SECONDS = 1.0
"""Longest the I/O loop waits for a socket event; `stop()` wakes it at once, and idle sweeps need no more."""

BACKEND_SLACK = 8
"""Behind the TLS terminator (which holds the UI_CONNECTION_LIMIT cap) waitress may take a few more: it counts its
listening socket and wake-up trigger as connections, and closes a finished one a loop turn after the terminator did."""

WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def max_content_length(settings: CartSettings) -> int:
    """The largest request body the UI takes: an image upload as a data URL (4/3 of its bytes) plus form slack."""
    return settings.max_upload_bytes * 4 // 3 + MULTIPART_SLACK


class _Mounted:
    """The WSGI app waitress calls: whatever is mounted now (a plain attribute swap, atomic under the GIL).

    Behind the TLS terminator, `peers` says which client each of its back-end connections carries."""

    def __init__(self, app: WSGIApp, peers: Peers | None = None) -> None:
        self.app = app
        self.peers = peers

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if self.peers is not None and environ.get("REMOTE_ADDR") == "127.0.0.1":
            client = self.peers.get(int(environ.get("REMOTE_PORT") or 0))
            if client is not None:
                environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = client[0], str(client[1])
        return self.app(environ, start_response)


class UIServer:
    """A running UI: `url` to reach it, `stop()` (or a `with` block) to end it.

    Built around a Flask app from `create_app` (its settings are the app's), or with
    `UIServer.starting(settings)` around the starting page until `mount(app)`.
    """

    def __init__(self, app: Flask | WSGIApp, host: str, port: int, settings: CartSettings | None = None) -> None:
        self.app = None if isinstance(app, StartingApp) else cast("Flask", app)
        if settings is None:
            if self.app is None:
                raise ValueError("a server around the starting page needs the cart's settings")
            settings = _cart_ui(self.app).settings
        self.settings = settings
        host = host or "0.0.0.0"
        files = ui_tls_files(settings)
        context = tls.server_context(*files) if files is not None else None
        self._map: dict[int, Any] = {}
        public_host, public_port = host, port
        if context is not None:
            host, port = "127.0.0.1", 0  # waitress in clear on a private port; the terminator takes the public one
        self._mounted = _Mounted(app, {} if context is not None else None)
        self._server = create_server(
            self._mounted,
            map=self._map,
            host=host,
            port=port,
            ipv4=":" not in host,
            ipv6=":" in host,  # one listening socket, so one real port when 0 asked for any
            url_scheme="https" if context is not None else "http",
            threads=settings.ui_threads,
            connection_limit=settings.ui_connection_limit + (BACKEND_SLACK if context is not None else 0),
            channel_timeout=settings.ui_channel_timeout,
            cleanup_interval=max(1, min(30, settings.ui_channel_timeout // 2)),
            max_request_header_size=MAX_HEADER_BYTES,
            max_request_body_size=max_content_length(settings),
            ident="fedcart",
        )
        self.threads = settings.ui_threads
        self.tls: TLSTerminator | None = None
        if context is not None:
            try:
                self.tls = TLSTerminator(
                    context,
                    public_host,
                    public_port,
                    (str(self._server.effective_host), int(self._server.effective_port)),
                    settings.ui_connection_limit,
                    handshake_seconds(settings),
                )
            except OSError:
                wasyncore.close_all(self._map, ignore_all=True)
                raise
            self._mounted.peers = self.tls.peers
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"ui-{self.port}", daemon=True)

    @classmethod
    def starting(cls, settings: CartSettings, node_id: str = "") -> UIServer:
        """A server on UI_HOST:UI_PORT that says the cart is starting, until `mount`; not yet started."""
        node_id = node_id or Identity.load_or_create(settings.data_dir).node_id
        return cls(StartingApp(node_id), settings.ui_host, settings.ui_port, settings)

    def mount(self, app: Flask) -> None:
        """Serve `app` from now on (requests already running finish on the app they started on)."""
        self.app = app
        self._mounted.app = app
        log.info("cart UI on %s ready", self.url)

    @property
    def host(self) -> str:
        return str(self.tls.host if self.tls is not None else self._server.effective_host)

    @property
    def port(self) -> int:
        """The bound public port (the real one when 0 asked for any free port)."""
        return int(self.tls.port if self.tls is not None else self._server.effective_port)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls is not None else 'http'}://{host}:{self.port}"

    def start(self) -> UIServer:
        self._thread.start()
        if self.tls is not None:
            self.tls.start()
        log.info(
            "cart UI on %s (admin: %s/admin): %d threads, %d live-update streams at most",
            self.url,
            self.url,
            self.threads,
            self.settings.ui_max_streams,
        )
        return self

    def stop(self) -> None:
        """Close event streams, let running requests finish, close every connection, release the port; safe twice."""
        if self.tls is not None:
            self.tls.stop_accepting()
        if self.app is not None:
            _cart_ui(self.app).stream.close()
        self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=STOP_TIMEOUT)
        if self._thread.is_alive():
            self._stopping.set()
            with contextlib.suppress(OSError):  # the loop may be closing its trigger already; it wakes by itself too
                self._server.pull_trigger()
            self._thread.join(STOP_TIMEOUT)
        else:
            wasyncore.close_all(self._map, ignore_all=True)
        if self.tls is not None:
            self.tls.close()
        log.info("cart UI on %s stopped", self.url)

    def _serve(self) -> None:
        """The I/O loop: until `stop()`, then flush what finished requests wrote and close everything."""
        try:
            while not self._stopping.is_set():
                wasyncore.loop(timeout=LOOP_SECONDS, use_poll=True, map=self._map, count=1)
            deadline = time.monotonic() + STOP_TIMEOUT
            while time.monotonic() < deadline and any(
                getattr(channel, "total_outbufs_len", 0) for channel in list(self._map.values())
            ):
                wasyncore.loop(timeout=0.05, use_poll=True, map=self._map, count=1)
        finally:
            wasyncore.close_all(self._map, ignore_all=True)

    def __enter__(self) -> UIServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def _cart_ui(app: Flask) -> CartUI:
    from child_cart.ui.context import EXTENSION

    ui: CartUI = app.extensions[EXTENSION]
    return ui


def serve(app: Flask, host: str, port: int) -> UIServer:
    """Start serving `app` on host:port (0 = any free port) from a daemon thread."""
    return UIServer(app, host, port).start()


def start_ui(
    settings: CartSettings, store: Store, bus: EventBus, node: NodeView, server: UIServer | None = None
) -> UIServer:
    """What the node runtime calls: build the app and serve it on UI_HOST:UI_PORT, or mount it on `server`
    (the one already answering with the starting page)."""
    from child_cart.ui.app import create_app

    app = create_app(settings, store, bus, node)
    if server is None:
        return serve(app, settings.ui_host, settings.ui_port)
    server.mount(app)
    return server
