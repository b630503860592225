"""Peers verified end to end: whom a cart seals its weights to and whose requests it answers.

A bridge lists carts (`PeerInfo`), but a bridge is trusted for reachability only, never
for keys. So every entry carries the cart's own signed presence record and its swarm
certificate, and `PeerVerifier.verify` believes an entry only when

* the record and the certificate name one node id (an entry has no ids or keys of its
  own beside the record's: `PeerInfo` reads them from it);
* the node id is the SHA-1 of the record's Ed25519 key and the record's signature holds
  (so its X25519 key, the one we seal to, is the cart's own word), unexpired;
* the certificate was issued by this swarm's authority (the key in the cart's data dir)
  for exactly that key, as a cart, valid now, and the node is not on the swarm's newest
  revocation list.

What passed is kept (`VerifiedPeer`, by node id, until the certificate expires), so the
next round costs a comparison of keys and a set lookup, no signature; an entry whose keys
or certificate differ from the kept ones is verified afresh, and a failure never evicts
what was verified before. A newer revocation list (this authority's, a higher serial: a
bridge can withhold one but not forge or roll one back) drops the nodes it names at once.
Since a certificate does not change between rounds, a cart names the peers it holds one
for (`holders`, in `PeersRequest.known`) and the bridge lists those without it; the kept
certificate is put back (`with_certificate`) and checked as if the bridge had sent it, so
leaving one out can only make an entry unverifiable (`certificate_missing`), never believed.

Update requests and declines are signed by the carts themselves:

* `sign_request` signs (requester, target, request id, round, task, issue time) with the
  requester's Ed25519 key; the answering cart checks the requester is who the routed frame
  says (`request_problem`), that the request is addressed to it and issued within
  `REQUEST_WINDOW_MS`, that the signature is the requester's verified key's
  (`request_signed_by`), and spends the request id once (`RequestLedger`): a bridge can
  neither forge, redirect nor replay a request.
* The answer is a transfer whose manifest the answering cart signs (cartnet.transfer),
  naming the request id and sealed to the requester's verified X25519 key; the requester
  uses it only when the manifest's signer is the verified key of the peer it asked.
* `sign_decline` signs a decline, checked by `decline_signed_by`: a bridge cannot put a
  made-up reason in another cart's mouth.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cartnet import certificates, messages
from cartnet.certificates import CertificateError, RevocationList, SwarmKey
from cartnet.files import write_atomic
from cartnet.identity import Identity, node_id_of, verify_signature
from cartnet.messages import (
    Certificate,
    HeldPeer,
    MaskedRequest,
    PeerInfo,
    PresenceRecord,
    UnmaskRequest,
    UpdateDeclined,
    UpdateRequest,
)
from cartnet.presence import now_ms
from cartnet.presence import signed_bytes as presence_bytes

log = logging.getLogger(__name__)

REQUEST_WINDOW_MS = 5 * 60 * 1000
"""How far an update request's issue time may lie from the answerer's clock, either way (clock skew included)."""
MAX_VERIFIED = 4096
"""Verified peers kept (the least recently used go first)."""
MAX_SPENT = 65536
"""Request ids remembered as spent; beyond it the oldest go, and requests issued before them are refused."""

_REQUEST_LABEL = b"fedcart-update-request-v1|"
_DECLINE_LABEL = b"fedcart-update-declined-v1|"
_MASKED_LABEL = b"fedcart-masked-request-v1|"
_UNMASK_LABEL = b"fedcart-unmask-request-v1|"


class PeerRefused(PermissionError):
    """A peer's directory entry (or request) we do not believe; the message says why.

    `code` is a small fixed label for counters and tests: id_mismatch, certificate_missing, id_not_key_hash,
    bad_presence_signature, presence_expired, revoked, wrong_role, and certificate_<code> for the rest
    of `cartnet.certificates.verify`'s codes (certificate_wrong_swarm, certificate_expired, ...).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class VerifiedPeer:
    """A cart whose keys were checked against its own signature and the swarm's certificate."""

    node_id: str
    public_key: bytes
    """Its Ed25519 key: what its requests, declines and transfer manifests must be signed with."""
    kx_public_key: bytes
    """Its X25519 key: the only key we seal anything for it to."""
    certificate: Certificate
    record: PresenceRecord
    """The signed presence these keys were read from: what a bridge's `HeldPeer` stands for (`PeerVerifier.entry`)."""

    @property
    def expires_ms(self) -> int:
        return self.certificate.not_after_ms

    def still_at(self, record: PresenceRecord) -> bool:
        """True when `record` names the bridge the kept one does; a cart that moved is checked and kept afresh,
        so the entry `PeerVerifier.entry` makes names where it is now."""
        return record.bridge_id == self.record.bridge_id

    def vouches_for(self, info: PeerInfo) -> bool:
        """True when `info` names exactly the keys and certificate verified here."""
        record = info.record
        return (
            record.public_key == self.public_key
            and record.kx_public_key == self.kx_public_key
            and info.certificate == self.certificate
        )


class PeerVerifier:
    """The one rule for believing a peer's keys, with the swarm's trust anchor and its newest revocations."""

    def __init__(
        self,
        swarm: SwarmKey,
        revocations: RevocationList | None = None,
        *,
        data_dir: Path | None = None,
        cache_size: int = MAX_VERIFIED,
    ) -> None:
        self.swarm = swarm
        self.data_dir = data_dir
        """Where a newer revocation list is kept (`revocations.json`), so a restart still knows it."""
        self.verifications = 0
        """Entries whose signatures were checked (a kept verdict does not count)."""
        self.revocations: RevocationList | None = None
        self._revoked: frozenset[str] = frozenset()
        self._verified: OrderedDict[str, VerifiedPeer] = OrderedDict()
        self._cache_size = cache_size
        if revocations is not None:
            self.accept_revocations(revocations)

    @classmethod
    def load(cls, data_dir: Path, swarm: SwarmKey) -> PeerVerifier:
        """A verifier with the revocation list kept in `data_dir` (a damaged or foreign one is ignored, loudly)."""
        verifier = cls(swarm, data_dir=data_dir)
        try:
            found = certificates.read_revocations(data_dir)
            if found is not None:
                verifier.accept_revocations(found)
        except CertificateError as exc:
            log.warning("ignoring %s: %s", data_dir / certificates.REVOCATIONS_FILE, exc)
        return verifier

    # --- revocations -------------------------------------------------------------------------

    def accept_revocations(self, revocations: RevocationList) -> bool:
        """Adopt `revocations` if this swarm's authority signed it and it is newer; True when adopted.

        CertificateError when the list is not this swarm's authority's."""
        certificates.check_revocations(revocations, self.swarm.public_key)
        if not certificates.newer(revocations, self.revocations):
            return False
        self.revocations = revocations
        self._revoked = frozenset(revocations.revoked)
        for node_id in [node_id for node_id in self._verified if node_id in self._revoked]:
            del self._verified[node_id]
        return True

    async def offer_revocations(self, revocations: RevocationList, source: str) -> bool:
        """A list someone passed on (our bridge): adopted when it is newer and this authority's, then kept in the
        data dir (on a worker thread); a foreign or forged one is logged and ignored. True when adopted."""
        try:
            adopted = self.accept_revocations(revocations)
        except CertificateError as exc:
            log.warning("ignoring a revocation list from %s: %s", source, exc)
            return False
        if adopted:
            log.info(
                "revocation list %d adopted from %s: %d node(s) revoked",
                revocations.serial,
                source,
                len(revocations.revoked),
            )
            if self.data_dir is not None:
                path = self.data_dir / certificates.REVOCATIONS_FILE
                try:
                    await asyncio.to_thread(write_atomic, path, certificates.encode(revocations))
                except OSError as exc:
                    log.warning("could not keep revocation list %d: %s", revocations.serial, exc)
        return adopted

    def revoked(self, node_id: str) -> bool:
        return node_id in self._revoked

    # --- entries -----------------------------------------------------------------------------

    def verify(self, info: PeerInfo, now: int | None = None) -> VerifiedPeer:
        """The verified peer `info` describes, else PeerRefused saying what does not hold. An entry without its
        certificate (we said we hold it) is checked against the certificate kept for that node."""
        at = now_ms() if now is None else now
        record = info.record
        info = self.with_certificate(info)
        cert = info.certificate
        if cert is None:
            raise PeerRefused(
                "certificate_missing", f"the entry for {record.node_id[:8]} came without its certificate, none is kept"
            )
        if record.node_id != cert.node_id:
            raise PeerRefused(
                "id_mismatch",
                f"the entry for {record.node_id[:8]} carries the certificate of {cert.node_id[:8]}",
            )
        if record.node_id in self._revoked:
            serial = self.revocations.serial if self.revocations is not None else -1
            raise PeerRefused("revoked", f"node {record.node_id[:8]} is revoked (revocation list {serial})")
        kept = self._verified.get(record.node_id)
        if kept is not None and kept.vouches_for(info) and at <= kept.expires_ms and kept.still_at(record):
            self._verified.move_to_end(record.node_id)
            return kept
        verified = self._check(record, cert, at)
        self._verified[record.node_id] = verified
        self._verified.move_to_end(record.node_id)
        while len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)
        return verified

    def with_certificate(self, info: PeerInfo) -> PeerInfo:
        """`info` whole: a certificate left out (we said we hold it) put back from what we verified; unchanged
        when it carries one or none is kept (what we pass on, as a masked cohort's members, must be whole)."""
        kept = self._verified.get(info.node_id)
        if info.certificate is not None or kept is None:
            return info
        return info.model_copy(update={"certificate": kept.certificate})

    def holders(self, limit: int = messages.MAX_KNOWN) -> list[str]:
        """The carts whose certificates we hold, most recently used first, as `PeersRequest.known` names them."""
        at = now_ms()  # a revoked peer is no longer kept (`accept_revocations`)
        held = (peer.node_id for peer in reversed(self._verified.values()) if at <= peer.expires_ms)
        return [node_id[: messages.KNOWN_PREFIX] for node_id in itertools.islice(held, limit)]

    def entry(self, held: HeldPeer) -> PeerInfo | None:
        """The whole entry a bridge listed by id alone (`PeersRequest.by_id`): the record and certificate we
        verified, at the bridge URL it gave; None when we no longer hold that cart (evicted, revoked, expired).
        `verify` believes it as it believed it first, whatever the record's age: its keys are what we checked."""
        kept = self.known(held.node_id)
        if kept is None:
            return None
        return PeerInfo(bridge_url=held.bridge_url, record=kept.record, certificate=kept.certificate)

    def known(self, node_id: str) -> VerifiedPeer | None:
        """The peer verified under `node_id`, while its certificate holds and it is not revoked."""
        kept = self._verified.get(node_id)
        if kept is None or kept.node_id in self._revoked or now_ms() > kept.expires_ms:
            return None
        return kept

    def _check(self, record: PresenceRecord, cert: Certificate, at: int) -> VerifiedPeer:
        self.verifications += 1
        if node_id_of(record.public_key) != record.node_id:
            raise PeerRefused("id_not_key_hash", "its node id is not the SHA-1 of the key in its presence record")
        if record.state != "alive":
            raise PeerRefused("presence_expired", "its presence record is a withdrawal")
        if not verify_signature(record.public_key, record.signature, presence_bytes(record)):
            raise PeerRefused(
                "bad_presence_signature",
                "its presence record's signature does not hold (keys altered, or not signed by the cart)",
            )
        if record.expires_ms <= at:
            raise PeerRefused("presence_expired", "its presence record expired")
        try:
            certificates.verify(
                cert, self.swarm.public_key, "cart", at, public_key=record.public_key, revocations=self.revocations
            )
        except CertificateError as exc:
            code = exc.code if exc.code in ("revoked", "wrong_role") else f"certificate_{exc.code}"
            raise PeerRefused(code, f"its certificate: {exc}") from None
        return VerifiedPeer(record.node_id, record.public_key, record.kx_public_key, cert, record)


# --- update requests ---------------------------------------------------------------------------


def request_bytes(request: UpdateRequest) -> bytes:
    """What a request's signature covers: every field but the signature, after the request label."""
    return messages.signed_bytes(request, _REQUEST_LABEL)


def sign_request(
    identity: Identity,
    target: str,
    task: str,
    round_number: int,
    *,
    request_id: str | None = None,
    issued_ms: int | None = None,
    eager: bool = False,
) -> UpdateRequest:
    """An update request from `identity` to `target`, signed; a fresh random id unless one is given."""
    unsigned = UpdateRequest(
        request_id=request_id or secrets.token_hex(16),
        requester=identity.node_id,
        target=target,
        task=task,
        round=round_number,
        issued_ms=now_ms() if issued_ms is None else issued_ms,
        eager=eager,
        signature=bytes(64),
    )
    return unsigned.model_copy(update={"signature": identity.sign(request_bytes(unsigned))})


def request_problem(
    request: UpdateRequest, sender: str, own_id: str, now: int | None = None, window_ms: int = REQUEST_WINDOW_MS
) -> tuple[str, str] | None:
    """(code, reason) when a request routed to `own_id` from `sender` cannot be genuine or current, checked
    without any key; None when it may be (its signature is `request_signed_by`'s to check)."""
    if request.requester != sender:
        return "forged", f"the request names requester {request.requester[:8]} but came from {sender[:8]}"
    if request.target != own_id:
        return "misdirected", f"the request is addressed to {request.target[:8]}, not to this cart {own_id[:8]}"
    age = (now_ms() if now is None else now) - request.issued_ms
    if age > window_ms:
        return "stale", f"the request was issued {age / 1000:.0f}s ago, outside the {window_ms / 1000:.0f}s window"
    if age < -window_ms:
        return "stale", f"the request claims to be issued {-age / 1000:.0f}s in the future"
    return None


def request_signed_by(request: UpdateRequest, peer: VerifiedPeer) -> bool:
    """True when `peer` (verified) signed `request` and is the requester it names."""
    return request.requester == peer.node_id and verify_signature(
        peer.public_key, request.signature, request_bytes(request)
    )


class RequestLedger:
    """Request ids already answered (or being answered), so a copy of a request is never served twice.

    Ids are remembered for `window_ms` after their issue time, when `request_problem` refuses the
    request as stale anyway. At most `size` are kept: when one must go before its window ends, every
    request issued no later than it is refused from then on (`floor_ms`), so nothing replays through.
    """

    def __init__(self, window_ms: int = REQUEST_WINDOW_MS, size: int = MAX_SPENT) -> None:
        self.window_ms = window_ms
        self.size = size
        self.floor_ms = -1
        self._spent: OrderedDict[tuple[str, str], int] = OrderedDict()

    def spent(self, request: UpdateRequest) -> bool:
        """True when this request (or one issued before the ids we still hold) was used already."""
        return request.issued_ms <= self.floor_ms or (request.requester, request.request_id) in self._spent

    def spend(self, request: UpdateRequest, now: int | None = None) -> bool:
        """Mark the request used; False (nothing changes) when it was used already."""
        if self.spent(request):
            return False
        self._forget(now_ms() if now is None else now)
        self._spent[(request.requester, request.request_id)] = request.issued_ms
        while len(self._spent) > self.size:
            _, issued = self._spent.popitem(last=False)
            self.floor_ms = max(self.floor_ms, issued)
        return True

    def _forget(self, now: int) -> None:
        """Drop ids whose window has passed (held in arrival order, so the scan stops at the first fresh one)."""
        horizon = now - self.window_ms
        while self._spent:
            key, issued = next(iter(self._spent.items()))
            if issued >= horizon:
                return
            del self._spent[key]


# --- declines ----------------------------------------------------------------------------------


def decline_bytes(decline: UpdateDeclined) -> bytes:
    return messages.signed_bytes(decline, _DECLINE_LABEL)


def sign_decline(identity: Identity, request_id: str, reason: str) -> UpdateDeclined:
    """Our signed no to the request `request_id`."""
    unsigned = UpdateDeclined(request_id=request_id, reason=reason, signature=bytes(64))
    return unsigned.model_copy(update={"signature": identity.sign(decline_bytes(unsigned))})


def decline_signed_by(decline: UpdateDeclined, peer: VerifiedPeer) -> bool:
    return verify_signature(peer.public_key, decline.signature, decline_bytes(decline))


# --- secure aggregation's requests (child_cart.rounds.secure) ----------------------------------


_Secure = TypeVar("_Secure", MaskedRequest, UnmaskRequest)


def sign_secure(identity: Identity, unsigned: _Secure) -> _Secure:
    """`unsigned` (any signature) signed by `identity` over every other field, under its own kind's label."""
    label = _MASKED_LABEL if isinstance(unsigned, MaskedRequest) else _UNMASK_LABEL
    return unsigned.model_copy(update={"signature": identity.sign(messages.signed_bytes(unsigned, label))})


def secure_signed_by(request: MaskedRequest | UnmaskRequest, peer: VerifiedPeer) -> bool:
    """True when `peer` (verified) signed `request` and is the requester it names."""
    label = _MASKED_LABEL if isinstance(request, MaskedRequest) else _UNMASK_LABEL
    return request.requester == peer.node_id and verify_signature(
        peer.public_key, request.signature, messages.signed_bytes(request, label)
    )
