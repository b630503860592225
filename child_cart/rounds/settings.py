"""Federated-round settings an admin can change while the cart runs.

They live in the store's `settings` collection (key `rounds`), so a change made
on the admin page is persisted and the round engine reads it before each round:
no restart needed. One pydantic model validates them for both the UI and the engine.

The fields are also checked together: a combination that would leave the chosen
robust rule protecting nothing once all k peers answer (trimmed mean that trims
no update or every update, Krum assuming more attackers than k + 1 updates can
outvote, a median of two) is refused with a message naming the fields, never
accepted and quietly weakened. When fewer peers answer than were asked, the rules
themselves adapt or refuse for that round (`child_cart.aggregation`).

The `dp_*` fields switch on client-level differential privacy (`privacy.py`,
off by default); `accountant.privacy_conflicts` checks them together.
`secure_aggregation` switches on masked aggregation (`secure.py`, off by default),
refused with the robust rules and with fewer than three peers (`secure_conflicts`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cartnet.quantize import Precision
from child_cart.aggregation.base import MIN_ROBUST_UPDATES
from child_cart.aggregation.krum import min_updates as krum_min_updates
from child_cart.aggregation.trimmed_mean import wanted_trim
from child_cart.rounds.accountant import MAX_NOISE_MULTIPLIER, privacy_conflicts, refuse_conflicts
from child_cart.store import Store

log = logging.getLogger(__name__)

SETTINGS_KEY = "rounds"
Aggregator = Literal["fedavg", "median", "trimmed_mean", "krum"]
MAX_K = 50


class RoundSettings(BaseModel):
    """How this cart runs its rounds; every field has a safe default, and the defaults fit every aggregator."""

    model_config = ConfigDict(extra="forbid")

    aggregator: Aggregator = Field("fedavg", description="How received updates are combined")
    k: int = Field(
        3,
        ge=1,
        le=MAX_K,
        description="Peers asked for their update each round; the cart's own update makes k + 1. "
        "median and trimmed_mean need k >= 2, krum needs k >= 2 * krum_f + 2",
    )
    tolerance: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="Largest drop of held-out accuracy an aggregate may cause, combined in quadrature with one "
        "standard error of the held-out score (child_cart.rounds.acceptance). Under non-IID data the swarm's model "
        "scores a few points below a cart's own model on that cart's rows while generalising better, so a "
        "tolerance near 0 keeps carts from ever learning from peers; a poisoned aggregate drops far more than this.",
    )
    schedule_seconds: float = Field(30.0, ge=1.0, le=86400.0, description="Time between rounds")
    min_new_rows: int = Field(
        0, ge=0, le=10**7, description="New purchases needed before training again (0 = every round)"
    )
    local_epochs: int = Field(3, ge=1, le=100, description="Local training epochs per round")
    trim_ratio: float = Field(
        0.2,
        ge=0.0,
        lt=0.5,
        description="Share trimmed at each end by trimmed_mean, rounded up: 0.2 of k + 1 = 4 updates trims one from "
        "each side. trimmed_mean needs it above 0 and at least one update left over",
    )
    krum_f: int = Field(
        0,
        ge=0,
        le=20,
        description="Attackers Krum assumes among the k + 1 updates; it needs k + 1 > 2 * krum_f + 2. At 0 Krum "
        "still keeps the one update closest to the others, which leaves one far-off attacker out",
    )
    peer_timeout: float = Field(20.0, gt=0.0, le=600.0, description="Seconds to wait for a peer's update")
    over_ask: int = Field(
        2,
        ge=0,
        le=10,
        description="Spare peers drawn beyond k, each asked only when a peer asked declines, fails or is slow "
        "(twice the first answer's time, at least 1 s); the round goes on once k have sent their update, so a silent "
        "or declining peer costs about one more answer's time, and a round whose peers answer only k requests",
    )
    update_precision: Precision = Field(
        "int8",
        description="How this cart packs the weights it sends peers: float32 as they are, float16 (half the bytes) "
        "or int8 (a quarter: 8-bit codes per tensor between its min and max, cartnet.quantize). Peers read any; "
        "a lossy precision moves each shared weight by at most half a step",
    )
    prox_mu: float = Field(
        0.0,
        ge=0.0,
        le=10.0,
        description="FedProx: local training adds prox_mu/2 * ||w - w_start||^2, pulling each cart's update toward "
        "the model it started the round from (0 = plain FedAvg). Helps when carts' rows differ (non-IID); "
        "0.01 to 1 is the usual range",
    )
    personalize_epochs: int = Field(
        0,
        ge=0,
        le=20,
        description="Personalization: epochs the aggregate is fine-tuned on this cart's own rows before it is "
        "scored and kept (0 = off). The cart then keeps a model fitted to its own shoppers",
    )
    personalize_head: bool = Field(
        False,
        description="Personalization: refit the aggregate's output layer on this cart's own rows (the rest "
        "fixed), pulled toward the swarm's layer as far as cross-validation on those rows supports "
        "(tasks.head_refit); after personalize_epochs of fine-tuning when both are set. Tasks without a softmax "
        "output layer skip it",
    )
    local_head: bool = Field(
        False,
        description="Personalization: offer peers only the shared body of the model and keep this cart's own "
        "output layer (its head). Every cart of the swarm must agree (a body and a whole model do not mix); "
        "not with differential privacy or secure aggregation",
    )

    dp_noise_multiplier: float = Field(
        0.0,
        ge=0.0,
        le=MAX_NOISE_MULTIPLIER,
        description="Differential privacy: Gaussian noise added to every coordinate of the shared update, in units "
        "of dp_clip_norm (0 = off). Needs dp_clip_norm above 0",
    )
    dp_clip_norm: float = Field(
        0.0, ge=0.0, le=1e6, description="Differential privacy: the L2 norm each shared update is clipped to (0 = off)"
    )
    dp_delta: float = Field(
        1e-5, gt=0.0, lt=1.0, description="Differential privacy: the δ at which ε is reported and budgeted"
    )
    dp_epsilon_budget: float = Field(
        10.0,
        gt=0.0,
        le=1e6,
        description="Differential privacy: the ε this cart may spend in all; it stops sharing before a round "
        "would go over it",
    )

    secure_aggregation: bool = Field(
        False,
        description="Secure aggregation: peers answer with masked updates, so this cart learns only their "
        "sum, never one peer's update (fedavg only; needs k >= 3). Off by default",
    )

    @property
    def personalizes(self) -> bool:
        """Whether a round fits its aggregate to this cart's rows (the PERSONALIZE phase)."""
        return self.personalize_epochs > 0 or self.personalize_head

    @model_validator(mode="after")
    def _protections_stay_on(self) -> RoundSettings:
        """Refuse combinations that would switch the chosen rule's protection off; each error names its fields."""
        refuse_conflicts(self, conflicts(self))
        return self

    @model_validator(mode="after")
    def _privacy_stays_on(self) -> RoundSettings:
        """Refuse privacy settings that would protect nothing or never let the cart share; errors name their fields."""
        refuse_conflicts(self, privacy_conflicts(self))
        return self


def conflicts(settings: RoundSettings) -> list[tuple[tuple[str, ...], str]]:
    """What makes these settings switch a protection off: (fields to change, message naming them)."""
    n = settings.k + 1
    rule = settings.aggregator
    if settings.local_head and (settings.secure_aggregation or settings.dp_noise_multiplier or settings.dp_clip_norm):
        return [
            (
                ("local_head", "secure_aggregation", "dp_noise_multiplier"),
                "local_head=true offers peers the model's body only, which masked or privatized updates do not "
                "support yet: switch local_head off, or secure_aggregation and differential privacy off",
            )
        ]
    if settings.secure_aggregation:
        return secure_conflicts(settings)
    if rule == "median" and n < MIN_ROBUST_UPDATES:
        return [
            (
                ("k",),
                f"aggregator=median with k={settings.k} takes the median of {n} updates, which is their mean: "
                f"set k to at least {MIN_ROBUST_UPDATES - 1} so one bad update is outvoted",
            )
        ]
    if rule == "trimmed_mean":
        if settings.trim_ratio <= 0:
            return [
                (
                    ("trim_ratio",),
                    "aggregator=trimmed_mean with trim_ratio=0 trims nothing (a plain mean): set trim_ratio above 0 "
                    "(0.2 trims one update from each side of 4) or choose fedavg",
                )
            ]
        cut = wanted_trim(n, settings.trim_ratio)
        if n < MIN_ROBUST_UPDATES:
            return [
                (
                    ("k",),
                    f"aggregator=trimmed_mean with k={settings.k} has {n} updates (k + 1): it needs at least "
                    f"{MIN_ROBUST_UPDATES} to trim one from each side and keep one, so set k to at least "
                    f"{MIN_ROBUST_UPDATES - 1}",
                )
            ]
        if n - 2 * cut < 1:
            largest = ((n - 1) // 2) / n
            least = _next_k(settings.k, lambda m: m - 2 * wanted_trim(m, settings.trim_ratio) >= 1)
            raise_k = f" or raise k to at least {least}" if least else ""
            return [
                (
                    ("k", "trim_ratio"),
                    f"aggregator=trimmed_mean with trim_ratio={settings.trim_ratio:g} and k={settings.k} would trim "
                    f"{cut} of {n} updates (k + 1) from each side and leave none: lower trim_ratio to "
                    f"{largest:g} or less{raise_k}",
                )
            ]
    if rule == "krum" and n < krum_min_updates(settings.krum_f):
        least = krum_min_updates(settings.krum_f) - 1
        lower_f = (n - 3) // 2
        lower = f" or lower krum_f to {lower_f}" if lower_f >= 0 else ""
        return [
            (
                ("k", "krum_f"),
                f"aggregator=krum with krum_f={settings.krum_f} needs more than 2 * krum_f + 2 = "
                f"{2 * settings.krum_f + 2} updates, but k={settings.k} gives {n} (k + 1): raise k to at least "
                f"{least}{lower}",
            )
        ]
    return []


MIN_SECURE_K = 3
"""Peers a masked round needs: its cohort (the peers asked, never the requester) has at least three members
(`cartnet.secagg.MIN_COHORT`), so a member that learns the aggregate and knows its own update still faces the
sum of two others; the requester's own update is added in the clear by itself and does not count."""


def secure_conflicts(settings: RoundSettings) -> list[tuple[tuple[str, ...], str]]:
    """Secure aggregation with a rule that needs individual updates, or with too small a cohort."""
    if settings.aggregator != "fedavg":
        return [
            (
                ("aggregator", "secure_aggregation"),
                f"secure_aggregation=true cannot be combined with aggregator={settings.aggregator}: the robust "
                "rules (median, trimmed_mean, krum) need the individual updates, which secure aggregation hides "
                "(the cart learns only their sum); choose fedavg or switch secure_aggregation off",
            )
        ]
    if settings.k < MIN_SECURE_K:
        return [
            (
                ("k", "secure_aggregation"),
                f"secure_aggregation=true with k={settings.k} asks too few peers: the masked cohort needs at least "
                f"{MIN_SECURE_K} peers (set k to at least {MIN_SECURE_K}), or with two each could learn the "
                "other's update from the aggregate and its own",
            )
        ]
    return []


def _next_k(k: int, fits: Callable[[int], bool]) -> int | None:
    """The smallest k above `k` whose k + 1 updates satisfy `fits`, if any up to MAX_K does."""
    return next((more for more in range(k + 1, MAX_K + 1) if fits(more + 1)), None)


def load(store: Store) -> RoundSettings:
    """The stored settings, or the defaults when none were saved yet.

    Stored values that no longer validate (saved by an older version, before the
    fields were checked together) are reset to their defaults, with a warning, so
    the cart keeps running rounds with the rest: the defaults fit every rule. The
    `dp_*` fields and `secure_aggregation` are never repaired that way (their default
    is "off"): settings whose privacy fields fail raise, and the admin has to fix them.
    """
    stored: dict[str, Any] = dict(store.get_setting(SETTINGS_KEY, {}))
    try:
        return RoundSettings.model_validate(stored)
    except ValidationError as exc:
        bad = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
        if not bad or any(name.startswith("dp_") or name == "secure_aggregation" for name in bad):
            raise
        repaired = RoundSettings.model_validate({k: v for k, v in stored.items() if k not in bad})
        log.warning("stored round settings refused (%s); using the defaults for %s", exc, ", ".join(sorted(bad)))
        return repaired


def save(store: Store, changes: dict) -> RoundSettings:
    """Validate `changes` on top of the current settings and persist the result; raises pydantic.ValidationError."""
    merged = RoundSettings.model_validate({**load(store).model_dump(), **changes})
    store.set_setting(SETTINGS_KEY, merged.model_dump())
    return merged
