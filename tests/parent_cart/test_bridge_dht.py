"""Self-certifying DHT records over real Kademlia (UDP on 127.0.0.1): forgeries are never believed.

The hostile cases with whole bridges (strangers, floods, revoked bridges, relay URLs,
re-verification) are the attack table in test_dht_attacks.py; this file checks the
record rules themselves.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bridgekit import cart, until
from kademlia.network import Server
from kademlia.node import Node
from kademlia.utils import digest
from phonekit import manifest, tiny_tflite

from cartnet import presence
from cartnet.authority import Authority
from cartnet.identity import Identity
from cartnet.messages import PresenceRecord
from cartnet.phone_models import sign
from parent_cart import records
from parent_cart.dht import Dht

BRIDGE = "b" * 40


@pytest.fixture
def authority(tmp_path: Path) -> Authority:
    return Authority.create(tmp_path / "authority")


def new_dht(authority: Authority) -> Dht:
    return Dht(Identity.generate().node_id, records.Verifier(authority.swarm), timeout=0.5)


@pytest.fixture
async def dht_nodes(authority: Authority) -> AsyncIterator[list[Dht]]:
    """Three bridges' DHT nodes of one swarm, bootstrapped into one network."""
    nodes = [new_dht(authority) for _ in range(3)]
    ids = [node._server.node.id.hex() for node in nodes]
    for node in nodes:  # as their announcers would, once each has believed the others' certified entries
        for other in ids:
            node.trust(other, {"127.0.0.1"})
    await nodes[0].start("127.0.0.1", 0)
    for node in nodes[1:]:
        await node.start("127.0.0.1", 0)
        assert await node.bootstrap([("localhost", nodes[0].port)]) >= 1
    yield nodes
    for node in nodes:
        node.stop()


async def believed(node: Dht, key: str) -> PresenceRecord | records.BridgeRecord | None:
    found = await node.believed(key)
    return found.record if found is not None else None


def cart_record(identity: Identity, ttl: float = 60.0, issued_ms: int | None = None) -> PresenceRecord:
    return presence.sign(identity, BRIDGE, ttl, issued_ms).record


def entry(authority: Authority, record: PresenceRecord, identity: Identity | None = None) -> str:
    """`record` with the certificate of `identity` (default: the record's own key) as a DHT value."""
    public_key = identity.public_key if identity else record.public_key
    return records.encode(records.cart_entry(record, authority.issue(public_key, "cart")))


async def test_presence_published_by_one_bridge_is_believed_by_another(dht_nodes, authority):
    identity = Identity.generate()
    record = cart_record(identity)
    await dht_nodes[1].put(records.cart_key(identity.node_id), entry(authority, record))
    assert await believed(dht_nodes[2], records.cart_key(identity.node_id)) == record


def _forgeries(authority: Authority, genuine: PresenceRecord, victim: Identity, other: Identity) -> dict[str, object]:
    signed_by_other = presence.sign(other, BRIDGE, 600).record
    foreign = Authority.create(authority.directory.parent / "foreign")
    return {
        "redirected to another bridge": entry(authority, genuine.model_copy(update={"bridge_id": "e" * 40})),
        "signed by someone else": entry(authority, genuine.model_copy(update={"signature": other.sign(b"x")})),
        "another cart's record under this key": entry(authority, signed_by_other),
        "the victim's record with another cart's certificate": entry(authority, genuine, other),
        "certified by another swarm": records.encode(
            records.cart_entry(genuine, foreign.issue(victim.public_key, "cart"))
        ),
        "expired": entry(authority, cart_record(victim, ttl=-1.0, issued_ms=genuine.issued_ms + 5)),
        "no certificate": genuine.model_dump_json(),
        "not JSON": "{nope",
        "wrong type": 12345,
        "bytes": b"\x00" * 20,
    }


async def test_forged_values_stored_by_a_hostile_node_are_refused_and_ignored(dht_nodes, authority):
    victim, other = Identity.generate(), Identity.generate()
    genuine = cart_record(victim)
    key = records.cart_key(victim.node_id)
    stored = entry(authority, genuine)
    await dht_nodes[0].put(key, stored)
    attacker = Server(node_id=digest("attacker"))
    await attacker.listen(0, "127.0.0.1")
    try:
        await attacker.bootstrap([("127.0.0.1", dht_nodes[0].port)])
        targets = [Node(digest(str(n.port)), "127.0.0.1", n.port) for n in dht_nodes]
        for name, forged in _forgeries(authority, genuine, victim, other).items():
            for target in targets:
                answered, _ = await attacker.protocol.call_store(target, digest(key), forged)
                assert answered, f"{name}: the store request never reached {target}"
            assert await believed(dht_nodes[2], key) == genuine, name
            assert all(n.storage.get(digest(key)) in (None, stored) for n in dht_nodes), name
    finally:
        attacker.stop()


async def test_withdrawal_beats_its_record_and_a_newer_record_beats_the_withdrawal(dht_nodes, authority):
    identity = Identity.generate()
    key = records.cart_key(identity.node_id)
    first = presence.sign(identity, BRIDGE, 60)
    await dht_nodes[0].put(key, entry(authority, first.record))
    await dht_nodes[1].put(key, entry(authority, presence.withdrawal(first)))
    assert (await believed(dht_nodes[2], key)).state == "gone"
    await dht_nodes[2].put(key, entry(authority, first.record))
    assert (await believed(dht_nodes[0], key)).state == "gone", "a replayed older record must not undo a withdrawal"
    again = presence.sign(identity, BRIDGE, 60, issued_ms=first.record.issued_ms + 1)
    await dht_nodes[2].put(key, entry(authority, again.record))
    assert await believed(dht_nodes[1], key) == again.record


async def test_bridge_entry_is_checked_against_its_key_signature_and_role(dht_nodes, authority):
    bridge, other = Identity.generate(), Identity.generate()
    certificate = authority.issue(bridge.public_key, "bridge")
    signed = records.sign_bridge(bridge, certificate, "http://127.0.0.1:1", 60, ["c" * 40])
    await dht_nodes[0].put(records.bridge_key(bridge.node_id), records.encode(signed))
    await dht_nodes[0].put(records.bridge_key(other.node_id), records.encode(signed))
    assert await believed(dht_nodes[1], records.bridge_key(bridge.node_id)) == signed.record
    assert signed.record.linked == ["c" * 40]
    assert await believed(dht_nodes[1], records.bridge_key(other.node_id)) is None
    as_cart = records.sign_bridge(other, authority.issue(other.public_key, "cart"), "http://127.0.0.1:2", 60)
    assert dht_nodes[1].storage.store(digest(records.bridge_key(other.node_id)), records.encode(as_cart)) == (
        "wrong_role"
    )


async def test_a_lone_node_keeps_values_and_oversized_values_are_refused_before_sending(authority):
    node = new_dht(authority)
    await node.start("127.0.0.1", 0)
    try:
        identity = Identity.generate()
        record = cart_record(identity)
        assert await node.put(records.cart_key(identity.node_id), entry(authority, record)) is False
        assert await believed(node, records.cart_key(identity.node_id)) == record
        with pytest.raises(ValueError, match="8 KB"):
            await node.put("fedcart/big", "x" * 9000)
    finally:
        node.stop()


async def test_an_unenrolled_node_stores_and_believes_nothing(authority):
    node = Dht(Identity.generate().node_id, records.Verifier(None), timeout=0.5)
    await node.start("127.0.0.1", 0)
    try:
        identity = Identity.generate()
        key = records.cart_key(identity.node_id)
        assert node.storage.store(digest(key), entry(authority, cart_record(identity))) == "not_enrolled"
        assert await believed(node, key) is None
    finally:
        node.stop()


async def test_garbage_datagrams_do_not_disturb_a_node(dht_nodes, authority):
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
    await dht_nodes[1].put(records.cart_key(identity.node_id), entry(authority, record))
    assert await believed(dht_nodes[0], records.cart_key(identity.node_id)) == record


async def test_an_rpc_its_caller_gave_up_on_times_out_without_a_traceback(dht_nodes):
    """rpcudp's timer would set a result on the cancelled RPC (InvalidStateError in the loop's callback)."""
    protocol = dht_nodes[0]._server.protocol
    timed_out, raised = asyncio.Event(), []
    expire = protocol._timeout

    def watched(msg_id: bytes) -> None:
        try:
            expire(msg_id)
        except Exception as exc:  # noqa: BLE001 - what the loop would log as a traceback
            raised.append(exc)
        finally:
            timed_out.set()

    protocol._timeout = watched
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        rpc = protocol.ping(silent.getsockname(), protocol.source_node.id)
        rpc.cancel()  # the caller gave up, as a bounded lookup does
        try:
            await asyncio.wait_for(timed_out.wait(), 10)
        except TimeoutError:
            pytest.fail("the RPC's timer never fired")
    assert raised == [] and not protocol._outstanding, (raised, protocol._outstanding)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8470",
        "https://bridge-1.example.org",
        "ws://10.0.0.7:8470/ws",
        "wss://[2001:db8::1]:443/relay",
        "http://bridge:8470/",
    ],
)
def test_relay_urls_a_bridge_may_dial(url):
    assert records.relay_url_problem(url) is None


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://127.0.0.1:21",
        "javascript:alert(1)",
        "http://user:pw@127.0.0.1:8470",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:169.254.169.254]/",
        "http://0.0.0.0:8470",
        "http://224.0.0.1:8470",
        "http://255.255.255.255:8470",
        "http://2130706433:8470",
        "http://127.1:8470",
        "http://bad_host:8470",
        "http://127.0.0.1:0",
        "http://127.0.0.1:70000",
        "http://127.0.0.1:8470/?x=1",
        "http://127.0.0.1:8470/#frag",
        "http://127.0.0.1:8470/../admin",
        "http://127.0.0.1:8470/a b",
        "http://exa\tmple.org",
        "http://",
        "",
    ],
)
def test_relay_urls_that_are_never_dialed(url):
    assert records.relay_url_problem(url) is not None


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


def test_model_entry_is_checked_once_against_its_task_key_certificate_signature_and_clock(authority, tmp_path):
    """A task's agreed-model entry (parent_cart.agreement): the publisher's signed manifest under its task's key,
    a current cart certificate of this swarm, not from the future, not revoked; verified once per value."""
    verifier = records.Verifier(authority.swarm)
    cart_id, key = Identity.generate(), digest(records.model_key("recommend"))
    now, tflite = presence.now_ms(), tiny_tflite(seed=1)

    def value(certificate=None, version=now):
        certificate = certificate or authority.issue(cart_id.public_key, "cart")
        signed = sign(cart_id, manifest(tflite, certificate, version))
        return records.encode(records.model_entry(signed, certificate))

    genuine = value()
    believed_value = verifier.check(key, genuine)
    assert isinstance(believed_value, records.Believed) and believed_value.model is not None
    assert believed_value.model.version == now
    assert verifier.check(key, genuine) is believed_value and verifier.verifications == 1
    assert verifier.check(digest(records.model_key("iot-anomaly")), genuine) == "wrong_key"
    assert verifier.check(key, value(version=now + 3_600_000)) == "from_future"
    expired = authority.issue(cart_id.public_key, "cart", days=1, now=now - 3 * 86_400_000)
    assert verifier.check(key, value(expired, version=now - 3 * 86_400_000 + 1000)) == "certificate_expired"
    stranger = Authority.create(tmp_path / "other-authority").issue(cart_id.public_key, "cart")
    assert verifier.check(key, value(stranger)) == "certificate_wrong_swarm"
    assert verifier.check(key, value(authority.issue(cart_id.public_key, "bridge"))) == "wrong_role"
    verifier.accept_revocations(authority.revoke([cart_id.node_id]))
    assert verifier.check(key, genuine) == "revoked"
