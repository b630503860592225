"""One federated round as an explicit sequence of phases.

    TRAIN -> EXCHANGE -> AGGREGATE -> EVALUATE -> DECIDE -> PUBLISH -> logged

The cart trains on its own rows, offers the result to peers, asks k live peers
for theirs, aggregates everything with the configured rule, and keeps the
aggregate only if its held-out metric is not worse than the local model's by
more than the tolerance. Every round is logged with who answered, what was
skipped and why, bytes, time per phase, resources and metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import resource
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime

import numpy as np

from child_cart.aggregation import AggregationError, Update, make_aggregator
from child_cart.events import EventBus
from child_cart.models.versions import ModelVersion, ModelVersions
from child_cart.rounds import settings as round_settings
from child_cart.rounds.exchange import UpdateExchange
from child_cart.rounds.learner import Learner
from child_cart.rounds.network import Network
from child_cart.rounds.roundlog import RoundRecord, log_round, next_round_number
from child_cart.rounds.settings import RoundSettings
from child_cart.store import Store

log = logging.getLogger(__name__)

Publisher = Callable[[ModelVersion], Awaitable[None]]


class Phase(enum.Enum):
    TRAIN = "train"
    EXCHANGE = "exchange"
    AGGREGATE = "aggregate"
    EVALUATE = "evaluate"
    DECIDE = "decide"
    PUBLISH = "publish"


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
    ) -> None:
        self.store, self.models, self.learner = store, models, learner
        self.exchange, self.network, self.bus, self.publisher = exchange, network, bus, publisher
        self.node_id = network.identity.node_id
        self.task = learner.task
        self._rng = random.Random(seed)
        self._trained_rows = -1
        latest = models.latest(self.task.name)
        self.current = models.load_weights(latest) if latest else learner.initial_weights
        self.phase: Phase | None = None

    async def run_round(self, after_training: Callable[[], Awaitable[object]] | None = None) -> RoundRecord:
        """Run one round to the end and return its log record (also stored and published).

        `after_training` is awaited between TRAIN and EXCHANGE: the simulator passes a
        barrier so every cart offers this round's update before anyone asks.
        """
        settings = round_settings.load(self.store)
        number = next_round_number(self.store)
        started, usage = datetime.now(UTC), resource.getrusage(resource.RUSAGE_SELF)
        timings: dict[str, float] = {}
        bytes_in, bytes_out = self.exchange.bytes_in, self.exchange.bytes_out
        with self._phase(Phase.TRAIN, timings):
            local, local_metrics = await self._train(settings, number)
        if after_training is not None:
            await after_training()
        with self._phase(Phase.EXCHANGE, timings):
            asked, collected = await self._ask_peers(settings, number)
        own = Update(self.node_id, local, max(1, self.learner.train_samples))
        with self._phase(Phase.AGGREGATE, timings):
            aggregated, agg_error = await self._aggregate(settings, self._rule(settings), [own, *collected.updates])
        with self._phase(Phase.EVALUATE, timings):
            received = {u.source: await asyncio.to_thread(self.learner.evaluate, u.weights) for u in collected.updates}
            agg_metrics = await asyncio.to_thread(self.learner.evaluate, aggregated) if aggregated is not None else {}
        with self._phase(Phase.DECIDE, timings):
            accepted, reason = self._decide(settings, local_metrics, agg_metrics, agg_error, len(collected.updates))
            version = self._keep(
                aggregated if accepted else local, accepted, agg_metrics if accepted else local_metrics
            )
        with self._phase(Phase.PUBLISH, timings):
            await self._publish(version, accepted)
        record = RoundRecord(
            node_id=self.node_id,
            round=number,
            task=self.task.name,
            aggregator=self._rule(settings),
            started=started,
            finished=datetime.now(UTC),
            peers_asked=[p.node_id for p in asked],
            peers_answered=[u.source for u in collected.updates],
            skipped=collected.skipped,
            bridges=self._bridges_of(asked, received),
            samples={u.source: u.samples for u in [own, *collected.updates]},
            bytes_in=self.exchange.bytes_in - bytes_in,
            bytes_out=self.exchange.bytes_out - bytes_out,
            timings=timings,
            resources=_resources_since(usage),
            local=local_metrics,
            aggregated=agg_metrics,
            received=received,
            accepted=accepted,
            reason=reason,
            model_version=version.version,
        )
        await asyncio.to_thread(log_round, self.store, record)
        if self.bus is not None:
            self.bus.publish("round", record.model_dump(mode="json"))
        log.info(
            "round %d: %s (%s); local %s, aggregated %s",
            number,
            "accepted" if accepted else "kept local",
            reason,
            local_metrics.get(self.task.primary_metric),
            agg_metrics.get(self.task.primary_metric),
        )
        return record

    def _bridges_of(self, asked: list, received: dict) -> list[str]:
        """The bridges behind every update the round used, our own included."""
        bridges = {p.bridge_id for p in asked if p.node_id in received}
        if self.network.bridge_id:
            bridges.add(self.network.bridge_id)
        return sorted(bridges)

    @contextlib.contextmanager
    def _phase(self, phase: Phase, timings: dict[str, float]) -> Iterator[None]:
        self.phase = phase
        start = time.perf_counter()
        try:
            yield
        finally:
            timings[phase.value] = round(time.perf_counter() - start, 4)
            self.phase = None

    async def _train(self, settings: RoundSettings, number: int) -> tuple[list[np.ndarray], dict[str, float]]:
        rows = await asyncio.to_thread(self.task.rows, self.store)
        self.learner.load_rows(rows)
        fresh = len(rows) - max(self._trained_rows, 0)
        if self._trained_rows >= 0 and fresh < settings.min_new_rows:
            log.info("only %d new rows (< %d): offering the current model untrained", fresh, settings.min_new_rows)
            local = self.current
        else:
            local = await asyncio.to_thread(self.learner.train, self.current, settings.local_epochs)
            self._trained_rows = len(rows)
        self.exchange.offer(local, max(1, self.learner.train_samples), number)
        return local, await asyncio.to_thread(self.learner.evaluate, local)

    async def _ask_peers(self, settings: RoundSettings, number: int):
        live = [p for p in await self.network.peers() if p.node_id != self.node_id]
        asked = self._rng.sample(live, min(settings.k, len(live)))
        return asked, await self.exchange.collect(asked, number, settings.peer_timeout)

    def _rule(self, settings: RoundSettings) -> str:
        """The task's own rule when its models need one (a forest cannot be averaged), else the settings'."""
        return self.task.aggregator or settings.aggregator

    @staticmethod
    async def _aggregate(
        settings: RoundSettings, name: str, updates: list[Update]
    ) -> tuple[list[np.ndarray] | None, str]:
        if len(updates) < 2:
            return None, "no peer updates arrived"
        rule = make_aggregator(name, settings.trim_ratio, settings.krum_f)
        try:
            return await asyncio.to_thread(rule.aggregate, updates), ""
        except AggregationError as exc:
            return None, f"{name} could not aggregate: {exc}"

    def _decide(
        self, settings: RoundSettings, local: dict[str, float], aggregated: dict[str, float], error: str, answered: int
    ) -> tuple[bool, str]:
        metric = self.task.primary_metric
        if error:
            return False, error
        if metric not in local or metric not in aggregated:
            return False, "no held-out rows to judge the aggregate on"
        gain = aggregated[metric] - local[metric]
        if not self.task.higher_is_better:
            gain = -gain
        if gain < -settings.tolerance:
            return (
                False,
                f"aggregate {metric} {aggregated[metric]:.4f} is worse than local {local[metric]:.4f} beyond tolerance {settings.tolerance}",
            )
        return (
            True,
            f"aggregate of {answered + 1} updates: {metric} {aggregated[metric]:.4f} vs local {local[metric]:.4f}",
        )

    def _keep(self, chosen: list[np.ndarray], accepted: bool, metrics: dict[str, float]) -> ModelVersion:
        self.current = chosen
        return self.models.save(
            self.task.name, chosen, self.learner.train_samples, metrics, source="aggregate" if accepted else "local"
        )

    async def _publish(self, version: ModelVersion, accepted: bool) -> None:
        if not accepted or self.publisher is None:
            return
        try:
            await self.publisher(version)
        except Exception as exc:  # publishing for phones must never break the round itself
            log.warning("could not publish model %s: %s", version.id, exc)


def _resources_since(before: resource.struct_rusage) -> dict[str, float]:
    now = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "cpu_seconds": round((now.ru_utime - before.ru_utime) + (now.ru_stime - before.ru_stime), 3),
        "peak_rss_mb": round(now.ru_maxrss / 1024, 1),
    }
