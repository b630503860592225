"""Personalization: PERSONALIZE fine-tunes the swarm's aggregate on this cart's own rows before it is scored.

    TRAIN -> EXCHANGE -> AGGREGATE -> PERSONALIZE -> EVALUATE -> LOCAL_ONLY -> DECIDE -> PUBLISH

Under skewed (non-IID) data one averaged model fits no cart's shoppers best: the
aggregate carries what the swarm knows (missions this store rarely sees), a few
local epochs on top of it fit it back to this store's mix ("FedAvg + local
fine-tuning", the simplest personalization; Flower's and FedBN-style local heads
are the other family). EVALUATE and DECIDE then score the fine-tuned aggregate
on the cart's held-out rows like any aggregate, so the acceptance rule still
guards it. The raw aggregate stays in `ctx.shared`.

The round settings switch it on (`personalize_epochs` > 0): `workflow_for`
inserts the phase, so the engine is not edited.
"""

from __future__ import annotations

import asyncio
import logging

from child_cart.rounds.workflow import Phase, RoundContext, RoundPhase, Workflow

log = logging.getLogger(__name__)

PERSONALIZE = "personalize"


class Personalize(RoundPhase):
    """Fine-tune this round's aggregate for `personalize_epochs` on the cart's own training rows.

    Nothing to do without an aggregate (too few peers answered), with the setting
    at 0, or without training rows; the fine-tuned model never leaves the cart
    this round (the offer was made in TRAIN).
    """

    name = PERSONALIZE

    async def run(self, ctx: RoundContext) -> None:
        epochs, learner = ctx.settings.personalize_epochs, ctx.engine.learner
        if ctx.aggregated is None or epochs <= 0 or learner.train_samples == 0:
            return
        ctx.shared = ctx.aggregated
        ctx.aggregated = await asyncio.to_thread(learner.train, ctx.aggregated, epochs)


def personalized(workflow: Workflow, epochs: int) -> Workflow:
    """`workflow` with PERSONALIZE right after AGGREGATE when `epochs` > 0 and it has none yet; else unchanged."""
    if epochs <= 0 or PERSONALIZE in workflow.names or Phase.AGGREGATE not in workflow.names:
        return workflow
    return workflow.inserted_after(Phase.AGGREGATE, Personalize())
