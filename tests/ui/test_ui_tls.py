"""The cart UI over HTTPS (child_cart/ui/tls.py): a certificate from the swarm CA in the data dir (what
`fedcart enrol --role cart --tls-host NAME` writes) or UI_TLS_CERT/UI_TLS_KEY makes the UI serve TLS only,
with a handshake deadline, the connection limit, https URLs and secure cookies, and a stop that frees the port."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.cookiejar import CookieJar
from pathlib import Path

import pytest
from flask import request

from cartnet import tls
from child_cart.events import EventBus
from child_cart.settings import CartSettings
from child_cart.store import Store
from child_cart.ui import OfflineNode, create_app, serve
from child_cart.ui.server import UIServer

from .conftest import PASSWORD

DEADLINE = 5.0


@pytest.fixture
def ca(tmp_path: Path) -> tls.SwarmCA:
    return tls.SwarmCA.load_or_create(tmp_path / "authority", "ab" * 16)


@pytest.fixture
def trusting(ca: tls.SwarmCA, tmp_path: Path) -> ssl.SSLContext:
    """A client that trusts the swarm CA alone (what a browser given the CA does)."""
    path = tmp_path / "swarm-ca.pem"
    path.write_bytes(ca.pem)
    return ssl.create_default_context(cafile=str(path))


@pytest.fixture
def enrolled(settings: CartSettings, ca: tls.SwarmCA) -> CartSettings:
    """The cart's data dir holds a UI certificate for 127.0.0.1 and localhost, as `enrol --tls-host` leaves it."""
    tls.store_ca(settings.data_dir, ca)
    tls.issue_server_certificate(ca, settings.data_dir, ["127.0.0.1", "localhost"], days=30, note="cart")
    return settings


@pytest.fixture
def serve_tls(enrolled: CartSettings, store: Store, bus: EventBus, node: OfflineNode) -> Iterator:
    running: list[UIServer] = []

    def start(**changes: object) -> UIServer:
        app = create_app(enrolled.model_copy(update=changes), store, bus, node)

        @app.get("/test/peer")
        def peer() -> dict[str, str]:
            return {"addr": str(request.remote_addr), "port": str(request.environ.get("REMOTE_PORT"))}

        running.append(serve(app, "127.0.0.1", 0))
        return running[-1]

    yield start
    for server in running:
        server.stop()


def _opener(context: ssl.SSLContext) -> tuple[urllib.request.OpenerDirector, CookieJar]:
    cookies = CookieJar()
    handlers = urllib.request.HTTPSHandler(context=context), urllib.request.HTTPCookieProcessor(cookies)
    return urllib.request.build_opener(*handlers), cookies


def test_https_verified_against_the_swarm_ca_gets_the_ui(serve_tls, trusting: ssl.SSLContext) -> None:
    server = serve_tls()
    assert server.url.startswith("https://127.0.0.1:")
    opener, _ = _opener(trusting)
    with opener.open(server.url + "/api/health", timeout=DEADLINE) as response:
        assert json.load(response)["status"] == "ok"
    with opener.open(server.url + "/admin/login", timeout=DEADLINE) as response:
        assert response.status == 200 and b"<html" in response.read().lower()
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(server.url + "/api/health", timeout=DEADLINE, context=ssl.create_default_context())


def test_the_app_sees_https_and_the_client_address_and_sends_secure_cookies(
    serve_tls, trusting: ssl.SSLContext
) -> None:
    server = serve_tls(ui_secure_cookies=True)
    opener, cookies = _opener(trusting)
    with opener.open(server.url + "/api/csrf", timeout=DEADLINE) as response:
        token = json.load(response)["csrf_token"]
        assert "secure" in response.headers["Set-Cookie"].lower(), response.headers["Set-Cookie"]
    login = urllib.request.Request(
        server.url + "/api/login",
        method="POST",
        data=json.dumps({"password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json", "X-CSRFToken": token, "Referer": server.url + "/admin"},
    )
    with opener.open(login, timeout=DEADLINE) as response:
        assert response.status == 200  # with the Referer a browser sends (Referrer-Policy: same-origin) ...
    with pytest.raises(urllib.error.HTTPError) as refused:
        opener.open(
            urllib.request.Request(
                login.full_url,
                method="POST",
                data=login.data,
                headers={"Content-Type": "application/json", "X-CSRFToken": token},
            ),
            timeout=DEADLINE,
        )
    assert refused.value.code == 400 and b"referrer" in refused.value.read().lower(), (
        "... and over https a write without one fails Flask-WTF's strict referrer check"
    )
    assert cookies and all(cookie.secure for cookie in cookies)
    connection = http.client.HTTPSConnection(server.host, server.port, timeout=DEADLINE, context=trusting)
    connection.request("GET", "/test/peer")
    seen = json.load(connection.getresponse())
    assert seen == {"addr": "127.0.0.1", "port": str(connection.sock.getsockname()[1])}, (
        "the client, not the terminator"
    )
    connection.close()


def test_plain_http_to_the_tls_port_gets_no_http_answer(serve_tls) -> None:
    server = serve_tls()
    with socket.create_connection((server.host, server.port), timeout=DEADLINE) as plain:
        plain.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        try:
            answer = plain.recv(4096)
        except ConnectionResetError:
            answer = b""
    assert not answer.startswith(b"HTTP/") and b"status" not in answer, answer


def test_a_stalled_tls_handshake_is_cut_off(serve_tls, trusting: ssl.SSLContext) -> None:
    server = serve_tls(ui_channel_timeout=1)
    with socket.create_connection((server.host, server.port), timeout=DEADLINE) as silent:
        assert silent.recv(1024) == b"", "the server must drop a client that never starts its handshake"
    half = socket.create_connection((server.host, server.port), timeout=DEADLINE)
    try:
        half.sendall(b"\x16\x03\x01\x00\xff")  # the header of a ClientHello that never comes
        assert half.recv(1024) == b""
    finally:
        half.close()
    quiet = trusting.wrap_socket(
        socket.create_connection((server.host, server.port), timeout=DEADLINE), server_hostname="127.0.0.1"
    )
    try:
        assert quiet.recv(1024) == b"", "a TLS client that sends no request must be closed after UI_CHANNEL_TIMEOUT"
    finally:
        quiet.close()
    with urllib.request.urlopen(server.url + "/api/health", timeout=DEADLINE, context=trusting) as response:
        assert json.load(response)["status"] == "ok"


def test_connections_beyond_the_limit_wait_until_one_closes(serve_tls, trusting: ssl.SSLContext) -> None:
    server = serve_tls(ui_connection_limit=8)
    held = [
        trusting.wrap_socket(
            socket.create_connection((server.host, server.port), timeout=DEADLINE), server_hostname="127.0.0.1"
        )
        for _ in range(8)
    ]
    try:
        waiting = socket.create_connection((server.host, server.port), timeout=0.5)
        with pytest.raises(TimeoutError):
            trusting.wrap_socket(waiting, server_hostname="127.0.0.1")  # accepted by the kernel, not served
        waiting.close()
        held.pop().close()
        with urllib.request.urlopen(server.url + "/api/health", timeout=DEADLINE, context=trusting) as response:
            assert json.load(response)["status"] == "ok"
    finally:
        for sock in held:
            sock.close()


def test_stop_ends_a_tls_event_stream_and_frees_the_port(serve_tls, trusting: ssl.SSLContext) -> None:
    server = serve_tls()
    opener, cookies = _opener(trusting)
    with opener.open(server.url + "/api/csrf", timeout=DEADLINE) as response:
        token = json.load(response)["csrf_token"]
    login = urllib.request.Request(
        server.url + "/api/login",
        method="POST",
        data=json.dumps({"password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json", "X-CSRFToken": token, "Referer": server.url + "/admin"},
    )
    opener.open(login, timeout=DEADLINE).close()
    cookie = "; ".join(f"{c.name}={c.value}" for c in cookies)
    connection = http.client.HTTPSConnection(server.host, server.port, timeout=DEADLINE, context=trusting)
    connection.request("GET", "/api/events", headers={"Cookie": cookie})
    stream = connection.getresponse()
    assert stream.status == 200 and stream.readline() == b"event: ready\n"
    server.stop()
    assert stream.read() == b"data: {}\n\n"
    connection.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=DEADLINE)
    server.stop()


def test_the_starting_page_is_served_over_tls_too(enrolled: CartSettings, trusting: ssl.SSLContext) -> None:
    server = UIServer.starting(enrolled, node_id="ab" * 20).start()
    try:
        assert server.url.startswith("https://")
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(server.url + "/api/health", timeout=DEADLINE, context=trusting)
        assert answer.value.code == 503 and json.load(answer.value)["status"] == "starting"
    finally:
        server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=DEADLINE)


def test_ui_tls_cert_and_key_settings_serve_a_certificate_kept_elsewhere(
    settings: CartSettings, ca: tls.SwarmCA, trusting: ssl.SSLContext, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "operator"
    tls.issue_server_certificate(ca, elsewhere, ["127.0.0.1"], days=30)
    configured = settings.model_copy(
        update={"ui_tls_cert": str(elsewhere / tls.CERT_FILE), "ui_tls_key": str(elsewhere / tls.KEY_FILE)}
    )
    server = UIServer.starting(configured, node_id="ab" * 20).start()
    try:
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(server.url + "/", timeout=DEADLINE, context=trusting)
        assert answer.value.code == 503
    finally:
        server.stop()
    with pytest.raises(tls.TLSError, match="UI_TLS_CERT and UI_TLS_KEY go together"):
        UIServer.starting(settings.model_copy(update={"ui_tls_cert": configured.ui_tls_cert}), node_id="ab" * 20)


def test_without_a_certificate_the_ui_stays_on_http(settings: CartSettings) -> None:
    server = UIServer.starting(settings, node_id="ab" * 20)
    try:
        assert server.url.startswith("http://") and server.tls is None
    finally:
        server.stop()
