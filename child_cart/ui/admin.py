"""The admin pages: login, this cart, peers, swarm, rounds (table + charts), models, settings.

Pages render what the API returns (the same `present` functions), and
web/js/admin.js keeps them current from the event stream. Forms post with
a CSRF token; settings are validated by `RoundSettings` before anything is stored.
Every page covers every task the cart has data of, the one it runs now first;
every figure says what it counts, in the same words on every page.
"""

from __future__ import annotations

import logging

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from child_cart.rounds import settings as round_settings
from child_cart.rounds.roundlog import recent_rounds
from child_cart.tasks import get_task
from child_cart.ui.auth import admin_required, is_admin, log_in, log_out, safe_next
from child_cart.ui.context import cart_ui
from child_cart.ui.errors import ApiError
from child_cart.ui.present import (
    COUNT_LABELS,
    GAIN_LOOKBACK,
    SWARM_LOOKBACK,
    cart_json,
    known_tasks,
    metric_names,
    model_json,
    privacy_json,
    round_json,
    swarm_gain_json,
    swarm_json,
    task_rounds,
)
from child_cart.ui.settings_change import change_settings
from child_cart.ui.settings_form import form_changes, setting_fields

log = logging.getLogger(__name__)

admin = Blueprint("admin", __name__, url_prefix="/admin")

PEER_COLUMNS_FIRST = ("node_id", "bridge_url", "bridge_id")
PEER_LABELS = {
    "node_id": "Cart (node id)",
    "bridge_url": "Bridge URL",
    "bridge_id": "Bridge (node id)",
    "public_key": "Signing key (Ed25519)",
    "kx_public_key": "Encryption key (X25519)",
    "local": "On this cart's bridge",
    "task": "Task",
    "ready": "Update on offer",
}
KEY_COLUMNS = frozenset({"node_id", "bridge_id", "public_key", "kx_public_key"})
"""Columns holding ids and keys: shown shortened, with a button that copies the whole value."""
ROUNDS_SHOWN = 200


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
    task = ui.settings.task
    latest = ui.models.latest(task)
    settings = round_settings.load(ui.store)
    return render_template(
        "admin/cart.html",
        cart=cart_json(ui.store, ui.node, latest, task),
        count_labels=COUNT_LABELS,
        latest=model_json(latest) if latest else None,
        settings=settings,
        last_round=_last_round(),
        privacy=privacy_json(ui.store, settings),
    )


@admin.get("/peers")
@admin_required
def peers() -> str:
    node = cart_ui().node
    found = node.peers()
    return render_template(
        "admin/peers.html",
        peers=found,
        columns=_peer_columns(found),
        labels=PEER_LABELS,
        key_columns=KEY_COLUMNS,
        node_id=node.node_id,
        own_bridge=next((p.get("bridge_id") for p in found if p.get("node_id") == node.node_id), None),
    )


@admin.get("/swarm")
@admin_required
def swarm() -> str:
    ui = cart_ui()
    return render_template("admin/swarm.html", swarm=swarm_json(ui.node, recent_rounds(ui.store, SWARM_LOOKBACK)))


@admin.get("/rounds")
@admin_required
def rounds() -> str:
    """One task's rounds (`?task=`; default: the task the cart runs, or the newest round's when it has none)."""
    ui = cart_ui()
    tasks = known_tasks(ui.store, ui.settings.task)
    task = request.args.get("task")
    if task is None:
        newest = recent_rounds(ui.store, 1)
        own = task_rounds(ui.store, ui.settings.task, 1)
        task = ui.settings.task if own or not newest else newest[-1].task
    elif task not in tasks:
        abort(404)
    records = task_rounds(ui.store, task, max(ROUNDS_SHOWN, GAIN_LOOKBACK))
    return render_template(
        "admin/rounds.html",
        rounds=[round_json(r) for r in records[-ROUNDS_SHOWN:]],
        gain=swarm_gain_json(records),
        task=task,
        tasks=tasks,
        metric=_primary_metric(task, records),
    )


@admin.get("/models")
@admin_required
def models() -> str:
    """Every task's model versions, the task the cart runs first, each with its own metric columns."""
    ui = cart_ui()
    groups = []
    for task in known_tasks(ui.store, ui.settings.task):
        versions = ui.models.versions(task)
        if versions or task == ui.settings.task:
            primary = _primary_metric(task, [])
            groups.append(
                {
                    "task": task,
                    "running": task == ui.settings.task,
                    "metrics": metric_names(versions, primary),
                    "models": [model_json(v) for v in versions],
                }
            )
    return render_template("admin/models.html", groups=groups)


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


def _primary_metric(task: str, records: list) -> str:
    """The metric a task is judged by: what its newest round logged, else what the task says, else accuracy."""
    logged = next((r.metric for r in reversed(records) if r.metric), "")
    if logged:
        return logged
    try:
        return get_task(task).primary_metric
    except KeyError:
        return "accuracy"


def _peer_columns(peers: list[dict]) -> list[str]:
    """Who and where first, then whatever else the directory says, alphabetically."""
    keys = {key for peer in peers for key in peer}
    return [k for k in PEER_COLUMNS_FIRST if k in keys] + sorted(keys - set(PEER_COLUMNS_FIRST))


def _settings_page(values: dict, errors: dict[str, str]) -> str:
    return render_template("admin/settings.html", fields=setting_fields(), values=values, errors=errors)


def _last_round() -> dict | None:
    latest = recent_rounds(cart_ui().store, limit=1)
    return round_json(latest[0]) if latest else None
