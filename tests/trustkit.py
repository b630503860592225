"""Swarm membership for tests that run carts without bridges: one test authority, certified directory entries.

Carts believe a peer's keys only from its own signed presence and its certificate
(cartnet.peers), so a test that hands an exchange a `PeerInfo` makes it here, the way a
bridge would list an enrolled cart.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from cartnet import presence
from cartnet.authority import Authority
from cartnet.identity import Identity
from cartnet.messages import Certificate, CertifiedPresence, PeerInfo
from cartnet.peers import PeerVerifier

BRIDGE_ID = "b" * 40
BRIDGE_URL = "http://127.0.0.1:8470"

_authority: list[Authority] = []


def authority() -> Authority:
    """The swarm authority of this test process (created on first use, removed at exit)."""
    if not _authority:
        folder = Path(tempfile.mkdtemp(prefix="fedcart-test-trust-"))
        atexit.register(shutil.rmtree, folder, True)
        _authority.append(Authority.create(folder / "authority"))
    return _authority[0]


def verifier() -> PeerVerifier:
    """A cart's verifier for the test swarm."""
    return PeerVerifier(authority().swarm, authority().revocations())


def entry(
    identity: Identity,
    *,
    task: str = "recommend",
    ttl: float = 600.0,
    certificate: Certificate | None = None,
    bridge_url: str = BRIDGE_URL,
) -> PeerInfo:
    """`identity`'s directory entry as a bridge lists it: its signed presence and its certificate of the test swarm."""
    record = presence.sign(identity, BRIDGE_ID, ttl, task=task).record
    cert = certificate or authority().issue(identity.public_key, "cart")
    return PeerInfo.of(CertifiedPresence(record=record, certificate=cert), bridge_url)
