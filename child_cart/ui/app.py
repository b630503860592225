"""The app factory: one Flask app per cart, wired to that cart's settings, store, event bus and node."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from child_cart.events import EventBus
from child_cart.models.versions import ModelVersions
from child_cart.settings import CartSettings
from child_cart.shop import Shop
from child_cart.store import Store, load_catalogue
from child_cart.tasks.recommender import Recommender
from child_cart.ui import credentials
from child_cart.ui.admin import admin
from child_cart.ui.api_admin import api_admin
from child_cart.ui.api_auth import api_auth
from child_cart.ui.api_shop import api_shop
from child_cart.ui.assets import assets, configure_assets
from child_cart.ui.body import MAX_JSON_BYTES_KEY
from child_cart.ui.context import EXTENSION, CartUI
from child_cart.ui.cors import configure_cors
from child_cart.ui.errors import register_error_handlers
from child_cart.ui.headers import register_security_headers
from child_cart.ui.home import home
from child_cart.ui.node import NodeView
from child_cart.ui.present import METRIC_NAMES, metric_name
from child_cart.ui.server import max_content_length
from child_cart.ui.stream import EventStream
from child_cart.ui.throttle import LoginThrottle

log = logging.getLogger(__name__)

BLUEPRINTS = (home, admin, api_shop, api_auth, api_admin, assets)


def create_app(settings: CartSettings, store: Store, bus: EventBus, node: NodeView) -> Flask:
    """Build the cart's UI app; it serves until its server stops and keeps no state outside `store` and the data dir."""
    app = Flask(__name__, static_folder=None)
    app.config.update(_config(settings, node))
    CSRFProtect(app)
    configure_cors(app, settings.ui_cors_origins)
    configure_assets(app, settings)
    register_security_headers(app)
    register_error_handlers(app)
    app.extensions[EXTENSION] = _cart_ui(settings, store, bus, node)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    hint = password_hint(settings)
    app.context_processor(lambda: {"node_id": node.node_id, "password_hint": hint, "metric_names": METRIC_NAMES})
    app.add_template_filter(metric_name)
    log.debug("UI app ready for node %s", node.node_id[:12])
    return app


def _config(settings: CartSettings, node: NodeView) -> dict:
    """Flask settings; the cookie name carries the node id because cookies ignore ports and carts share hosts."""
    return {
        "SECRET_KEY": credentials.session_secret(settings.ui_session_secret, settings.data_dir),
        "SESSION_COOKIE_NAME": f"fedcart_{node.node_id[:12]}",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": settings.ui_secure_cookies,
        "PERMANENT_SESSION_LIFETIME": timedelta(minutes=settings.ui_session_minutes),
        "MAX_CONTENT_LENGTH": max_content_length(settings),
        "WTF_CSRF_TIME_LIMIT": None,
        MAX_JSON_BYTES_KEY: settings.ui_max_json_bytes,
    }


def password_hint(settings: CartSettings) -> str:
    """Where the admin password is, as the login page says it: where whoever started the cart put it
    (UI_ADMIN_PASSWORD_HINT: `fedcart swarm` names its terminal and its `admin_password` file), else
    from how the password was set."""
    if settings.ui_admin_password_hint:
        return settings.ui_admin_password_hint
    if settings.ui_admin_password_hash:
        return "The admin password is the one whose hash this cart was given in UI_ADMIN_PASSWORD_HASH."
    return (
        "First start? The generated admin password was printed once in this cart's log when it first started "
        f"(only its hash is kept, in {settings.data_dir / credentials.UI_DIR})."
    )


def _cart_ui(settings: CartSettings, store: Store, bus: EventBus, node: NodeView) -> CartUI:
    catalogue = load_catalogue(settings.catalogue_path)
    shop = Shop(store, node.node_id, catalogue, settings.max_upload_bytes)
    receipt = shop.recover()
    if receipt is not None:
        log.warning("finished checkout %s that a crash interrupted", receipt.checkout_id)
    return CartUI(
        settings=settings,
        store=store,
        bus=bus,
        node=node,
        catalogue=catalogue,
        shop=shop,
        models=ModelVersions(store, settings.data_dir),
        recommender=Recommender(store, settings),
        stream=EventStream(bus, max_streams=settings.ui_max_streams),
        throttle=LoginThrottle(settings.ui_login_free_attempts, settings.ui_login_max_delay),
        password_hash=credentials.admin_password_hash(settings.ui_admin_password_hash, settings.data_dir),
    )
