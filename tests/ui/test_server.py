"""Serving from a background thread on waitress: real HTTP on 127.0.0.1, bounded worker threads, a cap on
live-update streams (503 beyond it), and a stop that ends open event streams and frees the port."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.cookiejar import CookieJar

import pytest
from pydantic import ValidationError

from child_cart.settings import CartSettings
from child_cart.ui import create_app, serve
from child_cart.ui.server import UIServer
from child_cart.ui.starting import StartingApp

from .conftest import PASSWORD

STREAM_DEADLINE = 5.0
DEADLINE = 20.0


class Browserless:
    """A cookie-keeping HTTP client for the running server (what a script using the API does)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def json(self, method: str, path: str, body: dict | None = None, token: str = "") -> dict:
        request = urllib.request.Request(
            self.base + path, method=method, data=json.dumps(body).encode() if body is not None else None
        )
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("X-CSRFToken", token)
        with self.opener.open(request, timeout=STREAM_DEADLINE) as response:
            return json.load(response)

    def login(self) -> str:
        token = self.json("GET", "/api/csrf")["csrf_token"]
        return self.json("POST", "/api/login", {"password": PASSWORD}, token)["csrf_token"]

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.cookies)


@pytest.fixture
def server(app):
    running = serve(app, "127.0.0.1", 0)
    yield running
    running.stop()


def test_serves_the_api_on_an_ephemeral_port(server: UIServer):
    assert server.port > 0
    with urllib.request.urlopen(server.url + "/api/health", timeout=STREAM_DEADLINE) as response:
        assert json.load(response)["status"] == "ok"


def test_stop_ends_open_streams_and_frees_the_port(server: UIServer):
    client = Browserless(server.url)
    client.login()
    connection = http.client.HTTPConnection(server.host, server.port, timeout=STREAM_DEADLINE)
    connection.request("GET", "/api/events", headers={"Cookie": client.cookie_header()})
    stream = connection.getresponse()
    assert stream.status == 200
    assert stream.readline() == b"event: ready\n"
    server.stop()
    assert stream.read() == b"data: {}\n\n"
    connection.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=STREAM_DEADLINE)
    server.stop()


def _open_stream(server: UIServer, cookie: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=STREAM_DEADLINE)
    connection.request("GET", "/api/events", headers={"Cookie": cookie})
    return connection, connection.getresponse()


@pytest.fixture
def serve_with(settings, store, bus, node):
    """Serve the cart's app built with some UI settings changed; every server is stopped at the end."""
    running: list[UIServer] = []

    def start(**ui_settings: int) -> UIServer:
        app = create_app(settings.model_copy(update=ui_settings), store, bus, node)
        running.append(serve(app, "127.0.0.1", 0))
        return running[-1]

    yield start
    for server in running:
        server.stop()


def test_a_stream_over_the_cap_gets_503_and_pages_are_still_served(serve_with):
    server = serve_with(ui_threads=4, ui_max_streams=2)
    client = Browserless(server.url)
    client.login()
    streams = [_open_stream(server, client.cookie_header()) for _ in range(2)]
    for _, stream in streams:
        assert stream.status == 200 and stream.readline() == b"event: ready\n"
    connection, refused = _open_stream(server, client.cookie_header())
    assert refused.status == 503 and refused.getheader("Retry-After") == "30"
    error = json.load(refused)["error"]
    assert error["code"] == "too_many_streams" and "2 live-update streams" in error["message"], error
    connection.close()
    assert client.json("GET", "/api/health")["status"] == "ok", "the API must be served while every slot is taken"
    server.stop()
    for connection, stream in streams:
        assert stream.read() == b"data: {}\n\n", "stop must end the streams at the cap too"
        connection.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=STREAM_DEADLINE)


class _QueueDepth(logging.Handler):
    """Set when waitress reports `depth` requests waiting for a worker (its "Task queue depth is N" warning)."""

    def __init__(self, depth: int) -> None:
        super().__init__()
        self.depth = depth
        self.reached = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == f"Task queue depth is {self.depth}":
            self.reached.set()


def test_requests_beyond_the_worker_threads_wait_for_a_free_one(settings, store, bus, node):
    """Two workers, five slow requests: two run, three queue (waitress says so), none runs beside them."""
    app = create_app(settings.model_copy(update={"ui_threads": 2, "ui_max_streams": 1}), store, bus, node)
    lock, release, entered = threading.Lock(), threading.Event(), threading.Semaphore(0)
    running = {"now": 0, "most": 0}

    @app.get("/test/hold")
    def hold() -> str:
        with lock:
            running["now"] += 1
            running["most"] = max(running["most"], running["now"])
        entered.release()
        release.wait(DEADLINE)
        with lock:
            running["now"] -= 1
        return "held"

    queued = _QueueDepth(3)
    waitress_queue = logging.getLogger("waitress.queue")
    waitress_queue.addHandler(queued)
    server = serve(app, "127.0.0.1", 0)
    try:
        with ThreadPoolExecutor(5) as pool:
            answers = [pool.submit(_get, server.url + "/test/hold") for _ in range(5)]
            assert entered.acquire(timeout=DEADLINE) and entered.acquire(timeout=DEADLINE), "two requests never started"
            assert queued.reached.wait(DEADLINE), "waitress never reported three requests waiting for a worker"
            assert running["most"] == 2, f"{running['most']} requests ran at once on 2 worker threads"
            release.set()
            assert [answer.result(DEADLINE) for answer in answers] == ["held"] * 5
        assert running["most"] == 2
        assert server.threads == 2
    finally:
        release.set()
        waitress_queue.removeHandler(queued)
        server.stop()


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=DEADLINE) as response:
        return response.read().decode()


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"ui_threads": 4, "ui_max_streams": 4}, "ui_max_streams must be below ui_threads"),
        ({"ui_threads": 16, "ui_max_streams": 10, "ui_connection_limit": 8}, "below ui_connection_limit"),
    ],
)
def test_stream_cap_must_leave_threads_and_connections_free(tmp_path, limits, message):
    with pytest.raises(ValidationError, match=message):
        CartSettings(_env_file=None, data_dir=tmp_path, **limits)


def test_idle_and_half_sent_connections_are_closed_after_the_channel_timeout(serve_with):
    server = serve_with(ui_channel_timeout=1)
    idle = socket.create_connection((server.host, server.port), timeout=DEADLINE)
    half_sent = socket.create_connection((server.host, server.port), timeout=DEADLINE)
    half_sent.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    try:
        assert idle.recv(1024) == b"", "the server must close a connection that never sends a request"
        assert half_sent.recv(1024) == b"", "the server must close a request that stopped arriving"
    finally:
        idle.close()
        half_sent.close()
    with urllib.request.urlopen(server.url + "/api/health", timeout=STREAM_DEADLINE) as response:
        assert json.load(response)["status"] == "ok"


def _answer(url: str) -> tuple[int, str, bytes]:
    """(status, content type, body) of a GET, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=STREAM_DEADLINE) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def test_the_starting_page_answers_until_the_app_is_mounted_on_the_same_socket(settings, store, bus, node):
    """What `fedcart node` does: listen before the model runtime loads, say so, then serve the real UI."""
    server = UIServer(StartingApp(node.node_id), "127.0.0.1", 0, settings).start()
    try:
        status, kind, body = _answer(server.url + "/api/health")
        assert (status, kind) == (503, "application/json"), (status, kind)
        assert json.loads(body) == {
            "status": "starting",
            "message": "starting: loading the model runtime",
            "node_id": node.node_id,
            "connected": False,
        }
        status, kind, body = _answer(server.url + "/api/bill")
        assert status == 503 and json.loads(body)["error"]["code"] == "starting"
        status, kind, body = _answer(server.url + "/admin")
        assert status == 503 and kind.startswith("text/html") and b"starting: loading the model runtime" in body
        assert b'http-equiv="refresh"' in body, "the starting page must reload itself into the real UI"
        port = server.port
        server.mount(create_app(settings, store, bus, node))
        assert server.port == port
        with urllib.request.urlopen(server.url + "/api/health", timeout=STREAM_DEADLINE) as response:
            assert json.load(response)["status"] == "ok"
        client = Browserless(server.url)
        client.login()  # sessions, CSRF and the admin API work on the mounted app
        assert "counts" in client.json("GET", "/api/cart")
    finally:
        server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=STREAM_DEADLINE)


def test_a_starting_server_stops_cleanly_before_any_app_is_mounted(settings):
    server = UIServer.starting(settings, node_id="ab" * 20).start()
    assert _answer(server.url + "/")[0] == 503
    server.stop()
    server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=STREAM_DEADLINE)


@pytest.mark.parametrize(
    ("hint", "configured", "says"),
    [
        ("The admin password is printed by fedcart swarm.", True, "printed by fedcart swarm"),
        ("", True, "UI_ADMIN_PASSWORD_HASH"),
        ("", False, "printed once in this cart"),
    ],
)
def test_the_login_page_says_where_the_password_is(settings, store, bus, node, hint, configured, says):
    changed = settings.model_copy(
        update={"ui_admin_password_hint": hint, "ui_admin_password_hash": settings.ui_admin_password_hash * configured}
    )
    page = create_app(changed, store, bus, node).test_client().get("/admin/login").get_data(as_text=True)
    assert says in page, page
