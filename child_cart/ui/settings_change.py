"""Changing the round settings from the UI: validate, persist, announce.

The admin form and `PUT /api/settings` both land here. The change is checked
on top of the stored settings before anything is written, under the store's
lock so two admins cannot interleave, and announced on the event bus so open
admin pages show it. The round engine reads the stored settings before each
round, which is what makes a change apply without a restart.
"""

from __future__ import annotations

import logging
from typing import Any

from child_cart.rounds import settings as round_settings
from child_cart.rounds.settings import RoundSettings
from child_cart.ui.body import validated
from child_cart.ui.context import CartUI

log = logging.getLogger(__name__)


def change_settings(ui: CartUI, changes: dict[str, Any], strict: bool) -> RoundSettings:
    """Apply `changes` (JSON values when `strict`, form text otherwise); raises ApiError 422 and stores nothing if invalid."""
    with ui.store.lock:
        current = round_settings.load(ui.store).model_dump()
        checked = validated(RoundSettings, {**current, **changes}, strict=strict)
        saved = round_settings.save(ui.store, checked.model_dump())
    log.info("round settings changed: %s", {k: v for k, v in saved.model_dump().items() if current.get(k) != v})
    ui.bus.publish("settings", saved.model_dump())
    return saved
