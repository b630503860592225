"""The cart screen (`/`): scan, bill, checkout, recommendations.

The page is rendered with the current bill and the shopper profiles, then
web/js/home.js drives it through the JSON API, so what the shopper sees and
what a program gets are the same thing.
"""

from __future__ import annotations

import calendar

from flask import Blueprint, render_template

from child_cart.ui.context import cart_ui
from child_cart.ui.errors import shopper_errors
from child_cart.ui.present import bill_json

home = Blueprint("home", __name__)


@home.get("/")
def index() -> str:
    ui = cart_ui()
    month = ui.clock().month
    with shopper_errors():
        bill = bill_json(ui.shop.bill())
    return render_template(
        "home.html",
        profiles=ui.catalogue.profile_names,
        month=month,
        month_name=calendar.month_name[month],
        bill=bill,
        max_upload_bytes=ui.max_upload_bytes,
    )
