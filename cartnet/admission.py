"""Swarm admission: a node proves its key and shows the swarm authority's certificate for its role.

The bridge sends a fresh random nonce; the node signs a transcript binding that nonce,
the bridge, its own keys, the role it asks for and (bridges) its relay URL, and sends its
certificate (cartnet.certificates) along. The bridge checks the signature, that the
certificate is this swarm's, for this key, for this role, current, and not revoked. A nonce
is good for one answer only, so a recorded answer cannot be replayed on another connection.

SWARM_TOKEN is an optional extra check (defence in depth, off when empty): with it set,
the answer also carries an HMAC of the transcript under the token. It never admits anyone
on its own, and a published example token is refused by the settings (cartnet.settings).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from cartnet import certificates
from cartnet.certificates import CertificateError, Role
from cartnet.identity import Identity, node_id_of, verify_signature
from cartnet.messages import Auth, Certificate, Challenge, RevocationList

_LABEL = b"fedcart-admission-v1"


class AdmissionError(PermissionError):
    """The answer to a challenge does not admit its sender; the message says why."""


def challenge(bridge_id: str) -> Challenge:
    return Challenge(nonce=secrets.token_bytes(32), bridge_id=bridge_id)


def answer(
    ch: Challenge,
    identity: Identity,
    certificate: Certificate,
    role: Role = "cart",
    relay_url: str = "",
    swarm_token: str = "",
) -> Auth:
    """The node's reply to a bridge's challenge."""
    transcript = _transcript(ch.nonce, ch.bridge_id, identity.node_id, identity.kx_public_key, role, relay_url)
    return Auth(
        role=role,
        node_id=identity.node_id,
        public_key=identity.public_key,
        kx_public_key=identity.kx_public_key,
        nonce=ch.nonce,
        signature=identity.sign(transcript),
        certificate=certificate,
        token_mac=_mac(swarm_token, transcript),
        relay_url=relay_url,
    )


def verify(
    auth: Auth,
    issued: Challenge,
    swarm_public_key: bytes,
    *,
    revocations: RevocationList | None = None,
    swarm_token: str = "",
    now: int | None = None,
) -> None:
    """Raise AdmissionError with the reason unless `auth` answers `issued` as a member of the swarm
    of `swarm_public_key`, in the role it asks for, not named in `revocations`."""
    if not hmac.compare_digest(auth.nonce, issued.nonce):
        raise AdmissionError("nonce does not match this connection's challenge (replayed answer?)")
    if node_id_of(auth.public_key) != auth.node_id:
        raise AdmissionError("node id is not the SHA-1 of the public key")
    transcript = _transcript(auth.nonce, issued.bridge_id, auth.node_id, auth.kx_public_key, auth.role, auth.relay_url)
    if not verify_signature(auth.public_key, auth.signature, transcript):
        raise AdmissionError("bad signature")
    try:
        certificates.verify(
            auth.certificate, swarm_public_key, auth.role, now, public_key=auth.public_key, revocations=revocations
        )
    except CertificateError as exc:
        raise AdmissionError(str(exc)) from None
    if swarm_token and not hmac.compare_digest(auth.token_mac, _mac(swarm_token, transcript)):
        raise AdmissionError("wrong swarm token")


def _transcript(nonce: bytes, bridge_id: str, node_id: str, kx_key: bytes, role: str, relay_url: str) -> bytes:
    return b"|".join((_LABEL, nonce, bridge_id.encode(), node_id.encode(), kx_key, role.encode(), relay_url.encode()))


def _mac(token: str, transcript: bytes) -> bytes:
    return hmac.new(token.encode(), transcript, hashlib.sha256).digest()
