"""Self-certifying DHT records over real Kademlia (UDP on 127.0.0.1): forgeries are never believed."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from bridgekit import cart, until
from kademlia.network import Server
from kademlia.node import Node
from kademlia.utils import digest

from cartnet import presence
from cartnet.identity import Identity
from cartnet.messages import PresenceRecord
from parent_cart import records
from parent_cart.dht import Dht

BRIDGE = "b" * 40


@pytest.fixture
async def dht_nodes() -> AsyncIterator[list[Dht]]:
    """Three bridges' DHT nodes, bootstrapped into one network."""
    nodes = [Dht(Identity.generate().node_id, records.merge, timeout=0.5) for _ in range(3)]
    await nodes[0].start("127.0.0.1", 0)
    for node in nodes[1:]:
        await node.start("127.0.0.1", 0)
        assert await node.bootstrap([("localhost", nodes[0].port)]) >= 1
    yield nodes
    for node in nodes:
        node.stop()


async def believed(node: Dht, key: str) -> records.Record | None:
    return records.best(digest(key), await node.get_all(key))


def cart_record(identity: Identity, ttl: float = 60.0, issued_ms: int | None = None) -> PresenceRecord:
    return presence.sign(identity, BRIDGE, ttl, issued_ms).record


async def test_presence_published_by_one_bridge_is_believed_by_another(dht_nodes):
    identity = Identity.generate()
    record = cart_record(identity)
    await dht_nodes[1].put(records.cart_key(identity.node_id), records.encode(record))
    assert await believed(dht_nodes[2], records.cart_key(identity.node_id)) == record


def _forgeries(genuine: PresenceRecord, victim: Identity, other: Identity) -> dict[str, object]:
    signed_by_other = presence.sign(other, BRIDGE, 600).record
    return {
        "redirected to another bridge": records.encode(genuine.model_copy(update={"bridge_id": "e" * 40})),
        "signed by someone else": records.encode(genuine.model_copy(update={"signature": other.sign(b"x")})),
        "another cart's record under this key": records.encode(signed_by_other),
        "expired": records.encode(cart_record(victim, ttl=-1.0, issued_ms=genuine.issued_ms + 5)),
        "not JSON": "{nope",
        "wrong type": 12345,
        "bytes": b"\x00" * 20,
    }


async def test_forged_values_stored_by_a_hostile_node_are_refused_and_ignored(dht_nodes):
    victim, other = Identity.generate(), Identity.generate()
    genuine = cart_record(victim)
    key = records.cart_key(victim.node_id)
    await dht_nodes[0].put(key, records.encode(genuine))
    attacker = Server(node_id=digest("attacker"))
    await attacker.listen(0, "127.0.0.1")
    try:
        await attacker.bootstrap([("127.0.0.1", dht_nodes[0].port)])
        targets = [Node(digest(str(n.port)), "127.0.0.1", n.port) for n in dht_nodes]
        for name, forged in _forgeries(genuine, victim, other).items():
            for target in targets:
                answered, _ = await attacker.protocol.call_store(target, digest(key), forged)
                assert answered, f"{name}: the store request never reached {target}"
            assert await believed(dht_nodes[2], key) == genuine, name
            assert all(n.storage.get(digest(key)) in (None, records.encode(genuine)) for n in dht_nodes), name
    finally:
        attacker.stop()


async def test_withdrawal_beats_its_record_and_a_newer_record_beats_the_withdrawal(dht_nodes):
    identity = Identity.generate()
    key = records.cart_key(identity.node_id)
    first = presence.sign(identity, BRIDGE, 60)
    await dht_nodes[0].put(key, records.encode(first.record))
    await dht_nodes[1].put(key, records.encode(presence.withdrawal(first)))
    assert (await believed(dht_nodes[2], key)).state == "gone"
    await dht_nodes[2].put(key, records.encode(first.record))
    assert (await believed(dht_nodes[0], key)).state == "gone", "a replayed older record must not undo a withdrawal"
    again = presence.sign(identity, BRIDGE, 60, issued_ms=first.record.issued_ms + 1)
    await dht_nodes[2].put(key, records.encode(again.record))
    assert await believed(dht_nodes[1], key) == again.record


async def test_bridge_index_entries_merge_instead_of_overwriting(dht_nodes):
    ids = [Identity.generate().node_id for _ in dht_nodes]
    expires = presence.now_ms() + 60_000
    for node, bridge_id in zip(dht_nodes, ids):
        await node.put(records.INDEX_KEY, records.encode(records.index_with(None, bridge_id, expires)))
    index = await believed(dht_nodes[0], records.INDEX_KEY)
    assert set(index.entries) == set(ids)


async def test_bridge_record_is_checked_against_its_key_and_signature(dht_nodes):
    bridge, other = Identity.generate(), Identity.generate()
    record = records.sign_bridge(bridge, "http://127.0.0.1:1", 60)
    await dht_nodes[0].put(records.bridge_key(bridge.node_id), records.encode(record))
    await dht_nodes[0].put(records.bridge_key(other.node_id), records.encode(record))
    assert await believed(dht_nodes[1], records.bridge_key(bridge.node_id)) == record
    assert await believed(dht_nodes[1], records.bridge_key(other.node_id)) is None


async def test_a_lone_node_keeps_values_and_oversized_values_are_refused_before_sending():
    node = Dht(Identity.generate().node_id, records.merge, timeout=0.5)
    await node.start("127.0.0.1", 0)
    try:
        identity = Identity.generate()
        record = cart_record(identity)
        assert await node.put(records.cart_key(identity.node_id), records.encode(record)) is False
        assert await believed(node, records.cart_key(identity.node_id)) == record
        with pytest.raises(ValueError, match="8 KB"):
            await node.put("fedcart/big", "x" * 9000)
    finally:
        node.stop()


async def test_garbage_datagrams_do_not_disturb_a_node(dht_nodes):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for junk in (
            b"\x00" * 30,
            b"\x00" + bytes(20) + b"\xc1\xc1",
            b"\x00" + bytes(20) + b"\x92\xa5store\x90",
            b"\x07" * 40,
        ):
            sock.sendto(junk, ("127.0.0.1", dht_nodes[0].port))
    identity = Identity.generate()
    record = cart_record(identity)
    await dht_nodes[1].put(records.cart_key(identity.node_id), records.encode(record))
    assert await believed(dht_nodes[0], records.cart_key(identity.node_id)) == record


async def test_a_carts_presence_is_published_on_arrival_and_withdrawn_on_departure(linked):
    b1, b2 = linked
    key = None
    async with cart(b1) as a:
        key = records.cart_key(a.node_id)
        await until(lambda: a.node_id in b1.directory.presences, "the cart's presence never reached its bridge", b1)
        await b1.announcer.settled()
        found = await believed(b2.dht, key)
        assert (found.state, found.bridge_id, found.kx_public_key) == ("alive", b1.node_id, a.identity.kx_public_key)
    await until(lambda: a.node_id not in b1.directory.local, "the cart never left", b1)
    await b1.announcer.settled()
    assert (await believed(b2.dht, key)).state == "gone"
