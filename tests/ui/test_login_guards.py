"""Admin secrets and login throttling: generated password, stored hashes, growing delays."""

from __future__ import annotations

import logging
import stat

import pytest
from werkzeug.security import check_password_hash

from child_cart.ui import create_app, credentials
from child_cart.ui.context import EXTENSION
from child_cart.ui.cors import parse_origins
from child_cart.ui.throttle import LoginThrottle

from .conftest import PASSWORD, Api


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_generated_password_is_logged_once_and_only_its_hash_is_kept(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="child_cart.ui.credentials")
    first = credentials.admin_password_hash("", tmp_path)
    password = caplog.records[0].args[0]
    stored = tmp_path / credentials.UI_DIR / credentials.PASSWORD_HASH_FILE
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert password not in stored.read_text()
    assert check_password_hash(first, password)
    caplog.clear()
    assert credentials.admin_password_hash("", tmp_path) == first
    assert caplog.records == []


def test_configured_hash_wins_and_nothing_is_written(tmp_path):
    assert credentials.admin_password_hash("scrypt:configured", tmp_path) == "scrypt:configured"
    assert not (tmp_path / credentials.UI_DIR).exists()


def test_session_secret_survives_a_restart(tmp_path):
    first = credentials.session_secret("", tmp_path)
    assert len(first) == 64 and credentials.session_secret("", tmp_path) == first
    assert credentials.session_secret("from-env", tmp_path) == "from-env"


def test_throttle_delays_grow_after_free_attempts_and_success_clears():
    clock = FakeClock()
    throttle = LoginThrottle(free_attempts=2, max_delay=8.0, clock=clock)
    waits = []
    for _ in range(7):
        throttle.failed("10.0.0.1")
        waits.append(throttle.wait_seconds("10.0.0.1"))
    assert waits == [0.0, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert throttle.wait_seconds("10.0.0.2") == 0.0
    clock.now += 8.0
    assert throttle.wait_seconds("10.0.0.1") == 0.0
    throttle.succeeded("10.0.0.1")
    throttle.failed("10.0.0.1")
    assert throttle.wait_seconds("10.0.0.1") == 0.0


def test_api_login_is_throttled_even_with_the_right_password(app, api: Api):
    clock = FakeClock()
    app.extensions[EXTENSION].throttle = LoginThrottle(free_attempts=3, max_delay=300.0, clock=clock)
    for _ in range(3):
        assert api.login("wrong").status_code == 401
    refused = api.login(PASSWORD)
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "1")
    assert refused.get_json()["error"]["code"] == "too_many_attempts"
    clock.now += 1.0
    assert api.login("wrong").status_code == 401
    assert api.login(PASSWORD).headers["Retry-After"] == "2"
    clock.now += 2.0
    assert api.login(PASSWORD).status_code == 200


@pytest.mark.parametrize("origins", ["*", "http://ok.example, *", "ftp://files.example", "http://x.example/path"])
def test_cors_refuses_wildcards_and_non_origins(origins):
    with pytest.raises(ValueError, match="UI_CORS_ORIGINS"):
        parse_origins(origins)


def test_cors_allows_only_listed_origins(settings, store, bus, node):
    app = create_app(settings.model_copy(update={"ui_cors_origins": "http://phone.local:8080"}), store, bus, node)
    client = app.test_client()
    allowed = client.get("/api/products", headers={"Origin": "http://phone.local:8080"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "http://phone.local:8080"
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    other = client.get("/api/products", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "Access-Control-Allow-Origin" not in client.get("/", headers={"Origin": "http://phone.local:8080"}).headers
