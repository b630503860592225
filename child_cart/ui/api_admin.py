"""The admin's JSON API: this cart, peers, rounds, models (with .tflite download), settings and the live stream.

Every route needs an admin session; changing settings also needs the CSRF token.
"""

from __future__ import annotations

import io
import logging

from flask import Blueprint, Response, jsonify, request, send_file
from pydantic import BaseModel, Field

from child_cart.models.versions import ModelCorrupt
from child_cart.rounds import settings as round_settings
from child_cart.rounds.roundlog import recent_rounds
from child_cart.tasks import DEFAULT_TASK
from child_cart.ui.auth import admin_required
from child_cart.ui.body import json_object, validated
from child_cart.ui.context import cart_ui
from child_cart.ui.errors import ApiError
from child_cart.ui.present import GAIN_LOOKBACK, cart_json, model_json, round_json, swarm_gain_json
from child_cart.ui.settings_change import change_settings
from child_cart.ui.settings_form import setting_fields

log = logging.getLogger(__name__)

api_admin = Blueprint("api_admin", __name__, url_prefix="/api")

MAX_ROUNDS = 1000


class RoundsQuery(BaseModel):
    limit: int = Field(200, ge=1, le=MAX_ROUNDS)


@api_admin.get("/cart")
@admin_required
def cart() -> Response:
    ui = cart_ui()
    return jsonify(cart_json(ui.store, ui.node, ui.models.latest(DEFAULT_TASK)))


@api_admin.get("/peers")
@admin_required
def peers() -> Response:
    return jsonify(peers=cart_ui().node.peers())


@api_admin.get("/rounds")
@admin_required
def rounds() -> Response:
    """The latest `limit` rounds, oldest first, and the swarm-gain headline over the latest rounds, whatever `limit` is."""
    query = validated(RoundsQuery, request.args.to_dict(), strict=False)
    records = recent_rounds(cart_ui().store, max(query.limit, GAIN_LOOKBACK))
    return jsonify(rounds=[round_json(r) for r in records[-query.limit :]], swarm_gain=swarm_gain_json(records))


@api_admin.get("/models")
@admin_required
def models() -> Response:
    return jsonify(models=[model_json(v) for v in cart_ui().models.versions(DEFAULT_TASK)])


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
