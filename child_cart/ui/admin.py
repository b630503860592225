"""The admin pages: login, this cart, peers, rounds (table + charts), models, settings.

Pages render what the API returns (the same `present` functions), and
web/js/admin.js keeps them current from the event stream. Forms post with
a CSRF token; settings are validated by `RoundSettings` before anything is stored.
"""

from __future__ import annotations

import logging

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from child_cart.rounds import settings as round_settings
from child_cart.rounds.roundlog import recent_rounds
from child_cart.tasks import DEFAULT_TASK
from child_cart.ui.auth import admin_required, is_admin, log_in, log_out, safe_next
from child_cart.ui.context import cart_ui
from child_cart.ui.errors import ApiError
from child_cart.ui.present import cart_json, model_json, privacy_json, round_json, swarm_gain_json
from child_cart.ui.settings_change import change_settings
from child_cart.ui.settings_form import form_changes, setting_fields

log = logging.getLogger(__name__)

admin = Blueprint("admin", __name__, url_prefix="/admin")

PEER_COLUMNS_FIRST = ("node_id", "bridge_url", "bridge_id")


@admin.route("/login", methods=["GET", "POST"])
def login() -> str | BaseResponse | tuple[str, int, dict[str, str]]:
    target = safe_next(request.values.get("next"))
    if request.method == "GET":
        return redirect(target) if is_admin() else render_template("admin/login.html", next=target)
    try:
        log_in(request.form.get("password", ""))
    except ApiError as exc:
        return render_template("admin/login.html", next=target, error=exc.message), exc.status, exc.headers
    return redirect(target)


@admin.post("/logout")
def logout() -> BaseResponse:
    log_out()
    flash("Logged out.")
    return redirect(url_for("admin.login"))


@admin.get("")
@admin_required
def cart() -> str:
    ui = cart_ui()
    latest = ui.models.latest(DEFAULT_TASK)
    settings = round_settings.load(ui.store)
    return render_template(
        "admin/cart.html",
        cart=cart_json(ui.store, ui.node, latest),
        settings=settings,
        last_round=_last_round(),
        privacy=privacy_json(ui.store, settings),
    )


@admin.get("/peers")
@admin_required
def peers() -> str:
    node = cart_ui().node
    found = node.peers()
    return render_template("admin/peers.html", peers=found, columns=_peer_columns(found), node_id=node.node_id)


@admin.get("/rounds")
@admin_required
def rounds() -> str:
    records = recent_rounds(cart_ui().store)
    return render_template("admin/rounds.html", rounds=[round_json(r) for r in records], gain=swarm_gain_json(records))


@admin.get("/models")
@admin_required
def models() -> str:
    return render_template("admin/models.html", models=[model_json(v) for v in cart_ui().models.versions(DEFAULT_TASK)])


@admin.route("/settings", methods=["GET", "POST"])
@admin_required
def settings() -> str | BaseResponse | tuple[str, int]:
    ui = cart_ui()
    if request.method == "GET":
        return _settings_page(round_settings.load(ui.store).model_dump(), {})
    try:
        change_settings(ui, form_changes(request.form), strict=False)
    except ApiError as exc:
        return _settings_page(request.form.to_dict(), exc.fields or {"form": exc.message}), exc.status
    flash("Settings saved. They apply from the next round.")
    return redirect(url_for("admin.settings"))


def _peer_columns(peers: list[dict]) -> list[str]:
    """Who and where first, then whatever else the directory says, alphabetically."""
    keys = {key for peer in peers for key in peer}
    return [k for k in PEER_COLUMNS_FIRST if k in keys] + sorted(keys - set(PEER_COLUMNS_FIRST))


def _settings_page(values: dict, errors: dict[str, str]) -> str:
    return render_template("admin/settings.html", fields=setting_fields(), values=values, errors=errors)


def _last_round() -> dict | None:
    latest = recent_rounds(cart_ui().store, limit=1)
    return round_json(latest[0]) if latest else None
