"""The round settings as form fields, derived from `RoundSettings` itself.

The admin form, its validation and the API's field list all come from the
pydantic model the round engine reads, so a field added there shows up on
the admin page with its description and limits, and nothing can drift.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from pydantic.fields import FieldInfo

from child_cart.rounds.settings import RoundSettings


@dataclass(frozen=True)
class SettingField:
    """One input of the settings form."""

    name: str
    label: str
    description: str
    kind: str
    options: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    step: str = "any"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def setting_fields() -> list[SettingField]:
    """Every RoundSettings field, in declaration order."""
    return [_field(name, info) for name, info in RoundSettings.model_fields.items()]


def form_changes(form: Mapping[str, str]) -> dict[str, str]:
    """The submitted values of known fields (as text; validation converts them)."""
    return {name: form[name].strip() for name in RoundSettings.model_fields if name in form}


def _field(name: str, info: FieldInfo) -> SettingField:
    label = name.replace("_", " ").capitalize()
    options = typing.get_args(info.annotation) if typing.get_origin(info.annotation) is typing.Literal else ()
    if info.annotation is bool:
        options = (False, True)  # a switch: shown as a choice whose text matches how the current value renders
    if options:
        return SettingField(name, label, info.description or "", "select", tuple(str(o) for o in options))
    minimum, maximum = _bounds(info)
    step = "1" if info.annotation is int else "any"
    return SettingField(name, label, info.description or "", "number", (), minimum, maximum, step)


def _bounds(info: FieldInfo) -> tuple[float | None, float | None]:
    """The field's numeric limits (exclusive ones shown as inclusive; the server still refuses the edge)."""
    limits = {
        attr: float(getattr(rule, attr))
        for rule in info.metadata
        for attr in ("ge", "gt", "le", "lt")
        if hasattr(rule, attr)
    }
    return limits.get("ge", limits.get("gt")), limits.get("le", limits.get("lt"))
