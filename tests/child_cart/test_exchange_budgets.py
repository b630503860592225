"""The update exchange's budgets and reasons (issue 14, findings 3, 4, 6), without a bridge.

A requester gets a bounded number of answers per round, one at a time, all from one
sealed copy, and hears each reason it is declined for once a second at most;
answers and declines run on bounded task sets that `close()` cancels; a round goes on
once `enough` peers answered; and a transfer our own buffer refused is logged with the
refusal, not as a peer that never answered.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np
import pytest

from cartnet import e2e, frames, weights
from cartnet.identity import Identity
from cartnet.messages import PeerInfo, TransferDone, TransferManifest, TransferWant, UpdateDeclined, UpdateRequest
from cartnet.payloads import WeightUpdate
from cartnet.peers import sign_decline, sign_request
from cartnet.transfer import Received, TransferHub, TransferLimits, build_manifest, stream_manifest
from child_cart.rounds import asks
from child_cart.rounds.exchange import ANSWERS_PER_PEER, AVOID_ROUNDS, UPDATE_PURPOSE, Collected, UpdateExchange
from tests.trustkit import entry, verifier

DEADLINE = 60.0
TASK = "recommend"
MIB = 1 << 20
LAYOUT = [np.arange(12, dtype="float32").reshape(3, 4), np.ones(4, "float32")]


@dataclass
class Blobs:
    """A transfer hub stand-in: `send_blob` is recorded and waits for `release` (an answer in flight)."""

    refusal_listeners: list = field(default_factory=list)
    admission_checks: list = field(default_factory=list)
    sent: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def send_blob(self, peer: str, blob: bytes, purpose: str, meta: dict[str, str], **options: object) -> str:
        self.sent.put_nowait(peer)
        await self.release.wait()
        return "0" * 32


@dataclass
class FakeNetwork:
    """What the exchange needs of a network; routed control messages land in `routed`."""

    directory: dict[str, PeerInfo]
    transfers: object
    identity: Identity = field(default_factory=Identity.generate)
    bridge_id: str | None = None
    routed: asyncio.Queue[tuple[str, object]] = field(default_factory=asyncio.Queue)
    lookups: int = 0

    async def send_to(self, peer_id: str, inner: bytes) -> None:
        self.routed.put_nowait((peer_id, frames.parse(inner)))

    async def lookup(self, node_id: str) -> PeerInfo | None:
        self.lookups += 1
        return self.directory.get(node_id)

    async def peers(
        self, *, sample: int | None = None, task: str | None = None, known=(), by_id=False
    ) -> list[PeerInfo]:
        return list(self.directory.values())

    async def announce(self, *, ready: bool, task: str | None = None) -> None:
        pass


def _request(requester: Identity, network: FakeNetwork) -> UpdateRequest:
    """A fresh request of `requester`'s, signed, for the cart on `network`."""
    return sign_request(requester, network.identity.node_id, TASK, 1)


async def _next(queue: asyncio.Queue, what: str):
    try:
        return await asyncio.wait_for(queue.get(), DEADLINE)
    except TimeoutError:
        pytest.fail(f"{what} never happened within {DEADLINE}s")


async def test_a_flood_of_requests_gets_its_budget_one_at_a_time_from_one_sealed_copy_and_is_told_once():
    """Each reason a requester is declined for is told once per `tell_interval`; repeats within it are counted."""
    flooder, honest = Identity.generate(), Identity.generate()
    blobs = Blobs()
    network = FakeNetwork({p.node_id: entry(p) for p in (flooder, honest)}, blobs)
    exchange = UpdateExchange(network, TASK, verifier(), tell_interval=60.0)  # all within one interval
    exchange.offer(LAYOUT, 10, 1)
    for _ in range(20):  # while its first answer is in flight (the flooder never reads it)
        exchange.on_message(flooder.node_id, _request(flooder, network))
    exchange.on_message(honest.node_id, _request(honest, network))
    answered = {await _next(blobs.sent, "an answer being sent") for _ in range(2)}
    assert answered == {flooder.node_id, honest.node_id}, "the flood did not take the honest requester's place"
    peer, decline = await _next(network.routed, "the flooder's one decline")
    assert peer == flooder.node_id and isinstance(decline, UpdateDeclined)
    assert decline.reason == "still answering your previous request, ask later"
    assert exchange.declined["pending"] == 19 and exchange.untold == 18, "told once, the repeats only counted"

    blobs.release.set()
    await asyncio.gather(*exchange._answers)
    for _ in range(20):  # its first answer done: one more fits its budget, then it is told once that it is spent
        exchange.on_message(flooder.node_id, _request(flooder, network))
    assert await _next(blobs.sent, "the flooder's second answer") == flooder.node_id
    peer, decline = await _next(network.routed, "the flooder's budget decline")
    assert decline.reason == f"you had your {ANSWERS_PER_PEER} answers to update requests this round already"
    assert network.routed.empty() and blobs.sent.empty()
    assert exchange.answered[flooder.node_id] == ANSWERS_PER_PEER
    assert exchange.declined["budget"] == 20 - 1 and exchange.untold == 18 + 18
    assert exchange.seals[flooder.node_id] == 1, "the answers to one requester share one sealing"
    assert network.lookups == 2, "a requester's key is looked up once, then remembered"

    exchange.offer(LAYOUT, 10, 2)
    exchange.on_message(flooder.node_id, _request(flooder, network))
    assert await _next(blobs.sent, "an answer under the next offer's budget") == flooder.node_id
    await exchange.close()


async def test_answers_beyond_the_bound_are_declined_as_busy_and_close_cancels_the_rest():
    requesters = [Identity.generate() for _ in range(3)]
    blobs = Blobs()
    network = FakeNetwork({p.node_id: entry(p) for p in requesters}, blobs)
    exchange = UpdateExchange(network, TASK, verifier(), max_answers=2)
    exchange.offer(LAYOUT, 10, 1)
    for requester in requesters:
        exchange.on_message(requester.node_id, _request(requester, network))
    peer, busy = await _next(network.routed, "the third requester's decline")
    assert peer == requesters[2].node_id and busy.reason.startswith("busy answering 2 requests")
    for _ in range(2):
        await _next(blobs.sent, "an answer held in flight")
    running = list(exchange._answers)
    assert len(running) == 2
    await exchange.close()
    assert all(task.cancelled() for task in running), "a node's shutdown cancels the answers it started"


async def _answer(exchange: UpdateExchange, peer: Identity, request: UpdateRequest) -> None:
    """`peer` answers `request` with our layout, as its transfer would hand it to the exchange."""
    sealed = e2e.seal(weights.encode(LAYOUT), exchange.network.identity.kx_public_key, peer.node_id)
    meta = WeightUpdate(request_id=request.request_id, samples=7, task=TASK, round=1).to_meta()
    manifest = await build_manifest(peer, sealed, UPDATE_PURPOSE, meta, MIB)
    assert exchange.on_transfer(Received(peer.node_id, manifest, [bytes(sealed)]))


def _offering(peers: int, *, hedged: bool = True) -> tuple[list[Identity], FakeNetwork, UpdateExchange]:
    """`peers` carts in the directory and an exchange with an offer out, ready to collect from them."""
    carts = [Identity.generate() for _ in range(peers)]
    network = FakeNetwork({cart.node_id: entry(cart) for cart in carts}, Blobs())
    exchange = UpdateExchange(network, TASK, verifier(), hedged=hedged)
    exchange.offer(LAYOUT, 10, 1)
    return carts, network, exchange


def _hedging(monkeypatch: pytest.MonkeyPatch, min_s: float, silent_share: float) -> None:
    """Hedge delays a test can wait for (or, with a share of 1, no spare asked for silence before any answer)."""
    monkeypatch.setattr(asks, "HEDGE_MIN_S", min_s)
    monkeypatch.setattr(asks, "HEDGE_SILENT_SHARE", silent_share)


async def test_a_round_asks_only_enough_peers_and_goes_on_once_they_answered():
    peers, network, exchange = _offering(3)
    collecting = asyncio.create_task(exchange.collect([entry(p) for p in peers], 1, DEADLINE, enough=1))
    asked, request = await _next(network.routed, "the request")
    assert asked == peers[0].node_id, "the first peer given is asked first"
    await _answer(exchange, peers[0], request)
    collected: Collected = await asyncio.wait_for(collecting, DEADLINE)
    assert [u.source for u in collected.updates] == [peers[0].node_id]
    assert collected.skipped == {
        p.node_id: "not needed, not asked: the one peer asked had sent its update" for p in peers[1:]
    }
    assert network.routed.empty() and exchange.requests_sent == 1, "the spares cost nothing"


async def test_unhedged_a_round_asks_every_peer_and_goes_on_once_enough_answered():
    peers, network, exchange = _offering(3, hedged=False)
    collecting = asyncio.create_task(exchange.collect([entry(p) for p in peers], 1, DEADLINE, enough=1))
    asked = dict([await _next(network.routed, "a request") for _ in peers])
    await _answer(exchange, peers[0], asked[peers[0].node_id])
    collected: Collected = await asyncio.wait_for(collecting, DEADLINE)
    assert [u.source for u in collected.updates] == [peers[0].node_id]
    assert collected.skipped == {
        p.node_id: "not needed: 1 of the 3 peers asked had sent their updates first" for p in peers[1:]
    }
    assert exchange.requests_sent == 3


async def test_a_spare_is_asked_at_once_for_a_peer_that_declines(monkeypatch: pytest.MonkeyPatch):
    _hedging(monkeypatch, min_s=DEADLINE, silent_share=1.0)  # no spare for silence: only the decline can ask one
    peers, network, exchange = _offering(3)
    collecting = asyncio.create_task(exchange.collect([entry(p) for p in peers], 1, DEADLINE, enough=1))
    _, request = await _next(network.routed, "the request to the first peer")
    exchange.on_message(peers[0].node_id, sign_decline(peers[0], request.request_id, "no trained update yet"))
    spare, request = await _next(network.routed, "the request to a spare")
    assert spare == peers[1].node_id
    await _answer(exchange, peers[1], request)
    collected: Collected = await asyncio.wait_for(collecting, DEADLINE)
    assert [u.source for u in collected.updates] == [peers[1].node_id]
    assert collected.skipped == {
        peers[0].node_id: "peer declined: no trained update yet",
        peers[2].node_id: "not needed, not asked: 1 of the 2 peers asked had sent their updates first",
    }
    assert exchange.requests_sent == 2


async def test_a_spare_is_asked_beside_a_peer_slower_than_the_first_answer(monkeypatch: pytest.MonkeyPatch):
    _hedging(monkeypatch, min_s=0.25, silent_share=1.0)  # slow: twice the first answer's time, at least 0.25 s
    peers, network, exchange = _offering(4)
    collecting = asyncio.create_task(exchange.collect([entry(p) for p in peers], 1, DEADLINE, enough=2))
    asked = dict([await _next(network.routed, "a request of the first wave") for _ in range(2)])
    assert set(asked) == {peers[0].node_id, peers[1].node_id}
    await _answer(exchange, peers[0], asked[peers[0].node_id])
    spare, request = await _next(network.routed, "the request to a spare beside the silent peer")
    assert spare == peers[2].node_id
    await _answer(exchange, peers[2], request)
    collected: Collected = await asyncio.wait_for(collecting, DEADLINE)
    assert sorted(u.source for u in collected.updates) == sorted([peers[0].node_id, peers[2].node_id])
    assert collected.skipped == {
        peers[1].node_id: "not needed: 2 of the 3 peers asked had sent their updates first",
        peers[3].node_id: "not needed, not asked: 2 of the 3 peers asked had sent their updates first",
    }
    assert exchange.requests_sent == 3


async def test_with_no_answer_a_spare_is_asked_after_a_share_of_the_timeout(monkeypatch: pytest.MonkeyPatch):
    _hedging(monkeypatch, min_s=DEADLINE, silent_share=0.25)
    peers, network, exchange = _offering(3)
    collected = await exchange.collect([entry(p) for p in peers], 1, 0.4, enough=1)  # nobody answers here
    assert [peer for peer, _ in [network.routed.get_nowait() for _ in peers]] == [p.node_id for p in peers]
    assert collected.skipped == {p.node_id: "no answer within 0.4s" for p in peers}
    assert exchange.requests_sent == 3
    assert exchange.extra_draw(2, 5) == 3, "every peer asked that stayed silent is remembered"


async def test_a_transfer_our_buffer_refused_is_logged_with_the_refusal():
    squatter, peer = Identity.generate(), Identity.generate()
    replies: list[bytes] = []

    async def reply(_peer: str, frame: bytes) -> None:
        replies.append(frame)

    me = Identity.generate()
    hub = TransferHub(me, reply, TransferLimits(max_size=MIB, max_buffered=MIB))
    network = FakeNetwork({peer.node_id: entry(peer)}, hub, identity=me)
    exchange = UpdateExchange(network, TASK, verifier())
    exchange.offer(LAYOUT, 10, 1)
    # a purpose the exchange does not judge (an `update` answering no request of ours is refused at its manifest)
    await hub.handle(squatter.node_id, await build_manifest(squatter, bytes(MIB), "model", {}, MIB))
    collecting = asyncio.create_task(exchange.collect([entry(peer)], 1, DEADLINE))
    _, request = await _next(network.routed, "the request")
    meta = WeightUpdate(request_id=request.request_id, samples=7, task=TASK, round=1).to_meta()
    answer: TransferManifest = await build_manifest(peer, bytes(4096), UPDATE_PURPOSE, meta, MIB)
    await hub.handle(peer.node_id, answer)
    collected = await asyncio.wait_for(collecting, DEADLINE)
    assert collected.skipped[peer.node_id].startswith("we refused its update: our transfer buffer is full"), (
        collected.skipped
    )


def _refusals(replies: list[bytes]) -> list[str]:
    done = [frames.parse(frame) for frame in replies]
    return [m.reason for m in done if isinstance(m, TransferDone) and not m.ok]


async def test_an_update_manifest_answering_no_request_of_ours_or_oversized_is_refused_before_it_reserves():
    """Buffer squatting (issue 14): an `update` manifest that answers no pending request of ours to its sender, or
    declares more than our model bounds, is refused at the manifest with the reason and reserves nothing; an honest
    answer is still taken, and other purposes are not the exchange's to judge."""
    squatter, peer = Identity.generate(), Identity.generate()
    replies: list[bytes] = []

    async def reply(_peer: str, frame: bytes) -> None:
        replies.append(frame)

    me = Identity.generate()
    hub = TransferHub(me, reply, TransferLimits(max_size=256 * MIB))
    network = FakeNetwork({peer.node_id: entry(peer)}, hub, identity=me)
    exchange = UpdateExchange(network, TASK, verifier())
    exchange.offer(LAYOUT, 10, 1)
    bound = exchange.update_bound()
    assert bound < MIB, "the bound follows our own (tiny) model, not the 256 MiB cap"
    unasked = WeightUpdate(request_id="ab" * 16, samples=7, task=TASK, round=1).to_meta()
    await hub.handle(squatter.node_id, stream_manifest(squatter, 256 * MIB, UPDATE_PURPOSE, unasked, MIB))
    assert hub.reserved() == 0 and _refusals(replies) == [
        f"unsolicited update: it answers no pending request of ours to {squatter.node_id[:8]}"
    ]

    collecting = asyncio.create_task(exchange.collect([entry(peer)], 1, DEADLINE))
    _, request = await _next(network.routed, "the request")
    meta = WeightUpdate(request_id=request.request_id, samples=7, task=TASK, round=1).to_meta()
    replies.clear()
    # the request id of another peer's request, from the squatter: still not an answer to a request of ours to it
    await hub.handle(squatter.node_id, stream_manifest(squatter, 4096, UPDATE_PURPOSE, meta, MIB))
    oversized = stream_manifest(peer, bound + 1, UPDATE_PURPOSE, meta, MIB)
    assert exchange.admit(peer.node_id, oversized) == (
        f"declared size {bound + 1} exceeds the {bound} bytes our model bounds an update to"
    )
    assert hub.reserved() == 0 and len(_refusals(replies)) == 1, _refusals(replies)

    sealed = e2e.seal(weights.encode(LAYOUT), me.kx_public_key, peer.node_id)
    assert len(sealed) <= bound
    await hub.handle(peer.node_id, await build_manifest(peer, sealed, UPDATE_PURPOSE, meta, MIB))
    await hub.handle(peer.node_id, frames.Chunk(_last_tid(replies), 0, bytes(sealed)))
    exchange.on_transfer(await asyncio.wait_for(hub.received.get(), DEADLINE))
    collected = await asyncio.wait_for(collecting, DEADLINE)
    assert [u.source for u in collected.updates] == [peer.node_id], collected.skipped

    replies.clear()
    await hub.handle(squatter.node_id, stream_manifest(squatter, 4 * MIB, "model", {}, MIB))
    assert _refusals(replies) == [] and hub.reserved() == 4 * MIB, "other purposes are not the exchange's to judge"
    await hub.handle(peer.node_id, oversized)  # the peer we asked, answering the request of a collect that ended
    stray = WeightUpdate(request_id="cd" * 16, samples=7, task=TASK, round=1).to_meta()
    await hub.handle(peer.node_id, stream_manifest(peer, 4096, UPDATE_PURPOSE, stray, MIB))  # a request never made
    assert _refusals(replies) == [
        "not needed: the round it answers went on without it",
        f"unsolicited update: it answers no pending request of ours to {peer.node_id[:8]}",
    ]
    assert hub.reserved() == 4 * MIB, "a late or unsolicited update reserved buffer space"


def _last_tid(replies: list[bytes]) -> str:
    wants = [m for m in (frames.parse(f) for f in replies) if isinstance(m, TransferWant)]
    return wants[-1].transfer_id


async def test_a_peer_silent_past_the_deadline_is_asked_last_for_a_few_rounds_until_it_answers():
    silent, other = Identity.generate(), Identity.generate()
    network = FakeNetwork({p.node_id: entry(p) for p in (silent, other)}, Blobs())
    exchange = UpdateExchange(network, TASK, verifier())
    exchange.offer(LAYOUT, 10, 1)
    collected = await exchange.collect([entry(silent)], 1, 0.2)  # nobody answers here: the deadline passes
    assert collected.skipped == {silent.node_id: "no answer within 0.2s"}
    await _next(network.routed, "the request that went unanswered")
    drawn = [entry(silent), entry(other)]
    assert exchange.extra_draw(2, 5) == 1, "one more drawn, so the silent one can be put last"
    assert [p.node_id for p in exchange.prefer_responsive(drawn, 2, 1)] == [other.node_id]
    assert [p.node_id for p in exchange.prefer_responsive(drawn, 2, 2)] == [other.node_id, silent.node_id]
    later = 1 + AVOID_ROUNDS
    assert exchange.extra_draw(later, 5) == 0 and exchange.prefer_responsive(drawn, later, 1) == drawn[:1]

    collecting = asyncio.create_task(exchange.collect([entry(silent)], 3, DEADLINE))
    _, request = await _next(network.routed, "the request")
    sealed = e2e.seal(weights.encode(LAYOUT), network.identity.kx_public_key, silent.node_id)
    meta = WeightUpdate(request_id=request.request_id, samples=7, task=TASK, round=3).to_meta()
    exchange.on_transfer(
        Received(silent.node_id, await build_manifest(silent, sealed, UPDATE_PURPOSE, meta, MIB), [sealed])
    )
    assert [u.source for u in (await asyncio.wait_for(collecting, DEADLINE)).updates] == [silent.node_id]
    assert exchange.extra_draw(4, 5) == 0, "a peer that answered is forgiven"
