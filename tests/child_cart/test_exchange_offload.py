"""The cart's event loop keeps running while a large received update is decrypted, inflated and checked.

The exchange hands that work to a worker thread. A ticker on the loop counts its own
iterations: while a 16 MB update is checked, the loop must have gone round many times
(measured in ticks, never in seconds). The same check run on the loop itself lets the
ticker run zero times, which is what the exchange used to do.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pytest

from cartnet import e2e, frames, weights
from cartnet.identity import Identity
from cartnet.messages import UpdateRequest
from cartnet.payloads import WeightUpdate
from cartnet.transfer import Received, build_manifest
from child_cart.rounds.exchange import UPDATE_PURPOSE, UpdateExchange
from tests.trustkit import entry, verifier

DEADLINE = 60.0
PARAMS = 4 * 1024 * 1024
"""Float32 parameters of the update: 16 MB, tens of milliseconds of decrypting, inflating and checking."""
TICKS = 20
"""Loop iterations that must happen while the update is checked (an offloaded check gives hundreds or more)."""


@dataclass
class FakeNetwork:
    """Just what the exchange needs from a network: an identity, a transfer hub's hooks, routed frames."""

    identity: Identity = field(default_factory=Identity.generate)
    transfers: SimpleNamespace = field(
        default_factory=lambda: SimpleNamespace(refusal_listeners=[], admission_checks=[])
    )
    bridge_id: str | None = None
    sent: asyncio.Queue[tuple[str, UpdateRequest]] = field(default_factory=asyncio.Queue)

    async def send_to(self, peer_id: str, inner: bytes) -> None:
        request = frames.parse(inner)
        assert isinstance(request, UpdateRequest), request
        self.sent.put_nowait((peer_id, request))

    async def announce(self, *, ready: bool, task: str | None = None) -> None:
        pass


class Ticker:
    """Counts iterations of the event loop it runs on."""

    def __init__(self) -> None:
        self.ticks = 0

    async def run(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0)  # yield one loop iteration; nothing is waited for


@pytest.fixture
async def ticker() -> AsyncIterator[Ticker]:
    ticker = Ticker()
    task = asyncio.create_task(ticker.run())
    try:
        yield ticker
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _answer(peer: Identity, to: Identity, request: UpdateRequest, tensors: list[np.ndarray]) -> Received:
    """What the peer's answer looks like on arrival: its weights, encoded and sealed for us, with a signed manifest."""
    sealed = e2e.seal(weights.encode(tensors, compress=True), to.kx_public_key, peer.node_id)
    meta = WeightUpdate(request_id=request.request_id, samples=100, task=request.task, round=request.round)
    manifest = await build_manifest(peer, sealed, UPDATE_PURPOSE, meta.to_meta(), 1024 * 1024)
    return Received(peer.node_id, manifest, [bytes(sealed)])


def _large_update(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((PARAMS // 1024, 1024), dtype=np.float32), rng.standard_normal(1024, dtype=np.float32)]


async def test_the_loop_keeps_running_while_a_large_update_is_checked(ticker: Ticker) -> None:
    network, peer = FakeNetwork(), Identity.generate()
    exchange = UpdateExchange(network, "recommend", verifier())
    ours, theirs = _large_update(1), _large_update(2)
    exchange.offer(ours, 100, 1)
    asking = asyncio.create_task(exchange.collect([entry(peer)], 1, DEADLINE))
    _, request = await asyncio.wait_for(network.sent.get(), DEADLINE)
    received = await _answer(peer, network.identity, request, theirs)

    before = ticker.ticks
    assert exchange.on_transfer(received)
    assert not asking.done(), "the answer must not be decided inside on_transfer (that is on the loop)"
    collected = await asyncio.wait_for(asking, DEADLINE)
    during = ticker.ticks - before

    assert not collected.skipped, collected.skipped
    [update] = collected.updates
    assert update.source == peer.node_id and all(np.array_equal(a, b) for a, b in zip(update.weights, theirs))
    assert during >= TICKS, f"the loop went round {during} times while a {PARAMS * 4 >> 20} MB update was checked"

    on_the_loop = ticker.ticks
    exchange._check(received)  # the same work run on the loop: nothing else runs meanwhile
    assert ticker.ticks == on_the_loop


async def test_the_offer_is_encoded_off_the_loop(ticker: Ticker) -> None:
    exchange = UpdateExchange(FakeNetwork(), "recommend", verifier())
    before = ticker.ticks
    exchange.offer(_large_update(3), 100, 1)
    assert ticker.ticks == before
    offer = exchange._offer
    assert offer is not None
    blob = await asyncio.wait_for(offer.blob(), DEADLINE)
    assert ticker.ticks - before >= TICKS, "the loop must keep running while the offer is compressed"
    assert not weights.shapes_match(weights.decode(blob), _large_update(3))
