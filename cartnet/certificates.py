"""Swarm certificates: who is a member of a swarm, and in which role.

An operator's swarm authority (cartnet.authority) signs, for each node, a certificate
naming the node's Ed25519 public key, its node id, its role (bridge or cart), the swarm
id and a validity period. Anyone holding the swarm's public key (`swarm.json` in every
node's data dir) can check a certificate on its own: `verify` raises CertificateError
naming the one thing that is wrong. The swarm id is derived from the swarm's public key,
so a certificate issued by another authority is told apart from a forged one.

The two signed records travel in control messages, so their classes live in
cartnet.messages (Certificate inside Auth, RevocationList between bridges); this module
holds the rules for believing them and their files in a data dir.

A revocation list, signed by the same authority, names node ids that no longer belong;
of two valid lists the one with the higher serial wins, so a list can only be replaced by
a newer word of the authority, never rolled back by whoever relays it.

Certificates and lists sign every field but the signature in cartnet's canonical form
(`messages.signed_bytes`) after their own domain label, so a signature made for one kind
of record is never valid for another.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import ValidationError, field_validator, model_validator

from cartnet.identity import node_id_of, verify_signature
from cartnet.messages import MAX_REVOKED as MAX_REVOKED
from cartnet.messages import Certificate as Certificate
from cartnet.messages import Key32, Message, SwarmId, canonical_base64, signed_bytes
from cartnet.messages import RevocationList as RevocationList
from cartnet.presence import now_ms

CERTIFICATE_FILE = "certificate.json"
"""A node's certificate, in its data dir."""
SWARM_FILE = "swarm.json"
"""The swarm's public key (the trust anchor), in every node's data dir and in the authority's."""
REVOCATIONS_FILE = "revocations.json"
"""The newest revocation list a node (or the authority) knows of."""

Role = Literal["bridge", "cart"]

_CERT_LABEL = b"fedcart-certificate-v1|"
_REVOCATION_LABEL = b"fedcart-revocations-v1|"


class CertificateError(PermissionError):
    """A certificate (or revocation list, or a node's enrolment) does not hold; the message says why.

    `code` is a small fixed label for metrics and tests: malformed, wrong_swarm, bad_signature,
    key_mismatch, wrong_role, not_yet_valid, expired, revoked, not_enrolled.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def swarm_id_of(swarm_public_key: bytes) -> str:
    """The swarm id that belongs to a swarm authority's Ed25519 public key."""
    return hashlib.sha256(swarm_public_key).hexdigest()[:32]


class SwarmKey(Message):
    """The public half of a swarm authority: what every node trusts (`swarm.json`)."""

    type: Literal["swarm"] = "swarm"
    swarm_id: SwarmId
    public_key: Key32

    @field_validator("public_key", mode="before")
    @classmethod
    def _canonical(cls, value: Any) -> Any:
        return canonical_base64(value)

    @model_validator(mode="after")
    def _id_matches_key(self) -> SwarmKey:
        if swarm_id_of(self.public_key) != self.swarm_id:
            raise ValueError("swarm id is not derived from the swarm public key")
        return self

    @classmethod
    def of(cls, swarm_public_key: bytes) -> SwarmKey:
        return cls(swarm_id=swarm_id_of(swarm_public_key), public_key=swarm_public_key)


def certificate_bytes(cert: Certificate) -> bytes:
    """What the authority's signature over a certificate covers."""
    return signed_bytes(cert, _CERT_LABEL)


def revocation_bytes(revocations: RevocationList) -> bytes:
    """What the authority's signature over a revocation list covers."""
    return signed_bytes(revocations, _REVOCATION_LABEL)


def verify(
    cert: Certificate,
    swarm_public_key: bytes,
    role: Role,
    now: int | None = None,
    *,
    public_key: bytes | None = None,
    revocations: RevocationList | None = None,
) -> Certificate:
    """Return `cert` when it admits its holder to the swarm of `swarm_public_key` as `role` at `now`
    (Unix ms, default the clock); else raise CertificateError saying what is wrong.

    `public_key`, when given, is the key the holder proved it holds (the certificate must be for it);
    `revocations`, when given, is the swarm's newest revocation list (checked with `check_revocations`
    first by whoever accepted it).
    """
    swarm_id = swarm_id_of(swarm_public_key)
    if cert.swarm_id != swarm_id:
        raise CertificateError(
            "wrong_swarm", f"certificate is for swarm {cert.swarm_id[:8]}, not this swarm {swarm_id[:8]}"
        )
    if not verify_signature(swarm_public_key, cert.signature, certificate_bytes(cert)):
        raise CertificateError("bad_signature", "bad certificate signature (not issued by this swarm's authority)")
    if node_id_of(cert.public_key) != cert.node_id:
        raise CertificateError("key_mismatch", "certificate's node id is not the SHA-1 of its public key")
    if public_key is not None and public_key != cert.public_key:
        raise CertificateError("key_mismatch", f"certificate is for node {cert.node_id[:8]}, not for this key")
    if cert.role != role:
        raise CertificateError("wrong_role", f"certificate is for a {cert.role}, not a {role}")
    at = now_ms() if now is None else now
    if at < cert.not_before_ms:
        raise CertificateError("not_yet_valid", f"certificate is not valid before {utc_time(cert.not_before_ms)}")
    if at > cert.not_after_ms:
        raise CertificateError("expired", f"certificate expired at {utc_time(cert.not_after_ms)}")
    if revocations is not None and revocations.names(cert.node_id):
        raise CertificateError("revoked", f"node {cert.node_id[:8]} is revoked (revocation list {revocations.serial})")
    return cert


def check_revocations(revocations: RevocationList, swarm_public_key: bytes) -> RevocationList:
    """Return `revocations` when this swarm's authority signed it; else raise CertificateError."""
    swarm_id = swarm_id_of(swarm_public_key)
    if revocations.swarm_id != swarm_id:
        raise CertificateError(
            "wrong_swarm", f"revocation list is for swarm {revocations.swarm_id[:8]}, not this swarm {swarm_id[:8]}"
        )
    if not verify_signature(swarm_public_key, revocations.signature, revocation_bytes(revocations)):
        raise CertificateError("bad_signature", "bad revocation list signature (not signed by this swarm's authority)")
    return revocations


def newer(candidate: RevocationList, current: RevocationList | None) -> bool:
    """True when `candidate` (already checked) replaces `current`: a strictly higher serial."""
    return current is None or candidate.serial > current.serial


def utc_time(ms: int) -> str:
    """A Unix time in ms as people read it, for messages."""
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- the files in a data dir ------------------------------------------------------------------

_R = TypeVar("_R", SwarmKey, Certificate, RevocationList)


def encode(record: SwarmKey | Certificate | RevocationList) -> bytes:
    """The one byte form of a record on disk: canonical JSON and a newline."""
    return json.dumps(record.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode() + b"\n"


def decode_certificate(raw: bytes | str) -> Certificate:
    return _decode(Certificate, raw, "certificate")


def decode_swarm_key(raw: bytes | str) -> SwarmKey:
    return _decode(SwarmKey, raw, "swarm key")


def decode_revocations(raw: bytes | str) -> RevocationList:
    return _decode(RevocationList, raw, "revocation list")


def _decode(kind: type[_R], raw: bytes | str, what: str) -> _R:
    try:
        return kind.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or what
        raise CertificateError("malformed", f"malformed {what}: {where}: {first['msg']}") from None


def read_swarm_key(data_dir: Path) -> SwarmKey | None:
    """The swarm key kept in `data_dir`, or None when there is none; CertificateError when it is damaged."""
    path = data_dir / SWARM_FILE
    return decode_swarm_key(path.read_bytes()) if path.exists() else None


def read_certificate(data_dir: Path) -> Certificate | None:
    path = data_dir / CERTIFICATE_FILE
    return decode_certificate(path.read_bytes()) if path.exists() else None


def read_revocations(data_dir: Path) -> RevocationList | None:
    path = data_dir / REVOCATIONS_FILE
    return decode_revocations(path.read_bytes()) if path.exists() else None


def enrol_hint(data_dir: Path, role: Role) -> str:
    """The command that enrols the node kept in `data_dir`, for error messages."""
    return f"fedcart enrol --authority AUTHORITY_DIR --data-dir {data_dir} --role {role}"


def load_enrolment(
    data_dir: Path, public_key: bytes, role: Role, now: int | None = None
) -> tuple[SwarmKey, Certificate]:
    """The swarm key and this node's own certificate from its data dir, checked for `role` and `public_key`.

    Raises CertificateError (code `not_enrolled` when a file is missing) whose message says which
    command makes the node a member, so a node without a valid certificate refuses to start with it.
    """
    hint = enrol_hint(data_dir, role)
    try:
        swarm = read_swarm_key(data_dir)
        cert = read_certificate(data_dir)
    except CertificateError as exc:
        raise CertificateError(exc.code, f"{exc}; enrol the node again: {hint}") from None
    if swarm is None or cert is None:
        missing = SWARM_FILE if swarm is None else CERTIFICATE_FILE
        raise CertificateError(
            "not_enrolled", f"this node is not enrolled in a swarm (no {data_dir / missing}); run: {hint}"
        )
    try:
        verify(cert, swarm.public_key, role, now, public_key=public_key)
    except CertificateError as exc:
        raise CertificateError(
            exc.code, f"{data_dir / CERTIFICATE_FILE}: {exc}; enrol the node again: {hint}"
        ) from None
    return swarm, cert
