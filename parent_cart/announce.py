"""What this bridge tells the DHT, and how it finds the rest of the swarm there.

Every `refresh_interval` the bridge republishes its own certified bridge entry (relay URL
and the bridges it is linked with) and the certified presence entries of its carts, then
links to the bridges it can find. Presence changes are published as they happen: a fresh entry when a cart proves
its presence, its cart-signed withdrawal when it leaves. A cart's entry carries the
cart's own certificate (`certificate_of`, from its admission); a cart whose certificate
the bridge does not hold is served by the bridge and its links but not put in the DHT,
where no bridge would believe it.

Bridges are found without any index a stranger could fill: candidates are the nodes that
answered at the bootstrap addresses, the ids certified bridges list as linked in their
own signed entries, and the Kademlia contacts, in that order, at most MAX_LOOKUPS a round.
A candidate is dialed only after its own certified entry verifies; one that has none is
not looked up again for a while.

The routing table itself is closed to strangers (parent_cart.dht): each round the bridges
we are linked with (mutually authenticated, certified) or hold a believed certified entry
of are trusted from the addresses their relay host resolves to, and only those (and the
bootstrap addresses) take part in anyone's lookups; a bridge that is revoked or gone is
dropped from the table.

`lookup` resolves a cart no link told us about: the freshest verified presence entry in
the DHT names its bridge, whose own entry gives the URL to dial.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import urllib.parse
from collections.abc import Callable

from cartnet.certificates import Certificate
from cartnet.identity import Identity
from cartnet.messages import CertifiedPresence, PresenceRecord
from parent_cart import records
from parent_cart.dht import Dht, addresses_of
from parent_cart.directory import Directory
from parent_cart.links import Links
from parent_cart.settings import BridgeSettings

log = logging.getLogger(__name__)

_NEGATIVE_TTL = 2.0
"""Seconds an unsuccessful cart lookup is remembered, so a flood of frames to nowhere costs one lookup."""
MAX_LOOKUPS = 16
"""Bridge candidates looked up per discovery round."""
_UNVERIFIED_ROUNDS = 8
"""Rounds a candidate without a believable bridge entry is left alone before it is looked up again."""
_RESOLVED_FOR = 60.0
"""Seconds a relay host's resolved addresses are reused."""

CertificateOf = Callable[[str], Certificate | None]


class Announcer:
    """Publishes this bridge and its carts in the DHT; discovers and links the other bridges."""

    def __init__(
        self,
        identity: Identity,
        settings: BridgeSettings,
        dht: Dht,
        directory: Directory,
        links: Links,
        certificate: Certificate | None = None,
        certificate_of: CertificateOf | None = None,
    ) -> None:
        self.identity = identity
        self.settings = settings
        self.dht = dht
        self.directory = directory
        self.links = links
        self.certificate = certificate
        self.certificate_of: CertificateOf = certificate_of or (lambda node_id: None)
        self.public_url = ""
        self.bridges: dict[str, records.Believed] = {}
        """Bridge entries believed so far, by bridge id (their `linked` lists feed discovery)."""
        self._cart_certificates: dict[str, Certificate] = {}
        self._unverified: dict[str, float] = {}
        self._misses: dict[str, float] = {}
        self._next_linked = 0
        self._hosts: dict[str, tuple[float, set[str]]] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def _record_ttl(self) -> float:
        return min(max(30.0, 3 * self.settings.refresh_interval), self.settings.presence_max_ttl)

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh and discover until `stop` is set; one failed round never ends the loop."""
        while not stop.is_set():
            try:
                await self.refresh()
            except Exception:  # noqa: BLE001 - keep announcing whatever one round hit
                log.exception("DHT refresh failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.refresh_interval)

    async def refresh(self) -> None:
        """One round: rejoin if alone, republish everything we vouch for, link to new bridges."""
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._watch_links())
        bootstrap = self.settings.bootstrap_addresses()
        if bootstrap and not self.dht.contact_ids():
            await self.dht.bootstrap(bootstrap)
        if self.certificate is not None:
            entry = records.sign_bridge(
                self.identity, self.certificate, self.public_url, self._record_ttl, self.links.ids()
            )
            await self.dht.put(records.bridge_key(self.identity.node_id), records.encode(entry))
        await asyncio.gather(*(self._put(rec) for rec in self.directory.local_records()))
        for node_id in [node_id for node_id in self._cart_certificates if node_id not in self.directory.local]:
            del self._cart_certificates[node_id]
        await self.discover()

    async def discover(self) -> None:
        """Look up (bounded) the bridges we might link to; link to each whose certified entry verifies."""
        await self.refresh_trust()
        now = time.monotonic()
        self._unverified = {bridge_id: until for bridge_id, until in self._unverified.items() if until > now}
        linked = set(self.links.ids())
        vouched = [
            listed
            for bridge_id in sorted(linked & set(self.bridges))
            if self.dht.verifier.still(self.bridges[bridge_id]) is None
            for listed in _linked_of(self.bridges[bridge_id])
        ]
        contacts = self.dht.contact_ids()
        random.shuffle(contacts)
        trusted = {*self.dht.bootstrap_ids, *vouched}
        skip = {self.identity.node_id, *linked, *self._unverified}
        ordered = [*sorted(self.dht.bootstrap_ids), *vouched, *contacts]
        candidates = [bridge_id for bridge_id in dict.fromkeys(ordered) if bridge_id not in skip][:MAX_LOOKUPS]
        if linked:  # refresh one linked bridge's entry a round, to learn whom it is linked with
            ring = sorted(linked)
            self._next_linked = (self._next_linked + 1) % len(ring)
            candidates.append(ring[self._next_linked])
        await asyncio.gather(*(self._link(bridge_id, bridge_id in trusted) for bridge_id in candidates))

    async def _link(self, bridge_id: str, trusted: bool = False) -> None:
        record = await self.bridge_record(bridge_id)
        if record is None:
            if not trusted:  # a bootstrap node or a vouched-for bridge may just not have published yet
                rounds = _UNVERIFIED_ROUNDS * self.settings.refresh_interval
                self._unverified[bridge_id] = time.monotonic() + rounds
            return
        await self._trust(bridge_id, record.relay_url)
        await self.links.ensure(bridge_id, record.relay_url)

    async def refresh_trust(self) -> None:
        """Trust (admit to the DHT routing table) the bridges we are linked with or hold a believed certified
        entry of, from their relay hosts' addresses; distrust every other."""
        urls: dict[str, str] = {}
        for bridge_id, believed in list(self.bridges.items()):
            if self.dht.verifier.still(believed) is None and isinstance(believed.record, records.BridgeRecord):
                urls[bridge_id] = believed.record.relay_url
            else:
                del self.bridges[bridge_id]
        for bridge_id in self.links.ids():
            link = self.links.current(bridge_id)
            if link is not None and link.url and not self.dht.verifier.revoked(bridge_id):
                urls.setdefault(bridge_id, link.url)
        gone = self.dht.trusted() - set(urls)
        if gone:
            self.dht.distrust(gone)
        await asyncio.gather(*(self._trust(bridge_id, url) for bridge_id, url in urls.items()))

    async def _watch_links(self) -> None:
        """Trust a newly linked bridge at once (not at the next round), so our lookups can use it now."""
        linked: set[str] = set()
        while True:
            await self.directory.changed()
            now = set(self.links.ids())
            if now - linked:
                try:
                    await self.refresh_trust()
                except Exception:  # noqa: BLE001 - the next round tries again
                    log.exception("could not trust the newly linked bridges")
            linked = now

    async def _trust(self, bridge_id: str, url: str) -> None:
        host = urllib.parse.urlsplit(url).hostname or ""
        cached = self._hosts.get(host)
        if cached is None or cached[0] <= time.monotonic():
            try:
                addresses = await addresses_of(host) if host else set()
            except OSError as exc:
                log.info("cannot resolve relay host %r of bridge %s: %s", host, bridge_id[:8], exc)
                addresses = set()
            cached = self._hosts[host] = (time.monotonic() + _RESOLVED_FOR, addresses)
        if cached[1]:
            self.dht.trust(bridge_id, cached[1])

    async def bridge_record(self, bridge_id: str) -> records.BridgeRecord | None:
        """The bridge's own record, if a certified, unexpired, unrevoked entry of it is in the DHT."""
        found = await self.dht.believed(records.bridge_key(bridge_id))
        if found is None or not isinstance(found.entry, records.BridgeEntry):
            self.bridges.pop(bridge_id, None)
            return None
        self.bridges[bridge_id] = found
        return found.entry.record

    async def lookup(self, node_id: str) -> str | None:
        """The bridge a cart sits behind according to its own certified presence in the DHT, or None."""
        if self._misses.get(node_id, 0.0) > time.monotonic():
            return None
        found = await self.dht.believed(records.cart_key(node_id))
        entry = found.entry if found is not None else None
        record = entry.record if isinstance(entry, records.CartEntry) else None
        if (
            isinstance(entry, records.CartEntry)
            and isinstance(record, PresenceRecord)
            and record.state == "alive"
            and record.bridge_id != self.identity.node_id
        ):
            bridge = await self.bridge_record(record.bridge_id)
            if bridge is not None:
                self.directory.learn_record(
                    CertifiedPresence(record=record, certificate=entry.certificate), bridge.relay_url
                )
                return record.bridge_id
        self._misses[node_id] = time.monotonic() + _NEGATIVE_TTL
        return None

    def publish(self, record: PresenceRecord) -> None:
        """Store a presence record (or withdrawal) in the background; the relay never waits on the DHT."""
        self._misses.pop(record.node_id, None)
        task = asyncio.create_task(self._put(record))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settled(self) -> None:
        """Return once every presence publication started so far has finished."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        tasks = [*self._tasks, *([self._watcher] if self._watcher else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _put(self, record: PresenceRecord) -> None:
        certificate = self._certificate(record)
        if certificate is None:
            log.debug("no certificate of cart %s: its presence stays out of the DHT", record.node_id[:8])
            return
        try:
            await self.dht.put(
                records.cart_key(record.node_id), records.encode(records.cart_entry(record, certificate))
            )
        except (OSError, ValueError) as exc:
            log.warning("could not publish presence of %s: %s", record.node_id[:8], exc)

    def _certificate(self, record: PresenceRecord) -> Certificate | None:
        """The cart's certificate, remembered past its departure for the withdrawal only."""
        if record.state == "gone":
            return self._cart_certificates.pop(record.node_id, None) or self.certificate_of(record.node_id)
        certificate = self.certificate_of(record.node_id)
        if certificate is not None:
            self._cart_certificates[record.node_id] = certificate
        return certificate


def _linked_of(believed: records.Believed) -> list[str]:
    record = believed.record
    return list(record.linked) if isinstance(record, records.BridgeRecord) else []
