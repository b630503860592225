"""The admin password hash and the session secret: from settings, else generated once and kept in the data dir.

A fresh cart must be administrable without anyone editing `.env` first, and
must not fall back to a well-known password. So when no hash is configured a
random password is generated, logged exactly once (so `make run` can show it),
and only its hash is written, readable by the owner alone. The session secret
is kept the same way so admin logins survive a restart.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from werkzeug.security import generate_password_hash

from cartnet.files import write_atomic

log = logging.getLogger(__name__)

UI_DIR = "ui"
PASSWORD_HASH_FILE = "admin_password_hash"
SESSION_SECRET_FILE = "session_secret"
GENERATED_PASSWORD_BYTES = 12


def admin_password_hash(configured: str, data_dir: Path) -> str:
    """The configured hash, else the one stored in the data dir, else a new one for a new random password."""
    if configured:
        return configured
    path = Path(data_dir) / UI_DIR / PASSWORD_HASH_FILE
    stored = _read(path)
    if stored:
        return stored
    password = secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
    if _create(path, generate_password_hash(password)):
        log.warning(
            "generated the cart UI admin password: %s  (shown only now; set UI_ADMIN_PASSWORD_HASH to choose your own)",
            password,
        )
    return _read(path)


def session_secret(configured: str, data_dir: Path) -> str:
    """The configured secret, else the one stored in the data dir, else a new random one."""
    if configured:
        return configured
    path = Path(data_dir) / UI_DIR / SESSION_SECRET_FILE
    if not _read(path):
        _create(path, secrets.token_hex(32))
    return _read(path)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""


def _create(path: Path, value: str) -> bool:
    """Write a one-line secret file (mode 0600) unless another process got there first (False then).

    `write_atomic(exclusive=True)` links a synced temporary file into place: the
    link fails when the name exists, so readers never see a half-written file
    and two first starts cannot both win.
    """
    if not write_atomic(path, (value + "\n").encode("utf-8"), private=True, exclusive=True):
        return False
    log.info("stored %s (mode 0600)", path)
    return True
