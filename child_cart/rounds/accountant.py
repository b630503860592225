"""The privacy accountant: what each shared round cost this cart in (ε, δ), persisted so a restart remembers.

Every round in which a cart shares a freshly trained update it releases one
Gaussian mechanism: its update clipped to L2 norm C plus N(0, (z C)^2) noise in
every coordinate (`privacy.privatize`). The neighbouring relation is client
level, add or remove: the cart's whole data set present or absent (its update
or none), so the clipped update has sensitivity C and the release is the
Gaussian mechanism with noise multiplier z. There is no sampling to amplify it:
a cart trains on all of its rows and offers its update every round, so q = 1.
Rounds compose; dp-accounting's RDP accountant (Rényi DP, Mironov 2017) turns
the composition into ε at the configured δ. A round that shares nothing new (the
current model offered untrained, a post-processing of earlier releases) or
shares nothing at all costs nothing.

The ledger is the list of rounds that spent, each with its noise multiplier
(settings may change between rounds), kept in the store's `settings`
collection. A round is written to it before its update is offered, so a crash
in between over-counts, never under-counts. A ledger that cannot be read is
not taken as empty: the cart stops sharing and says why.

This module also holds the settings' privacy checks (`privacy_conflicts`),
so a combination that would switch the protection off, or leave a cart that
can never share, is refused when it is saved.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from child_cart.store import Store

if TYPE_CHECKING:
    from child_cart.rounds.settings import RoundSettings

LEDGER_KEY = "privacy_ledger"
MAX_NOISE_MULTIPLIER = 1000.0


class LedgerUnreadable(ValueError):
    """The stored ledger does not validate: how much was spent is unknown, so nothing more may be."""


class Spend(BaseModel):
    """One shared round: the Gaussian mechanism it released."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    round: int = Field(ge=0)
    task: str
    noise_multiplier: float = Field(gt=0.0)
    clip_norm: float = Field(gt=0.0)


class Ledger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spends: list[Spend] = Field(default_factory=list)


def load_ledger(store: Store) -> list[Spend]:
    """Every round this cart has shared in, oldest first; LedgerUnreadable when the stored ledger is damaged."""
    stored = store.get_setting(LEDGER_KEY)
    if stored is None:
        return []
    try:
        return Ledger.model_validate(stored).spends
    except ValidationError as exc:
        raise LedgerUnreadable(
            f"the privacy ledger in the store does not validate ({exc.error_count()} errors)"
        ) from exc


def record_spend(store: Store, spend: Spend) -> list[Spend]:
    """Append one shared round to the ledger (a read-modify-write under the store's lock) and return the ledger."""
    with store.lock:
        spends = [*load_ledger(store), spend]
        store.set_setting(LEDGER_KEY, Ledger(spends=spends).model_dump())
    return spends


def epsilon(noise_multipliers: Iterable[float], delta: float) -> float:
    """ε at `delta` of the composition of one Gaussian mechanism per noise multiplier (q = 1), by the RDP accountant.

    0 for no rounds; infinite when a multiplier is 0 (no noise).
    """
    import dp_accounting
    from dp_accounting import rdp

    counts = Counter(noise_multipliers)
    if not counts:
        return 0.0
    if any(z <= 0 for z in counts):
        return math.inf
    accountant = rdp.RdpAccountant()
    for z, count in sorted(counts.items()):
        accountant.compose(dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(z), count))
    return float(accountant.get_epsilon(delta))


def spent(spends: Sequence[Spend], delta: float) -> float:
    """ε spent at `delta` by the rounds in the ledger."""
    return epsilon((s.noise_multiplier for s in spends), delta)


def least_noise(budget: float, delta: float, rounds: int = 1) -> float | None:
    """The smallest noise multiplier (to 3 significant digits, rounded up) whose `rounds` rounds fit in `budget`."""
    if epsilon([MAX_NOISE_MULTIPLIER] * rounds, delta) > budget:
        return None
    low, high = 0.0, MAX_NOISE_MULTIPLIER
    for _ in range(60):
        middle = (low + high) / 2
        if epsilon([middle] * rounds, delta) <= budget:
            high = middle
        else:
            low = middle
    digits = 2 - math.floor(math.log10(high))
    return math.ceil(high * 10**digits) / 10**digits


def dp_enabled(settings: RoundSettings) -> bool:
    """Whether these settings ask for client-level differential privacy (the checks make noise and clip go together)."""
    return settings.dp_noise_multiplier > 0


def privacy_conflicts(settings: RoundSettings) -> list[tuple[tuple[str, ...], str]]:
    """What makes these privacy settings protect nothing or never share: (fields to change, message naming them)."""
    noise, clip = settings.dp_noise_multiplier, settings.dp_clip_norm
    if noise > 0 and clip <= 0:
        return [
            (
                ("dp_clip_norm",),
                f"dp_noise_multiplier={noise:g} needs dp_clip_norm above 0: the noise is dp_noise_multiplier x "
                "dp_clip_norm per coordinate, and an update that is not clipped has no bound for it to hide. Set "
                "dp_clip_norm (about the norm of a typical update), or dp_noise_multiplier to 0 to switch "
                "differential privacy off",
            )
        ]
    if clip > 0 and noise <= 0:
        return [
            (
                ("dp_noise_multiplier",),
                f"dp_clip_norm={clip:g} without noise (dp_noise_multiplier=0) clips updates but protects nothing "
                "(ε is infinite): set dp_noise_multiplier above 0, or dp_clip_norm to 0 to switch differential "
                "privacy off",
            )
        ]
    if noise <= 0:
        return []
    budget, delta = settings.dp_epsilon_budget, settings.dp_delta
    one_round = epsilon([noise], delta)
    if one_round > budget:
        least, enough = least_noise(budget, delta), math.ceil(one_round * 100) / 100
        fix = f"raise dp_epsilon_budget to at least {enough:g}"
        if least is not None:
            fix = f"raise dp_noise_multiplier to at least {least:g} or {fix}"
        return [
            (
                ("dp_noise_multiplier", "dp_epsilon_budget"),
                f"with dp_noise_multiplier={noise:g} one shared round already costs ε={one_round:.3g} at "
                f"dp_delta={delta:g}, over dp_epsilon_budget={budget:g}: this cart would never share; {fix}",
            )
        ]
    return []


def refuse_conflicts(model: BaseModel, problems: list[tuple[tuple[str, ...], str]]) -> None:
    """Raise one ValidationError with an error on every field a problem names (the form shows it beside the field)."""
    if problems:
        raise ValidationError.from_exception_data(
            type(model).__name__,
            [
                InitErrorDetails(
                    type=PydanticCustomError("settings_conflict", message), loc=(field,), input=getattr(model, field)
                )
                for fields, message in problems
                for field in fields
            ],
        )
