"""Serving from a background thread: real HTTP on 127.0.0.1, and a stop that ends open event streams."""

from __future__ import annotations

import http.client
import json
import socket
import urllib.request
from http.cookiejar import CookieJar

import pytest

from child_cart.ui import serve
from child_cart.ui.server import UIServer

from .conftest import PASSWORD

STREAM_DEADLINE = 5.0


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
