"""What each fault of one peer does to the honest carts' round: one table over a `Fault` enum.

Two honest carts and one faulty cart share a bridge. Whatever the faulty cart
does, every honest cart finishes its round, uses the other honest cart's
update, and logs the faulty one as skipped with the reason the table names.
"""

from __future__ import annotations

import asyncio
import enum
import os

import numpy as np
import pytest

from cartnet import e2e, frames, weights
from cartnet.messages import Message, TransferManifest
from cartnet.transfer import build_manifest
from child_cart.node import CartNode
from child_cart.rounds.exchange import UPDATE_PURPOSE, UpdateExchange
from fedcart.inprocess import run_round
from parent_cart.bridge import Bridge

from .swarmkit import swarm

pytestmark = pytest.mark.slow
PEER_TIMEOUT = 4.0


class Fault(enum.Enum):
    SILENT = "never answers"
    DISCONNECTS_MID_TRANSFER = "drops its bridge connection mid-transfer"
    GARBAGE = "sends bytes that are not weights"
    WRONG_SHAPES = "sends weights of another model"
    NOT_FINITE = "sends NaN weights"
    DECLINES = "declines every request"


EXPECTED_SKIP = {
    Fault.SILENT: f"no answer within {PEER_TIMEOUT:g}s",
    Fault.DISCONNECTS_MID_TRANSFER: "disconnected without saying goodbye",
    Fault.GARBAGE: "garbage update",
    Fault.WRONG_SHAPES: "wrong shapes or dtypes",
    Fault.NOT_FINITE: "NaN or infinite",
    Fault.DECLINES: "peer declined",
}


class FaultyExchange(UpdateExchange):
    """Answers update requests the way `fault` says, through the real client and bridge."""

    fault: Fault

    def on_message(self, peer_id: str, message: Message) -> bool:
        if self.fault is Fault.SILENT:
            return True
        return super().on_message(peer_id, message)

    def _decline_reason(self, request) -> str:
        return "faulty cart declines" if self.fault is Fault.DECLINES else super()._decline_reason(request)

    async def _send_offer(self, peer, request) -> None:
        meta = {"request_id": request.request_id, "samples": "100", "task": self.task, "round": "0"}
        if self.fault is Fault.DISCONNECTS_MID_TRANSFER:
            await self._start_then_vanish(peer, meta)
            return
        payload = weights.encode(self._poisoned()) if self.fault is not Fault.GARBAGE else os.urandom(5000)
        sealed = e2e.seal(payload, peer.kx_public_key, self.network.identity.node_id)
        await self.network.transfers.send_blob(peer.node_id, sealed, UPDATE_PURPOSE, meta)

    def _poisoned(self) -> list[np.ndarray]:
        if self.fault is Fault.WRONG_SHAPES:
            return [np.zeros((3, 3), "float32")]
        return [np.full_like(w, np.nan) for w in self._reference]

    async def _start_then_vanish(self, peer, meta: dict[str, str]) -> None:
        blob = os.urandom(3 * 1024 * 1024)
        manifest: TransferManifest = await build_manifest(
            self.network.identity, blob, UPDATE_PURPOSE, meta, 1024 * 1024
        )
        await self.network.send_to(peer.node_id, frames.control(manifest))
        await self.network.send_to(peer.node_id, frames.chunk(manifest.transfer_id, 0, blob[: 1024 * 1024]))
        await self.network._ws.close()


def faulty_node(fault: Fault):
    def make(settings, **options) -> CartNode:
        node = CartNode(settings, **options)
        exchange = FaultyExchange(node.client, node.task.name)
        exchange.fault = fault
        node.exchange = node.engine.exchange = exchange
        return node

    made = {"count": 0}

    def factory(settings, **options) -> CartNode:
        made["count"] += 1
        return make(settings, **options) if made["count"] == 3 else CartNode(settings, **options)

    return factory


@pytest.mark.parametrize("fault", list(Fault), ids=[f.name.lower() for f in Fault])
async def test_honest_carts_finish_their_round_despite(fault, tmp_path):
    async with swarm(tmp_path, carts=3, rows=200, make_node=faulty_node(fault), peer_timeout=PEER_TIMEOUT) as s:
        honest, faulty = s.nodes[:2], s.nodes[2]
        await faulty.engine.run_round()
        records = await asyncio.wait_for(run_round(honest), 3 * PEER_TIMEOUT + 60)
    for record, other in ((records[0], honest[1]), (records[1], honest[0])):
        assert record.peers_answered == [other.node_id], record.skipped
        assert EXPECTED_SKIP[fault] in record.skipped[faulty.node_id]
        assert record.aggregated, "the honest pair still aggregated"


async def test_round_survives_a_bridge_restart(tmp_path):
    async with swarm(tmp_path, carts=3, rows=200) as s:
        await run_round(s.nodes)
        bridge = s.bridges[0]
        await bridge.stop("restart test")
        await asyncio.wait_for(asyncio.gather(*(node.client.disconnected.wait() for node in s.nodes)), 30)
        settings = bridge.settings.model_copy(update={"port": bridge.port, "dht_port": bridge.dht_port})
        again = Bridge(settings)
        await again.start()
        s.bridges[0] = again
        await asyncio.gather(*(node.client.wait_connected(60) for node in s.nodes))
        assert await again.directory.wait_until(lambda: len(again.directory.members()) == 3, 30)
        records = await run_round(s.nodes)
    assert all(len(r.peers_answered) == 2 for r in records)
