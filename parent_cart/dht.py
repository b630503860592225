"""A `kademlia` node for the bridge, with the package's sharp edges filed off.

Workarounds for kademlia 2.2.3 / rpcudp 5.0.1, each in this module only:

* RPC timeout is hard-wired to 5 s (`RPCProtocol(wait_timeout=5)`), and every dead contact
  costs one: `_Protocol` takes the timeout from settings.
* A malformed datagram or a request with the wrong arguments raises inside a bare task
  ("exception was never retrieved"): `_Protocol` catches and logs it.
* `Server.set` stores nothing locally when the node has no neighbours yet (a lone first
  bridge) and raises `MalformedMessage` for a value over 8 KB *after* storing it locally:
  `Dht.put` checks the size first and always keeps a local copy.
* `Server.get` returns the local copy if there is one, else the first value any node
  returned (majority of the first round), unverified, and writes that value back to
  another node: `Dht.get_all` asks the k closest nodes and returns every answer, and the
  caller believes only a verified, newest one (parent_cart.records.best).
* Any node may overwrite any key: `_ValidatingStorage` keeps a value only when the
  merge rule (parent_cart.records.merge) accepts it, and drops it once expired.
* `Server.set_digest` raises a bare ValueError (`max()` of an empty list) when every
  neighbour it knew stopped answering during the crawl: `Dht.put` treats that as
  "stored locally only".
* `Server.bootstrap` accepts IP addresses only: `Dht.bootstrap` resolves names first.
* `Server.stop` leaves pending RPC timers behind: `Dht.stop` resolves them.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from kademlia.crawling import NodeSpiderCrawl
from kademlia.network import Server
from kademlia.node import Node
from kademlia.protocol import KademliaProtocol
from kademlia.storage import IStorage
from kademlia.utils import digest
from rpcudp.exceptions import MalformedMessage

log = logging.getLogger(__name__)

MergeFn = Callable[[bytes, Any, Any], Any]
"""(key digest, offered value, stored value or None) -> value to keep, or None to keep what is there."""


class _ValidatingStorage(IStorage):  # type: ignore[misc]  # kademlia ships no types: its classes are Any here
    """Local DHT storage that keeps only values the merge rule accepts, and forgets invalid ones."""

    def __init__(self, merge: MergeFn, max_items: int = 20000) -> None:
        self._merge = merge
        self._max_items = max_items
        self._data: OrderedDict[bytes, tuple[float, Any]] = OrderedDict()

    def __setitem__(self, key: bytes, value: Any) -> None:
        if not isinstance(key, bytes) or len(key) != 20:
            return
        current = self._data.get(key)
        kept = self._merge(key, value, current[1] if current else None)
        if kept is None:
            return
        self._data.pop(key, None)
        self._data[key] = (time.monotonic(), kept)
        while len(self._data) > self._max_items:
            self._data.popitem(last=False)

    def get(self, key: bytes, default: Any = None) -> Any:
        item = self._data.get(key) if isinstance(key, bytes) else None
        if item is None:
            return default
        if self._merge(key, item[1], None) is None:
            del self._data[key]
            return default
        return item[1]

    def __getitem__(self, key: bytes) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def iter_older_than(self, seconds_old: float) -> list[tuple[bytes, Any]]:
        cutoff = time.monotonic() - seconds_old
        return [(key, value) for key, (stamp, value) in list(self._data.items()) if stamp <= cutoff]

    def __iter__(self) -> Iterator[tuple[bytes, Any]]:
        return iter([(key, value) for key, (_, value) in list(self._data.items()) if self.get(key) is not None])


class _Protocol(KademliaProtocol):  # type: ignore[misc]  # kademlia, untyped (see _ValidatingStorage)
    """KademliaProtocol with a configurable RPC timeout that survives garbage datagrams."""

    def __init__(self, source_node: Node, storage: IStorage, ksize: int, timeout: float) -> None:
        super().__init__(source_node, storage, ksize)
        self._wait_timeout = timeout

    async def _solve_datagram(self, datagram: bytes, address: tuple[str, int]) -> None:
        try:
            await super()._solve_datagram(datagram, address)
        except Exception as exc:  # noqa: BLE001 - any garbage from the network must not escape
            log.debug("dropped malformed datagram from %s: %s", address, exc)

    async def _accept_request(self, msg_id: bytes, data: Any, address: tuple[str, int]) -> None:
        try:
            await super()._accept_request(msg_id, data, address)
        except Exception as exc:  # noqa: BLE001 - same: a bad request is the sender's problem
            log.debug("dropped bad request from %s: %s", address, exc)


class _Server(Server):  # type: ignore[misc]  # kademlia, untyped (see _ValidatingStorage)
    def __init__(self, ksize: int, alpha: int, node_id: bytes, storage: IStorage, timeout: float) -> None:
        super().__init__(ksize=ksize, alpha=alpha, node_id=node_id, storage=storage)
        self._rpc_timeout = timeout

    def _create_protocol(self) -> _Protocol:
        return _Protocol(self.node, self.storage, self.ksize, self._rpc_timeout)


class Dht:
    """One Kademlia node whose id is the bridge's node id; values are strings the merge rule accepts."""

    def __init__(self, node_id: str, merge: MergeFn, *, ksize: int = 20, alpha: int = 3, timeout: float = 2.0) -> None:
        self.storage = _ValidatingStorage(merge)
        self._server = _Server(ksize, alpha, bytes.fromhex(node_id), self.storage, timeout)
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        """Listen on UDP `host:port` (0 = any free port); returns the port."""
        await self._server.listen(port, host)
        self.port = self._server.transport.get_extra_info("sockname")[1]
        return self.port

    async def bootstrap(self, addresses: list[tuple[str, int]]) -> int:
        """Join through the given nodes (names are resolved); returns how many contacts we now have."""
        loop = asyncio.get_running_loop()
        resolved = []
        for host, port in addresses:
            try:
                info = await loop.getaddrinfo(host, port, family=socket.AF_INET, type=socket.SOCK_DGRAM)
            except OSError as exc:
                log.warning("cannot resolve DHT bootstrap %s:%s: %s", host, port, exc)
                continue
            resolved.append((info[0][4][0], port))
        if resolved:
            await self._server.bootstrap(resolved)
        return len(self.contact_ids())

    def contact_ids(self) -> list[str]:
        """Ids (hex) of every node in our routing table: for bridges, other bridges' ids."""
        protocol = self._server.protocol
        if protocol is None:
            return []
        return [node.id.hex() for bucket in protocol.router.buckets for node in bucket.get_nodes()]

    async def put(self, key: str, value: str) -> bool:
        """Store locally and on the k closest nodes; True if at least one other node took it."""
        if len(value.encode()) > 7 * 1024:
            raise ValueError(f"DHT value for {key} is {len(value)} bytes; kademlia datagrams hold 8 KB")
        dkey = digest(key)
        self.storage[dkey] = value
        if not self._server.protocol.router.find_neighbors(Node(dkey)):
            return False
        try:
            return bool(await self._server.set_digest(dkey, value))
        except MalformedMessage as exc:
            log.warning("DHT refused %s: %s", key, exc)
        except ValueError:
            log.info("no DHT node answered while storing %s; kept locally", key)
        return False

    async def get_all(self, key: str) -> list[Any]:
        """Every value the k closest nodes (and we) hold for `key`, unverified: the caller chooses."""
        dkey = digest(key)
        values = [value for value in (self.storage.get(dkey),) if value is not None]
        target = Node(dkey)
        protocol = self._server.protocol
        nearest = protocol.router.find_neighbors(target)
        if not nearest:
            return values
        closest = await NodeSpiderCrawl(protocol, target, nearest, self._server.ksize, self._server.alpha).find()
        answers = await asyncio.gather(*(protocol.call_find_value(node, target) for node in closest))
        values += [answer[1]["value"] for answer in answers if answer[0] and isinstance(answer[1], dict)]
        return values

    def stop(self) -> None:
        """Close the socket and settle every pending RPC so no crawl waits on a dead timer."""
        protocol = self._server.protocol
        self._server.stop()
        if protocol is None:
            return
        for future, timer in list(protocol._outstanding.values()):
            timer.cancel()
            if not future.done():
                future.set_result((False, None))
        protocol._outstanding.clear()
