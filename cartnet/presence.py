"""Self-certifying presence records: a cart signs where it can be reached, and until when.

The cart (not its bridge) signs, because the record's whole point is to be believed by
nodes that trust neither the bridge that stored it nor the DHT node that returned it:
the node id is the SHA-1 of the public key inside the record, the signature covers every
field, and the expiry bounds how long a stale copy can mislead anyone.

At the same time the cart signs the record's withdrawal (same fields, state `gone`), so
its bridge can retract it the moment the cart vanishes, yet cannot forge anything else.
Between two valid records for one cart, the one issued later wins; at equal issue time
the withdrawal wins.
"""

from __future__ import annotations

import time

from cartnet import messages
from cartnet.identity import Identity, node_id_of, verify_signature
from cartnet.messages import Message, Presence, PresenceRecord

_LABEL = b"fedcart-presence-v1|"


def now_ms() -> int:
    return int(time.time() * 1000)


def signed_bytes(record: Message, label: bytes = _LABEL) -> bytes:
    """What a presence record's (or, with another label, a bridge record's) signature covers."""
    return messages.signed_bytes(record, label)


def sign(
    identity: Identity,
    bridge_id: str,
    ttl: float,
    issued_ms: int | None = None,
    *,
    task: str = "",
    ready: bool = False,
) -> Presence:
    """A fresh presence for `identity` behind `bridge_id`, valid for `ttl` seconds, with its withdrawal;
    `task` is what the cart trains, `ready` whether it has an update on offer for it."""
    issued = now_ms() if issued_ms is None else issued_ms
    unsigned = PresenceRecord(
        node_id=identity.node_id,
        public_key=identity.public_key,
        kx_public_key=identity.kx_public_key,
        bridge_id=bridge_id,
        issued_ms=issued,
        expires_ms=issued + int(ttl * 1000),
        task=task,
        ready=ready,
        signature=bytes(64),
    )
    alive = unsigned.model_copy(update={"signature": identity.sign(signed_bytes(unsigned))})
    gone = unsigned.model_copy(update={"state": "gone"})
    return Presence(record=alive, withdrawal=identity.sign(signed_bytes(gone)))


def withdrawal(presence: Presence) -> PresenceRecord:
    """The signed `gone` record that retracts `presence.record`."""
    return presence.record.model_copy(update={"state": "gone", "signature": presence.withdrawal})


def check(record: PresenceRecord, at_ms: int | None = None) -> str | None:
    """None when `record` is genuine and unexpired, else the reason to ignore it."""
    if node_id_of(record.public_key) != record.node_id:
        return "node id is not the SHA-1 of the record's public key"
    if not verify_signature(record.public_key, record.signature, signed_bytes(record)):
        return "bad presence signature"
    if record.expires_ms <= (now_ms() if at_ms is None else at_ms):
        return "presence record expired"
    return None


def supersedes(new: PresenceRecord, old: PresenceRecord) -> bool:
    """True when `new` is the fresher word of the same cart (a withdrawal beats its own record)."""
    return (new.issued_ms, new.state == "gone") > (old.issued_ms, old.state == "gone")
