"""Admin login: password check behind the growing-delay throttle, and the session flag that marks an admin.

Pages and the JSON API share one session cookie, so logging in on either
works for both. Logging in and out only flips the admin flag: the session's
CSRF token stays, so a cart screen open in another tab of the same browser
keeps working. (Fixation is not a risk here: the session is a signed cookie,
and logging in changes its signed content, so a planted cookie never becomes
an admin one.) `admin_required` answers an anonymous API call with a JSON
401 and an anonymous page visit with a redirect to the login page.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from typing import ParamSpec, TypeVar
from urllib.parse import urlsplit

from flask import redirect, request, session, url_for
from werkzeug.security import check_password_hash
from werkzeug.wrappers import Response as BaseResponse

from child_cart.ui.context import cart_ui
from child_cart.ui.errors import API_PREFIX, ApiError

log = logging.getLogger(__name__)

ADMIN_KEY = "admin"
P = ParamSpec("P")
R = TypeVar("R")


def is_admin() -> bool:
    """True when this request's session belongs to a logged-in admin."""
    return session.get(ADMIN_KEY) is True


def log_in(password: str) -> None:
    """Start an admin session, or raise ApiError (401 wrong password, 429 wait first)."""
    ui = cart_ui()
    client = request.remote_addr or "unknown"
    wait = ui.throttle.wait_seconds(client)
    if wait > 0:
        seconds = math.ceil(wait)
        raise ApiError(
            429,
            "too_many_attempts",
            f"Too many wrong passwords: wait {seconds} s before trying again.",
            headers={"Retry-After": str(seconds)},
        )
    if not check_password_hash(ui.password_hash, password):
        ui.throttle.failed(client)
        log.warning("wrong admin password from %s", client)
        raise ApiError(401, "wrong_password", "Wrong password.")
    ui.throttle.succeeded(client)
    session[ADMIN_KEY] = True
    session.permanent = True
    log.info("admin logged in from %s", client)


def log_out() -> None:
    """Drop admin rights; the session (and its CSRF token) stays, so the cart screen in another tab keeps working."""
    session.pop(ADMIN_KEY, None)
    session.permanent = False


def admin_required(handler: Callable[P, R]) -> Callable[P, R | BaseResponse]:
    """Let only admins through: 401 JSON for the API, a redirect to the login page for pages."""

    @functools.wraps(handler)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R | BaseResponse:
        if is_admin():
            return handler(*args, **kwargs)
        if request.path.startswith(API_PREFIX):
            raise ApiError(401, "login_required", "Log in as admin first (POST /api/login).")
        return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))

    return guarded


def safe_next(target: str | None) -> str:
    """Where to go after login: only a path on this site, never another host (open redirect)."""
    if not target:
        return url_for("admin.cart")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("admin.cart")
    return target
