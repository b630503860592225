"""Session routes of the JSON API: get a CSRF token, log in, log out, ask who you are."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from flask_wtf.csrf import generate_csrf

from child_cart.ui.auth import is_admin, log_in, log_out
from child_cart.ui.body import json_body
from child_cart.ui.schemas import Login

api_auth = Blueprint("api_auth", __name__, url_prefix="/api")


@api_auth.get("/csrf")
def csrf() -> Response:
    """The token to send as X-CSRFToken with every POST/PUT/DELETE of this session."""
    return jsonify(csrf_token=generate_csrf())


@api_auth.get("/session")
def whoami() -> Response:
    return jsonify(admin=is_admin())


@api_auth.post("/login")
def login() -> Response:
    """The reply carries the session's CSRF token, so an API client needs no extra call before its first write."""
    log_in(json_body(Login).password)
    return jsonify(admin=True, csrf_token=generate_csrf())


@api_auth.post("/logout")
def logout() -> Response:
    log_out()
    return jsonify(admin=False)
