"""Fixtures for the cart UI tests: a cart (settings, store, bus, offline node) in tmp_path and its Flask app.

The admin password hash is a cheap werkzeug pbkdf2 one: over a hundred tests log in,
and werkzeug's default (scrypt, what a real cart generates) is slow on purpose.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from child_cart.events import EventBus
from child_cart.rounds.roundlog import RoundRecord
from child_cart.settings import CartSettings
from child_cart.store import Store, load_catalogue, open_store
from child_cart.ui import OfflineNode, create_app

PASSWORD = "correct horse battery staple"
NODE_ID = "c0ffee" * 6 + "c0ff"
MAX_UPLOAD = 64 * 1024
MAX_JSON = 4096


@pytest.fixture(scope="session")
def password_hash() -> str:
    return generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")


@pytest.fixture
def settings(tmp_path: Path, password_hash: str) -> CartSettings:
    return CartSettings(
        _env_file=None,
        data_dir=tmp_path / "cart",
        ui_admin_password_hash=password_hash,
        max_upload_bytes=MAX_UPLOAD,
        ui_max_json_bytes=MAX_JSON,
    )


@pytest.fixture
def store(settings: CartSettings) -> Iterator[Store]:
    opened = open_store(settings.data_dir, catalogue=load_catalogue())
    yield opened
    opened.close()


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def node() -> OfflineNode:
    return OfflineNode(node_id=NODE_ID, bridge_url="http://127.0.0.1:8470")


@pytest.fixture
def app(settings: CartSettings, store: Store, bus: EventBus, node: OfflineNode) -> Flask:
    return create_app(settings, store, bus, node)


@dataclass
class Api:
    """A test client that speaks the API the way the pages do: CSRF header on every write."""

    client: FlaskClient
    token: str = ""

    def csrf(self) -> str:
        if not self.token:
            self.token = self.client.get("/api/csrf").get_json()["csrf_token"]
        return self.token

    def call(self, method: str, path: str, **kwargs: Any):
        """`image=<bytes>` uploads the bytes as the multipart field the scan route reads."""
        headers = kwargs.pop("headers", {})
        if method != "GET":
            headers.setdefault("X-CSRFToken", self.csrf())
        return self.client.open(path, method=method, headers=headers, **multipart(kwargs))

    def login(self, password: str = PASSWORD):
        response = self.call("POST", "/api/login", json={"password": password})
        if response.status_code == 200:
            self.token = response.get_json()["csrf_token"]
        return response


def multipart(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Request kwargs with `image=<bytes>` turned into a fresh multipart upload (a stream is read only once)."""
    if "image" not in kwargs:
        return kwargs
    rest = {k: v for k, v in kwargs.items() if k != "image"}
    return {**rest, "data": {"image": (io.BytesIO(kwargs["image"]), "code.png")}, "content_type": "multipart/form-data"}


@pytest.fixture
def api(app: Flask) -> Api:
    return Api(app.test_client())


@pytest.fixture
def admin_api(api: Api) -> Api:
    assert api.login().status_code == 200
    return api


def round_record(n: int, accepted: bool = True) -> RoundRecord:
    """A plausible finished round: accuracy rising with n, some bytes and timings, a local-only model behind."""
    started = datetime(2026, 11, 23, 10, 0, tzinfo=UTC) + timedelta(minutes=n)
    local = {"accuracy": 0.30 + 0.02 * n, "loss": 1.9 - 0.05 * n}
    aggregated = {"accuracy": 0.33 + 0.025 * n, "loss": 1.8 - 0.06 * n}
    kept = aggregated if accepted else local
    local_only = {"accuracy": 0.29 + 0.01 * n, "loss": 1.95 - 0.03 * n}
    return RoundRecord(
        node_id=NODE_ID,
        round=n,
        task="recommend",
        aggregator="fedavg",
        started=started,
        finished=started + timedelta(seconds=4 + n % 3),
        peers_asked=["a" * 40, "b" * 40, "d" * 40],
        peers_answered=["a" * 40, "b" * 40],
        samples={NODE_ID: 800, "a" * 40: 750, "b" * 40: 900},
        bytes_in=180_000 + 1000 * n,
        bytes_out=95_000,
        timings={"train": 2.5, "exchange": 1.0 + 0.1 * n, "aggregate": 0.2},
        local=local,
        aggregated=aggregated,
        metric="accuracy",
        accepted=accepted,
        reason="" if accepted else "aggregate worse than local beyond tolerance",
        model_version=n + 1 if accepted else None,
        kept="aggregate" if accepted else "local",
        kept_metrics=kept,
        local_only=local_only,
        swarm_gain=round(kept["accuracy"] - local_only["accuracy"], 6),
        swarm_gain_error=round(0.03 - 0.001 * n, 6),
        swarm_model="adopted the aggregate: within 0.08 of the swarm model",
        swarm_metrics=aggregated,
    )
