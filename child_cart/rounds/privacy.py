"""Client-level differential privacy: PRIVATIZE clips this round's update and adds Gaussian noise before it is offered.

    TRAIN (not offering) -> PRIVATIZE -> EXCHANGE -> AGGREGATE -> ... (`PRIVATE_WORKFLOW`)

With `dp_noise_multiplier` z > 0 and `dp_clip_norm` C > 0 in the round
settings, the engine runs `PRIVATE_WORKFLOW` (`workflow_for`). TRAIN trains as
always but offers nothing; PRIVATIZE takes the update, the change from the
model the round trained from (`engine.start`: its swarm model, or its kept
model before one was adopted), clips it to L2 norm C
and adds N(0, (z C)^2) to every coordinate:

    offered = start + delta * min(1, C / ||delta||) + N(0, (z C)^2 I)

and only that is offered to peers. `accountant.py` counts each such round as
one Gaussian mechanism (client level, add or remove, no sampling: q = 1) and
turns the rounds into ε at `dp_delta` with the RDP accountant.

Which model the cart keeps: the privatized one. The round's own update
(`ctx.own`), which AGGREGATE averages and DECIDE scores as the LOCAL candidate,
is replaced by the privatized weights; the unnoised model's held-out metrics
are logged (`privacy.unnoised`) and the model itself is dropped. Keeping the
unnoised model would be better for this cart alone, but whatever it keeps is
what PUBLISH sends to phones through the bridge, and where the next round
starts before a swarm model was adopted (`swarm_model.py`: after that, an
aggregate of the same releases): a kept unnoised model would put its
unclipped, unnoised update into later offers (start + ...), and into the
phone model, and ε would mean nothing. This way every model the cart keeps is
built from its own noised releases and its peers' (noised) updates only, so
everything that leaves the cart is a post-processing of what the accountant
counted. The local-only
shadow (LOCAL_ONLY) never leaves the cart and stays unnoised: it is the
yardstick of what going alone would give.

Sharing stops at the budget: before a round spends, the accountant checks that
ε with this round stays within `dp_epsilon_budget`; if not, the cart withdraws
its offer (peers asking are told "privacy budget spent: ..."), contributes
nothing of its data this round (its own update is its current model, so
nothing it keeps or publishes is trained on unaccounted data), keeps learning
from its peers, and logs why. A round where too few rows were new
(`min_new_rows`) offers the current model untrained, which costs nothing: it is
a post-processing of earlier releases.

What the accountant does not cover, stated rather than hidden:

- the offer's sample count (FedAvg's weight) is sent as it is;
- DECIDE picks the kept candidate by its score on the cart's own held-out rows,
  a data-dependent choice among private models that is not noised;
- a model the cart kept before differential privacy was switched on, and ε
  spent under another δ: the ledger records noise multipliers and reports ε
  at the δ configured now;
- the noise is float64 Gaussian noise from numpy's PCG64 seeded from the OS,
  not a discrete or floating-point-safe sampler (Mironov 2012).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from dataclasses import dataclass

import numpy as np

from child_cart.aggregation import Update
from child_cart.rounds import accountant
from child_cart.rounds.personalize import personalized
from child_cart.rounds.phases import DEFAULT_WORKFLOW, Train
from child_cart.rounds.roundlog import PrivacyRecord
from child_cart.rounds.secure import is_secured, secured
from child_cart.rounds.settings import RoundSettings
from child_cart.rounds.workflow import Phase, RoundContext, RoundPhase, Weights, Workflow

log = logging.getLogger(__name__)

PRIVATIZE = "privatize"
BUDGET_SPENT = "privacy budget spent"


@dataclass(frozen=True)
class Privatized:
    """An update clipped and noised: the weights to offer, the update's norm before clipping, whether it was clipped."""

    weights: Weights
    norm: float
    clipped: bool


def update_norm(start: Weights, local: Weights) -> float:
    """The L2 norm of the change from `start` to `local`, over every tensor."""
    return math.sqrt(sum(float(np.sum(np.square(w.astype(np.float64) - s))) for s, w in zip(start, local)))


def privatize(
    start: Weights, local: Weights, clip_norm: float, noise_multiplier: float, rng: np.random.Generator
) -> Privatized:
    """start + the update (local - start) clipped to L2 norm `clip_norm` + N(0, (noise_multiplier * clip_norm)^2) noise.

    Computed in float64 and returned in each tensor's own dtype. Every tensor must be floating point.
    """
    if clip_norm <= 0 or noise_multiplier < 0:
        raise ValueError(
            f"clip_norm must be above 0 and noise_multiplier at least 0, not {clip_norm}, {noise_multiplier}"
        )
    if len(start) != len(local):
        raise ValueError(f"can only privatize an update of the same tensors, not {len(start)} -> {len(local)}")
    for s, w in zip(start, local):
        if not (np.issubdtype(s.dtype, np.floating) and s.shape == w.shape and s.dtype == w.dtype):
            raise ValueError(
                f"can only privatize float tensors of one layout, not {s.dtype}{s.shape} -> {w.dtype}{w.shape}"
            )
    norm = update_norm(start, local)
    scale = min(1.0, clip_norm / norm) if norm > 0 else 1.0
    std = noise_multiplier * clip_norm
    noised = [
        (s.astype(np.float64) + (w.astype(np.float64) - s) * scale + rng.normal(0.0, std, size=s.shape)).astype(s.dtype)
        for s, w in zip(start, local)
    ]
    return Privatized(noised, norm, scale < 1.0)


class Privatize(RoundPhase):
    """Offer this round's update clipped and noised, or nothing once the privacy budget is spent; log which and why.

    Needs a TRAIN that does not offer (`Train(offer=False)`) before it. `seed`
    makes the noise reproducible (each cart and round draws from
    (seed, cart, round)); None, the default, draws it from the OS's entropy.
    """

    name = PRIVATIZE

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed  # configuration, not round state: one Privatize serves every engine of a process

    async def run(self, ctx: RoundContext) -> None:
        engine, settings = ctx.engine, ctx.settings
        own = ctx.own
        if own is None:
            raise RuntimeError("no local update to privatize: the workflow needs a train phase before this one")
        record = PrivacyRecord(
            shared=False,
            epsilon=0.0,
            epsilon_budget=settings.dp_epsilon_budget,
            delta=settings.dp_delta,
            noise_multiplier=settings.dp_noise_multiplier,
            clip_norm=settings.dp_clip_norm,
            unnoised=ctx.local_metrics,
        )
        ctx.privacy = record
        try:
            spends = await asyncio.to_thread(accountant.load_ledger, engine.store)
        except accountant.LedgerUnreadable as exc:
            await self._withhold(ctx, record, f"{BUDGET_SPENT}: how much is unknown, {exc}")
            return
        record.epsilon = accountant.spent(spends, settings.dp_delta)
        record.rounds_shared = len(spends)
        if engine.task.aggregator:
            why = f"task {engine.task.name!r} shares a {engine.task.aggregator} model, which clipping and noise do not fit"
            await self._withhold(ctx, record, f"differential privacy cannot protect it: {why}")
            return
        noise = settings.dp_noise_multiplier
        after = accountant.epsilon([*(s.noise_multiplier for s in spends), noise], settings.dp_delta)
        if after > settings.dp_epsilon_budget:
            await self._withhold(
                ctx,
                record,
                f"{BUDGET_SPENT}: sharing this round would bring ε to {after:.3f} at δ={settings.dp_delta:g}, over "
                f"the budget of {settings.dp_epsilon_budget:g} (spent {record.epsilon:.3f} in "
                f"{len(spends)} rounds); this cart no longer shares its updates",
            )
            return
        if not ctx.trained:
            engine.exchange.offer(own.weights, own.samples, ctx.number)
            record.shared = True
            record.note = "offered the current model untrained (too few new rows): a post-processing, no ε spent"
            return
        privatized = await asyncio.to_thread(
            privatize, engine.start, own.weights, settings.dp_clip_norm, noise, self._rng(ctx)
        )
        spend = accountant.Spend(
            round=ctx.number, task=engine.task.name, noise_multiplier=noise, clip_norm=settings.dp_clip_norm
        )
        await asyncio.to_thread(accountant.record_spend, engine.store, spend)  # counted before it can leave
        engine.exchange.offer(privatized.weights, own.samples, ctx.number)
        ctx.own = Update(own.source, privatized.weights, own.samples)
        ctx.local_metrics = await asyncio.to_thread(engine.learner.evaluate, privatized.weights)
        record.shared = record.spent = True
        record.epsilon, record.rounds_shared = after, len(spends) + 1
        record.update_norm, record.clipped = round(privatized.norm, 6), privatized.clipped
        record.note = (
            f"offered the update {'clipped to' if privatized.clipped else 'within'} L2 norm {settings.dp_clip_norm:g} "
            f"plus Gaussian noise (std {noise * settings.dp_clip_norm:g}); ε {after:.3f} of "
            f"{settings.dp_epsilon_budget:g} at δ={settings.dp_delta:g}"
        )
        log.info("round %d: %s", ctx.number, record.note)

    @staticmethod
    async def _withhold(ctx: RoundContext, record: PrivacyRecord, why: str) -> None:
        """Offer nothing (askers are told `why`) and use none of this round's training: the own update is the current model."""
        engine = ctx.engine
        engine.exchange.withdraw(why, layout=engine.current)
        record.note = why
        own = ctx.own
        if own is not None and own.weights is not engine.current:
            ctx.own = Update(own.source, engine.current, own.samples)
            ctx.local_metrics = await asyncio.to_thread(engine.learner.evaluate, engine.current)
        log.warning("round %d: not sharing: %s", ctx.number, why)

    def _rng(self, ctx: RoundContext) -> np.random.Generator:
        if self.seed is None:
            return np.random.default_rng()
        cart = int.from_bytes(hashlib.sha256(ctx.engine.node_id.encode()).digest()[:8], "big")
        return np.random.default_rng([self.seed, cart, ctx.number])


PRIVATE_WORKFLOW = DEFAULT_WORKFLOW.replaced(Phase.TRAIN, Train(offer=False)).inserted_after(Phase.TRAIN, Privatize())
"""Today's round with client-level differential privacy: TRAIN offers nothing, PRIVATIZE offers the noised update."""


def workflow_for(settings: RoundSettings, chosen: Workflow | None = None) -> Workflow:
    """The workflow a round with `settings` runs: `chosen` if given, else today's round, privatized when asked for,
    masked when `secure_aggregation` is on (`secure.secured`), with PERSONALIZE after AGGREGATE when
    `personalize_epochs` > 0 or `personalize_head` is on (`personalize.py`).

    With differential privacy on, a chosen workflow without a PRIVATIZE phase, or
    with a TRAIN that offers, is refused (ValueError): it would offer the raw update.
    """
    enabled = accountant.dp_enabled(settings)
    if chosen is None:
        base = PRIVATE_WORKFLOW if enabled else DEFAULT_WORKFLOW
        base = secured(base) if settings.secure_aggregation else base
        return personalized(base, settings.personalizes, settings.local_head)
    if settings.secure_aggregation and not is_secured(chosen):
        raise ValueError(
            f"secure aggregation is on but {chosen!r} would exchange, aggregate or score plain updates "
            "(it needs secure.secured(...)): the round does not run"
        )
    raw = PRIVATIZE not in chosen.names or any(isinstance(phase, Train) and phase.offer for phase in chosen)
    if enabled and raw:
        raise ValueError(
            f"differential privacy is on (dp_noise_multiplier={settings.dp_noise_multiplier:g}) but {chosen!r} "
            f"would offer the raw update (it needs Train(offer=False) and a {PRIVATIZE} phase): the round does not run"
        )
    return chosen
