"""Federated-round settings an admin can change while the cart runs.

They live in the store's `settings` collection (key `rounds`), so a change made
on the admin page is persisted and the round engine reads it before each round:
no restart needed. One pydantic model validates them for both the UI and the engine.

The `dp_*` fields switch on client-level differential privacy (`privacy.py`,
off by default); `accountant.privacy_conflicts` checks them together.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from child_cart.rounds.accountant import MAX_NOISE_MULTIPLIER, privacy_conflicts, refuse_conflicts
from child_cart.store import Store

SETTINGS_KEY = "rounds"
Aggregator = Literal["fedavg", "median", "trimmed_mean", "krum"]


class RoundSettings(BaseModel):
    """How this cart runs its rounds; every field has a safe default."""

    model_config = ConfigDict(extra="forbid")

    aggregator: Aggregator = Field("fedavg", description="How received updates are combined")
    k: int = Field(3, ge=1, le=50, description="Peers asked for their update each round")
    tolerance: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="Largest drop of held-out accuracy an aggregate may cause. Under non-IID data the swarm's model "
        "scores a few points below a cart's own model on that cart's rows while generalising better, so a "
        "tolerance near 0 keeps carts from ever learning from peers; a poisoned aggregate drops far more than this.",
    )
    schedule_seconds: float = Field(30.0, ge=1.0, le=86400.0, description="Time between rounds")
    min_new_rows: int = Field(
        0, ge=0, le=10**7, description="New purchases needed before training again (0 = every round)"
    )
    local_epochs: int = Field(3, ge=1, le=100, description="Local training epochs per round")
    trim_ratio: float = Field(0.2, ge=0.0, lt=0.5, description="Share trimmed at each end by trimmed_mean")
    krum_f: int = Field(1, ge=0, le=20, description="Attackers Krum assumes")
    peer_timeout: float = Field(20.0, gt=0.0, le=600.0, description="Seconds to wait for a peer's update")
    over_ask: int = Field(
        2,
        ge=0,
        le=10,
        description="Peers asked beyond k; the round goes on once k have sent their update, so a silent or "
        "declining peer costs no wait",
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

    @model_validator(mode="after")
    def _privacy_stays_on(self) -> RoundSettings:
        """Refuse privacy settings that would protect nothing or never let the cart share; errors name their fields."""
        refuse_conflicts(self, privacy_conflicts(self))
        return self


def load(store: Store) -> RoundSettings:
    """The stored settings, or the defaults when none were saved yet."""
    return RoundSettings.model_validate(store.get_setting(SETTINGS_KEY, {}))


def save(store: Store, changes: dict) -> RoundSettings:
    """Validate `changes` on top of the current settings and persist the result; raises pydantic.ValidationError."""
    merged = RoundSettings.model_validate({**load(store).model_dump(), **changes})
    store.set_setting(SETTINGS_KEY, merged.model_dump())
    return merged
