"""Cross-origin access to /api/: only for the origins listed in UI_CORS_ORIGINS, never for everyone.

The API answers with the admin's session cookie, so allowing `*` would let any
web page a logged-in admin visits drive it; an explicit list (or nothing,
the default) is the only setting this accepts.
"""

from __future__ import annotations

import logging
import re

from flask import Flask
from flask_cors import CORS

log = logging.getLogger(__name__)

ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+$")


def parse_origins(text: str) -> list[str]:
    """The comma-separated origins of UI_CORS_ORIGINS; raises ValueError for `*` or anything not scheme://host[:port]."""
    origins = [part.strip().rstrip("/") for part in text.split(",") if part.strip()]
    for origin in origins:
        if origin == "*":
            raise ValueError(
                "UI_CORS_ORIGINS must list origins explicitly; '*' would let any site use an admin's session"
            )
        if not ORIGIN.match(origin):
            raise ValueError(f"UI_CORS_ORIGINS entry {origin!r} is not an origin like http://host:port")
    return origins


def configure_cors(app: Flask, origins_text: str) -> None:
    """Enable CORS on /api/* for the listed origins, with credentials; nothing when the list is empty."""
    origins = parse_origins(origins_text)
    if not origins:
        return
    CORS(
        app,
        resources={r"/api/*": {"origins": origins}},
        supports_credentials=True,
        allow_headers=["Content-Type", "X-CSRFToken"],
        methods=["GET", "POST", "PUT", "DELETE"],
    )
    log.info("CORS allowed for %s", ", ".join(origins))
