"""Personalization: PERSONALIZE fine-tunes the swarm's aggregate on this cart's own rows before it is scored.

    TRAIN -> EXCHANGE -> AGGREGATE -> PERSONALIZE -> EVALUATE -> LOCAL_ONLY -> DECIDE -> ADOPT -> PUBLISH

Under skewed (non-IID) data one averaged model fits no cart's shoppers best: the
aggregate carries what the swarm knows (missions this store rarely sees), a few
local epochs on top of it fit it back to this store's mix ("FedAvg + local
fine-tuning", the simplest personalization; local heads are the other family,
below). EVALUATE and DECIDE then score the fine-tuned aggregate
on the cart's held-out rows like any aggregate, so the acceptance rule still
guards it. The raw aggregate stays in `ctx.shared`: ADOPT judges that one as the swarm model.

The round settings switch it on (`personalize_epochs` > 0, `personalize_head`, or both: fine-tuning
first, then the head refitted on the fine-tuned body's features): `workflow_for`
inserts the phase, so the engine is not edited.

The other family is a shared body with a local head (`local_head` in the
settings, FedPer's split): the cart offers peers only the shared body (every
layer but the output layer) and keeps its own head, which never leaves it:

    TRAIN (no offer) -> OFFER_BODY -> EXCHANGE -> ATTACH_HEAD -> AGGREGATE -> [PERSONALIZE] -> EVALUATE -> ...

OFFER_BODY offers the body of the fresh local model (which also fixes the
layout accepted from peers: bodies); ATTACH_HEAD puts this cart's fresh head
on every peer's body, so EVALUATE scores each as this cart would use it, and
any aggregation rule combines the bodies while every head is this cart's own
(identical heads aggregate to themselves). Carts of one swarm must agree on
it: a full model and a body do not have the same layout, and are refused.
"""

from __future__ import annotations

import asyncio
import logging

from child_cart.aggregation import Update
from child_cart.rounds.learner import PERSONAL
from child_cart.rounds.phases import Train
from child_cart.rounds.workflow import Phase, RoundContext, RoundPhase, Weights, Workflow

log = logging.getLogger(__name__)

PERSONALIZE = "personalize"
OFFER_BODY = "offer_body"
ATTACH_HEAD = "attach_head"
HEAD_ARRAYS = 2
"""The local head: the output layer's kernel and bias, the last two weight arrays of a Keras Dense model."""


class Personalize(RoundPhase):
    """Fit this round's aggregate to the cart's own training rows: `personalize_epochs` of fine-tuning, then with
    `personalize_head` its output layer refitted (`tasks.head_refit`).

    Nothing to do without an aggregate (too few peers answered), with both
    settings off, or without training rows; the personal model never leaves the
    cart this round (the offer was made in TRAIN).
    """

    name = PERSONALIZE

    async def run(self, ctx: RoundContext) -> None:
        epochs, head, learner = ctx.settings.personalize_epochs, ctx.settings.personalize_head, ctx.engine.learner
        if ctx.aggregated is None or (epochs <= 0 and not head) or learner.train_samples == 0:
            return
        ctx.shared = ctx.aggregated
        ctx.aggregated = await asyncio.to_thread(learner.train, ctx.aggregated, epochs, head=head, track=PERSONAL)


def body(weights: Weights) -> Weights:
    """The shared part of a model's weights: all arrays but the local head's."""
    if len(weights) <= HEAD_ARRAYS:
        raise ValueError(f"a model of {len(weights)} weight arrays has no body to share beside its head")
    return weights[:-HEAD_ARRAYS]


def head(weights: Weights) -> Weights:
    """The local head: the last `HEAD_ARRAYS` arrays."""
    return weights[-HEAD_ARRAYS:]


class OfferBody(RoundPhase):
    """Offer peers the shared body of this round's fresh local model, never its head (after `Train(offer=False)`)."""

    name = OFFER_BODY

    async def run(self, ctx: RoundContext) -> None:
        own = ctx.own
        if own is None:
            raise RuntimeError("nothing to offer: the workflow needs a train phase before offer_body")
        ctx.engine.exchange.offer(body(own.weights), own.samples, ctx.number)


class AttachHead(RoundPhase):
    """Put this cart's fresh head on every body a peer sent, so scoring and aggregation see whole models."""

    name = ATTACH_HEAD

    async def run(self, ctx: RoundContext) -> None:
        own = head(ctx.local)
        ctx.peer_updates = [Update(u.source, [*u.weights, *own], u.samples) for u in ctx.peer_updates]


def personalized(workflow: Workflow, personalize: bool, local_head: bool = False) -> Workflow:
    """`workflow` with PERSONALIZE right after AGGREGATE when `personalize`, and with a local head when `local_head`.

    Each is added once; a workflow without the phases they attach to (AGGREGATE;
    for the head also a TRAIN that offers and EXCHANGE) is returned as it is.
    """
    if local_head:
        workflow = _with_local_head(workflow)
    if not personalize or PERSONALIZE in workflow.names or Phase.AGGREGATE not in workflow.names:
        return workflow
    return workflow.inserted_after(Phase.AGGREGATE, Personalize())


def _with_local_head(workflow: Workflow) -> Workflow:
    needed = {Phase.TRAIN, Phase.EXCHANGE, Phase.AGGREGATE}
    if OFFER_BODY in workflow.names or not needed <= set(workflow.names):
        return workflow
    train = list(workflow)[workflow.index(Phase.TRAIN)]
    if not (isinstance(train, Train) and train.offer):
        return workflow  # another phase offers (differential privacy): the settings refuse local_head with it
    return (
        workflow.replaced(Phase.TRAIN, Train(offer=False))
        .inserted_after(Phase.TRAIN, OfferBody())
        .inserted_after(Phase.EXCHANGE, AttachHead())
    )
