"""The built-in round phases, one job each, and today's round as `DEFAULT_WORKFLOW`.

    TRAIN -> EXCHANGE -> AGGREGATE -> EVALUATE -> LOCAL_ONLY -> DECIDE -> ADOPT -> PUBLISH

The cart trains on its own rows from its swarm model, offers the result to
peers, asks k live peers for theirs, aggregates everything with the configured
rule, trains its local-only shadow model (the yardstick of what the swarm
brings), and keeps the best of aggregate, fresh local and current model on the
same held-out rows, never one worse than its best so far beyond the tolerance
(`acceptance.py`). ADOPT makes the aggregate the swarm model the next round
trains from unless it fell beyond that margin (`swarm_model.py`).
Each phase reads what the ones before it left in the `RoundContext` and writes
its own part; the engine times them and logs the round.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from child_cart.aggregation import AggregationError, Update, make_aggregator
from child_cart.models.versions import MODELS_DIR, ModelCorrupt, ModelVersions, read_weights_file, save_weights_file
from child_cart.rounds.acceptance import Candidate, Scored, choose, score
from child_cart.rounds.learner import SHADOW, Learner
from child_cart.rounds.roundlog import Metrics, best_version
from child_cart.rounds.swarm_model import Adopt
from child_cart.rounds.workflow import Phase, RoundContext, RoundPhase, Weights, Workflow

log = logging.getLogger(__name__)


class Train(RoundPhase):
    """Train on this cart's rows (unless too few are new), score the result and offer it to peers.

    Training starts from the swarm model, the last aggregate adopted (`swarm_model.py`), or from the kept model
    before there is one. With `prox_mu` > 0 in the settings the training is FedProx's: pulled toward that start.

    `Train(offer=False)` leaves the offer to a later phase that changes the update
    before it leaves the cart (`privacy.Privatize`): nothing is on offer meanwhile.
    """

    name = Phase.TRAIN

    def __init__(self, offer: bool = True) -> None:
        self.offer = offer  # configuration, the same for every round and engine: no round state

    async def run(self, ctx: RoundContext) -> None:
        engine = ctx.engine
        rows = await asyncio.to_thread(engine.task.rows, engine.store)
        await asyncio.to_thread(engine.learner.load_rows, rows)
        local = await self._trained(ctx, len(rows))
        samples = max(1, engine.learner.train_samples)
        if self.offer:
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
        local = await asyncio.to_thread(
            engine.learner.train, engine.start, ctx.settings.local_epochs, ctx.settings.prox_mu
        )
        engine.trained_rows = rows
        ctx.trained = True
        return local


class Exchange(RoundPhase):
    """Draw k + `over_ask` live peers, ask k of them for this round's update, go on once k have sent one (or at the
    deadline).

    The bridge draws them at random from the carts that announced themselves for our
    task, those with an update ready first, and no directory is ever listed whole. The
    `over_ask` beyond k are spares, each asked only for a peer that declines, fails or is
    slow beside the first answer (`UpdateExchange.collect`): a round whose peers answer
    costs k requests, and a silent or declining peer costs it about one more answer's
    time, not the deadline. `ctx.asked` (the round log's `peers_asked`) names every peer
    drawn to ask; those never asked (a spare not needed, an entry that does not verify)
    are skipped with "not asked" in the reason. Peers that let a recent round's
    deadline pass without a word are drawn beside as many more and asked last
    (`UpdateExchange.prefer_responsive`). A drawn peer whose entry does not verify (its own
    signed presence and swarm certificate, cartnet.peers) is skipped, never asked; the
    carts we verified already are named, so the bridge lists them by id alone (about 75
    bytes on the wire where a whole entry is about 430) and our verifier's entries stand for them.
    """

    name = Phase.EXCHANGE

    async def run(self, ctx: RoundContext) -> None:
        engine, settings, exchange = ctx.engine, ctx.settings, ctx.engine.exchange
        wanted = settings.k + settings.over_ask
        sample = wanted + exchange.extra_draw(ctx.number, wanted)
        drawn = await engine.network.peers(
            sample=sample, task=engine.task.name, known=exchange.verifier.holders(), by_id=True
        )
        others = [p for p in drawn if p.node_id != engine.node_id]
        ctx.asked = exchange.prefer_responsive(others, ctx.number, wanted)
        collected = await engine.exchange.collect(ctx.asked, ctx.number, settings.peer_timeout, enough=settings.k)
        ctx.peer_updates, ctx.skipped, ctx.refused = collected.updates, collected.skipped, collected.refused


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
        ctx.aggregation_notes = rule.notes


class Evaluate(RoundPhase):
    """Score every received update and the aggregate on our held-out rows: the evidence DECIDE and the log use."""

    name = Phase.EVALUATE

    async def run(self, ctx: RoundContext) -> None:
        learner = ctx.engine.learner
        ctx.received = {u.source: await asyncio.to_thread(learner.evaluate, u.weights) for u in ctx.peer_updates}
        if ctx.aggregated is not None:
            ctx.aggregated_metrics = await asyncio.to_thread(learner.evaluate, ctx.aggregated)


class LocalOnly(RoundPhase):
    """Train the cart's local-only shadow model and score it on the same held-out rows: what the cart would have alone.

    The shadow starts from the same initial weights as the real model and is
    trained from its own previous weights on the same rows, with the same epochs,
    in the same rounds as TRAIN trains (none when too few rows were new), but
    never sees a peer's weights. Its weights live in one file beside the model
    versions, so a restart continues it. DECIDE reports the kept model's score
    minus this one as the round's swarm gain.
    """

    name = Phase.LOCAL_ONLY

    async def run(self, ctx: RoundContext) -> None:
        engine = ctx.engine
        learner, path = engine.learner, local_only_path(engine.models, engine.task.name)
        epochs = ctx.settings.local_epochs if ctx.trained else 0
        saved = await asyncio.to_thread(read_weights_file, path, "local-only weights")
        shadow = learner.initial_weights if saved is None else saved
        try:
            shadow, ctx.local_only_metrics = await asyncio.to_thread(_advance, learner, shadow, epochs)
        except ValueError as exc:  # stored for another model (the task's model changed): start afresh
            log.warning(
                "local-only weights %s do not fit the model (%s): starting the local-only model afresh", path, exc
            )
            shadow, ctx.local_only_metrics = await asyncio.to_thread(_advance, learner, learner.initial_weights, epochs)
        ctx.local_only = shadow
        if epochs:
            await asyncio.to_thread(save_weights_file, path, shadow)


def _advance(learner: Learner, weights: Weights, epochs: int) -> tuple[Weights, Metrics]:
    """`weights` trained for `epochs` (none: as they are) and their held-out metrics."""
    if epochs:
        weights = learner.train(weights, epochs, track=SHADOW)
    return weights, learner.evaluate(weights)


def local_only_path(models: ModelVersions, task: str) -> Path:
    """Where a cart keeps its local-only shadow weights for `task` (one file, replaced atomically each round)."""
    return models.path(f"{MODELS_DIR}/{task}-local-only.weights")


class Decide(RoundPhase):
    """Score aggregate, fresh local, current and best-so-far model on the same held-out rows; keep one; save it.

    The rule is `acceptance.choose`. The best model kept so far is named in every
    round record (`best_version`) and read back from the newest one, so the floor
    it sets survives a restart. `accepted` says whether the aggregate was kept;
    `kept` and `reason` say which candidate was and why; `swarm_gain` is the kept
    model's score minus the local-only shadow's, `swarm_gain_error` one standard
    error of that difference (paired, row by row), so a page can say whether a
    gain is more than the noise of a few held-out rows.
    """

    name = Phase.DECIDE

    async def run(self, ctx: RoundContext) -> None:
        engine = ctx.engine
        task, models = engine.task, engine.models
        metric, higher = task.primary_metric, task.higher_is_better
        latest = await asyncio.to_thread(models.latest, task.name)
        pool = await _Pool.scored(ctx, latest.id if latest is not None else None)
        rows = engine.learner.val_samples
        verdict = choose(pool.candidates, metric, higher, ctx.settings.tolerance, ctx.aggregate_error, rows)
        kept = verdict.kept
        kept_weights, kept_metrics = pool.weights[kept], pool.metrics[kept]
        if kept == Candidate.CURRENT and latest is not None:
            ctx.version = latest
        else:
            parent = pool.best_id if kept == Candidate.BEST else latest.id if latest is not None else None
            ctx.version = await asyncio.to_thread(
                models.save,
                task.name,
                kept_weights,
                engine.learner.train_samples,
                kept_metrics,
                source=kept.value,
                parent=parent,
            )
        engine.current = kept_weights
        ctx.accepted, ctx.reason = verdict.accepted, verdict.reason
        ctx.kept, ctx.kept_metrics = kept.value, kept_metrics
        kept_so_far = [
            (pool.best_id, pool.best_metrics),
            (latest.id if latest is not None else None, ctx.current_metrics),
            (ctx.version.id, kept_metrics),
        ]
        ctx.best_version, ctx.best_metrics = _best_so_far(kept_so_far, metric, higher) or (
            pool.best_id,
            pool.best_metrics,
        )
        kept_score, alone = score(kept_metrics, metric, higher), score(ctx.local_only_metrics, metric, higher)
        if kept_score is not None and alone is not None:
            ctx.swarm_gain = round(kept_score - alone, 6)
            ctx.swarm_gain_error = await _gain_error(engine.learner, kept_weights, ctx.local_only)


async def _gain_error(learner: Learner, kept: Weights, alone: Weights | None) -> float | None:
    """One standard error of the swarm gain (`Learner.paired_error`), None without the local-only weights."""
    error = None if alone is None else await asyncio.to_thread(learner.paired_error, kept, alone)
    return None if error is None else round(error, 6)


@dataclass
class _Pool:
    """DECIDE's candidates, each with its weights and its metrics on this round's held-out rows."""

    weights: dict[Candidate, Weights] = field(default_factory=dict)
    metrics: dict[Candidate, Metrics] = field(default_factory=dict)
    best_id: str | None = None
    best_metrics: Metrics = field(default_factory=dict)

    @property
    def candidates(self) -> list[Scored]:
        return [Scored(candidate, metrics) for candidate, metrics in self.metrics.items()]

    def add(self, candidate: Candidate, weights: Weights, metrics: Metrics) -> None:
        self.weights[candidate], self.metrics[candidate] = weights, metrics

    @classmethod
    async def scored(cls, ctx: RoundContext, latest_id: str | None) -> _Pool:
        """Aggregate, fresh local (when it differs from the current model), current and best-so-far model, all scored.

        The current model is the latest version; the best so far is loaded from
        its version and scored again only when it is another one.
        """
        engine, pool = ctx.engine, cls()
        learner, current = engine.learner, engine.current
        if ctx.aggregated is not None:
            pool.add(Candidate.AGGREGATE, ctx.aggregated, ctx.aggregated_metrics)
        if ctx.own is not None and ctx.own.weights is current:
            ctx.current_metrics = ctx.local_metrics  # offered untrained: the local model is the current one
        else:
            if ctx.own is not None:
                pool.add(Candidate.LOCAL, ctx.own.weights, ctx.local_metrics)
            ctx.current_metrics = await asyncio.to_thread(learner.evaluate, current)
        pool.add(Candidate.CURRENT, current, ctx.current_metrics)
        best_id = await asyncio.to_thread(best_version, engine.store, engine.task.name)
        if best_id is not None and best_id == latest_id:
            pool.best_id, pool.best_metrics = best_id, ctx.current_metrics
        elif best_id is not None:
            best = await asyncio.to_thread(_best_scored, engine.models, learner, best_id)
            if best is not None:
                pool.add(Candidate.BEST, *best)
                pool.best_id, pool.best_metrics = best_id, best[1]
        return pool


def _best_so_far(
    kept: list[tuple[str | None, Metrics]], metric: str, higher_is_better: bool
) -> tuple[str, Metrics] | None:
    """The highest-scoring of the versions the cart has kept (oldest first; a tie goes to the newest), if any scores."""
    scored = [
        (value, order, version, metrics)
        for order, (version, metrics) in enumerate(kept)
        if version is not None and (value := score(metrics, metric, higher_is_better)) is not None
    ]
    if not scored:
        return None
    _, _, version, metrics = max(scored, key=lambda item: (item[0], item[1]))
    return version, metrics


def _best_scored(models: ModelVersions, learner: Learner, version_id: str) -> tuple[Weights, Metrics] | None:
    """The best-so-far version's weights and held-out metrics; None (with a warning) when gone, damaged or unfit."""
    try:
        weights = models.load_weights(models.get(version_id))
        return weights, learner.evaluate(weights)
    except (KeyError, ModelCorrupt, OSError, ValueError) as exc:  # WeightsError is a ValueError, as is a misfit
        log.warning("best model so far %s unusable (%s): the acceptance floor starts again", version_id, exc)
        return None


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


DEFAULT_WORKFLOW = Workflow(Train(), Exchange(), Aggregate(), Evaluate(), LocalOnly(), Decide(), Adopt(), Publish())
"""Today's round. Build another shape from it with `inserted_after` / `replaced`."""
