"""Secure aggregation in real rounds: small carts on one bridge exchange masked updates (`secure.py`).

Each cart's aggregate must equal the plain FedAvg of the same offered updates (each weighted by its
sample count clipped to `SAMPLE_CAP`) within the quantization bound, with no peer update ever seen or
scored alone; a peer whose masked answer never arrives is dropped and the survivors' reveals still
give the right sum.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from cartnet.identity import Identity
from cartnet.messages import UnmaskRequest
from cartnet.payloads import MaskedAnswer
from cartnet.secagg import Cohort, Masker, SecAggError
from child_cart.rounds import accountant
from child_cart.rounds.phases import DEFAULT_WORKFLOW
from child_cart.rounds.privacy import PRIVATE_WORKFLOW, PRIVATIZE, workflow_for
from child_cart.rounds.secure import (
    MASKED,
    SAMPLE_CAP,
    MaskedAggregate,
    MaskedEvaluate,
    MaskedExchange,
    MaskedSum,
    SecureExchange,
    blob_size,
    flatten,
    pack,
    quantizer_for,
    secured,
    unpack,
)
from child_cart.rounds.settings import RoundSettings
from child_cart.rounds.workflow import Phase, RoundContext, RoundPhase
from fedcart.inprocess import run_round

from .swarmkit import swarm

pytestmark = pytest.mark.slow
DEADLINE = 240.0


class Capture(RoundPhase):
    """Keeps what each cart's round aggregated from (its own update, the masked sum) and the aggregate."""

    name = "capture"

    def __init__(self) -> None:
        self.seen: dict[str, tuple[list[np.ndarray], int, MaskedSum | None, list[np.ndarray] | None]] = {}

    async def run(self, ctx: RoundContext) -> None:
        own = ctx.own
        assert own is not None
        self.seen[ctx.engine.node_id] = (own.weights, own.samples, ctx.masked, ctx.aggregated)


class Trained(RoundPhase):
    """Keeps each cart's start model and its trained, not yet privatized, weights (TRAIN's output)."""

    name = "trained"

    def __init__(self) -> None:
        self.seen: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}

    async def run(self, ctx: RoundContext) -> None:
        assert ctx.own is not None
        self.seen[ctx.engine.node_id] = (ctx.engine.current, ctx.own.weights)


def plain_fedavg(updates: list[tuple[list[np.ndarray], int]]) -> np.ndarray:
    weights = [min(samples, SAMPLE_CAP) for _, samples in updates]
    return sum(flatten(w) * n for (w, _), n in zip(updates, weights)) / sum(weights)


def check_aggregate(capture: Capture, offers: dict[str, tuple[list[np.ndarray], int]], node_id: str) -> MaskedSum:
    own, own_samples, masked, aggregated = capture.seen[node_id]
    assert masked is not None and masked.total is not None, masked
    assert aggregated is not None
    expected = plain_fedavg([(own, own_samples), *(offers[peer] for peer in masked.survivors)])
    weight = min(own_samples, SAMPLE_CAP) + masked.weight
    bound = masked.error_bound / weight + 1e-6  # the quantization bound, plus float32 rounding of the weights
    assert masked.clipped == 0
    assert np.max(np.abs(flatten(aggregated) - expected)) <= bound + 1e-6 * np.max(np.abs(expected))
    return masked


async def test_a_masked_round_aggregates_the_plain_fedavg_of_the_same_updates(tmp_path):
    capture = Capture()
    async with swarm(tmp_path, carts=4, rows=200, secure_aggregation=True, k=3, peer_timeout=20.0) as s:
        for node in s.nodes:
            node.engine.workflow = secured(DEFAULT_WORKFLOW).inserted_after(Phase.AGGREGATE, capture)
        records = await asyncio.wait_for(run_round(s.nodes), DEADLINE)
        offers = {n.node_id: (n.exchange._reference or [], n.exchange._offer.samples) for n in s.nodes}  # type: ignore[union-attr]
    for node, record in zip(s.nodes, records):
        masked = check_aggregate(capture, offers, node.node_id)
        others = sorted(n.node_id for n in s.nodes if n is not node)
        assert masked.survivors == others
        assert record.received == dict.fromkeys(others, MASKED)  # recorded as masked, never scored alone
        assert record.peers_answered == [] and record.aggregated


async def test_a_peer_whose_masked_answer_is_lost_is_dropped_and_the_survivors_reveal(tmp_path, monkeypatch):
    capture = Capture()
    async with swarm(tmp_path, carts=4, rows=200, secure_aggregation=True, k=3, peer_timeout=6.0) as s:
        lost = s.nodes[3]
        deliver = SecureExchange._deliver

        async def lose_ours(self: SecureExchange, peer_id: str, sealed: bytes | bytearray, meta: MaskedAnswer) -> None:
            if self is not lost.exchange.secure:  # the lost cart masks its update, but its answer never arrives
                await deliver(self, peer_id, sealed, meta)

        monkeypatch.setattr(SecureExchange, "_deliver", lose_ours)
        for node in s.nodes:
            node.engine.workflow = secured(DEFAULT_WORKFLOW).inserted_after(Phase.AGGREGATE, capture)
        records = await asyncio.wait_for(run_round(s.nodes[:3] + [lost]), DEADLINE)
        offers = {n.node_id: (n.exchange._reference or [], n.exchange._offer.samples) for n in s.nodes}  # type: ignore[union-attr]
    for node, record in zip(s.nodes[:3], records):
        masked = check_aggregate(capture, offers, node.node_id)
        survivors = sorted(n.node_id for n in s.nodes[:3] if n is not node)
        assert masked.survivors == survivors
        assert "dropped" in record.skipped[lost.node_id]
        assert lost.node_id not in record.received


async def test_differentially_private_updates_are_masked_and_their_sum_unmasks_with_epsilon_accounted(tmp_path):
    """Each peer clips and noises its update (PRIVATIZE), then masks it: the requester unmasks the FedAvg of the
    privatized offers, and every cart's ledger holds the one Gaussian release the accountant turns into ε."""
    noise, clip, delta = 1.0, 0.5, 1e-5
    trained, capture = Trained(), Capture()
    options = {"dp_noise_multiplier": noise, "dp_clip_norm": clip, "dp_delta": delta, "dp_epsilon_budget": 100.0}
    async with swarm(tmp_path, carts=4, rows=200, secure_aggregation=True, k=3, **options) as s:
        workflow = secured(PRIVATE_WORKFLOW).inserted_after(Phase.TRAIN, trained)
        for node in s.nodes:
            node.engine.workflow = workflow.inserted_after(Phase.AGGREGATE, capture)
        records = await asyncio.wait_for(run_round(s.nodes), DEADLINE)
        offers = {n.node_id: (n.exchange._reference or [], n.exchange._offer.samples) for n in s.nodes}  # type: ignore[union-attr]
        ledgers = [accountant.load_ledger(n.store) for n in s.nodes]
    for node, record, ledger in zip(s.nodes, records, ledgers):
        start, local = trained.seen[node.node_id]
        offered = flatten(offers[node.node_id][0])
        assert np.array_equal(flatten(capture.seen[node.node_id][0]), offered), "the kept update is the offered one"
        delta_w = flatten(local) - flatten(start)
        clipped = delta_w * min(1.0, clip / float(np.linalg.norm(delta_w)))
        residual = offered - flatten(start) - clipped  # the noise PRIVATIZE added, masked with the rest
        assert abs(float(np.std(residual)) / (noise * clip) - 1) < 0.15, f"noise std {np.std(residual)}"
        check_aggregate(capture, offers, node.node_id)
        assert record.privacy is not None and record.privacy.shared and record.privacy.spent
        assert [spend.noise_multiplier for spend in ledger] == [noise]
        assert record.privacy.epsilon == pytest.approx(accountant.epsilon([noise], delta))
        assert record.received and all(metrics == MASKED for metrics in record.received.values())


async def test_a_survivor_that_never_reveals_is_rebuilt_from_the_others_shares(tmp_path, monkeypatch):
    """One cart masks and sends its update, then never answers an unmask request: every other cart's sum still
    unmasks, its seeds rebuilt from the Shamir shares the others hold (SecAgg+), and equals the plain FedAvg."""
    capture = Capture()
    async with swarm(tmp_path, carts=4, rows=200, secure_aggregation=True, k=3, peer_timeout=6.0) as s:
        silent = s.nodes[3]
        reveal = SecureExchange._reveal

        async def mute(self: SecureExchange, peer_id: str, request: UnmaskRequest) -> None:
            if self is not silent.exchange.secure:
                await reveal(self, peer_id, request)

        monkeypatch.setattr(SecureExchange, "_reveal", mute)
        for node in s.nodes:
            node.engine.workflow = secured(DEFAULT_WORKFLOW).inserted_after(Phase.AGGREGATE, capture)
        records = await asyncio.wait_for(run_round(s.nodes), DEADLINE)
        offers = {n.node_id: (n.exchange._reference or [], n.exchange._offer.samples) for n in s.nodes}  # type: ignore[union-attr]
    for node, record in zip(s.nodes[:3], records):
        masked = check_aggregate(capture, offers, node.node_id)
        assert silent.node_id in masked.survivors and masked.rebuilt == [silent.node_id]
        assert record.aggregated


def test_the_settings_choose_the_masked_workflow_and_refuse_a_plain_one():
    assert workflow_for(RoundSettings()) is DEFAULT_WORKFLOW  # off by default
    on = RoundSettings(secure_aggregation=True)
    phases = {type(p) for p in workflow_for(on)}
    assert {MaskedExchange, MaskedAggregate, MaskedEvaluate} <= phases
    private = workflow_for(RoundSettings(secure_aggregation=True, dp_noise_multiplier=1.0, dp_clip_norm=1.0))
    assert PRIVATIZE in private.names and MaskedExchange in {type(p) for p in private}
    with pytest.raises(ValueError, match="secure aggregation is on"):
        workflow_for(on, DEFAULT_WORKFLOW)


def test_a_masked_blob_round_trips_and_a_wrong_size_or_sender_is_refused():
    identities = [Identity.generate() for _ in range(4)]
    cohort = Cohort("f" * 40, "c" * 32, "recommend", 1, {i.node_id: i.kx_public_key for i in identities})
    quantizer = quantizer_for(4)
    sender = identities[0]
    update = Masker(cohort, sender.node_id, sender.kx_key, quantizer).mask(np.arange(10.0))
    blob = pack(update)
    assert len(blob) == blob_size(4, 10)
    back = unpack(blob, sender.node_id, cohort.digest(), cohort.members, 10)
    assert back.signed_bytes() == update.signed_bytes() and np.array_equal(back.values, update.values)
    assert back.sealed_shares == update.sealed_shares
    with pytest.raises(SecAggError, match="is not"):
        unpack(blob[:-1], sender.node_id, cohort.digest(), cohort.members, 10)
    with pytest.raises(SecAggError, match="is not"):
        unpack(blob, "0" * 40, cohort.digest(), cohort.members, 10)
