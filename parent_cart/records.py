"""What bridges keep in the DHT, and the one rule for believing it.

The `kademlia` package has no security: any node may store anything under any key.
So every value is self-certifying and checked on every store *and* every get:

* `fedcart/cart/<node id>`   a cart-signed PresenceRecord (cartnet.presence): the key is
  derived from the cart's node id, the id is the SHA-1 of the key inside, the cart's
  signature covers it all, and it expires. Withdrawals are cart-signed too.
* `fedcart/bridge/<bridge id>` a bridge-signed BridgeRecord: its relay URL and key.
* `fedcart/bridges`          the bridge index: bridge ids with an expiry, merged (never
  overwritten) by every node that stores it; a listed id means nothing until that
  bridge's own signed record is fetched and verified.

Values are compact JSON strings well below kademlia's 8 KB datagram limit.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from kademlia.utils import digest
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from cartnet import presence
from cartnet.identity import Identity, node_id_of, verify_signature
from cartnet.messages import Key32, Message, NodeId, PresenceRecord, Signature

log = logging.getLogger(__name__)

CART_PREFIX = "fedcart/cart/"
BRIDGE_PREFIX = "fedcart/bridge/"
INDEX_KEY = "fedcart/bridges"
MAX_VALUE_BYTES = 7 * 1024
"""kademlia's rpcudp refuses a request over 8 KB (name, ids and value included); stay well below."""
MAX_INDEX_ENTRIES = 100
_BRIDGE_LABEL = b"fedcart-bridge-v1|"


class BridgeRecord(Message):
    """A bridge's signed statement of where its relay listens, until when (a frozen, extra-forbidding Message)."""

    type: Literal["bridge_record"] = "bridge_record"
    bridge_id: NodeId
    public_key: Key32
    relay_url: Annotated[str, Field(max_length=256)]
    issued_ms: int = Field(ge=0)
    expires_ms: int = Field(ge=0)
    signature: Signature


class BridgeIndex(BaseModel):
    """Bridge ids and when each entry lapses; a grow-only set that storing nodes merge."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["bridge_index"] = "bridge_index"
    entries: Annotated[dict[NodeId, int], Field(max_length=MAX_INDEX_ENTRIES)]


Record = PresenceRecord | BridgeRecord | BridgeIndex
_adapter: TypeAdapter[Record] = TypeAdapter(Annotated[Record, Field(discriminator="type")])


def cart_key(node_id: str) -> str:
    return CART_PREFIX + node_id


def bridge_key(bridge_id: str) -> str:
    return BRIDGE_PREFIX + bridge_id


def encode(record: Record) -> str:
    """The DHT value for `record`; ValueError if it would not fit a datagram."""
    value = record.model_dump_json()
    if len(value) > MAX_VALUE_BYTES:
        raise ValueError(f"DHT value of {len(value)} bytes exceeds {MAX_VALUE_BYTES}")
    return value


def sign_bridge(identity: Identity, relay_url: str, ttl: float) -> BridgeRecord:
    issued = presence.now_ms()
    unsigned = BridgeRecord(
        bridge_id=identity.node_id,
        public_key=identity.public_key,
        relay_url=relay_url,
        issued_ms=issued,
        expires_ms=issued + int(ttl * 1000),
        signature=bytes(64),
    )
    return unsigned.model_copy(update={"signature": identity.sign(presence.signed_bytes(unsigned, _BRIDGE_LABEL))})


def index_with(index: BridgeIndex | None, bridge_id: str, expires_ms: int) -> BridgeIndex:
    """`index` plus (or refreshing) one entry."""
    entries = dict(index.entries) if index else {}
    entries[bridge_id] = max(expires_ms, entries.get(bridge_id, 0))
    return _trim(entries)


def parse(dkey: bytes, raw: object) -> Record | None:
    """The verified record stored under `dkey`, or None when `raw` is not believable there."""
    if not isinstance(raw, str) or len(raw) > MAX_VALUE_BYTES:
        return None
    try:
        record = _adapter.validate_json(raw)
    except ValidationError:
        return None
    reason = _problem(dkey, record)
    if reason:
        log.debug("ignoring DHT value under %s: %s", dkey.hex()[:8], reason)
        return None
    return record


def _problem(dkey: bytes, record: Record) -> str | None:
    if isinstance(record, PresenceRecord):
        if digest(cart_key(record.node_id)) != dkey:
            return "presence stored under another cart's key"
        return presence.check(record)
    if isinstance(record, BridgeRecord):
        return _bridge_problem(dkey, record)
    if digest(INDEX_KEY) != dkey:
        return "bridge index stored under another key"
    return None


def _bridge_problem(dkey: bytes, record: BridgeRecord) -> str | None:
    if digest(bridge_key(record.bridge_id)) != dkey:
        return "bridge record stored under another bridge's key"
    if node_id_of(record.public_key) != record.bridge_id:
        return "bridge id is not the SHA-1 of its public key"
    if not verify_signature(record.public_key, record.signature, presence.signed_bytes(record, _BRIDGE_LABEL)):
        return "bad bridge record signature"
    if record.expires_ms <= presence.now_ms():
        return "bridge record expired"
    return None


def merge(dkey: bytes, incoming: object, stored: object | None) -> str | None:
    """What a node should keep under `dkey` when offered `incoming`: it, a merge, or (None) nothing new."""
    if not isinstance(incoming, str):
        return None
    new = parse(dkey, incoming)
    if new is None:
        return None
    old = parse(dkey, stored) if stored is not None else None
    if isinstance(new, BridgeIndex):
        entries = dict(old.entries) if isinstance(old, BridgeIndex) else {}
        for bridge_id, expires in new.entries.items():
            entries[bridge_id] = max(expires, entries.get(bridge_id, 0))
        return encode(_trim(entries))
    if old is None or _fresher(new, old):
        return incoming
    return None


def best(dkey: bytes, values: list[object]) -> Record | None:
    """The one value to believe among several DHT answers (index answers are merged)."""
    kept: object | None = None
    for value in values:
        kept = merge(dkey, value, kept) or kept
    return parse(dkey, kept) if kept is not None else None


def _fresher(new: PresenceRecord | BridgeRecord, old: Record) -> bool:
    if isinstance(new, PresenceRecord) and isinstance(old, PresenceRecord):
        return presence.supersedes(new, old)
    if isinstance(old, BridgeIndex):
        return True  # cannot happen: `parse` ties each key to one kind of record, and the index has its own key
    return new.issued_ms > old.issued_ms


def _trim(entries: dict[str, int]) -> BridgeIndex:
    now = presence.now_ms()
    live = sorted(((expires, bridge_id) for bridge_id, expires in entries.items() if expires > now), reverse=True)
    return BridgeIndex(entries={bridge_id: expires for expires, bridge_id in live[:MAX_INDEX_ENTRIES]})
