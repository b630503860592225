"""Prices as people read them: integer cents in the cart's currency (CURRENCY), the same in every locale.

A few currencies are shown with their symbol before the amount (€1.69, $1.69, £1.69);
every other ISO 4217 code is shown before it as a code ("CHF 1.69"). Amounts always
have two decimals, as the store keeps them. web/js/common.js formats the same way from
the `currency` meta tag the pages carry, so the page and the server never disagree.
"""

from __future__ import annotations

from typing import Any

SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "INR": "₹", "KRW": "₩", "ILS": "₪", "NGN": "₦"}
"""Currencies whose symbol stands for them alone; others are written as their code."""


def symbol(currency: str) -> str:
    """What goes before the amount: the symbol, or the code and a space."""
    return SYMBOLS.get(currency, f"{currency} ")


def format_cents(cents: int, currency: str) -> str:
    """`169, "EUR"` -> `€1.69`; `-50, "CHF"` -> `-CHF 0.50`."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{symbol(currency)}{whole:,}.{part:02d}"


def currency_json(currency: str) -> dict[str, Any]:
    """The currency as the pages and the API describe it."""
    return {"code": currency, "symbol": symbol(currency)}
