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
it replaces, on the same held-out rows; before the first adoption, below the
model DECIDE kept this round (not the model the round started from: in round
one that is the untrained model, which a poisoned aggregate can match, and did
in tests/rounds/test_poisoning.py). A poisoned aggregate drops far more, so
it is neither kept nor trained from; an aggregate that loses a little to a local
model on this cart's rows, which is what non-IID data does, is adopted anyway.
Before the first adoption, or when the saved one no longer fits the model, the
cart trains from its kept model.

The swarm model lives in one file beside the model versions
(`{task}-swarm.weights`), so a restart continues it. It is not served, exported
or listed as a model version.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from cartnet.files import write_atomic
from cartnet.weights import WeightsError
from child_cart.models.versions import MODELS_DIR, ModelVersions, decode_weights, encode_weights
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
        adopted, ctx.swarm_model = judge(
            fresh,
            previous if engine.swarm is not None else ctx.kept_metrics,
            task.primary_metric,
            task.higher_is_better,
            ctx.settings.tolerance,
            learner.val_samples,
        )
        if adopted:
            engine.swarm, ctx.swarm_metrics = aggregate, fresh
            await asyncio.to_thread(save, path(engine.models, task.name), aggregate)


def judge(
    aggregate: Metrics, previous: Metrics, metric: str, higher_is_better: bool, tolerance: float, rows: int
) -> tuple[bool, str]:
    """Whether to adopt an aggregate scoring `aggregate` in place of a swarm model scoring `previous` (the model kept
    this round before any was adopted), and why, for the round log."""
    new, old = score(aggregate, metric, higher_is_better), score(previous, metric, higher_is_better)
    if new is None:
        return False, "the aggregate has no held-out score to judge it on: the swarm model stays"
    if old is None:
        return True, f"adopted the aggregate ({metric} {aggregate[metric]:.4f}): nothing scored to compare it with"
    allowed = margin(tolerance, old, rows, higher_is_better)
    said = f"the aggregate ({metric} {aggregate[metric]:.4f})"
    if new >= old - allowed:
        return True, f"adopted {said}: within {allowed:.4g} of the model it replaces ({previous[metric]:.4f})"
    return False, f"{said} is more than {allowed:.4g} below the swarm model ({previous[metric]:.4f}), which stays"


def path(models: ModelVersions, task: str) -> Path:
    """Where a cart keeps its swarm model for `task` (one file, replaced atomically when an aggregate is adopted)."""
    return models.path(f"{MODELS_DIR}/{task}-swarm.weights")


def save(file: Path, weights: Weights) -> None:
    """Replace the swarm model's file (encoding and writing both off the loop: callers run it on a thread)."""
    write_atomic(file, encode_weights(weights), private=True)


def load(file: Path, layout: Weights) -> Weights | None:
    """The saved swarm model, or None when there is none yet, it cannot be read or it does not fit `layout` (the
    task's model changed): the cart then trains from its kept model until it adopts an aggregate again."""
    if not file.exists():
        return None
    try:
        weights = decode_weights(file.read_bytes())
    except (OSError, WeightsError) as exc:
        log.warning(
            "swarm model %s unreadable (%s): training from the kept model until an aggregate is adopted", file, exc
        )
        return None
    if [w.shape for w in weights] != [w.shape for w in layout]:
        log.warning("swarm model %s does not fit the model: training from the kept model until one is adopted", file)
        return None
    return weights
