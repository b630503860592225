"""What the cart's UI answers while the node is still loading: one small WSGI app, no Flask, no model runtime.

`fedcart node` starts listening with this app before it imports TensorFlow, so
the URL `make run` prints answers at once. Every request gets 503 with a
`Retry-After`: `/api/health` says `{"status": "starting", ...}` (monitors and
`fedcart swarm`'s status table read it), other `/api/` routes give the API's
error shape, pages get a short page that reloads itself until the real UI
(`server.UIServer.mount`) takes over.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable
from typing import Any

STARTING = "starting: loading the model runtime"
RETRY_SECONDS = 2

StartResponse = Callable[..., Any]

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{retry}">
<title>fedcart · starting</title>
</head>
<body>
<main>
<h1>fedcart cart</h1>
<p role="status" id="starting">{message}</p>
<p>This page reloads by itself; the cart is ready in a few seconds.</p>
</main>
</body>
</html>
"""

HEADERS = [
    ("Retry-After", str(RETRY_SECONDS)),
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("Referrer-Policy", "no-referrer"),
]


class StartingApp:
    """The WSGI app of a cart that is not ready yet; `message` is what it says (the loading step)."""

    def __init__(self, node_id: str, message: str = STARTING) -> None:
        self.node_id = node_id
        self.message = message

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", "/"))
        if path == "/api/health":
            body = {"status": "starting", "message": self.message, "node_id": self.node_id, "connected": False}
            return _respond(start_response, "application/json", json.dumps(body))
        if path.startswith("/api/"):
            body = {"error": {"code": "starting", "message": self.message}}
            return _respond(start_response, "application/json", json.dumps(body))
        page = PAGE.format(retry=RETRY_SECONDS, message=html.escape(self.message))
        return _respond(start_response, "text/html; charset=utf-8", page)


def _respond(start_response: StartResponse, content_type: str, text: str) -> list[bytes]:
    data = text.encode("utf-8")
    start_response(
        "503 Service Unavailable", [("Content-Type", content_type), ("Content-Length", str(len(data))), *HEADERS]
    )
    return [data]
