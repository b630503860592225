"""The update exchange believes no key on the bridge's word (issue 13, "peers verified end to end"), without a bridge.

A peer is asked only when its directory entry verifies; an answer counts only when it
answers one of our requests and is signed by the verified key of the peer we asked; a
decline only when that key signed it; a request is answered only when its requester's
entry verifies and its signature holds, once. `tests/rounds/test_trust_attacks.py` runs
the same lies through a real bridge; these are the cases a bridge cannot stage alone.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np
import pytest

from cartnet import e2e, frames, weights
from cartnet.identity import Identity
from cartnet.messages import PeerInfo, UpdateDeclined
from cartnet.payloads import WeightUpdate
from cartnet.peers import REQUEST_WINDOW_MS, sign_decline, sign_request
from cartnet.presence import now_ms
from cartnet.transfer import Received, build_manifest, stream_manifest
from child_cart.rounds.exchange import UPDATE_PURPOSE, UpdateExchange
from tests.trustkit import entry, verifier

DEADLINE = 60.0
TASK = "recommend"
LAYOUT = [np.arange(12, dtype="float32").reshape(3, 4), np.ones(4, "float32")]


@dataclass
class Blobs:
    refusal_listeners: list = field(default_factory=list)
    admission_checks: list = field(default_factory=list)
    sent: asyncio.Queue[str] = field(default_factory=asyncio.Queue)

    async def send_blob(self, peer: str, blob: bytes, purpose: str, meta: dict[str, str], **options: object) -> str:
        self.sent.put_nowait(peer)
        return "0" * 32


@dataclass
class FakeNetwork:
    directory: dict[str, PeerInfo] = field(default_factory=dict)
    transfers: Blobs = field(default_factory=Blobs)
    identity: Identity = field(default_factory=Identity.generate)
    bridge_id: str | None = None
    routed: asyncio.Queue[tuple[str, object]] = field(default_factory=asyncio.Queue)

    async def send_to(self, peer_id: str, inner: bytes) -> None:
        self.routed.put_nowait((peer_id, frames.parse(inner)))

    async def lookup(self, node_id: str) -> PeerInfo | None:
        return self.directory.get(node_id)

    async def announce(self, *, ready: bool, task: str | None = None) -> None:
        pass


async def _next(queue: asyncio.Queue, what: str):
    try:
        return await asyncio.wait_for(queue.get(), DEADLINE)
    except TimeoutError:
        pytest.fail(f"{what} never happened within {DEADLINE}s")


def _swapped(info: PeerInfo) -> PeerInfo:
    """The entry with another X25519 key inside the cart's signed record."""
    key = Identity.generate().kx_public_key
    return info.model_copy(update={"record": info.record.model_copy(update={"kx_public_key": key})})


async def _answer(peer: Identity, to: Identity, request_id: str) -> Received:
    sealed = e2e.seal(weights.encode(LAYOUT), to.kx_public_key, peer.node_id)
    meta = WeightUpdate(request_id=request_id, samples=7, task=TASK, round=1).to_meta()
    return Received(peer.node_id, await build_manifest(peer, sealed, UPDATE_PURPOSE, meta, 1 << 20), [bytes(sealed)])


async def test_a_peer_whose_entry_does_not_verify_is_skipped_and_never_asked() -> None:
    network, liar, honest = FakeNetwork(), Identity.generate(), Identity.generate()
    exchange = UpdateExchange(network, TASK, verifier())
    collecting = asyncio.create_task(exchange.collect([_swapped(entry(liar)), entry(honest)], 1, DEADLINE))
    peer, request = await _next(network.routed, "the request to the honest peer")
    assert peer == honest.node_id and request.requester == network.identity.node_id
    assert exchange.on_transfer(await _answer(honest, network.identity, request.request_id))
    collected = await asyncio.wait_for(collecting, DEADLINE)
    assert [u.source for u in collected.updates] == [honest.node_id]
    assert collected.skipped == {
        liar.node_id: "not verified, not asked: its presence record's signature does not hold "
        "(keys altered, or not signed by the cart)"
    }
    assert network.routed.empty(), "nothing went to the peer that did not verify"


async def test_answers_and_declines_count_only_from_the_verified_peer_asked() -> None:
    network, peer, other = FakeNetwork(), Identity.generate(), Identity.generate()
    exchange = UpdateExchange(network, TASK, verifier())
    collecting = asyncio.create_task(exchange.collect([entry(peer)], 1, DEADLINE))
    _, request = await _next(network.routed, "the request")

    redirected = await _answer(peer, Identity.generate(), "ab" * 16)  # the peer's answer to somebody else's request
    assert exchange.on_transfer(redirected)
    imposter = await _answer(other, network.identity, request.request_id)
    posing = imposter.manifest.model_copy(update={"sender": peer.node_id})  # the peer's id, another key
    assert exchange.on_transfer(Received(peer.node_id, posing, imposter.chunks))
    assert exchange.on_message(peer.node_id, sign_decline(other, request.request_id, "made up by the bridge"))
    assert not collecting.done(), "none of these settled our request"

    assert exchange.on_message(peer.node_id, sign_decline(peer, request.request_id, "no trained update yet"))
    collected = await asyncio.wait_for(collecting, DEADLINE)
    assert collected.skipped == {peer.node_id: "peer declined: no trained update yet"}


async def test_requests_are_answered_only_when_genuine_current_and_new() -> None:
    me, honest, liar, late = Identity.generate(), Identity.generate(), Identity.generate(), Identity.generate()
    directory = {p.node_id: entry(p) for p in (honest, late)} | {liar.node_id: _swapped(entry(liar))}
    network = FakeNetwork(directory, identity=me)
    exchange = UpdateExchange(network, TASK, verifier())
    exchange.offer(LAYOUT, 10, 1)

    request = sign_request(honest, me.node_id, TASK, 1)
    exchange.on_message(honest.node_id, request)
    assert await _next(network.transfers.sent, "the answer") == honest.node_id
    exchange.on_message(honest.node_id, request)  # the same request again: a replayed copy
    exchange.on_message(liar.node_id, sign_request(liar, me.node_id, TASK, 1))
    stale = sign_request(late, me.node_id, TASK, 1, issued_ms=now_ms() - REQUEST_WINDOW_MS - 60_000)
    exchange.on_message(late.node_id, stale)

    told = dict([await _next(network.routed, "a decline") for _ in range(2)])
    assert all(isinstance(d, UpdateDeclined) for d in told.values())
    assert told[liar.node_id].reason.startswith("could not verify you: its presence record's signature")
    assert told[late.node_id].reason.startswith("the request was issued")
    assert exchange.refused == {
        honest.node_id: "replayed: the request was used already (a replayed copy)",
        liar.node_id: told[liar.node_id].reason.join(("unverified: ", "")),
        late.node_id: told[late.node_id].reason.join(("stale: ", "")),
    }
    assert network.routed.empty() and network.transfers.sent.empty(), "a replayed copy is neither answered nor declined"
    assert exchange.answered == {honest.node_id: 1, liar.node_id: 0}, "a refused request's budget is given back"
    assert dict(exchange.declined) == {"replayed": 1, "unverified": 1, "stale": 1}


@pytest.mark.parametrize("shape", ["streamed and sealed", "one sealed blob", "streamed in the clear"])
async def test_an_answer_counts_only_sealed_for_us(shape: str) -> None:
    """Answers stream their sealing (the hub opened the chunks on arrival: `Received.sealed`); whole sealed blobs
    from older carts still count; an answer in the clear is refused."""
    network, peer = FakeNetwork(), Identity.generate()
    exchange = UpdateExchange(network, TASK, verifier())
    exchange.offer(LAYOUT, 10, 1)
    collecting = asyncio.create_task(exchange.collect([entry(peer)], 1, DEADLINE))
    _, request = await _next(network.routed, "the request")
    if shape == "one sealed blob":
        answer = await _answer(peer, network.identity, request.request_id)
    else:
        plain = weights.encode(LAYOUT)
        meta = WeightUpdate(request_id=request.request_id, samples=7, task=TASK, round=1).to_meta()
        key = e2e.Sealer(network.identity.kx_public_key, peer.node_id).ephemeral_key if "sealed" in shape else None
        manifest = stream_manifest(peer, len(plain), UPDATE_PURPOSE, meta, 1 << 20, sealed=key)
        answer = Received(peer.node_id, manifest, [plain])
    assert exchange.on_transfer(answer)
    collected = await asyncio.wait_for(collecting, DEADLINE)
    if shape == "streamed in the clear":
        assert collected.updates == [] and collected.skipped[peer.node_id].startswith("garbage update")
    else:
        assert [u.source for u in collected.updates] == [peer.node_id] and collected.skipped == {}
