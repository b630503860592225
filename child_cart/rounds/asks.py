"""One `collect`'s asks: which peers were asked and when, the spares still unasked, and when to hedge.

`UpdateExchange.collect` (exchange.py) is given k + over_ask peers but asks only k at
once; this module decides when a spare is needed. An answer counts on toward `enough`
while it is usable or still awaited and not overdue (`Asks.covered`); one that failed,
or is silent `HEDGE_FACTOR` times as long as the first usable answer took (at least
`HEDGE_MIN_S`; while no answer came, a `HEDGE_SILENT_SHARE` of the timeout), no longer
counts, and a spare is asked beside it. `Batch` is what `admit` takes in: at most
`enough` answers' manifests, so a slow peer that answers after its spare is refused at
its manifest, and its one eager chunk (exchange.py's "Asking") is dropped unread.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass, field

from cartnet.peers import VerifiedPeer
from child_cart.aggregation import Update

HEDGE_FACTOR = 2.0
"""A peer asked that has not answered within this many times the first usable answer's latency gets a spare asked
beside it. The peers of one round answer through the same bridges with the same model, so an honest one is seldom
twice as slow as the fastest; a silent one then costs the round about two answers' time instead of the deadline."""
HEDGE_MIN_S = 1.0
"""Seconds a peer asked may take before it counts as slow, however fast the first answer came: within a second a
busy honest peer (training, sealing for another requester) is not silent, and a spare asked for nothing costs a
request, a manifest refused and its receipt."""
HEDGE_SILENT_SHARE = 0.25
"""Share of the timeout after which a peer asked is slow while no usable answer arrived to measure it against (every
peer asked may be silent); a later first answer only shortens that."""


@dataclass
class Batch:
    """The requests of one `collect`: at most `enough` of their answers are taken in (see `admit`)."""

    enough: int
    taken: list[asyncio.Future[Update]] = field(default_factory=list)

    def room(self) -> bool:
        """Whether another answer is wanted: fewer than `enough` taken in that have not failed."""
        return sum(1 for a in self.taken if not failed(a)) < self.enough


@dataclass
class Pending:
    """A request of ours awaiting its answer: whom we asked, the answer to come, the batch it counts in."""

    peer: VerifiedPeer
    answer: asyncio.Future[Update]
    batch: Batch


@dataclass
class Asks:
    """One `collect`'s asks: the requests sent (request id -> its pending answer, in the order asked) and when, the
    spares not asked yet, and when an awaited answer is overdue, so that a spare is asked beside it."""

    batch: Batch
    spares: deque[VerifiedPeer]
    timeout: float
    sent: dict[str, Pending] = field(default_factory=dict)
    sent_at: dict[str, float] = field(default_factory=dict)
    first_latency: float | None = None
    """Seconds the first usable answer took, from its request: what the other peers asked are measured against."""

    def usable(self) -> int:
        return usable_count([pending.answer for pending in self.sent.values()])

    def waiting(self) -> set[asyncio.Future[Update]]:
        return {pending.answer for pending in self.sent.values() if not pending.answer.done()}

    def hedge_after(self) -> float:
        """Seconds a peer asked may stay silent before a spare is asked beside it (`HEDGE_FACTOR`, `HEDGE_MIN_S`,
        `HEDGE_SILENT_SHARE`): never longer than the share of the timeout, so a late first answer only shortens it."""
        fallback = self.timeout * HEDGE_SILENT_SHARE
        if self.first_latency is None:
            return fallback
        return min(fallback, max(HEDGE_MIN_S, HEDGE_FACTOR * self.first_latency))

    def due(self, request_id: str) -> float:
        """When the answer to `request_id` is overdue; never once its manifest was taken in (its weights are on
        their way, and a spare's manifest would be refused as not needed)."""
        if self.sent[request_id].answer in self.batch.taken:
            return math.inf
        return self.sent_at[request_id] + self.hedge_after()

    def covered(self, now: float) -> int:
        """Answers counted on toward `enough`: arrived and usable, or awaited and not overdue."""
        return sum(
            not failed(pending.answer) if pending.answer.done() else self.due(request_id) > now
            for request_id, pending in self.sent.items()
        )

    def next_due(self, now: float) -> float:
        """When the next awaited answer turns overdue (a spare may then be asked beside it); inf when no spare is left."""
        if not self.spares:
            return math.inf
        dues = (self.due(request_id) for request_id, pending in self.sent.items() if not pending.answer.done())
        return min((due for due in dues if due > now), default=math.inf)

    def answered(self, request_id: str, answer: asyncio.Future[Update]) -> None:
        """Every answer's done callback: the first usable one sets the latency the others are measured against."""
        if self.first_latency is None and not failed(answer):
            self.first_latency = asyncio.get_running_loop().time() - self.sent_at[request_id]


def failed(answer: asyncio.Future[Update]) -> bool:
    """Whether an answer ended without a usable update (refused, declined, cancelled)."""
    return answer.done() and (answer.cancelled() or answer.exception() is not None)


def usable_count(answers: list[asyncio.Future[Update]]) -> int:
    """How many answers arrived and passed every check."""
    return sum(1 for a in answers if a.done() and not a.cancelled() and a.exception() is None)
