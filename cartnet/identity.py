"""Node identity: an Ed25519 signing key and an X25519 key-agreement key.

The node id is the SHA-1 of the Ed25519 public key, so it lives in Kademlia's
160-bit id space and anything a node signs is self-certifying: whoever holds
the public key can check both the signature and that the id belongs to it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cartnet.files import write_atomic

log = logging.getLogger(__name__)

SIGNING_KEY_FILE = "node_ed25519.key"
KX_KEY_FILE = "node_x25519.key"

_PrivateKey = TypeVar("_PrivateKey", Ed25519PrivateKey, X25519PrivateKey)


def node_id_of(public_key: bytes) -> str:
    """The 160-bit node id (hex) that belongs to an Ed25519 public key."""
    return hashlib.sha1(public_key).hexdigest()


def verify_signature(public_key: bytes, signature: bytes, data: bytes) -> bool:
    """True when `signature` over `data` was made by the holder of `public_key`."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Identity:
    """The key pairs of one node; private halves never leave the process."""

    signing_key: Ed25519PrivateKey
    kx_key: X25519PrivateKey

    @classmethod
    def generate(cls) -> Identity:
        return cls(Ed25519PrivateKey.generate(), X25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, data_dir: Path) -> Identity:
        """Load the node's keys from its data dir, creating them (mode 0600) on first start."""
        data_dir.mkdir(parents=True, exist_ok=True)
        signing = _load_or_create(
            data_dir / SIGNING_KEY_FILE, Ed25519PrivateKey.generate, Ed25519PrivateKey.from_private_bytes
        )
        kx = _load_or_create(data_dir / KX_KEY_FILE, X25519PrivateKey.generate, X25519PrivateKey.from_private_bytes)
        return cls(signing, kx)

    @property
    def public_key(self) -> bytes:
        return self.signing_key.public_key().public_bytes_raw()

    @property
    def kx_public_key(self) -> bytes:
        return self.kx_key.public_key().public_bytes_raw()

    @property
    def node_id(self) -> str:
        return node_id_of(self.public_key)

    def sign(self, data: bytes) -> bytes:
        return self.signing_key.sign(data)


def _load_or_create(
    path: Path, generate: Callable[[], _PrivateKey], load: Callable[[bytes], _PrivateKey]
) -> _PrivateKey:
    """The key stored at `path`, else a new one written there once (0600); a concurrent first start loses gracefully."""
    if not path.exists():
        key = generate()
        raw = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        if write_atomic(path, raw, private=True, exclusive=True):
            log.info("created %s", path)
            return key
    return load(path.read_bytes())
