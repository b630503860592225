"""What this bridge tells the DHT, and how it finds the rest of the swarm there.

Every `refresh_interval` the bridge republishes its own signed record, its entry in the
bridge index and the presence records of its carts, then links to every bridge it can
find (index entries plus the ids in its Kademlia routing table, each believed only after
its signed record checks out). Presence changes are published as they happen: a fresh
record when a cart proves its presence, its cart-signed withdrawal when it leaves.

`lookup` resolves a cart no link told us about: the newest verified presence record in
the DHT names its bridge, whose own record gives the URL to dial.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from kademlia.utils import digest

from cartnet.identity import Identity
from cartnet.messages import PresenceRecord
from parent_cart import records
from parent_cart.dht import Dht
from parent_cart.directory import Directory
from parent_cart.links import Links
from parent_cart.settings import BridgeSettings

log = logging.getLogger(__name__)

_NEGATIVE_TTL = 2.0
"""Seconds an unsuccessful cart lookup is remembered, so a flood of frames to nowhere costs one lookup."""


class Announcer:
    """Publishes this bridge and its carts in the DHT; discovers and links the other bridges."""

    def __init__(
        self, identity: Identity, settings: BridgeSettings, dht: Dht, directory: Directory, links: Links
    ) -> None:
        self.identity = identity
        self.settings = settings
        self.dht = dht
        self.directory = directory
        self.links = links
        self.public_url = ""
        self._misses: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def _record_ttl(self) -> float:
        return max(30.0, 3 * self.settings.refresh_interval)

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
        bootstrap = self.settings.bootstrap_addresses()
        if bootstrap and not self.dht.contact_ids():
            await self.dht.bootstrap(bootstrap)
        record = records.sign_bridge(self.identity, self.public_url, self._record_ttl)
        await self.dht.put(records.bridge_key(self.identity.node_id), records.encode(record))
        index = records.index_with(None, self.identity.node_id, record.expires_ms)
        await self.dht.put(records.INDEX_KEY, records.encode(index))
        await asyncio.gather(*(self._put(rec) for rec in self.directory.local_records()))
        await self.discover()

    async def discover(self) -> None:
        """Link to every bridge the DHT knows of that we are not linked to yet."""
        index = await self._get(records.INDEX_KEY)
        candidates = set(self.dht.contact_ids()) | set(index.entries if isinstance(index, records.BridgeIndex) else ())
        candidates -= {self.identity.node_id, *self.links.ids()}
        await asyncio.gather(*(self._link(bridge_id) for bridge_id in candidates))

    async def _link(self, bridge_id: str) -> None:
        record = await self.bridge_record(bridge_id)
        if record is not None:
            await self.links.ensure(bridge_id, record.relay_url)

    async def bridge_record(self, bridge_id: str) -> records.BridgeRecord | None:
        found = await self._get(records.bridge_key(bridge_id))
        return found if isinstance(found, records.BridgeRecord) else None

    async def lookup(self, node_id: str) -> str | None:
        """The bridge a cart sits behind according to its own signed presence in the DHT, or None."""
        if self._misses.get(node_id, 0.0) > time.monotonic():
            return None
        found = await self._get(records.cart_key(node_id))
        if isinstance(found, PresenceRecord) and found.state == "alive" and found.bridge_id != self.identity.node_id:
            bridge = await self.bridge_record(found.bridge_id)
            if bridge is not None:
                self.directory.learn_record(found, bridge.relay_url)
                return found.bridge_id
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
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _put(self, record: PresenceRecord) -> None:
        try:
            await self.dht.put(records.cart_key(record.node_id), records.encode(record))
        except (OSError, ValueError) as exc:
            log.warning("could not publish presence of %s: %s", record.node_id[:8], exc)

    async def _get(self, key: str) -> records.Record | None:
        return records.best(digest(key), await self.dht.get_all(key))
