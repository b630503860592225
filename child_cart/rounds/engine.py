"""The round engine: runs one workflow of phases per round, times them, logs the round.

What a round does lives in the phases (`phases.py`, today's round is
`DEFAULT_WORKFLOW`); the engine only holds what outlives a round (the current
model, the learner, the exchange, the rows trained on so far), runs the phases
in order with a timing each, and turns the finished `RoundContext` into the
`RoundRecord` it stores and announces. So another shape of round is another
workflow handed to the constructor, not an edit here. Without one, each round
runs the workflow its settings call for (`privacy.workflow_for`: today's round,
or with differential privacy on, today's round with PRIVATIZE after TRAIN).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import resource
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime

from cartnet.messages import PeerInfo
from child_cart.events import EventBus
from child_cart.models.versions import ModelVersion, ModelVersions
from child_cart.rounds import settings as round_settings
from child_cart.rounds import swarm_model
from child_cart.rounds.accountant import dp_enabled
from child_cart.rounds.exchange import UpdateExchange
from child_cart.rounds.learner import Learner
from child_cart.rounds.network import Network
from child_cart.rounds.privacy import workflow_for
from child_cart.rounds.roundlog import Metrics, RoundRecord, log_round, next_round_number
from child_cart.rounds.workflow import Phase, RoundContext, Weights, Workflow
from child_cart.store import Store

__all__ = ["Hook", "Phase", "Publisher", "RoundEngine"]

log = logging.getLogger(__name__)

Publisher = Callable[[ModelVersion], Awaitable[None]]
Hook = Callable[[], Awaitable[object]]


class RoundEngine:
    def __init__(
        self,
        store: Store,
        models: ModelVersions,
        learner: Learner,
        exchange: UpdateExchange,
        network: Network,
        bus: EventBus | None = None,
        publisher: Publisher | None = None,
        seed: int | None = None,
        workflow: Workflow | None = None,
    ) -> None:
        self.store, self.models, self.learner = store, models, learner
        self.exchange, self.network, self.bus, self.publisher = exchange, network, bus, publisher
        self.workflow = workflow  # None: the one each round's settings call for
        self.node_id = network.identity.node_id
        self.task = learner.task
        self.rng = random.Random(seed)
        self.trained_rows = -1
        latest = models.latest(self.task.name)
        self.current = models.load_weights(latest) if latest else learner.initial_weights
        self.swarm = swarm_model.load(swarm_model.path(models, self.task.name), self.current)
        """The last aggregate adopted, which TRAIN starts from (`swarm_model.py`); None: train from `current`."""
        self.phase: str | None = None  # the phase running now (a `Phase` for the built-in ones), None between

    @property
    def start(self) -> Weights:
        """The model a round trains from, and the one its update is the step from: the swarm model, or the kept
        model before any was adopted."""
        return self.current if self.swarm is None else self.swarm

    async def offer_saved(self) -> ModelVersion | None:
        """Offer the saved model (the current one) to peers now: a restarted cart has an update for the swarm at
        once instead of after its next training. The next round's offer replaces it.

        Offers nothing (None) before the first saved model, and with differential privacy on, where what may
        leave the cart is for PRIVATIZE to decide against the budget in the round.
        """
        latest = await asyncio.to_thread(self.models.latest, self.task.name)
        if latest is None:
            return None
        settings = await asyncio.to_thread(round_settings.load, self.store)
        self.exchange.precision = settings.update_precision
        if dp_enabled(settings):
            log.info("differential privacy is on: %s waits for the next round to be offered", latest.id)
            return None
        last_round = await asyncio.to_thread(next_round_number, self.store) - 1
        self.exchange.offer(self.current, max(1, latest.samples), max(0, last_round))
        log.info("offering the saved model %s (%d samples) to peers until the next round", latest.id, latest.samples)
        return latest

    async def run_round(self, after_training: Hook | None = None) -> RoundRecord:
        """Run one round to the end and return its log record (also stored and published).

        `after_training` is awaited right before EXCHANGE (after TRAIN and whatever
        prepares the offer, such as PRIVATIZE): the simulator passes a barrier so
        every cart offers this round's update before anyone asks.
        """
        settings = await asyncio.to_thread(round_settings.load, self.store)
        workflow = workflow_for(settings, self.workflow)
        self.exchange.precision = settings.update_precision
        hooks: dict[str, Hook] = {_offered_after(workflow): after_training} if after_training is not None else {}
        number = await asyncio.to_thread(next_round_number, self.store)
        ctx = RoundContext(self, settings, number)
        usage, bytes_before = resource.getrusage(resource.RUSAGE_SELF), self._bytes()
        await self._run_phases(ctx, workflow, hooks)
        record = self._record(ctx, usage, bytes_before)
        await asyncio.to_thread(log_round, self.store, record)
        if self.bus is not None:
            self.bus.publish("round", record.model_dump(mode="json"))
        self._log(record)
        return record

    async def _run_phases(self, ctx: RoundContext, workflow: Workflow, after: Mapping[str, Hook]) -> None:
        """Every phase in order, each timed; a hook runs after the phase it names, outside that phase's timing.

        Hooks stay out of the timings because what they wait for (the slowest
        cart's training, for a barrier) is not this cart's work.
        """
        for name in after:
            workflow.index(name)  # a hook for a phase this workflow lacks would silently never run
        for phase in workflow:
            with self._timed(phase.name, ctx.timings):
                await phase.run(ctx)
            hook = after.get(phase.name)
            if hook is not None:
                await hook()

    @contextlib.contextmanager
    def _timed(self, name: str, timings: dict[str, float]) -> Iterator[None]:
        self.phase = name
        start = time.perf_counter()
        try:
            yield
        finally:
            timings[str(name)] = round(time.perf_counter() - start, 4)
            self.phase = None

    def _bytes(self) -> tuple[int, int]:
        return self.exchange.bytes_in, self.exchange.bytes_out

    def _record(self, ctx: RoundContext, usage: resource.struct_rusage, bytes_before: tuple[int, int]) -> RoundRecord:
        bytes_in, bytes_out = self._bytes()
        return RoundRecord(
            node_id=self.node_id,
            round=ctx.number,
            task=self.task.name,
            aggregator=ctx.aggregator,
            started=ctx.started,
            finished=datetime.now(UTC),
            peers_asked=[p.node_id for p in ctx.asked],
            peers_answered=[u.source for u in ctx.peer_updates],
            skipped=ctx.skipped,
            refused=ctx.refused,
            aggregation_notes=ctx.aggregation_notes,
            bridges=self._bridges_of(ctx.asked, ctx.received),
            samples={u.source: u.samples for u in ctx.updates},
            bytes_in=bytes_in - bytes_before[0],
            bytes_out=bytes_out - bytes_before[1],
            timings=ctx.timings,
            resources=_resources_since(usage),
            local=ctx.local_metrics,
            aggregated=ctx.aggregated_metrics,
            received=ctx.received,
            accepted=ctx.accepted,
            reason=ctx.reason,
            model_version=ctx.version.version if ctx.version is not None else None,
            metric=self.task.primary_metric,
            current=ctx.current_metrics,
            kept=ctx.kept,
            kept_metrics=ctx.kept_metrics,
            best_version=ctx.best_version,
            best=ctx.best_metrics,
            local_only=ctx.local_only_metrics,
            swarm_gain=ctx.swarm_gain,
            swarm_gain_error=ctx.swarm_gain_error,
            swarm_model=ctx.swarm_model,
            swarm_metrics=ctx.swarm_metrics,
            privacy=ctx.privacy,
        )

    def _bridges_of(self, asked: list[PeerInfo], received: Mapping[str, Metrics]) -> list[str]:
        """The bridges behind every update the round used, our own included."""
        bridges = {p.bridge_id for p in asked if p.node_id in received}
        if self.network.bridge_id:
            bridges.add(self.network.bridge_id)
        return sorted(bridges)

    def _log(self, record: RoundRecord) -> None:
        metric = self.task.primary_metric
        log.info(
            "round %d: %s (%s); local %s, aggregated %s, swarm gain %s",
            record.round,
            "accepted" if record.accepted else f"kept {record.kept or 'local'}",
            record.reason,
            record.local.get(metric),
            record.aggregated.get(metric),
            record.swarm_gain,
        )


def _offered_after(workflow: Workflow) -> str:
    """The phase after which this round's update is on offer: the one right before EXCHANGE, else TRAIN."""
    names = workflow.names
    at = names.index(Phase.EXCHANGE) if Phase.EXCHANGE in names else 0
    return names[at - 1] if at > 0 else Phase.TRAIN


def _resources_since(before: resource.struct_rusage) -> dict[str, float]:
    now = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "cpu_seconds": round((now.ru_utime - before.ru_utime) + (now.ru_stime - before.ru_stime), 3),
        "peak_rss_mb": round(now.ru_maxrss / 1024, 1),
    }
