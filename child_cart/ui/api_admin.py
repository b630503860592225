"""The admin's JSON API: this cart, peers, the swarm, rounds, models (with .tflite download), settings and the live
stream. Rounds and models cover every task unless `?task=` names one.

Every route needs an admin session; changing settings also needs the CSRF token.
"""

from __future__ import annotations

import io
import logging

from flask import Blueprint, Response, jsonify, request, send_file
from pydantic import BaseModel, ConfigDict, Field

from child_cart.models.versions import ModelCorrupt
from child_cart.rounds import settings as round_settings
from child_cart.rounds.roundlog import recent_rounds
from child_cart.tasks import task_names
from child_cart.ui.auth import admin_required
from child_cart.ui.body import json_object, validated
from child_cart.ui.context import cart_ui
from child_cart.ui.errors import ApiError
from child_cart.ui.present import (
    GAIN_LOOKBACK,
    SWARM_LOOKBACK,
    cart_json,
    known_tasks,
    model_json,
    round_json,
    swarm_gain_json,
    swarm_json,
    task_rounds,
)
from child_cart.ui.settings_change import change_settings
from child_cart.ui.settings_form import setting_fields

log = logging.getLogger(__name__)

api_admin = Blueprint("api_admin", __name__, url_prefix="/api")

MAX_ROUNDS = 1000


TASK_PATTERN = r"^[a-z0-9_-]{1,32}$"


class RoundsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(200, ge=1, le=MAX_ROUNDS)
    task: str | None = Field(None, pattern=TASK_PATTERN)


class ModelsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str | None = Field(None, pattern=TASK_PATTERN)


@api_admin.get("/cart")
@admin_required
def cart() -> Response:
    ui = cart_ui()
    task = ui.settings.task
    return jsonify(cart_json(ui.store, ui.node, ui.models.latest(task), task))


@api_admin.get("/peers")
@admin_required
def peers() -> Response:
    return jsonify(peers=cart_ui().node.peers())


@api_admin.get("/swarm")
@admin_required
def swarm() -> Response:
    """Every cart the bridge lists, with its last round and score as this cart's round log saw them."""
    ui = cart_ui()
    return jsonify(swarm_json(ui.node, recent_rounds(ui.store, SWARM_LOOKBACK)))


@api_admin.get("/rounds")
@admin_required
def rounds() -> Response:
    """The latest `limit` rounds (of `task`, if given), oldest first, and the swarm-gain headline over the latest
    rounds, whatever `limit` is."""
    query = validated(RoundsQuery, request.args.to_dict(), strict=False)
    records = task_rounds(cart_ui().store, query.task, max(query.limit, GAIN_LOOKBACK))
    return jsonify(rounds=[round_json(r) for r in records[-query.limit :]], swarm_gain=swarm_gain_json(records))


@api_admin.get("/models")
@admin_required
def models() -> Response:
    """Model versions of every task (or of `task`): the task the cart runs first, each task's newest first."""
    query = validated(ModelsQuery, request.args.to_dict(), strict=False)
    ui = cart_ui()
    if query.task is not None and query.task not in task_names():
        raise ApiError(422, "unknown_task", f"Unknown task {query.task!r}; known tasks: {', '.join(task_names())}.")
    tasks = [query.task] if query.task is not None else known_tasks(ui.store, ui.settings.task)
    return jsonify(models=[model_json(v) for task in tasks for v in ui.models.versions(task)])


@api_admin.get("/models/<version_id>/tflite")
@admin_required
def download_tflite(version_id: str) -> Response:
    models = cart_ui().models
    try:
        version = models.get(version_id)
    except KeyError as exc:
        raise ApiError(404, "unknown_model", f"There is no model version {version_id!r}.") from exc
    if version.tflite_path is None:
        raise ApiError(409, "not_exported", f"{version_id} has not been exported to TFLite yet.")
    try:
        data = models.read_tflite(version)
    except ModelCorrupt as exc:
        log.error("download of %s refused: %s", version_id, exc)
        raise ApiError(500, "model_corrupt", f"The stored TFLite file of {version_id} is missing or damaged.") from exc
    response = send_file(
        io.BytesIO(data), mimetype="application/octet-stream", as_attachment=True, download_name=f"{version_id}.tflite"
    )
    response.headers["X-Content-SHA256"] = version.tflite_sha256 or ""
    return response


@api_admin.get("/settings")
@admin_required
def get_settings() -> Response:
    current = round_settings.load(cart_ui().store)
    return jsonify(settings=current.model_dump(), fields=[f.to_json() for f in setting_fields()])


@api_admin.put("/settings")
@admin_required
def put_settings() -> Response:
    """Partial update: the fields sent are checked strictly on top of the stored ones, then persisted."""
    saved = change_settings(cart_ui(), json_object(), strict=True)
    return jsonify(settings=saved.model_dump())


@api_admin.get("/events")
@admin_required
def events() -> Response:
    """Server-sent events: `ready`, then `round`, `checkout`, `settings` as they happen."""
    stream = cart_ui().stream.events()
    return Response(
        stream, mimetype="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
