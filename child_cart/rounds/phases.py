"""The built-in round phases, one job each, and today's round as `DEFAULT_WORKFLOW`.

    TRAIN -> EXCHANGE -> AGGREGATE -> EVALUATE -> DECIDE -> PUBLISH

The cart trains on its own rows, offers the result to peers, asks k live peers
for theirs, aggregates everything with the configured rule, and keeps the
aggregate only if its held-out metric is not worse than the local model's by
more than the tolerance. Each phase reads what the ones before it left in the
`RoundContext` and writes its own part; the engine times them and logs the round.
"""

from __future__ import annotations

import asyncio
import logging

from child_cart.aggregation import AggregationError, Update, make_aggregator
from child_cart.rounds.workflow import Phase, RoundContext, RoundPhase, Weights, Workflow

log = logging.getLogger(__name__)


class Train(RoundPhase):
    """Train on this cart's rows (unless too few are new), score the result and offer it to peers."""

    name = Phase.TRAIN

    async def run(self, ctx: RoundContext) -> None:
        engine = ctx.engine
        rows = await asyncio.to_thread(engine.task.rows, engine.store)
        engine.learner.load_rows(rows)
        local = await self._trained(ctx, len(rows))
        samples = max(1, engine.learner.train_samples)
        engine.exchange.offer(local, samples, ctx.number)
        ctx.own = Update(engine.node_id, local, samples)
        ctx.local_metrics = await asyncio.to_thread(engine.learner.evaluate, local)

    @staticmethod
    async def _trained(ctx: RoundContext, rows: int) -> Weights:
        """Fresh weights, or the current model untrained when fewer than `min_new_rows` rows are new since last time."""
        engine = ctx.engine
        fresh = rows - max(engine.trained_rows, 0)
        if engine.trained_rows >= 0 and fresh < ctx.settings.min_new_rows:
            log.info("only %d new rows (< %d): offering the current model untrained", fresh, ctx.settings.min_new_rows)
            return engine.current
        local = await asyncio.to_thread(engine.learner.train, engine.current, ctx.settings.local_epochs)
        engine.trained_rows = rows
        return local


class Exchange(RoundPhase):
    """Ask k live peers, drawn at random from the directory, for this round's update."""

    name = Phase.EXCHANGE

    async def run(self, ctx: RoundContext) -> None:
        engine = ctx.engine
        live = [p for p in await engine.network.peers() if p.node_id != engine.node_id]
        ctx.asked = engine.rng.sample(live, min(ctx.settings.k, len(live)))
        collected = await engine.exchange.collect(ctx.asked, ctx.number, ctx.settings.peer_timeout)
        ctx.peer_updates, ctx.skipped = collected.updates, collected.skipped


class Aggregate(RoundPhase):
    """Combine our update with the peers' by the round's rule.

    Too few updates or a rule that refuses them is an outcome the log records
    (`aggregate_error`), not a failed round: the cart then keeps its local model.
    """

    name = Phase.AGGREGATE

    async def run(self, ctx: RoundContext) -> None:
        updates = ctx.updates
        if len(updates) < 2:
            ctx.aggregate_error = "no peer updates arrived"
            return
        rule = make_aggregator(ctx.aggregator, ctx.settings.trim_ratio, ctx.settings.krum_f)
        try:
            ctx.aggregated = await asyncio.to_thread(rule.aggregate, updates)
        except AggregationError as exc:
            ctx.aggregate_error = f"{ctx.aggregator} could not aggregate: {exc}"


class Evaluate(RoundPhase):
    """Score every received update and the aggregate on our held-out rows: the evidence DECIDE and the log use."""

    name = Phase.EVALUATE

    async def run(self, ctx: RoundContext) -> None:
        learner = ctx.engine.learner
        ctx.received = {u.source: await asyncio.to_thread(learner.evaluate, u.weights) for u in ctx.peer_updates}
        if ctx.aggregated is not None:
            ctx.aggregated_metrics = await asyncio.to_thread(learner.evaluate, ctx.aggregated)


class Decide(RoundPhase):
    """Keep the aggregate unless it scores worse than the local model beyond the tolerance; save the kept model."""

    name = Phase.DECIDE

    async def run(self, ctx: RoundContext) -> None:
        ctx.accepted, ctx.reason = self.judge(ctx)
        if ctx.accepted and ctx.aggregated is not None:
            kept, metrics, source = ctx.aggregated, ctx.aggregated_metrics, "aggregate"
        else:
            kept, metrics, source = ctx.local, ctx.local_metrics, "local"
        engine = ctx.engine
        engine.current = kept
        ctx.version = engine.models.save(engine.task.name, kept, engine.learner.train_samples, metrics, source=source)

    @staticmethod
    def judge(ctx: RoundContext) -> tuple[bool, str]:
        """Whether to keep the aggregate, and the reason the round log shows."""
        task, local, aggregated = ctx.engine.task, ctx.local_metrics, ctx.aggregated_metrics
        metric = task.primary_metric
        if ctx.aggregate_error:
            return False, ctx.aggregate_error
        if metric not in local or metric not in aggregated:
            return False, "no held-out rows to judge the aggregate on"
        gain = aggregated[metric] - local[metric]
        if not task.higher_is_better:
            gain = -gain
        if gain < -ctx.settings.tolerance:
            return (
                False,
                f"aggregate {metric} {aggregated[metric]:.4f} is worse than local {local[metric]:.4f} beyond tolerance {ctx.settings.tolerance}",
            )
        return (
            True,
            f"aggregate of {len(ctx.peer_updates) + 1} updates: {metric} {aggregated[metric]:.4f} vs local {local[metric]:.4f}",
        )


class Publish(RoundPhase):
    """Hand an accepted model to the phone publisher (TFLite export, then to the bridge)."""

    name = Phase.PUBLISH

    async def run(self, ctx: RoundContext) -> None:
        publisher = ctx.engine.publisher
        if not ctx.accepted or publisher is None or ctx.version is None:
            return
        try:
            await publisher(ctx.version)
        except Exception as exc:  # publishing for phones must never break the round itself
            log.warning("could not publish model %s: %s", ctx.version.id, exc)


DEFAULT_WORKFLOW = Workflow(Train(), Exchange(), Aggregate(), Evaluate(), Decide(), Publish())
"""Today's round. Build another shape from it with `inserted_after` / `replaced`."""
