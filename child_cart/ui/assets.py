"""Front-end assets: our CSS and JS from web/, and the chart library from web/node_modules (installed by npm).

Only web/css and web/js are served, so package.json, the lock file and the
rest of node_modules stay private. A missing chart library (setup not run)
gives a 404 that says how to fix it, and the pages say so too.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Blueprint, Flask, Response, current_app, send_from_directory
from werkzeug.exceptions import NotFound

from child_cart.settings import CartSettings

log = logging.getLogger(__name__)

assets = Blueprint("assets", __name__)

WEB_DIR_KEY = "FEDCART_WEB_DIR"
REPO_WEB_DIR = Path(__file__).resolve().parents[2] / "web"
SERVED_FOLDERS = ("css", "js")
CHART_LIBRARY = Path("node_modules/chart.js/dist/chart.umd.min.js")


def web_dir(settings: CartSettings) -> Path:
    """UI_WEB_DIR, or the repository's web/ (found next to the package in an editable install)."""
    return Path(settings.ui_web_dir).resolve() if settings.ui_web_dir else REPO_WEB_DIR


def configure_assets(app: Flask, settings: CartSettings) -> None:
    """Remember where the assets are and warn early when the chart library is missing."""
    folder = web_dir(settings)
    app.config[WEB_DIR_KEY] = folder
    if not (folder / CHART_LIBRARY).is_file():
        log.warning(
            "chart library %s is missing: run `make setup` (npm ci in web/); charts will not render",
            folder / CHART_LIBRARY,
        )


@assets.get("/static/vendor/chart.js")
def chart_library() -> Response:
    path = current_app.config[WEB_DIR_KEY] / CHART_LIBRARY
    if not path.is_file():
        raise NotFound("The chart library is not installed: run `make setup` (npm ci in web/).")
    return send_from_directory(path.parent, path.name, mimetype="text/javascript")


@assets.get("/static/<folder>/<path:filename>")
def static_file(folder: str, filename: str) -> Response:
    if folder not in SERVED_FOLDERS:
        raise NotFound()
    return send_from_directory(current_app.config[WEB_DIR_KEY] / folder, filename)
