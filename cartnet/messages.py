"""Typed control messages: one pydantic class per message type.

Every message is a small JSON object with a `type` field. `validate` checks a
received document against the schema of its type and raises `MessageError` naming
the offending field, so a bad peer gets a precise error reply and nothing else
happens. On the wire a document travels in its compact form (`cartnet.compact`:
MessagePack, names by number); signatures cover its canonical JSON
(`signed_bytes`), so they do not depend on that form. Binary fields are base64 in
JSON, raw bytes in the compact form.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
    field_validator,
)

MAX_CONTROL_BYTES = 128 * 1024
"""Largest control message accepted; a signed manifest of a 512 MiB transfer fits."""
MAX_DEPTH = 16
"""Deepest nesting of arrays and objects accepted; the deepest real message (a roster) nests 3."""


def _from_base64(value: Any) -> Any:
    """Binary fields arrive as base64 text in JSON, as bytes when built in code."""
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error:
            raise ValueError("not valid base64") from None
    return value


Base64Bytes = Annotated[
    bytes,
    BeforeValidator(_from_base64),
    PlainSerializer(lambda raw: base64.b64encode(raw).decode(), return_type=str, when_used="json"),
]
NodeId = Annotated[str, Field(pattern=r"^[0-9a-f]{40}$", description="SHA-1 of an Ed25519 public key, hex")]
TransferId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
Digest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Key32 = Annotated[Base64Bytes, Field(min_length=32, max_length=32)]
Signature = Annotated[Base64Bytes, Field(min_length=64, max_length=64)]
ShortText = Annotated[str, Field(max_length=512)]


class MessageError(ValueError):
    """A frame that is not a valid control message; `field` names what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        field, reason = _clip(field, 128), _clip(reason, 384)
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _clip(text: str, limit: int) -> str:
    """Texts made from a peer's input (field names, values) stay short enough to log and echo."""
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- swarm membership (issued by the swarm authority; checked by cartnet.certificates) ---------

SwarmId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$", description="First 128 bits of SHA-256 of the swarm key")]
MAX_REVOKED = 2000
"""Node ids one revocation list may name (it must fit in one control message)."""


def canonical_base64(value: Any) -> Any:
    """Refuse base64 text that is not the one encoding of its bytes (stray low bits before `=`), so
    two different texts never decode to the same signed record."""
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except binascii.Error:
            raise ValueError("not valid base64") from None
        if base64.b64encode(raw).decode() != value:
            raise ValueError("not canonical base64")
    return value


class Certificate(Message):
    """The swarm authority's word that `public_key` (node `node_id`) belongs to `swarm_id` as a `role`."""

    type: Literal["certificate"] = "certificate"
    swarm_id: SwarmId
    node_id: NodeId
    public_key: Key32
    role: Literal["bridge", "cart"]
    not_before_ms: int = Field(ge=0, description="Unix time in ms from which the certificate holds")
    not_after_ms: int = Field(ge=0, description="Unix time in ms after which it no longer holds")
    signature: Signature

    @field_validator("public_key", "signature", mode="before")
    @classmethod
    def _canonical(cls, value: Any) -> Any:
        return canonical_base64(value)


class RevocationList(Message):
    """The swarm authority's list of node ids that no longer belong; bridges pass it on, a higher serial wins."""

    type: Literal["revocation_list"] = "revocation_list"
    swarm_id: SwarmId
    serial: int = Field(ge=0, description="Grows by one with every list the authority signs")
    issued_ms: int = Field(ge=0)
    revoked: Annotated[list[NodeId], Field(max_length=MAX_REVOKED)] = []
    signature: Signature

    @field_validator("signature", mode="before")
    @classmethod
    def _canonical(cls, value: Any) -> Any:
        return canonical_base64(value)

    def names(self, node_id: str) -> bool:
        return node_id in self.revoked


# --- swarm admission (bridge <-> node) -------------------------------------------------


class Challenge(Message):
    """Bridge -> node: sign this fresh nonce to prove your key (and show your certificate)."""

    type: Literal["challenge"] = "challenge"
    nonce: Key32
    bridge_id: NodeId


class Auth(Message):
    """Node -> bridge: the answer to a challenge, with the node's certificate for the role it acts in."""

    type: Literal["auth"] = "auth"
    role: Literal["cart", "bridge"]
    node_id: NodeId
    public_key: Key32
    kx_public_key: Key32
    nonce: Key32
    signature: Signature
    certificate: Certificate
    token_mac: Key32 = Field(description="HMAC of the transcript under SWARM_TOKEN (an optional extra check)")
    relay_url: Annotated[str, Field(max_length=256)] = ""


class Welcome(Message):
    type: Literal["welcome"] = "welcome"
    node_id: NodeId
    bridge_id: NodeId
    heartbeat_interval: float = Field(gt=0, le=60)


class Reject(Message):
    """Admission refused; the connection is closed after it."""

    type: Literal["reject"] = "reject"
    reason: ShortText


# --- liveness and errors -----------------------------------------------------------------


class Heartbeat(Message):
    type: Literal["heartbeat"] = "heartbeat"
    seq: int = Field(ge=0)


class HeartbeatAck(Message):
    type: Literal["heartbeat_ack"] = "heartbeat_ack"
    seq: int = Field(ge=0)


class Error(Message):
    """A request could not be handled; `code` is machine-readable, `detail` for people."""

    type: Literal["error"] = "error"
    code: Annotated[str, Field(max_length=64)]
    detail: ShortText
    field: Annotated[str, Field(max_length=128)] = ""


class Bye(Message):
    """The sender is shutting down on purpose (not a crash)."""

    type: Literal["bye"] = "bye"
    reason: ShortText = ""


class Undeliverable(Message):
    """Bridge -> sender: a routed frame could not reach its destination."""

    type: Literal["undeliverable"] = "undeliverable"
    to: NodeId
    reason: ShortText


# --- directory ----------------------------------------------------------------------------


class PresenceRecord(Message):
    """A cart's own signed statement "I am reachable through bridge X until T" (or, `gone`, no longer).

    Bridges store it in the DHT under a key derived from `node_id`; anyone can verify it
    from the record alone, so a forged or replayed value is ignored, not believed.
    """

    type: Literal["presence_record"] = "presence_record"
    node_id: NodeId
    public_key: Key32
    kx_public_key: Key32
    bridge_id: NodeId
    issued_ms: int = Field(ge=0, description="Unix time in ms, by the cart's clock; newer records win")
    expires_ms: int = Field(ge=0)
    state: Literal["alive", "gone"] = "alive"
    task: Annotated[str, Field(pattern=r"^[a-z0-9_-]{0,32}$")] = ""
    """The learning task the cart trains ("" = not said); peers ask it only for that task's updates."""
    ready: bool = False
    """The cart has an update on offer for `task`: bridges draw ready carts first."""
    signature: Signature


class CertifiedPresence(Message):
    """A cart's own signed presence record with its swarm certificate: all anyone needs to believe the cart's keys.

    Bridges pass these to each other in rosters; every `PeerInfo` carries one cart's pair."""

    record: PresenceRecord
    certificate: Certificate


class PeerInfo(Message):
    """One cart as a bridge lists it: where it is (the bridge's word) and, to check its keys against, the cart's
    own signed presence and its certificate. A cart seals to a peer, or answers one, only once
    `cartnet.peers.PeerVerifier` believed those two. The ids and keys are read from the signed record
    (properties, never fields of their own), so there is no second copy for a bridge to swap.

    `certificate` is left out for a cart the asker said it holds the certificate of already
    (`PeersRequest.known`): the certificate is the same every round, and was most of an entry's bytes."""

    bridge_url: Annotated[str, Field(max_length=256)]
    record: PresenceRecord
    certificate: Certificate | None = None

    @property
    def node_id(self) -> str:
        return self.record.node_id

    @property
    def bridge_id(self) -> str:
        return self.record.bridge_id

    @property
    def public_key(self) -> bytes:
        return self.record.public_key

    @property
    def kx_public_key(self) -> bytes:
        return self.record.kx_public_key

    @classmethod
    def of(cls, card: CertifiedPresence, bridge_url: str) -> PeerInfo:
        """The entry of the cart `card` speaks for, reachable through `bridge_url`."""
        return cls(bridge_url=bridge_url, record=card.record, certificate=card.certificate)

    def listing(self) -> dict[str, object]:
        """Where the cart is and its keys, as JSON for people (the bridge's `/peers`, the admin page)."""
        keys = self.record.model_dump(mode="json", include={"node_id", "bridge_id", "kx_public_key", "public_key"})
        return {
            "node_id": keys["node_id"],
            "bridge_id": keys["bridge_id"],
            "bridge_url": self.bridge_url,
            "kx_public_key": keys["kx_public_key"],
            "public_key": keys["public_key"],
        }

    def without_certificate(self) -> PeerInfo:
        """This entry for an asker that holds the certificate already."""
        return self.model_copy(update={"certificate": None})


TaskName = Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,32}$")]
MAX_SAMPLE = 64
"""Most peers one PeersRequest may ask the bridge to draw (a round asks at most k + over_ask = 60); 64 entries
with their signed presence and certificate (about 1.4 KB each at most) fit one control message."""


MAX_KNOWN = 64
"""Certificate holders one PeersRequest may name (`known`): about 700 bytes of prefixes at most."""
KNOWN_PREFIX = 8
"""Hex digits of a node id that name it in `PeersRequest.known`: 32 bits, a chance match is rare and harmless."""
KnownPrefix = Annotated[str, Field(pattern=rf"^[0-9a-f]{{{KNOWN_PREFIX}}}$")]


class PeersRequest(Message):
    """Cart -> bridge: whom to ask. Only carts that announced themselves (a valid presence) are ever listed.

    `sample`: that many drawn at random (for `task` when given, never the asker), those
    ready with an update first; `node_id`: that one cart's entry, if it announced itself;
    neither: the directory, up to what fits in one message (`PeerList.total` says how many there are).
    """

    type: Literal["peers_request"] = "peers_request"
    sample: int | None = Field(None, ge=1, le=MAX_SAMPLE)
    task: TaskName | None = None
    node_id: NodeId | None = None
    known: Annotated[list[KnownPrefix], Field(max_length=MAX_KNOWN)] = []
    """Carts whose certificates the asker holds (the first 8 hex digits of each node id): a sample lists them
    without it. A prefix that matches another cart by chance costs that entry its certificate: the asker
    refuses it as unverifiable (`certificate_missing`) and looks it up whole when it needs it."""
    by_id: bool = False
    """A sample lists the `known` carts by id alone (`PeerList.held`), not as entries without a certificate: the
    asker holds the entries it verified (`cartnet.peers.PeerVerifier.entry`) and needs only whom the bridge drew.
    An asker that passes entries on to others (secure aggregation's cohort) asks for them whole instead."""


class HeldPeer(Message):
    """A drawn cart the asker verified before (`PeersRequest.by_id`): its place in the draw and where it is.

    About 75 bytes on the wire where its whole entry is about 430: the keys are the asker's own, checked against the
    cart's signature and certificate when first listed, so the bridge's word here is only whom it drew. A
    `bridge_id` other than the one in the record the asker holds means the cart moved: the asker looks it up."""

    node_id: NodeId
    bridge_id: NodeId
    bridge_url: Annotated[str, Field(max_length=256)]
    at: int = Field(ge=0, lt=MAX_SAMPLE, description="its place in the draw, whole entries filling the others")


class PeerList(Message):
    type: Literal["peer_list"] = "peer_list"
    peers: Annotated[list[PeerInfo], Field(max_length=1000)]
    held: Annotated[list[HeldPeer], Field(max_length=MAX_SAMPLE)] = []
    total: int = Field(0, ge=0, description="How many carts the answer was drawn from (it may list fewer)")

    def in_draw_order(self, made_whole: Mapping[str, PeerInfo | None]) -> list[PeerInfo]:
        """The draw in the bridge's order: the whole entries as listed, each held cart where its `at` puts it, as
        `made_whole` (by node id) has it, and left out when it has none (a cart the asker could not make whole).
        A bridge's duplicate or out-of-range places cost it only those entries."""
        places = {held.at: held.node_id for held in self.held}
        whole = iter(self.peers)
        drawn = []
        for at in range(len(self.peers) + len(self.held)):
            node_id = places.get(at)
            entry = made_whole.get(node_id) if node_id is not None else next(whole, None)
            if entry is not None:
                drawn.append(entry)
        return [*drawn, *whole]


# --- transfers ----------------------------------------------------------------------------


class TransferManifest(Message):
    """Signed description of a blob: the receiver asks only for the chunks it lacks."""

    type: Literal["transfer_manifest"] = "transfer_manifest"
    transfer_id: TransferId
    sender: NodeId
    sender_key: Key32
    purpose: Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")]
    total_size: int = Field(ge=0)
    chunk_size: int = Field(gt=0)
    chunks: Annotated[list[Digest], Field(max_length=1024)]
    root: Digest | None = Field(
        description="SHA-256 over the chunk digests: one hash that commits to the blob (None when streamed)"
    )
    meta: Annotated[dict[Annotated[str, Field(max_length=64)], ShortText], Field(max_length=32)] = {}
    streamed: bool = Field(
        False,
        description="chunks are not listed: each one carries its own proof (the sender's signature over its "
        "BLAKE3 digest, or, sealed, its AES-GCM tag), made as it is produced, checked as it arrives",
    )
    sealed: Key32 | None = Field(
        None, description="streamed and end-to-end encrypted for the receiver: the ephemeral X25519 key (cartnet.e2e)"
    )
    eager: bool = Field(
        False,
        description="every chunk follows at once, unasked: a receiver starting afresh sends no TransferWant "
        "(one frame and one round trip less for a small blob)",
    )
    signature: Signature


class TransferWant(Message):
    """Receiver -> sender: the indices of the chunks still missing (empty = already complete)."""

    type: Literal["transfer_want"] = "transfer_want"
    transfer_id: TransferId
    missing: Annotated[list[Annotated[int, Field(ge=0)]], Field(max_length=1024)]


class TransferDone(Message):
    """Receiver -> sender: the transfer was verified and delivered, or refused and why."""

    type: Literal["transfer_done"] = "transfer_done"
    transfer_id: TransferId
    ok: bool
    reason: ShortText = ""


# --- federated rounds (cart <-> cart, inside routed frames) ----------------------------------


class UpdateRequest(Message):
    """Ask a peer for its latest model update; it answers with a transfer (purpose `update`).

    Signed by the requester (`cartnet.peers.sign_request`) over every field, so a bridge can neither
    forge one from another cart nor send one to another target; `request_id` is used once and
    `issued_ms` bounds how long a copy could be replayed (`cartnet.peers.RequestLedger`)."""

    type: Literal["update_request"] = "update_request"
    request_id: TransferId
    requester: NodeId
    target: NodeId
    task: TaskName
    round: int = Field(ge=0)
    issued_ms: int = Field(ge=0, description="Unix time in ms, by the requester's clock")
    eager: bool = Field(
        False,
        description="the requester means to take the answer in: send the weights with the manifest, unasked "
        "(`TransferManifest.eager`); False when it asked more peers than it will take",
    )
    signature: Signature


class UpdateDeclined(Message):
    """A peer's no to one of our update requests, signed by it (`cartnet.peers.sign_decline`)."""

    type: Literal["update_declined"] = "update_declined"
    request_id: TransferId
    reason: ShortText
    signature: Signature


MAX_COHORT = 16
"""Peers one masked request may name (each with its certified presence, so the request fits a control message)."""
SHARE_BYTES = 66
"""One Shamir share of a seed (`cartnet.secagg.SHARE`: an element of GF(2^521 - 1))."""
MAX_SEALED_SHARES = SHARE_BYTES * MAX_COHORT + 16
"""One holder's sealed bundle: a share of every cohort member's seed, plus the AEAD tag."""
MAX_SAMPLE_CAP = 1_000_000


class MaskedRequest(Message):
    """Ask a peer for its update masked for a cohort (secure aggregation, `child_cart.rounds.secure`).

    The requester names the whole cohort with every member's directory entry (signed presence and
    swarm certificate), so each member checks every key itself. One `cohort_id` for all members, one
    `request_id` per target; signed by the requester (`cartnet.peers.sign_masked_request`) over every
    field. `clip`, `scale` and `sample_cap` fix the fixed-point encoding of the sample-weighted update."""

    type: Literal["masked_request"] = "masked_request"
    request_id: TransferId
    cohort_id: TransferId
    requester: NodeId
    target: NodeId
    task: TaskName
    round: int = Field(ge=0)
    issued_ms: int = Field(ge=0, description="Unix time in ms, by the requester's clock")
    members: Annotated[list[PeerInfo], Field(min_length=3, max_length=MAX_COHORT)]
    clip: float = Field(gt=0.0, le=1e9)
    scale: float = Field(gt=0.0, le=1e9)
    sample_cap: int = Field(ge=1, le=MAX_SAMPLE_CAP)
    signature: Signature


class SealedShares(Message):
    """The Shamir shares one survivor (`dealer`) dealt to the target of an `UnmaskRequest`, sealed for the target
    (`cartnet.secagg`): the requester forwards them without being able to read them."""

    dealer: NodeId
    sealed: Annotated[Base64Bytes, Field(min_length=1, max_length=MAX_SEALED_SHARES)]


class UnmaskRequest(Message):
    """The requester names the survivors of a masked cohort (those whose masked update it received), once, to each
    member that may have masked, with the shares the survivors dealt that member."""

    type: Literal["unmask_request"] = "unmask_request"
    cohort_id: TransferId
    requester: NodeId
    target: NodeId
    survivors: Annotated[list[NodeId], Field(min_length=2, max_length=MAX_COHORT)]
    shares: Annotated[list[SealedShares], Field(max_length=MAX_COHORT)] = []
    signature: Signature


class RevealedSeed(Message):
    """One pairwise seed a survivor reveals: the one it shares with the dropped member `peer`."""

    peer: NodeId
    seed: Key32


class RevealedShare(Message):
    """One Shamir share a member reveals: of `dealer`'s seed with `of` (`of` == `dealer`: its self seed)."""

    dealer: NodeId
    of: NodeId
    value: Annotated[Base64Bytes, Field(min_length=SHARE_BYTES, max_length=SHARE_BYTES)]


class SeedReveal(Message):
    """A member's answer to an `UnmaskRequest`: a survivor's self seed and its pairwise seeds with dropped members
    only (none from a member named dropped), and its shares of the survivors' seeds; signed by it over
    `cartnet.secagg.Reveal.signed_bytes` (checked against the commitments it, or each share's dealer, signed)."""

    type: Literal["seed_reveal"] = "seed_reveal"
    cohort_id: TransferId
    sender: NodeId
    survivors: Annotated[list[NodeId], Field(min_length=2, max_length=MAX_COHORT)]
    self_seed: Key32 | None = None
    pairwise: Annotated[list[RevealedSeed], Field(max_length=MAX_COHORT)] = []
    shares: Annotated[list[RevealedShare], Field(max_length=MAX_COHORT * MAX_COHORT)] = []
    signature: Signature


# --- presence and bridge-to-bridge links ---------------------------------------------------


class Presence(Message):
    """Cart -> its bridge: a fresh alive record plus the signature of its withdrawal.

    The withdrawal (the same record with state `gone`) is signed in advance so the bridge
    can retract the cart from the DHT when it vanishes, without being able to forge anything.
    """

    type: Literal["presence"] = "presence"
    record: PresenceRecord
    withdrawal: Signature


MAX_ROSTER_JOINED = 100
"""Carts one roster may list as joined: each with its signed presence and certificate (under 1 KB), so it fits."""


class Roster(Message):
    """Bridge -> bridge: which carts joined (verified presence records with their certificates) or left, and why."""

    type: Literal["roster"] = "roster"
    reset: bool = Field(False, description="Forget everything this link said before applying the lists")
    joined: Annotated[list[CertifiedPresence], Field(max_length=MAX_ROSTER_JOINED)] = []
    left: Annotated[list[NodeId], Field(max_length=1000)] = []
    reason: ShortText = ""


class LinkUndeliverable(Message):
    """Bridge -> bridge: a frame from your cart `sender` could not reach `to`."""

    type: Literal["link_undeliverable"] = "link_undeliverable"
    sender: NodeId
    to: NodeId
    reason: ShortText


AnyMessage = Annotated[
    Challenge
    | Auth
    | Welcome
    | Reject
    | Heartbeat
    | HeartbeatAck
    | Error
    | Bye
    | Undeliverable
    | PeersRequest
    | PeerList
    | TransferManifest
    | TransferWant
    | TransferDone
    | UpdateRequest
    | UpdateDeclined
    | MaskedRequest
    | UnmaskRequest
    | SeedReveal
    | Presence
    | PresenceRecord
    | Roster
    | LinkUndeliverable
    | RevocationList,
    Field(discriminator="type"),
]
_adapter: TypeAdapter[AnyMessage] = TypeAdapter(AnyMessage)
MESSAGE_CLASSES: tuple[type[Message], ...] = get_args(get_args(AnyMessage)[0])
MESSAGE_TYPES: frozenset[str] = frozenset(cls.model_fields["type"].default for cls in MESSAGE_CLASSES)


def signed_bytes(message: Message, label: bytes) -> bytes:
    """The exact bytes a signature over `message` covers: every field but `signature`, in canonical
    JSON, after a label that keeps a signature made for one kind of message from being valid for another."""
    body = message.model_dump(mode="json", exclude={"signature"})
    return label + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def validate(obj: object) -> AnyMessage:
    """The message the document `obj` is (as `cartnet.compact` decodes it from a frame); raises MessageError
    naming the bad field, and only that."""
    if not isinstance(obj, dict):
        raise MessageError("message", "not an object")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise MessageError("type", f"must be a string, not {_json_kind(kind)}")
    if kind not in MESSAGE_TYPES:
        raise MessageError("type", f"unknown message type {kind!r}")
    try:
        message: AnyMessage = _adapter.validate_python(obj)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(part) for part in first["loc"][1:]) or "message"
        raise MessageError(field, first["msg"]) from None
    return message


def _json_kind(value: object) -> str:
    names = {dict: "an object", list: "an array", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
