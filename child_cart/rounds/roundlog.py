"""The round log: one document per federated round in the `rounds` collection.

The engine writes it, the admin page and the experiment reports read it; this
model is the one schema both sides agree on.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from child_cart.store import Store

Metrics = dict[str, float]


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
    accepted: bool = False
    reason: str = ""
    model_version: int | None = None

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


def next_round_number(store: Store) -> int:
    latest = list(store.rounds.find({}).sort("round", -1).limit(1))
    return latest[0]["round"] + 1 if latest else 0
