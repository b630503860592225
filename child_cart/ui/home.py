"""The cart screen (`/`): find (search, browse), scan, bill, checkout, recommendations; and the receipt page.

The page is rendered with the current bill, the shopper profiles and the
categories, then web/js/home.js drives it through the JSON API, so what the
shopper sees and what a program gets are the same thing. A receipt
(`/receipt/<checkout id>`) is a plain page made to be printed.

Every page gets the cart's currency (the `currency` meta tag that
web/js/common.js formats with) and the `money` filter that formats cents the same way.
"""

from __future__ import annotations

import calendar
from typing import Any

from flask import Blueprint, render_template

from child_cart.ui import money
from child_cart.ui.context import cart_ui
from child_cart.ui.errors import ApiError, shopper_errors
from child_cart.ui.present import bill_json, category_json, receipt_json

home = Blueprint("home", __name__)


@home.app_context_processor
def _currency() -> dict[str, Any]:
    return {"currency": money.currency_json(cart_ui().settings.currency)}


@home.app_template_filter("money")
def _money(cents: int) -> str:
    return money.format_cents(cents, cart_ui().settings.currency)


@home.get("/")
def index() -> str:
    ui = cart_ui()
    month = ui.clock().month
    with shopper_errors():
        bill = bill_json(ui.shop.bill(), ui.settings.currency)
    return render_template(
        "home.html",
        profiles=ui.catalogue.profile_names,
        categories=[category_json(c, n) for c, n in ui.shop.categories()],
        month=month,
        month_name=calendar.month_name[month],
        bill=bill,
        max_upload_bytes=ui.max_upload_bytes,
    )


@home.get("/receipt/<checkout_id>")
def receipt(checkout_id: str) -> str | tuple[str, int]:
    ui = cart_ui()
    try:
        with shopper_errors():
            shown = receipt_json(ui.shop.receipt(checkout_id), ui.settings.currency)
    except ApiError as exc:
        return render_template("receipt.html", receipt=None, error=exc.message), 404
    return render_template("receipt.html", receipt=shown, error=None)
