"""HTML pages through the test client: login flow, guarded admin pages, the settings form, headers."""

from __future__ import annotations

import numpy as np
import pytest

from child_cart.rounds import settings as round_settings
from child_cart.rounds.roundlog import log_round
from child_cart.store import Store
from child_cart.ui import NodeView, create_app

from .conftest import PASSWORD, Api, round_record

ADMIN_PAGES = ["/admin", "/admin/peers", "/admin/swarm", "/admin/rounds", "/admin/models", "/admin/settings"]


def _form_login(api: Api, password: str, next_path: str = "/admin"):
    return api.client.post("/admin/login", data={"csrf_token": api.csrf(), "password": password, "next": next_path})


def test_home_page_shows_an_empty_bill_and_profiles(api: Api):
    page = api.client.get("/").get_data(as_text=True)
    assert 'name="csrf-token"' in page and "The bill is empty" in page
    assert '<option value="student"' in page


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_redirect_to_login(api: Api, path: str):
    response = api.client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login?next=")


def test_wrong_password_refused_then_right_one_lands_on_next(api: Api):
    refused = _form_login(api, "nope", "/admin/rounds")
    assert refused.status_code == 401
    assert "Wrong password." in refused.get_data(as_text=True)
    accepted = _form_login(api, PASSWORD, "/admin/rounds")
    assert (accepted.status_code, accepted.headers["Location"]) == (302, "/admin/rounds")


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"]
)
def test_login_never_redirects_off_site(api: Api, target: str):
    assert _form_login(api, PASSWORD, target).headers["Location"] == "/admin"


def test_form_without_csrf_token_is_refused(api: Api):
    response = api.client.post("/admin/login", data={"password": PASSWORD})
    assert response.status_code == 400
    assert api.client.get("/api/session").get_json() == {"admin": False}


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_render_for_an_admin(admin_api: Api, store: Store, path: str):
    log_round(store, round_record(0))
    response = admin_api.client.get(path)
    assert response.status_code == 200
    assert "Log out" in response.get_data(as_text=True)


def test_settings_form_saves_valid_values(admin_api: Api, store: Store):
    form = {
        **round_settings.RoundSettings().model_dump(),
        "aggregator": "median",
        "k": "4",
        "csrf_token": admin_api.csrf(),
    }
    response = admin_api.client.post("/admin/settings", data=form)
    assert (response.status_code, response.headers["Location"]) == (302, "/admin/settings")
    saved = round_settings.load(store)
    assert (saved.aggregator, saved.k) == ("median", 4)
    assert "Settings saved" in admin_api.client.get("/admin/settings").get_data(as_text=True)


def test_settings_form_refuses_bad_values_and_stores_nothing(admin_api: Api, store: Store):
    form = {"aggregator": "krum", "k": "0", "tolerance": "lots", "csrf_token": admin_api.csrf()}
    response = admin_api.client.post("/admin/settings", data=form)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="error-k"' in page and 'id="error-tolerance"' in page and 'id="error-aggregator"' not in page
    assert round_settings.load(store) == round_settings.RoundSettings()


def test_logout_ends_the_session(admin_api: Api):
    response = admin_api.client.post("/admin/logout", data={"csrf_token": admin_api.csrf()})
    assert response.status_code == 302
    assert admin_api.client.get("/admin").status_code == 302


def test_security_headers_on_pages_and_api(api: Api):
    for path in ("/", "/api/health"):
        headers = api.client.get(path).headers
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"


def test_session_cookie_is_http_only_and_named_per_cart(api: Api):
    cookie = api.client.get("/api/csrf").headers["Set-Cookie"]
    assert cookie.startswith("fedcart_c0ffeec0ffee=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/static/css/app.css", 200),
        ("/static/js/home.js", 200),
        ("/static/vendor/chart.js", 200),
        ("/static/package.json", 404),
        ("/static/node_modules/chart.js/package.json", 404),
        ("/static/js/../package.json", 404),
    ],
)
def test_only_front_end_assets_are_served(api: Api, path: str, status: int):
    assert api.client.get(path).status_code == status


class ConnectedNode:
    """A NodeView as the node runtime provides it: connected, with a bridge directory."""

    node_id = "c0ffee" * 6 + "c0ff"
    bridge_url = "http://127.0.0.1:8470"
    connected = True

    def peers(self) -> list[dict]:
        return [
            {"node_id": self.node_id, "bridge_id": "b" * 40, "bridge_url": self.bridge_url},
            {"node_id": "d" * 40, "bridge_id": "b" * 40, "bridge_url": self.bridge_url, "public_key": "ab" * 32},
        ]


def test_peers_and_connection_come_from_the_node_view(settings, store, bus):
    node = ConnectedNode()
    assert isinstance(node, NodeView)
    api = Api(create_app(settings, store, bus, node).test_client())
    api.login()
    assert api.call("GET", "/api/peers").get_json()["peers"] == node.peers()
    assert api.call("GET", "/api/cart").get_json()["connected"] is True
    page = api.client.get("/admin/peers").get_data(as_text=True)
    assert page.index("Cart (node id)") < page.index("Bridge URL") < page.index("Signing key (Ed25519)")
    assert f'data-copy="{"d" * 40}"' in page and f'<code title="{"d" * 40}">{"d" * 12}…</code>' in page
    assert f'data-copy="{"ab" * 32}"' in page, "keys are shortened, with a button that copies the whole key"
    assert "this cart" in page and "same bridge" in page


def test_swarm_view_lists_every_listed_cart_with_its_last_round_and_score(settings, store, bus):
    node, peer = ConnectedNode(), "d" * 40
    for n in range(3):
        answered = n < 2
        log_round(
            store,
            round_record(n).model_copy(
                update={
                    "peers_asked": [peer],
                    "peers_answered": [peer] if answered else [],
                    "received": {peer: {"accuracy": 0.5 + n / 10, "loss": 1.5}} if answered else {},
                    "samples": {node.node_id: 800 + n, peer: 640} if answered else {node.node_id: 802},
                    "skipped": {} if answered else {peer: "peer declined: busy"},
                }
            ),
        )
    api = Api(create_app(settings, store, bus, node).test_client())
    api.login()
    swarm = api.call("GET", "/api/swarm").get_json()
    assert swarm["connected"] is True and swarm["rounds_read"] == 3
    me, other = swarm["carts"]
    kept = round_record(2).kept_metrics["accuracy"]
    assert (me["this_cart"], me["last_round"], me["score"], me["rows"], me["metric"]) == (
        True,
        2,
        kept,
        802,
        "accuracy",
    )
    assert (other["this_cart"], other["last_round"], other["score"], other["rows"]) == (False, 1, 0.6, 640)
    assert other["bridge_id"] == "b" * 40 and other["note"] == "asked in round 2: peer declined: busy"
    page = api.client.get("/admin/swarm").get_data(as_text=True)
    row = page.split(f'data-node="{peer}"', 1)[1].split("</tr>", 1)[0]
    assert "top-1 accuracy 0.600" in row and ">640<" in row and "peer declined: busy" in row


def test_swarm_view_of_an_offline_cart_lists_only_itself(admin_api: Api):
    swarm = admin_api.call("GET", "/api/swarm").get_json()
    assert [c["this_cart"] for c in swarm["carts"]] == [True] and swarm["carts"][0]["note"] == "no round yet"
    assert "not connected to its bridge" in admin_api.client.get("/admin/swarm").get_data(as_text=True)


def test_every_task_the_cart_has_shows_on_the_models_and_rounds_pages(admin_api: Api, store: Store, settings):
    from child_cart.models.versions import ModelVersions

    models = ModelVersions(store, settings.data_dir)
    models.save("recommend", [np.zeros((2, 2), np.float32)], samples=494, metrics={"accuracy": 0.41, "loss": 1.2})
    models.save("iot-anomaly", [np.zeros((2, 2), np.float32)], samples=300, metrics={"f1": 0.93, "threshold": 0.2})
    log_round(store, round_record(0))
    log_round(store, round_record(1).model_copy(update={"task": "iot-anomaly", "metric": "f1"}))
    page = admin_api.client.get("/admin/models").get_data(as_text=True)
    assert page.index('data-task="recommend"') < page.index('data-task="iot-anomaly"'), "the running task first"
    assert "this cart runs it" in page and ">0.930<" in page and ">494<" in page and "Own rows" in page
    listed = admin_api.call("GET", "/api/models").get_json()["models"]
    assert [m["task"] for m in listed] == ["recommend", "iot-anomaly"]
    assert [m["task"] for m in admin_api.call("GET", "/api/models?task=iot-anomaly").get_json()["models"]] == [
        "iot-anomaly"
    ]
    rounds = admin_api.client.get("/admin/rounds").get_data(as_text=True)
    assert 'data-task="recommend" data-metric="accuracy"' in rounds and "?task=iot-anomaly" in rounds
    iot = admin_api.client.get("/admin/rounds?task=iot-anomaly").get_data(as_text=True)
    assert 'data-task="iot-anomaly" data-metric="f1"' in iot and "held-out F1" in iot
    assert admin_api.client.get("/admin/rounds?task=nope").status_code == 404
    only = admin_api.call("GET", "/api/rounds?task=iot-anomaly").get_json()
    assert [r["round"] for r in only["rounds"]] == [1] and only["swarm_gain"]["metric"] == "f1"


def test_admin_login_and_logout_keep_the_cart_screens_csrf_token(api: Api):
    token = api.csrf()
    api.login()
    api.call("POST", "/api/logout")
    response = api.client.post("/api/bill/items", json={"product_id": "P001"}, headers={"X-CSRFToken": token})
    assert response.status_code == 200
    assert api.client.get("/api/session").get_json() == {"admin": False}


def test_cart_page_shows_privacy_off_then_epsilon_spent_and_left(admin_api: Api, store: Store):
    from child_cart.rounds import accountant

    assert "Off: updates leave this cart" in admin_api.client.get("/admin").get_data(as_text=True)
    round_settings.save(store, {"dp_noise_multiplier": 1.0, "dp_clip_norm": 0.5, "dp_epsilon_budget": 8.0})
    for n in range(2):
        accountant.record_spend(store, accountant.Spend(round=n, task="recommend", noise_multiplier=1.0, clip_norm=0.5))
    spent = accountant.epsilon([1.0, 1.0], 1e-5)  # 7.08: a third round (8.9) would go over 8
    page = admin_api.client.get("/admin").get_data(as_text=True)
    assert f"{spent:.3f} in 2 shared rounds (δ = 1e-05)" in page
    assert f"{8.0 - spent:.3f} of a budget of 8" in page
    assert "privacy budget spent</span> this cart no longer shares" in page
    round_settings.save(store, {"dp_epsilon_budget": 20.0})
    page = admin_api.client.get("/admin").get_data(as_text=True)
    assert f"{20.0 - spent:.3f} of a budget of 20" in page and 'class="badge good">sharing<' in page
