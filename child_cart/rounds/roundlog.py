"""The round log: one document per federated round in the `rounds` collection.

The engine writes it, the admin page and the experiment reports read it; this
model is the one schema both sides agree on. Fields added later are optional,
so documents written by older versions still read.

The log is also where the acceptance rule keeps its memory: every record names
the best model version the cart has kept so far (`best_version`), and DECIDE
reads it back from the newest record, so the floor survives a restart.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from child_cart.store import Store

Metrics = dict[str, float]


class PrivacyRecord(BaseModel):
    """What a round with differential privacy on shared, and what the cart has spent so far (`privacy.py`)."""

    shared: bool = Field(description="whether this round's update was offered to peers")
    spent: bool = Field(False, description="whether this round's update cost privacy (a freshly trained one)")
    note: str = Field("", description="why nothing was shared (e.g. 'privacy budget spent: ...'), or what was")
    epsilon: float = Field(description="ε spent so far at delta, this round included")
    epsilon_budget: float
    delta: float
    noise_multiplier: float
    clip_norm: float
    rounds_shared: int = Field(0, ge=0, description="rounds that spent privacy so far, this one included")
    update_norm: float | None = Field(None, description="L2 norm of the update before clipping")
    clipped: bool = Field(False, description="whether the update was scaled down to clip_norm")
    unnoised: Metrics = Field(
        default_factory=dict, description="held-out metrics of the trained model before clipping and noise"
    )

    @property
    def epsilon_left(self) -> float:
        return max(0.0, self.epsilon_budget - self.epsilon)


class RoundRecord(BaseModel):
    """Everything one round did: who was asked, what came back, what it cost, what was kept."""

    node_id: str
    round: int = Field(ge=0)
    task: str
    aggregator: str
    started: datetime
    finished: datetime
    peers_asked: list[str] = []
    peers_answered: list[str] = []
    skipped: dict[str, str] = Field(default_factory=dict, description="peer -> why its update was not used")
    refused: dict[str, str] = Field(
        default_factory=dict,
        description="claimed requester -> why this cart refused its update request (forged, replayed, unverified, ...)",
    )
    aggregation_notes: list[str] = Field(
        default_factory=list,
        description="what the aggregation rule adapted to the updates it had, weaker than configured (Krum's f lowered)",
    )
    samples: dict[str, int] = Field(default_factory=dict, description="node id -> training rows behind its update")
    bridges: list[str] = Field(
        default_factory=list, description="bridge ids behind the updates the round used, own included"
    )
    bytes_in: int = 0
    bytes_out: int = 0
    timings: dict[str, float] = Field(default_factory=dict, description="phase -> seconds")
    resources: dict[str, float] = Field(default_factory=dict, description="cpu_seconds, peak_rss_mb, ...")
    local: Metrics = Field(default_factory=dict, description="held-out metrics of the locally trained model")
    aggregated: Metrics = Field(default_factory=dict, description="held-out metrics of the aggregate")
    received: dict[str, Metrics] = Field(default_factory=dict, description="peer -> held-out metrics of its update")
    metric: str = Field("", description="the task's primary metric, which the acceptance rule and the gain use")
    accepted: bool = Field(False, description="whether the aggregate was kept")
    reason: str = ""
    model_version: int | None = None
    current: Metrics = Field(default_factory=dict, description="held-out metrics of the model the round started from")
    kept: str = Field("", description="the candidate kept: aggregate, local, current or best (the best so far)")
    kept_metrics: Metrics = Field(default_factory=dict, description="held-out metrics of the kept model")
    best_version: str | None = Field(None, description="model version id of the best model kept so far")
    best: Metrics = Field(default_factory=dict, description="held-out metrics of the best model kept so far")
    local_only: Metrics = Field(
        default_factory=dict, description="held-out metrics of the local-only shadow model (same rows and epochs)"
    )
    swarm_gain: float | None = Field(
        None, description="kept minus local-only in the task's primary metric, positive when the swarm helped"
    )
    swarm_gain_error: float | None = Field(
        None,
        description="one standard error of swarm_gain, from the two models' row-by-row differences on the held-out "
        "rows (None where the metric is not a mean over rows)",
    )
    swarm_model: str = Field(
        "", description="whether the aggregate became the swarm model, the one the next round trains from, and why"
    )
    swarm_metrics: Metrics = Field(
        default_factory=dict,
        description="held-out metrics of the swarm model after this round (empty while the cart trains from its kept one)",
    )
    privacy: PrivacyRecord | None = Field(None, description="differential privacy's part, when it is on")

    @property
    def doc_id(self) -> str:
        return f"{self.node_id}:{self.round:06d}"


def log_round(store: Store, record: RoundRecord) -> None:
    """Persist a round (idempotent on its id)."""
    store.put("rounds", {"_id": record.doc_id, **record.model_dump(mode="json")})


def recent_rounds(store: Store, limit: int = 200) -> list[RoundRecord]:
    """The latest `limit` rounds, oldest first (what charts want)."""
    docs = list(store.rounds.find({}).sort("round", -1).limit(limit))
    return [RoundRecord.model_validate({k: v for k, v in doc.items() if k != "_id"}) for doc in reversed(docs)]


def best_version(store: Store, task: str, lookback: int = 100) -> str | None:
    """The best model version kept so far for `task`, as the newest of the last `lookback` rounds that names one."""
    docs = store.rounds.find({"task": task}).sort("round", -1).limit(lookback)
    return next((str(doc["best_version"]) for doc in docs if doc.get("best_version")), None)


def next_round_number(store: Store) -> int:
    latest = list(store.rounds.find({}).sort("round", -1).limit(1))
    return latest[0]["round"] + 1 if latest else 0
