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
  another node: `Dht.get_all` asks the k closest nodes and returns every answer, and
  `Dht.believed` keeps only the verified, freshest one (records.Verifier.best).
* Any node may overwrite any key, and anyone who reaches the UDP port may store: the
  storage (`_VerifiedStorage`) keeps a value only when parent_cart.records' Verifier
  believes it (owner-signed, certified by the swarm authority, under the owner's key,
  expiry capped) and it is the owner's freshest word; every refusal is counted by reason.
  The verdict is kept beside the value, so iterating, answering `find_value` and
  welcoming a new node compare integers and never verify a signature again.
* Every datagram's sender joins the routing table (`welcome_if_new`), whatever node id it
  claims: a stranger with 100 made-up ids fills the k closest slots of any key, and
  lookups then ask only it (an eclipse). `_Protocol` admits a node to the routing table
  only when `Dht.admits` it: it answers at a configured bootstrap address, or its id is a
  bridge this node trusts (a certified bridge entry or an authenticated link, see
  parent_cart.announce) and it speaks from an address that bridge's relay host resolves
  to. Strangers still get answers (values are public), never a place in anyone's lookups.
  And where kademlia drops a contact at its first unanswered RPC, a trusted bridge stays
  until the announcer distrusts it (revoked, unlinked and its entry expired).
* `welcome_if_new` also scans the whole storage for the newcomer (about 15 ms per 2,000
  values), digests the already digested key (so it replicates to the wrong nodes) and may
  send every stored value at once: `_Protocol` welcomes admitted nodes only, uses the key
  as it is and sends at most WELCOME_STORES values (owners republish every refresh
  interval anyway).
* `Server.set_digest` raises a bare ValueError (`max()` of an empty list) when every
  neighbour it knew stopped answering during the crawl: `Dht.put` treats that as
  "stored locally only".
* `Server.bootstrap` accepts IP addresses only: `Dht.bootstrap` resolves names first.
* `Server.stop` leaves pending RPC timers behind: `Dht.stop` resolves them.
* An RPC whose caller gave up (its future cancelled, as a bounded lookup does) still has
  rpcudp's timer set a result on it at the timeout, which raises InvalidStateError in the
  event loop's callback: a traceback in the log for every such RPC (257 in one 1,000-cart
  simulation). `_Protocol._timeout` forgets a settled RPC quietly.
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

from cartnet import presence
from cartnet.certificates import RevocationList
from parent_cart.records import MAX_VALUE_BYTES, Believed, Verifier

log = logging.getLogger(__name__)

WELCOME_STORES = 16
"""Most values sent to a bridge that joins our routing table (kademlia sends all it should hold)."""

Admit = Callable[[Node], bool]
_UNADMITTED_KEPT = 256


class _VerifiedStorage(IStorage):  # type: ignore[misc]  # kademlia ships no types: its classes are Any here
    """Local DHT storage: only values the Verifier believes, each verified once, the owner's freshest word kept."""

    def __init__(self, verifier: Verifier, max_items: int = 20000) -> None:
        self.verifier = verifier
        self._max_items = max_items
        self._data: OrderedDict[bytes, tuple[float, Believed]] = OrderedDict()

    def store(self, key: bytes, value: Any) -> str | None:
        """Offer `value` under `key`: None when kept (or already held), `stale` when we hold a fresher
        word of the same owner, else the refusal code."""
        if not isinstance(key, bytes) or len(key) != 20:
            return "malformed"
        current = self.believed(key)
        if current is not None and current.raw == value:
            self._data[key] = (time.monotonic(), current)
            self._data.move_to_end(key)
            return None
        verdict = self.verifier.check(key, value)
        if isinstance(verdict, str):
            return verdict
        if current is not None and not verdict.fresher_than(current):
            return "stale"
        self._data.pop(key, None)
        self._data[key] = (time.monotonic(), verdict)
        while len(self._data) > self._max_items:
            self._data.popitem(last=False)
        return None

    def __setitem__(self, key: bytes, value: Any) -> None:
        self.store(key, value)

    def believed(self, key: bytes) -> Believed | None:
        """The value held under `key`, unless it expired or its owner was revoked (then it is dropped)."""
        item = self._data.get(key) if isinstance(key, bytes) else None
        if item is None:
            return None
        if self.verifier.still(item[1]) is not None:
            del self._data[key]
            return None
        return item[1]

    def get(self, key: bytes, default: Any = None) -> Any:
        believed = self.believed(key)
        return default if believed is None else believed.raw

    def __getitem__(self, key: bytes) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __bool__(self) -> bool:
        return True  # kademlia's Server takes `storage or ForgetfulStorage()`: an empty store must not be falsy

    def __len__(self) -> int:
        return len(self._data)

    def purge(self) -> int:
        """Drop every value that expired or whose owner was revoked; returns how many went."""
        now = presence.now_ms()
        gone = [key for key, (_, believed) in self._data.items() if self.verifier.still(believed, now) is not None]
        for key in gone:
            del self._data[key]
        return len(gone)

    def iter_older_than(self, seconds_old: float) -> list[tuple[bytes, Any]]:
        cutoff, now = time.monotonic() - seconds_old, presence.now_ms()
        return [
            (key, believed.raw)
            for key, (stamp, believed) in list(self._data.items())
            if stamp <= cutoff and self.verifier.still(believed, now) is None
        ]

    def __iter__(self) -> Iterator[tuple[bytes, Any]]:
        now = presence.now_ms()
        return iter(
            [
                (key, believed.raw)
                for key, (_, believed) in list(self._data.items())
                if self.verifier.still(believed, now) is None
            ]
        )


class _Protocol(KademliaProtocol):  # type: ignore[misc]  # kademlia, untyped (see _VerifiedStorage)
    """KademliaProtocol with a configurable RPC timeout that survives garbage datagrams and lets only
    admitted nodes (`admit`) into its routing table, keeping trusted ones (`keep`) through timeouts."""

    def __init__(
        self, source_node: Node, storage: IStorage, ksize: int, timeout: float, admit: Admit, keep: Admit
    ) -> None:
        super().__init__(source_node, storage, ksize)
        self._wait_timeout = timeout
        self._admit = admit
        self._keep = keep
        self.welcomed = 0
        """Nodes admitted to the routing table (and sent the values they should hold)."""
        self.strangers = 0
        """Datagrams from nodes that are not admitted to the routing table."""
        self.unadmitted: OrderedDict[bytes, Node] = OrderedDict()
        """The latest nodes heard from but not admitted: one trusted later joins the table at once."""

    def _timeout(self, msg_id: bytes) -> None:
        """rpcudp's RPC timer: an RPC whose caller already gave up is forgotten, not settled twice."""
        outstanding = self._outstanding.get(msg_id)
        if outstanding is not None and outstanding[0].done():
            del self._outstanding[msg_id]
            return
        super()._timeout(msg_id)

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

    def handle_call_response(self, result: Any, node: Node) -> Any:
        """kademlia drops a contact at its first unanswered RPC; a trusted bridge stays until it is distrusted
        (one slow moment must not empty a routing table that only trusted bridges may enter)."""
        if not result[0] and self._keep(node):
            return result
        return super().handle_call_response(result, node)

    def welcome_if_new(self, node: Node) -> None:
        """kademlia's welcome, for admitted nodes only: into the routing table, with the values it is now
        among the closest for (the key used as the digest it already is, at most WELCOME_STORES)."""
        if not self._admit(node):
            self.strangers += 1
            self.unadmitted[node.id] = node
            self.unadmitted.move_to_end(node.id)
            while len(self.unadmitted) > _UNADMITTED_KEPT:
                self.unadmitted.popitem(last=False)
            return
        if not self.router.is_new_node(node):
            self.router.add_contact(node)  # refreshes its place; its address was admitted just now
            return
        self.welcomed += 1
        sent = 0
        for key, value in self.storage:
            if sent >= WELCOME_STORES:
                break
            keynode = Node(key)
            neighbors = self.router.find_neighbors(keynode)
            if neighbors:
                new_node_close = node.distance_to(keynode) < neighbors[-1].distance_to(keynode)
                this_closest = self.source_node.distance_to(keynode) < neighbors[0].distance_to(keynode)
            if not neighbors or (new_node_close and this_closest):
                asyncio.ensure_future(self.call_store(node, key, value))
                sent += 1
        self.router.add_contact(node)


class _Server(Server):  # type: ignore[misc]  # kademlia, untyped (see _VerifiedStorage)
    def __init__(
        self, ksize: int, alpha: int, node_id: bytes, storage: IStorage, timeout: float, admit: Admit, keep: Admit
    ) -> None:
        super().__init__(ksize=ksize, alpha=alpha, node_id=node_id, storage=storage)
        self._rpc_timeout = timeout
        self._admit = admit
        self._keep = keep

    def _create_protocol(self) -> _Protocol:
        return _Protocol(self.node, self.storage, self.ksize, self._rpc_timeout, self._admit, self._keep)


async def addresses_of(host: str) -> set[str]:
    """The IPv4 addresses `host` (a name or an address) stands for; OSError when it resolves to none."""
    info = await asyncio.get_running_loop().getaddrinfo(host, None, family=socket.AF_INET, type=socket.SOCK_DGRAM)
    found = {str(entry[4][0]) for entry in info}
    if not found:
        raise OSError(f"{host} has no IPv4 address")
    return found


class Dht:
    """One Kademlia node whose id is the bridge's node id; it keeps and believes only what `verifier` does."""

    def __init__(
        self, node_id: str, verifier: Verifier, *, ksize: int = 20, alpha: int = 3, timeout: float = 2.0
    ) -> None:
        self.verifier = verifier
        self.storage = _VerifiedStorage(verifier)
        self._server = _Server(ksize, alpha, bytes.fromhex(node_id), self.storage, timeout, self.admits, self._kept)
        self.port = 0
        self.bootstrap_ids: set[str] = set()
        """Ids of the nodes that answered at the bootstrap addresses the operator configured."""
        self._bootstrap_addresses: set[tuple[str, int]] = set()
        self._trusted: dict[str, frozenset[str]] = {}

    # --- who may be in the routing table ---------------------------------------------------

    def admits(self, node: Node) -> bool:
        """True when `node` may join the routing table: at a bootstrap address, or a trusted bridge
        speaking from one of its addresses."""
        if (node.ip, node.port) in self._bootstrap_addresses:
            return True
        return node.ip in self._trusted.get(node.id.hex(), ())

    def _kept(self, node: Node) -> bool:
        return node.ip in self._trusted.get(node.id.hex(), ())

    def trust(self, bridge_id: str, hosts: set[str]) -> None:
        """Admit datagrams of bridge `bridge_id` from these IP addresses to the routing table (and the node
        itself at once, if it spoke to us already)."""
        self._trusted[bridge_id] = frozenset(hosts)
        self._drop_unadmitted()
        protocol = self._server.protocol
        heard = protocol.unadmitted.get(bytes.fromhex(bridge_id)) if isinstance(protocol, _Protocol) else None
        if heard is not None and self.admits(heard):
            del protocol.unadmitted[heard.id]
            protocol.welcome_if_new(heard)

    def distrust(self, bridge_ids: set[str]) -> None:
        """Stop trusting these bridges (revoked, gone) and take them out of the routing table."""
        for bridge_id in bridge_ids:
            self._trusted.pop(bridge_id, None)
        self._drop_unadmitted()

    def trusted(self) -> set[str]:
        return set(self._trusted)

    def _drop_unadmitted(self) -> None:
        protocol = self._server.protocol
        for node in self._contacts():
            if not self.admits(node):
                protocol.router.remove_contact(node)

    async def start(self, host: str, port: int) -> int:
        """Listen on UDP `host:port` (0 = any free port); returns the port."""
        await self._server.listen(port, host)
        self.port = self._server.transport.get_extra_info("sockname")[1]
        return self.port

    async def bootstrap(self, addresses: list[tuple[str, int]]) -> int:
        """Join through the given nodes (names are resolved); returns how many contacts we now have."""
        resolved: list[tuple[str, int]] = []
        for host, port in addresses:
            try:
                resolved.append((sorted(await addresses_of(host))[0], port))
            except OSError as exc:
                log.warning("cannot resolve DHT bootstrap %s:%s: %s", host, port, exc)
        self._bootstrap_addresses |= set(resolved)
        if resolved:
            await self._server.bootstrap(resolved)
            known = set(resolved)
            self.bootstrap_ids |= {node.id.hex() for node in self._contacts() if (node.ip, node.port) in known}
        return len(self.contact_ids())

    @property
    def welcomed(self) -> int:
        """Nodes admitted to the routing table (and welcomed) since this node started."""
        protocol = self._server.protocol
        return protocol.welcomed if isinstance(protocol, _Protocol) else 0

    @property
    def strangers(self) -> int:
        """Datagrams from nodes not admitted to the routing table, since this node started."""
        protocol = self._server.protocol
        return protocol.strangers if isinstance(protocol, _Protocol) else 0

    def contact_ids(self) -> list[str]:
        """Ids (hex) of every node in our routing table (unverified: anyone who sent us a datagram)."""
        return [node.id.hex() for node in self._contacts()]

    def _contacts(self) -> list[Node]:
        protocol = self._server.protocol
        if protocol is None:
            return []
        return [node for bucket in protocol.router.buckets for node in bucket.get_nodes()]

    def accept_revocations(self, revocations: RevocationList) -> None:
        """Adopt a newer revocation list of this swarm and drop every value of a revoked owner at once
        (CertificateError when the list is not this swarm's authority's)."""
        if self.verifier.accept_revocations(revocations):
            self.distrust(set(revocations.revoked))
            dropped = self.storage.purge()
            log.info("revocation list %d adopted by the DHT: %d values dropped", revocations.serial, dropped)

    async def put(self, key: str, value: str) -> bool:
        """Store locally and on the k closest nodes; True if at least one other node took it.

        A value our own storage refuses is not sent anywhere (ValueError when it is too big to send)."""
        if len(value.encode()) > MAX_VALUE_BYTES:
            raise ValueError(f"DHT value for {key} is {len(value)} bytes; kademlia datagrams hold 8 KB")
        dkey = digest(key)
        refused = self.storage.store(dkey, value)
        if refused is not None:
            log.warning("not publishing %s: %s", key, refused)
            return False
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
        """Every value the k closest nodes (and we) hold for `key`, unverified: `believed` chooses."""
        dkey = digest(key)
        values = [value for value in (self.storage.get(dkey),) if value is not None]
        return values + await self._remote(dkey)

    async def believed(self, key: str) -> Believed | None:
        """The owner's freshest verified value for `key` among ours and the k closest nodes' answers."""
        dkey = digest(key)
        local = self.storage.believed(dkey)
        held = local.raw if local is not None else None
        found = self.verifier.best(dkey, [value for value in await self._remote(dkey) if value != held])
        if local is None or (found is not None and found.fresher_than(local)):
            return found
        return local

    async def _remote(self, dkey: bytes) -> list[Any]:
        target = Node(dkey)
        protocol = self._server.protocol
        nearest = protocol.router.find_neighbors(target)
        if not nearest:
            return []
        closest = await NodeSpiderCrawl(protocol, target, nearest, self._server.ksize, self._server.alpha).find()
        answers = await asyncio.gather(*(protocol.call_find_value(node, target) for node in closest))
        return [answer[1].get("value") for answer in answers if answer[0] and isinstance(answer[1], dict)]

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
