"""Carts on different bridges reach each other: transfers, control messages, the swarm directory."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest
from bridgekit import cart, http_peers, listed, seen_everywhere, until, within

from cartnet import e2e
from cartnet.identity import Identity
from cartnet.messages import Heartbeat
from cartnet.peers import sign_request


async def test_20mb_transfer_from_bridge1_cart_to_bridge2_cart_arrives_intact(linked):
    b1, b2 = linked
    blob = os.urandom(20 * 1024 * 1024)
    async with cart(b1) as a, cart(b2) as b:
        await seen_everywhere(b.node_id, b1, b2)
        tid = await within(a.transfers.send_blob(b.node_id, blob, "update", {"round": "3"}), "the 20 MB transfer")
        got = await within(b.transfers.received.get(), "delivery of the 20 MB blob at cart B")
    assert (got.peer, got.manifest.transfer_id, got.manifest.meta) == (a.node_id, tid, {"round": "3"})
    assert hashlib.sha256(got.data).digest() == hashlib.sha256(blob).digest()
    assert b1.metrics.registry.get_sample_value("fedcart_bridge_frames_relayed_total", {"path": "link_out"}) >= 20


async def test_sealed_weights_cross_the_relay_unread_and_open_at_the_receiver(linked):
    b1, b2 = linked
    weights = os.urandom(3 * 1024 * 1024 + 17)
    async with cart(b1) as a, cart(b2) as b:
        await seen_everywhere(b.node_id, b1, b2)
        peer = next(p for p in await a.peers() if p.node_id == b.node_id)
        await a.transfers.send_blob(b.node_id, e2e.seal(weights, peer.kx_public_key, a.node_id), "update")
        got = await within(b.transfers.received.get(), "the sealed update")
    assert weights not in got.data
    assert e2e.open_sealed(got.data, b.identity.kx_key, a.node_id) == weights


async def test_control_messages_both_ways_and_inbox_iteration(linked):
    b1, b2 = linked
    async with cart(b1) as a, cart(b2) as b:
        await seen_everywhere(b.node_id, b1, b2)
        request = sign_request(a.identity, b.node_id, "recommend", 4)
        await a.send_message(b.node_id, request)
        incoming = await within(anext(aiter(b)), "the update request at B")
        await b.send_message(incoming.peer, Heartbeat(seq=1))
        reply = await within(a.inbox.get(), "B's answer at A")
    assert (incoming.peer, incoming.message) == (a.node_id, request)
    assert (reply.peer, reply.message) == (b.node_id, Heartbeat(seq=1))


async def test_peers_lists_the_whole_swarm_over_http_and_to_carts(linked):
    b1, b2 = linked
    async with cart(b1) as a, cart(b2) as b, cart(b2) as c:
        for node_id in (a.node_id, b.node_id, c.node_id):
            await seen_everywhere(node_id, b1, b2)
        listing = {p["node_id"]: p for p in await http_peers(b1)}
        from_cart = {p.node_id: p for p in await a.peers()}
    assert set(listing) == {a.node_id, b.node_id, c.node_id}
    assert listing[a.node_id]["local"] is True and listing[b.node_id]["local"] is False
    assert listing[b.node_id]["bridge_id"] == b2.node_id and listing[b.node_id]["bridge_url"] == b2.url
    assert set(from_cart) == {b.node_id, c.node_id}
    assert from_cart[c.node_id].kx_public_key == c.identity.kx_public_key
    assert listing[c.node_id]["public_key"] == from_cart[c.node_id].listing()["public_key"]


async def test_a_cart_no_link_told_us_about_is_found_through_its_dht_presence(swarm):
    b1 = await swarm.add_bridge(refresh_interval=60.0)
    b2 = await swarm.add_bridge(refresh_interval=60.0)
    lookups = []
    real_lookup = b1.announcer.lookup

    async def counting_lookup(node_id):
        lookups.append(node_id)
        return await real_lookup(node_id)

    b1.announcer.lookup = counting_lookup
    async with cart(b1) as a, cart(b2) as b:
        await seen_everywhere(b.node_id, b1, b2)
        await b1.links.current(b2.node_id).close(None, 1.0)
        await until(
            lambda: not b1.links.ids() and not listed(b1, b.node_id), "b1 never dropped the link and its roster", b1
        )
        await a.send_message(b.node_id, Heartbeat(seq=9))
        got = await within(b.inbox.get(), "the message routed via a DHT lookup")
    assert got.message == Heartbeat(seq=9)
    assert lookups == [b.node_id]
    assert b2.node_id in b1.links.ids()


@pytest.mark.parametrize("dht_answer", ["the bridge it left", "nothing"])
async def test_a_cart_that_attaches_while_the_dht_answers_late_gets_the_frame_not_its_sender_a_bounce(
    swarm, dht_answer
):
    """A bridge that died leaves its carts' presences in the DHT, and a lookup through its dead DHT node takes
    seconds. A cart that moved here meanwhile gets a frame sent to it here: bounced, the frame would fail every
    transfer its sender has to that cart, a fresh answer of the next round included (seen in
    tests/rounds/test_round_faults.py's killed bridge)."""
    bridge = await swarm.add_bridge()
    mover, asked, attached = Identity.generate(), asyncio.Event(), asyncio.Event()

    async def late_lookup(node_id: str) -> str | None:
        asked.set()
        await attached.wait()
        return "ab" * 20 if dht_answer == "the bridge it left" else None

    bridge.announcer.lookup = late_lookup
    async with cart(bridge) as sender:
        await sender.send_message(mover.node_id, Heartbeat(seq=3))
        await within(asked.wait(), "the bridge looking the mover up in the DHT")
        async with cart(bridge, mover) as receiver:
            await until(lambda: mover.node_id in bridge.directory.local, "the mover attached", bridge)
            attached.set()
            got = await within(receiver.inbox.get(), "the frame at the cart that attached meanwhile")
            bounced = [sender.undeliverable.get_nowait() for _ in range(sender.undeliverable.qsize())]
    assert (got.peer, got.message) == (sender.node_id, Heartbeat(seq=3))
    assert bounced == []
