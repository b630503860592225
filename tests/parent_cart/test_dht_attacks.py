"""The DHT closed to strangers (issue 13, finding 3): one attack a row, on real Kademlia over UDP.

Each row runs in a fresh swarm of two linked, enrolled bridges with a certified cart A on
bridge 1 and B on bridge 2. The attacker speaks kademlia's own RPCs to the bridges' UDP
ports (a `Stranger`: a bare kademlia node with whatever node ids it likes), so nothing
it sends passes through code that would filter it before the bridge's storage does. A
row asserts what must happen to the attack (not stored, not returned, counted in
`fedcart_bridge_dht_refused{reason}`, never dialed, never re-verified) and returns what
it observed; then the honest swarm must be whole: a third bridge joins through the DHT
and links with both, each bridge finds cart A's certified presence through the DHT, and
a message from A reaches B across the link.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from bridgekit import Swarm, authority, cart, certificate, until, within
from kademlia.network import Server
from kademlia.utils import digest

import cartnet.certificates
import parent_cart.records
from cartnet import presence
from cartnet.authority import Authority
from cartnet.certificates import Certificate, Role, certificate_bytes
from cartnet.client import BridgeClient, Incoming
from cartnet.identity import Identity
from cartnet.messages import Heartbeat, RevocationList
from parent_cart import records
from parent_cart.bridge import Bridge
from parent_cart.dht import Dht

log = logging.getLogger(__name__)

THIRTY_YEARS = 30 * 365 * 24 * 3600.0


class Attack(enum.Enum):
    STRANGER_STORE = "a stranger (no certificate) stores records over UDP"
    FAR_FUTURE_EXPIRY = "a certified cart's record with a 30-year expiry"
    FAKE_BRIDGE_FLOOD = "100 fake bridge records from 100 node ids, and the old bridge index"
    CART_AS_BRIDGE = "a cart certificate used for a bridge record"
    REVOKED_BRIDGE = "a revoked bridge's record"
    BAD_RELAY_URL = "bridge records whose relay URL has a bad scheme or host"
    REVERIFY_STORM = "2,000 stored records, then datagrams from 200 new node ids"


class Stranger:
    """A bare kademlia node anyone could run: no certificate, any node id it likes in each request."""

    def __init__(self) -> None:
        self.server = Server(node_id=os.urandom(20))
        self.stores_received = 0

    async def start(self, bootstrap: Bridge) -> None:
        await self.server.listen(0, "127.0.0.1")
        self.server.protocol.rpc_store = self._stored  # count what bridges push to us, keep nothing
        await self.server.bootstrap([("127.0.0.1", bootstrap.dht_port)])

    def _stored(self, sender: Any, nodeid: bytes, key: bytes, value: Any) -> bool:
        self.stores_received += 1
        return True

    async def store(self, bridge: Bridge, key: str, value: object, as_id: bytes | None = None) -> None:
        """Send `bridge` kademlia's store RPC; it must answer (answering is not storing)."""
        answered, _ = await self.server.protocol.store(
            ("127.0.0.1", bridge.dht_port), as_id or self.server.node.id, digest(key), value
        )
        assert answered, f"bridge {bridge.node_id[:8]} never answered the store request for {key}"

    async def ping(self, bridge: Bridge, as_id: bytes) -> None:
        answered, _ = await self.server.protocol.ping(("127.0.0.1", bridge.dht_port), as_id)
        assert answered, f"bridge {bridge.node_id[:8]} never answered a ping"

    def stop(self) -> None:
        self.server.stop()


class Listener:
    """A TCP port that counts connections: a relay URL pointing here must never be dialed."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accepted, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()


@dataclass
class World:
    swarm: Swarm
    b1: Bridge
    b2: Bridge
    a: BridgeClient
    b: BridgeClient
    root: Path
    monkeypatch: pytest.MonkeyPatch
    stack: contextlib.AsyncExitStack
    _stranger: Stranger | None = None
    listener: Listener = field(default_factory=Listener)

    async def stranger(self) -> Stranger:
        if self._stranger is None:
            self._stranger = Stranger()
            await self._stranger.start(self.b1)
            self.stack.callback(self._stranger.stop)
        return self._stranger

    async def store_everywhere(self, key: str, value: object, as_id: bytes | None = None) -> None:
        stranger = await self.stranger()
        for bridge in (self.b1, self.b2):
            await stranger.store(bridge, key, value, as_id)


def _refused(bridge: Bridge, reason: str | None = None) -> float:
    """`fedcart_bridge_dht_refused_total` of one reason, or of all of them."""
    samples = [
        sample
        for metric in bridge.metrics.registry.collect()
        for sample in metric.samples
        if sample.name == "fedcart_bridge_dht_refused_total" and reason in (None, sample.labels["reason"])
    ]
    return sum(sample.value for sample in samples)


def _refused_by_both(world: World, reason: str | None = None) -> float:
    return _refused(world.b1, reason) + _refused(world.b2, reason)


async def _nowhere(world: World, key: str) -> None:
    """Neither bridge holds a value under `key`, nor believes any answer for it."""
    for bridge in (world.b1, world.b2):
        assert bridge.dht.storage.get(digest(key)) is None, f"bridge {bridge.node_id[:8]} stored {key}"
        assert await bridge.dht.believed(key) is None, f"bridge {bridge.node_id[:8]} believes a value for {key}"


def _quick_certificate(issuer: Authority, identity: Identity, role: Role) -> Certificate:
    """What `Authority.issue` signs, without keeping a copy on disk (thousands of them for one row)."""
    now = presence.now_ms()
    unsigned = Certificate(
        swarm_id=issuer.swarm.swarm_id,
        node_id=identity.node_id,
        public_key=identity.public_key,
        role=role,
        not_before_ms=now - 60_000,
        not_after_ms=now + 3_600_000,
        signature=bytes(64),
    )
    return unsigned.model_copy(update={"signature": issuer.signing_key.sign(certificate_bytes(unsigned))})


def _bare_bridge_record(identity: Identity, url: str) -> records.BridgeRecord:
    """A correctly self-signed bridge record, with no certificate to go with it."""
    return records.sign_bridge(identity, certificate(identity, "bridge"), url, 60).record


# --- the rows ---------------------------------------------------------------------------------


async def _stranger_store(world: World) -> str:
    fake = Identity.generate()
    forged_a = presence.sign(fake, world.b1.node_id, 60).record.model_copy(update={"node_id": world.a.node_id})
    values = {
        records.cart_key(fake.node_id): presence.sign(fake, world.b1.node_id, 60).record.model_dump_json(),
        records.cart_key(world.a.node_id): forged_a.model_dump_json(),
        records.bridge_key(fake.node_id): _bare_bridge_record(fake, "http://127.0.0.1:9").model_dump_json(),
        "fedcart/bridges": '{"type":"bridge_index","entries":{"' + fake.node_id + '":99999999999999}}',
        "fedcart/anything": "hello",
    }
    before = _refused_by_both(world)
    for key, value in values.items():
        await world.store_everywhere(key, value)
    for key in values:
        if key != records.cart_key(world.a.node_id):
            await _nowhere(world, key)
    for bridge in (world.b1, world.b2):  # whoever holds cart A's entry still holds A's own
        raw = bridge.dht.storage.get(digest(records.cart_key(world.a.node_id)))
        held = records.CartEntry.model_validate_json(raw) if raw is not None else None
        assert held is None or held.record.public_key == world.a.identity.public_key
    stranger = await world.stranger()
    assert await stranger.server.get(records.cart_key(fake.node_id)) is None, "a stranger's value came back"
    refused = _refused_by_both(world) - before
    assert refused >= 2 * len(values)
    return f"refused {refused:.0f} values ({_refused_by_both(world, 'no_certificate'):.0f} with no certificate)"


async def _far_future_expiry(world: World) -> str:
    liar = Identity.generate()
    record = presence.sign(liar, world.b1.node_id, THIRTY_YEARS).record
    value = records.encode(records.cart_entry(record, certificate(liar, "cart")))
    key = records.cart_key(liar.node_id)
    await world.store_everywhere(key, value)
    assert await world.b1.dht.put(key, value) is False, "a bridge would publish a 30-year record"
    await _nowhere(world, key)
    too_long = _refused_by_both(world, "too_long")
    assert too_long >= 3
    return f"refused as too_long {too_long:.0f} times"


async def _fake_bridge_flood(world: World) -> str:
    foreign = Authority.create(world.root / "foreign")
    url = f"http://127.0.0.1:{world.listener.port}"
    fakes = [Identity.generate() for _ in range(100)]
    for index, fake in enumerate(fakes):
        if index % 3 == 0:
            value = _bare_bridge_record(fake, url).model_dump_json()
        elif index % 3 == 1:
            value = records.encode(records.sign_bridge(fake, _quick_certificate(foreign, fake, "bridge"), url, 600))
        else:
            self_made = _quick_certificate(foreign, fake, "bridge").model_copy(
                update={"swarm_id": authority().swarm.swarm_id, "signature": fake.sign(b"trust me")}
            )
            value = records.encode(records.sign_bridge(fake, self_made, url, 600))
        await world.store_everywhere(records.bridge_key(fake.node_id), value, as_id=bytes.fromhex(fake.node_id))
    far = presence.now_ms() + int(THIRTY_YEARS * 1000)
    index = '{"type":"bridge_index","entries":{' + ",".join(f'"{f.node_id}":{far}' for f in fakes[:60]) + "}}"
    await world.store_everywhere("fedcart/bridges", index)
    for fake in fakes:
        await _nowhere(world, records.bridge_key(fake.node_id))
    fake_ids = {fake.node_id for fake in fakes}
    polluted = [bridge for bridge in (world.b1, world.b2) if fake_ids & set(bridge.dht.contact_ids())]
    assert not polluted, "fake node ids entered a bridge's routing table"
    reasons = {
        reason: _refused_by_both(world, reason)
        for reason in ("no_certificate", "certificate_wrong_swarm", "certificate_bad_signature")
    }
    assert reasons == {"no_certificate": 70, "certificate_wrong_swarm": 66, "certificate_bad_signature": 66}, reasons
    return f"100 fake bridges refused ({reasons}), none of their ids in a routing table"


async def _cart_as_bridge(world: World) -> str:
    carty = Identity.generate()
    entry = records.sign_bridge(carty, certificate(carty, "cart"), f"http://127.0.0.1:{world.listener.port}", 60)
    await world.store_everywhere(records.bridge_key(carty.node_id), records.encode(entry))
    await _nowhere(world, records.bridge_key(carty.node_id))
    assert await world.b1.announcer.bridge_record(carty.node_id) is None
    wrong_role = _refused_by_both(world, "wrong_role")
    assert wrong_role >= 2
    return f"refused as wrong_role {wrong_role:.0f} times"


async def _revoked_bridge(world: World) -> str:
    rogue = Identity.generate()
    rogue_dht = Dht(rogue.node_id, records.Verifier(authority().swarm), timeout=0.5)
    await rogue_dht.start("127.0.0.1", 0)
    world.stack.callback(rogue_dht.stop)
    await rogue_dht.bootstrap([("127.0.0.1", world.b1.dht_port)])
    key = records.bridge_key(rogue.node_id)
    url = f"http://127.0.0.1:{world.listener.port}"
    cert = certificate(rogue, "bridge")
    assert await rogue_dht.put(key, records.encode(records.sign_bridge(rogue, cert, url, 60)))
    for bridge in (world.b1, world.b2):
        assert await bridge.dht.believed(key) is not None, "the rogue bridge's record was not stored before revocation"

    arrived = asyncio.Event()

    def noted(revocations: RevocationList) -> None:
        if revocations.names(rogue.node_id):
            arrived.set()

    world.b2.membership.on_revocations(noted)
    revocations = authority().revoke([rogue.node_id])
    assert world.b1.membership.offer(revocations, "the operator")
    await within(arrived.wait(), "the revocation list spreading from bridge 1 to bridge 2")
    await _nowhere(world, key)
    before = _refused_by_both(world, "revoked")
    await rogue_dht.put(key, records.encode(records.sign_bridge(rogue, cert, url, 60)))
    await world.store_everywhere(key, records.encode(records.sign_bridge(rogue, cert, url, 60)))
    await _nowhere(world, key)
    revoked = _refused_by_both(world, "revoked") - before
    assert revoked >= 2
    assert rogue.node_id not in world.b1.links.ids() and rogue.node_id not in world.b2.links.ids()
    return f"dropped on revocation, then refused as revoked {revoked:.0f} times"


async def _bad_relay_url(world: World) -> str:
    port = world.listener.port
    urls = [
        "file:///etc/passwd",
        f"ftp://127.0.0.1:{port}",
        f"gopher://127.0.0.1:{port}",
        f"http://user:secret@127.0.0.1:{port}",
        f"http://127.1:{port}",
        f"http://2130706433:{port}",
        f"http://0.0.0.0:{port}",
        "http://169.254.169.254/latest/meta-data",
        f"http://127.0.0.1:{port}/?next=http://169.254.169.254",
        f"http://127.0.0.1:{port}/../admin",
        f"javascript:alert({port})",
    ]
    liar = Identity.generate()
    liar_dht = Dht(liar.node_id, records.Verifier(authority().swarm), timeout=0.5)
    await liar_dht.start("127.0.0.1", 0)
    world.stack.callback(liar_dht.stop)
    await liar_dht.bootstrap([("127.0.0.1", world.b1.dht_port)])  # in the routing tables: discovery looks it up
    cert = certificate(liar, "bridge")
    before = _refused_by_both(world, "bad_relay_url")
    for url in urls:
        await world.store_everywhere(
            records.bridge_key(liar.node_id), records.encode(records.sign_bridge(liar, cert, url, 60))
        )
    await _nowhere(world, records.bridge_key(liar.node_id))
    for url in urls:  # a URL from anywhere else (a link's admission) is checked again before dialing
        assert await world.b1.links.ensure(liar.node_id, url) is None
    bad = _refused_by_both(world, "bad_relay_url") - before
    assert bad >= 2 * len(urls)
    return f"{len(urls)} URLs refused at both bridges ({bad:.0f} refusals), none dialed"


async def _reverify_storm(world: World) -> str:
    issuer, dht, stranger = authority(), world.b1.dht, await world.stranger()
    values: dict[str, str] = {}
    for _ in range(2000):  # valid, certified values: anyone may pass those on, over UDP like any store
        owner = Identity.generate()
        cert = _quick_certificate(issuer, owner, "cart")
        entry = records.cart_entry(presence.sign(owner, world.b1.node_id, 60).record, cert)
        values[records.cart_key(owner.node_id)] = records.encode(entry)
    batches = list(values.items())
    for start in range(0, len(batches), 20):  # a few at a time: UDP drops what overflows a socket buffer
        await asyncio.gather(*(stranger.store(world.b1, key, value) for key, value in batches[start : start + 20]))
    assert all(dht.storage.get(digest(key)) == value for key, value in values.items())

    stored = set(values.values())
    checks_by_bridge_1: list[str] = []  # signatures of the stored values bridge 1's verifier checks again
    verify = dht.verifier.check
    checking = False

    def check(dkey: bytes, raw: object) -> records.Believed | str:
        nonlocal checking
        checking = raw in stored
        try:
            return verify(dkey, raw)
        finally:
            checking = False

    world.monkeypatch.setattr(dht.verifier, "check", check)
    for module in (parent_cart.records, cartnet.certificates):

        def counted(
            key: bytes,
            signature: bytes,
            data: bytes,
            real: Callable[..., bool] = module.verify_signature,
            where: str = module.__name__,
        ) -> bool:
            if checking:
                checks_by_bridge_1.append(where)
            return real(key, signature, data)

        world.monkeypatch.setattr(module, "verify_signature", counted)

    verifications, strangers, received = dht.verifier.verifications, dht.strangers, stranger.stores_received
    newcomers = [os.urandom(20) for _ in range(200)]
    await asyncio.gather(*(stranger.ping(world.b1, node_id) for node_id in newcomers))
    for key, raw in list(dht.storage)[:20]:  # and reads of stored values by yet more new ids
        answered, found = await stranger.server.protocol.find_value(
            ("127.0.0.1", world.b1.dht_port), os.urandom(20), key
        )
        assert answered and found == {"value": raw}
    for key, raw in list(dht.storage)[:100]:  # iterating and answering reads the kept verdicts
        assert dht.storage.get(key) == raw
    assert not checks_by_bridge_1, f"bridge 1 checked {len(checks_by_bridge_1)} signatures of stored values again"
    assert dht.verifier.verifications - verifications < 10, "bridge 1 verified far more than the bridges' republishing"
    assert not {node_id.hex() for node_id in newcomers} & set(dht.contact_ids()), "a stranger entered the routing table"
    assert dht.strangers - strangers >= 200
    sent = stranger.stores_received - received
    assert sent == 0, f"bridge 1 pushed {sent} values to strangers"
    world.monkeypatch.undo()
    return (
        f"no signature of the 2,000 stored values checked again for 200 new node ids; none welcomed, "
        f"{dht.strangers - strangers} datagrams answered as from strangers"
    )


ROWS: dict[Attack, Callable[[World], Awaitable[str]]] = {
    Attack.STRANGER_STORE: _stranger_store,
    Attack.FAR_FUTURE_EXPIRY: _far_future_expiry,
    Attack.FAKE_BRIDGE_FLOOD: _fake_bridge_flood,
    Attack.CART_AS_BRIDGE: _cart_as_bridge,
    Attack.REVOKED_BRIDGE: _revoked_bridge,
    Attack.BAD_RELAY_URL: _bad_relay_url,
    Attack.REVERIFY_STORM: _reverify_storm,
}


# --- the honest swarm -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def world_of(
    swarm: Swarm, b1: Bridge, b2: Bridge, root: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[World]:
    async with contextlib.AsyncExitStack() as stack:
        a = await stack.enter_async_context(cart(b1))
        b = await stack.enter_async_context(cart(b2))
        world = World(swarm, b1, b2, a, b, root, monkeypatch, stack)
        await world.listener.start()
        stack.callback(world.listener.stop)
        await until(lambda: a.node_id in b1.directory.presences, "cart A's presence never reached bridge 1", b1)
        await b1.announcer.settled()
        yield world


async def _honest_swarm_is_whole(world: World) -> None:
    """A new bridge joins through the DHT and links with both; every bridge finds A's certified presence
    through the DHT; A still reaches B across the link."""
    b3 = await world.swarm.add_bridge("b3")
    bridges = (world.b1, world.b2, b3)
    await until(
        lambda: all(
            other.node_id in bridge.links.ids() for bridge in bridges for other in bridges if other is not bridge
        ),
        "the honest bridges never all linked with each other",
        *bridges,
    )
    key = records.cart_key(world.a.node_id)
    for bridge in bridges:
        found = await bridge.dht.believed(key)
        assert found is not None, (
            f"bridge {bridges.index(bridge) + 1} does not find cart A's presence in the DHT ({[b.dht.contact_ids() for b in bridges]}, {[b.node_id for b in bridges]}, {[b.dht.storage.get(digest(key)) is not None for b in bridges]})"
        )
        assert (found.record.node_id, found.record.bridge_id) == (world.a.node_id, world.b1.node_id)
    assert await b3.announcer.lookup(world.a.node_id) == world.b1.node_id
    await world.a.send_message(world.b.node_id, Heartbeat(seq=42))
    got = await within(world.b.inbox.get(), "A's message to B after the attack")
    assert got == Incoming(world.a.node_id, Heartbeat(seq=42))


@pytest.mark.parametrize("attack", list(Attack), ids=lambda attack: attack.name.lower())
async def test_dht_attack_is_refused(
    swarm: Swarm, linked: tuple[Bridge, Bridge], attack: Attack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with world_of(swarm, *linked, tmp_path, monkeypatch) as world:
        observed = await ROWS[attack](world)
        log.info("%s: %s", attack.value, observed)
        await _honest_swarm_is_whole(world)
        assert world.listener.connections == 0, "a relay URL from a refused record was dialed"
