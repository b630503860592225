"""What bridges keep in the DHT, and the one rule for believing it.

The `kademlia` package has no security: anyone who reaches a node's UDP port may store
anything under any key. So a value is believed (stored, returned, used) only when it is
an *entry*: a record signed by its owner plus the owner's swarm certificate, checked by
`Verifier.check` against the swarm public key this bridge holds:

* `fedcart/cart/<node id>`     a CartEntry: the cart's own signed PresenceRecord
  (cartnet.presence; its withdrawal too) and the cart's certificate (role cart).
* `fedcart/bridge/<bridge id>` a BridgeEntry: the bridge's signed BridgeRecord (its relay
  URL and the bridges it is linked with) and the bridge's certificate (role bridge).
* `fedcart/model/<task>`      a ModelEntry: the newest accepted phone model of a task, as
  its publishing cart signed it (cartnet.phone_models: the manifest's exact bytes, the
  cart's signature, its certificate, role cart). Any bridge that accepted the model may
  store it; the one kept is the highest (version, sha256), so concurrent publications
  settle on the same model everywhere. It holds until the publisher's certificate expires.

The check, in order of cost: at most MAX_VALUE_BYTES of JSON in the shape of an entry;
stored under the key derived from the owner's node id; node id = SHA-1 of the record's
key; not expired, not claiming more than `max_ttl` of life, not issued in the future;
owner not on the swarm's revocation list; the certificate issued by this swarm's
authority for exactly that key, in the role the record needs, valid now; the owner's
signature. A stranger's value, a value signed by a key the authority never certified, a
cart certificate under a bridge record, a revoked owner, a 30-year expiry: refused, each
with a small fixed reason code (counted by the bridge in `fedcart_bridge_dht_refused`).

A value passes the signature checks once: the verdict (`Believed`) is kept with the
stored value and in a bounded cache keyed by the value itself, so storing, iterating,
answering `find_value` or seeing the same answer again costs a comparison of integers
(expiry) and a set lookup (revocation), never a signature.

There is no index anyone could fill: bridges find each other through their Kademlia
contacts and the `linked` lists inside certified bridges' own records, and each id found
that way is believed only once its own certified record verifies (parent_cart.announce).
A relay URL is believed only in the forms `relay_url_problem` allows, before it is
stored and again before it is dialed.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Literal

from kademlia.utils import digest
from pydantic import Field, TypeAdapter, ValidationError

from cartnet import certificates, phone_models, presence
from cartnet.certificates import Certificate, CertificateError, RevocationList, SwarmKey
from cartnet.identity import Identity, node_id_of, verify_signature
from cartnet.messages import Key32, Message, NodeId, PresenceRecord, Signature

log = logging.getLogger(__name__)

CART_PREFIX = "fedcart/cart/"
BRIDGE_PREFIX = "fedcart/bridge/"
MODEL_PREFIX = "fedcart/model/"
MAX_VALUE_BYTES = 7 * 1024
"""kademlia's rpcudp refuses a request over 8 KB (name, ids and value included); stay well below."""
MAX_LINKED = 32
"""Bridge ids one bridge record may list as linked (a bounded, signed roster)."""
CLOCK_SKEW_MS = 5 * 60 * 1000
"""How far ahead of our clock an owner's clock may be (issue times, lifetimes)."""
_BRIDGE_LABEL = b"fedcart-bridge-v2|"

REFUSALS = (
    "oversized",
    "malformed",
    "no_certificate",
    "wrong_key",
    "id_mismatch",
    "expired",
    "too_long",
    "from_future",
    "bad_relay_url",
    "revoked",
    "wrong_role",
    "certificate_wrong_swarm",
    "certificate_bad_signature",
    "certificate_key_mismatch",
    "certificate_not_yet_valid",
    "certificate_expired",
    "bad_signature",
    "not_enrolled",
)
"""Every reason a value is refused (the metric's label values)."""


class BridgeRecord(Message):
    """A bridge's signed statement of where its relay listens and whom it is linked with, until when."""

    type: Literal["bridge_record"] = "bridge_record"
    bridge_id: NodeId
    public_key: Key32
    relay_url: Annotated[str, Field(max_length=256)]
    linked: Annotated[list[NodeId], Field(max_length=MAX_LINKED)] = []
    issued_ms: int = Field(ge=0)
    expires_ms: int = Field(ge=0)
    signature: Signature


class CartEntry(Message):
    """The DHT value under a cart's key: its own presence record and its certificate."""

    type: Literal["cart_entry"] = "cart_entry"
    record: PresenceRecord
    certificate: Certificate


class BridgeEntry(Message):
    """The DHT value under a bridge's key: its own bridge record and its certificate."""

    type: Literal["bridge_entry"] = "bridge_entry"
    record: BridgeRecord
    certificate: Certificate


class ModelEntry(Message):
    """The DHT value under a task's model key: the publisher-signed model manifest (base64 of its exact bytes),
    the publisher's signature over it, and the publisher's certificate (the one the manifest names)."""

    type: Literal["model_entry"] = "model_entry"
    manifest: Annotated[str, Field(max_length=MAX_VALUE_BYTES)]
    signature: Annotated[str, Field(max_length=128)]
    certificate: Certificate

    @property
    def signed(self) -> phone_models.SignedModel:
        """ModelRefused('malformed') when the base64 is not."""
        return phone_models.SignedModel.from_base64(self.manifest, self.signature)


Entry = CartEntry | BridgeEntry | ModelEntry
_adapter: TypeAdapter[Entry] = TypeAdapter(Annotated[Entry, Field(discriminator="type")])


def cart_key(node_id: str) -> str:
    return CART_PREFIX + node_id


def bridge_key(bridge_id: str) -> str:
    return BRIDGE_PREFIX + bridge_id


def model_key(task: str) -> str:
    return MODEL_PREFIX + task


def model_entry(signed: phone_models.SignedModel, certificate: Certificate) -> ModelEntry:
    return ModelEntry(manifest=signed.manifest_b64, signature=signed.signature_b64, certificate=certificate)


def encode(entry: Entry) -> str:
    """The DHT value for `entry`; ValueError if it would not fit a datagram."""
    value = entry.model_dump_json()
    if len(value) > MAX_VALUE_BYTES:
        raise ValueError(f"DHT value of {len(value)} bytes exceeds {MAX_VALUE_BYTES}")
    return value


def cart_entry(record: PresenceRecord, certificate: Certificate) -> CartEntry:
    return CartEntry(record=record, certificate=certificate)


def sign_bridge(
    identity: Identity, certificate: Certificate, relay_url: str, ttl: float, linked: Iterable[str] = ()
) -> BridgeEntry:
    """This bridge's entry: its relay URL and (at most MAX_LINKED of) the bridges it is linked with."""
    issued = presence.now_ms()
    unsigned = BridgeRecord(
        bridge_id=identity.node_id,
        public_key=identity.public_key,
        relay_url=relay_url,
        linked=sorted(set(linked) - {identity.node_id})[:MAX_LINKED],
        issued_ms=issued,
        expires_ms=issued + int(ttl * 1000),
        signature=bytes(64),
    )
    record = unsigned.model_copy(update={"signature": identity.sign(presence.signed_bytes(unsigned, _BRIDGE_LABEL))})
    return BridgeEntry(record=record, certificate=certificate)


# --- relay URLs ----------------------------------------------------------------------------

_SCHEMES = ("http", "https", "ws", "wss")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_PATH = re.compile(r"^(/[A-Za-z0-9._~-]*)*$")


def relay_url_problem(url: str) -> str | None:
    """None when `url` is a relay URL we may dial, else why not.

    A relay URL is `scheme://host[:port][/path]`: scheme http, https, ws or wss (what
    `cartnet.handshake.ws_url` and aiohttp dial); no user info, query or fragment; a host
    that is a DNS name (letters, digits, hyphens, with a non-numeric last label) or an IP
    address other than unspecified, multicast, broadcast, link-local or reserved ones
    (169.254.169.254 is a cloud metadata service, not a bridge); a port 1-65535; a plain path.
    """
    if not url or len(url) > 256 or any(c <= " " or c > "~" for c in url):
        return "empty, too long, or not printable ASCII without spaces"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a URL ({exc})"
    if parts.scheme not in _SCHEMES:
        return f"scheme {parts.scheme!r} is not one of {', '.join(_SCHEMES)}"
    if "@" in parts.netloc:
        return "user info in a relay URL"
    if parts.query or parts.fragment or "?" in url or "#" in url:
        return "query or fragment in a relay URL"
    if port == 0:
        return "port 0"
    if not _PATH.match(parts.path) or any(part in (".", "..") for part in parts.path.split("/")):
        return f"path {parts.path!r} is not a plain path"
    host = parts.hostname or ""
    if not host:
        return "no host"
    return _host_problem(host)


def _host_problem(host: str) -> str | None:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        labels = host.split(".")
        if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
            return f"host {host!r} is neither a DNS name nor an IP address"
        if re.fullmatch(r"[0-9]+|0x[0-9a-f]*", labels[-1]):
            return f"host {host!r} looks like a number (resolvers may read it as an IP address)"
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified or ip.is_multicast or ip.is_link_local or ip.is_reserved:
        return f"host {ip} is not an address a bridge listens on"
    if isinstance(ip, ipaddress.IPv4Address) and ip == ipaddress.IPv4Address("255.255.255.255"):
        return "host is the broadcast address"
    return None


# --- believing values ----------------------------------------------------------------------


@dataclass(frozen=True)
class Believed:
    """A value that passed every check once: the entry, its text, and until when it holds."""

    raw: str
    entry: Entry
    expires_ms: int
    """The earlier of the record's expiry and its certificate's."""
    model: phone_models.ModelManifest | None = None
    """A ModelEntry's verified manifest (None for every other kind)."""

    @property
    def owner(self) -> str:
        return self.entry.certificate.node_id

    @property
    def record(self) -> PresenceRecord | BridgeRecord | None:
        return None if isinstance(self.entry, ModelEntry) else self.entry.record

    def fresher_than(self, other: Believed) -> bool:
        """True when this is the owner's later word than `other` (same key, so same owner and kind); for a
        task's model, the higher (version, sha256), whoever published it."""
        if self.model is not None or other.model is not None:
            if self.model is None or other.model is None:
                return self.model is not None
            return (self.model.version, self.model.sha256) > (other.model.version, other.model.sha256)
        if isinstance(self.entry, ModelEntry) or isinstance(other.entry, ModelEntry):
            return False
        new, old = self.entry.record, other.entry.record
        if isinstance(new, PresenceRecord) and isinstance(old, PresenceRecord):
            return presence.supersedes(new, old)
        return new.issued_ms > old.issued_ms


RefusedFn = Callable[[str], None]


class Verifier:
    """The one rule for believing a DHT value, with the swarm's trust anchor and revocations.

    `check` returns a `Believed` or the refusal code; `still` re-checks a believed value
    cheaply (expiry, revocation). Without a swarm key (the bridge is not enrolled) every
    value is refused as `not_enrolled`: an unenrolled bridge has nothing to check against.
    """

    def __init__(
        self,
        swarm: SwarmKey | None,
        revocations: RevocationList | None = None,
        *,
        max_ttl: float = 600.0,
        on_refused: RefusedFn | None = None,
        cache_size: int = 1024,
    ) -> None:
        self.swarm = swarm
        self.max_ttl_ms = int(max_ttl * 1000)
        self.on_refused = on_refused
        self.verifications = 0
        """Values whose signatures were checked (a cache hit or a cheap refusal does not count)."""
        self._cache: OrderedDict[tuple[bytes, str], Believed] = OrderedDict()
        self._cache_size = cache_size
        self.revocations: RevocationList | None = None
        self._revoked: frozenset[str] = frozenset()
        if revocations is not None:
            self.accept_revocations(revocations)

    # --- revocations -------------------------------------------------------------------------

    def accept_revocations(self, revocations: RevocationList) -> bool:
        """Adopt `revocations` if this swarm's authority signed it and it is newer; True when adopted.

        CertificateError when the list is not this swarm's authority's.
        """
        if self.swarm is None:
            return False
        certificates.check_revocations(revocations, self.swarm.public_key)
        if not certificates.newer(revocations, self.revocations):
            return False
        self.revocations = revocations
        self._revoked = frozenset(revocations.revoked)
        for cache_key in [key for key, believed in self._cache.items() if believed.owner in self._revoked]:
            del self._cache[cache_key]
        return True

    def revoked(self, node_id: str) -> bool:
        return node_id in self._revoked

    # --- values ------------------------------------------------------------------------------

    def check(self, dkey: bytes, raw: object) -> Believed | str:
        """The believed value `raw` under `dkey`, or the reason code it is refused (counted)."""
        if isinstance(raw, str):
            cached = self._cache.get((dkey, raw))
            if cached is not None:
                self._cache.move_to_end((dkey, raw))
                reason = self.still(cached)
                return cached if reason is None else self._refuse(reason, dkey)
        verdict = self._verify(dkey, raw)
        if isinstance(verdict, str):
            return self._refuse(verdict, dkey)
        self._cache[(dkey, verdict.raw)] = verdict
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return verdict

    def still(self, believed: Believed, now: int | None = None) -> str | None:
        """None while a believed value holds; else `expired` or `revoked` (no signature is checked)."""
        if believed.expires_ms <= (presence.now_ms() if now is None else now):
            return "expired"
        if believed.owner in self._revoked:
            return "revoked"
        return None

    def best(self, dkey: bytes, values: Iterable[object]) -> Believed | None:
        """The one value to believe among several answers for `dkey`: the owner's freshest valid word."""
        kept: Believed | None = None
        for raw in dict.fromkeys(value for value in values if isinstance(value, str | bytes | int | float | bool)):
            verdict = self.check(dkey, raw)
            if isinstance(verdict, Believed) and (kept is None or verdict.fresher_than(kept)):
                kept = verdict
        return kept

    def _refuse(self, reason: str, dkey: bytes) -> str:
        log.debug("refused DHT value under %s: %s", dkey.hex()[:8], reason)
        if self.on_refused is not None:
            self.on_refused(reason)
        return reason

    def _verify(self, dkey: bytes, raw: object) -> Believed | str:
        if not isinstance(raw, str):
            return "malformed"
        if len(raw) > MAX_VALUE_BYTES:
            return "oversized"
        try:
            entry = _adapter.validate_json(raw)
        except ValidationError:
            return "no_certificate" if _lacks_certificate(raw) else "malformed"
        if self.swarm is None:
            return "not_enrolled"
        if isinstance(entry, ModelEntry):
            return self._verify_model(dkey, raw, entry, self.swarm)
        reason = self._cheap_problem(dkey, entry)
        if reason:
            return reason
        self.verifications += 1
        record = entry.record
        role: certificates.Role = "cart" if isinstance(entry, CartEntry) else "bridge"
        try:
            certificates.verify(
                entry.certificate,
                self.swarm.public_key,
                role,
                public_key=record.public_key,
                revocations=self.revocations,
            )
        except CertificateError as exc:
            return exc.code if exc.code in ("revoked", "wrong_role") else f"certificate_{exc.code}"
        signed = (
            presence.signed_bytes(record, _BRIDGE_LABEL)
            if isinstance(record, BridgeRecord)
            else presence.signed_bytes(record)
        )
        if not verify_signature(record.public_key, record.signature, signed):
            return "bad_signature"
        return Believed(raw, entry, min(record.expires_ms, entry.certificate.not_after_ms))

    def _verify_model(self, dkey: bytes, raw: str, entry: ModelEntry, swarm: SwarmKey) -> Believed | str:
        """A task's model entry: canonical manifest under its task's key, naming the certificate that comes with it,
        a current cart certificate of this swarm, the publisher's signature, a version not from the future."""
        try:
            manifest = phone_models.parse(entry.signed.manifest)
        except phone_models.ModelRefused:
            return "malformed"
        if digest(model_key(manifest.task)) != dkey:
            return "wrong_key"
        if manifest.certificate != entry.certificate or manifest.publisher != entry.certificate.node_id:
            return "id_mismatch"
        now = presence.now_ms()
        if manifest.version > now + CLOCK_SKEW_MS:
            return "from_future"
        if manifest.publisher in self._revoked:
            return "revoked"
        self.verifications += 1
        try:
            certificates.verify(entry.certificate, swarm.public_key, "cart", revocations=self.revocations)
        except CertificateError as exc:
            return exc.code if exc.code in ("revoked", "wrong_role") else f"certificate_{exc.code}"
        try:
            manifest = phone_models.verify(
                entry.signed, swarm.public_key, now, revocations=self.revocations, max_skew_ms=CLOCK_SKEW_MS
            )
        except phone_models.ModelRefused as exc:
            return "bad_signature" if exc.code == "bad_signature" else "malformed"
        return Believed(raw, entry, entry.certificate.not_after_ms, manifest)

    def _cheap_problem(self, dkey: bytes, entry: CartEntry | BridgeEntry) -> str | None:
        """Everything that needs no signature: key binding, ids, times, URL, revocation."""
        record = entry.record
        if isinstance(record, PresenceRecord):
            owner, key = record.node_id, cart_key(record.node_id)
        else:
            owner, key = record.bridge_id, bridge_key(record.bridge_id)
        if digest(key) != dkey:
            return "wrong_key"
        if node_id_of(record.public_key) != owner or entry.certificate.node_id != owner:
            return "id_mismatch"
        now = presence.now_ms()
        if record.expires_ms <= now:
            return "expired"
        if record.expires_ms > now + self.max_ttl_ms + CLOCK_SKEW_MS:
            return "too_long"
        if record.issued_ms > now + CLOCK_SKEW_MS:
            return "from_future"
        if isinstance(record, BridgeRecord) and relay_url_problem(record.relay_url):
            return "bad_relay_url"
        if owner in self._revoked:
            return "revoked"
        return None


def _lacks_certificate(raw: str) -> bool:
    """True when `raw` is a JSON object without a certificate (a stranger's or a pre-enrolment value)."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return False
    return isinstance(value, dict) and "certificate" not in value
