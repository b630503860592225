"""The swarm model: what a cart trains from, and so offers its peers, beside the kept model it serves.

    ... -> DECIDE -> ADOPT -> PUBLISH

A cart holds two models because they answer to two parties. The kept model
(DECIDE, `acceptance.py`) serves this cart's shoppers and phones: the candidate
that scores best on this cart's held-out rows, never drifting below the best so
far. Under skewed data that is often the cart's own local model, and a cart
that trained on from it offered its peers a model leaning ever further to its
own store. On the few dozen held-out rows of a small cart an early, lucky model
could hold the floor for a whole run: at 20 carts x 300 purchases (seed 4) two
carts kept a model of round 1 for nine rounds, 0.21 and 0.30 pooled top-1
against the swarm's 0.39, and offered it every round.

The swarm model is the last aggregate this cart adopted. TRAIN starts from it
(FedProx's pull is toward it), so what the cart offers is its rows' step from
the swarm's model, as a Flower client trains from the server's global model.
ADOPT takes this round's aggregate (before PERSONALIZE fine-tuned it) when it
scores at most the acceptance margin (`acceptance.margin`) below the swarm model
it replaces, on the same held-out rows. A poisoned aggregate drops far more, so
it is neither kept nor trained from; an aggregate that loses a little to a local
model on this cart's rows, which is what non-IID data does, is adopted anyway.

Before the first adoption the aggregate must score at least the median of the
peers' updates it averaged, on the same rows and with no margin
(`first_yardstick`): an honest average scores like its parts or better, one
that a poisoned update dragged down scores below them (with the margin, two
poisoned aggregates got through in tests/rounds/test_poisoning.py: early
updates score low, so the margin was most of the distance). Not the model the
round started from: in round one that is the untrained model, which a poisoned
aggregate can match (it did in the same test). Not the model DECIDE kept
either: on a cart whose store is unlike the others that is its own local
model, which beats every aggregate on its rows by more than the margin, so the
cart never adopted one, trained on alone and offered its peers that model
every round (at 10 carts, k = 9, seed 1, one cart in ten did: the swarm models
scored 0.747 pooled top-3 on average, where FedAvg over the same carts scores
0.761; 0.757 with this yardstick). With no peer update scored (secure
aggregation shows none) it is the kept model. Before the first adoption, or
when the saved one no longer fits the model, the cart trains from its kept
model.

The swarm model lives in one file beside the model versions
(`{task}-swarm.weights`), so a restart continues it. It is not served, exported
or listed as a model version.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import NamedTuple

from child_cart.models.versions import MODELS_DIR, ModelVersions, read_weights_file, save_weights_file
from child_cart.rounds.acceptance import margin, score
from child_cart.rounds.roundlog import Metrics
from child_cart.rounds.workflow import Phase, RoundContext, RoundPhase, Weights

log = logging.getLogger(__name__)


class Adopt(RoundPhase):
    """Make this round's aggregate the swarm model when it holds up against the one it replaces; save it."""

    name = Phase.ADOPT

    async def run(self, ctx: RoundContext) -> None:
        engine = ctx.engine
        aggregate = ctx.shared if ctx.shared is not None else ctx.aggregated
        learner = engine.learner
        previous = {} if engine.swarm is None else await asyncio.to_thread(learner.evaluate, engine.swarm)
        ctx.swarm_metrics = previous
        if aggregate is None:
            ctx.swarm_model = f"no aggregate to adopt ({ctx.aggregate_error or 'none made'}): the swarm model stays"
            return
        fresh = (
            ctx.aggregated_metrics
            if aggregate is ctx.aggregated
            else await asyncio.to_thread(learner.evaluate, aggregate)
        )
        task = engine.task
        against = Yardstick(previous, "the swarm model") if engine.swarm is not None else first_yardstick(ctx)
        tolerance, rows = (ctx.settings.tolerance, learner.val_samples) if against.margin else (0.0, 0)
        adopted, ctx.swarm_model = judge(
            fresh, against.metrics, task.primary_metric, task.higher_is_better, tolerance, rows, against.named
        )
        if adopted:
            engine.swarm, ctx.swarm_metrics = aggregate, fresh
            await asyncio.to_thread(save_weights_file, path(engine.models, task.name), aggregate)


class Yardstick(NamedTuple):
    """What an aggregate is judged against: its scores, its name for the round log, and whether the acceptance
    margin applies (not against the peers' own updates: an honest average holds up against its parts)."""

    metrics: Metrics
    named: str
    margin: bool = True


def first_yardstick(ctx: RoundContext) -> Yardstick:
    """What a cart's first aggregate is judged against: the median of the peers' updates it averaged (the lower
    median), with no margin, or, with none scored, the model DECIDE kept."""
    metric, higher_is_better = ctx.engine.task.primary_metric, ctx.engine.task.higher_is_better
    ranked = sorted(
        ((value, m) for m in ctx.received.values() if (value := score(m, metric, higher_is_better)) is not None),
        key=lambda pair: pair[0],
    )
    if not ranked:
        return Yardstick(ctx.kept_metrics, "the model kept this round")
    return Yardstick(ranked[(len(ranked) - 1) // 2][1], "the median peer update", margin=False)


def judge(
    aggregate: Metrics,
    previous: Metrics,
    metric: str,
    higher_is_better: bool,
    tolerance: float,
    rows: int,
    named: str = "the swarm model",
) -> tuple[bool, str]:
    """Whether to adopt an aggregate scoring `aggregate` in place of `named` scoring `previous` (the swarm model, or
    before the first adoption `first_yardstick`'s pick), and why, for the round log."""
    new, old = score(aggregate, metric, higher_is_better), score(previous, metric, higher_is_better)
    if new is None:
        return False, "the aggregate has no held-out score to judge it on: the swarm model stays"
    if old is None:
        return True, f"adopted the aggregate ({metric} {aggregate[metric]:.4f}): nothing scored to compare it with"
    allowed = margin(tolerance, old, rows, higher_is_better)
    said = f"the aggregate ({metric} {aggregate[metric]:.4f})"
    than = f"{named} ({previous[metric]:.4f})"
    if new >= old - allowed:
        return (
            True,
            f"adopted {said}: within {allowed:.4g} of {than}" if allowed else f"adopted {said}: not below {than}",
        )
    return False, f"{said} is {f'more than {allowed:.4g} ' if allowed else ''}below {than}: the swarm model stays"


def path(models: ModelVersions, task: str) -> Path:
    """Where a cart keeps its swarm model for `task` (one file, replaced atomically when an aggregate is adopted)."""
    return models.path(f"{MODELS_DIR}/{task}-swarm.weights")


def load(file: Path, layout: Weights) -> Weights | None:
    """The saved swarm model, or None when there is none yet, it cannot be read or it does not fit `layout` (the
    task's model changed): the cart then trains from its kept model until it adopts an aggregate again."""
    weights = read_weights_file(file, "swarm model")
    if weights is not None and [w.shape for w in weights] != [w.shape for w in layout]:
        log.warning("swarm model %s does not fit the model: training from the kept model until one is adopted", file)
        return None
    return weights
