"""End-to-end encryption of a blob for one receiver (X25519 + HKDF + AES-256-GCM).

A relay sees only ciphertext. The sender's node id is bound as associated data,
so a ciphertext re-signed under another identity does not decrypt. The blob is
cut into segments (STREAM construction: counter nonce, last-segment flag) so any
size works and truncation or reordering is detected.
"""

from __future__ import annotations

import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = 1
SEGMENT = 1024 * 1024
TAG = 16
_HEADER = struct.Struct(">B32sI")
_INFO = b"fedcart-e2e-v1"


class DecryptionError(ValueError):
    """The ciphertext is not for us, was altered, truncated, or came from someone else."""


def seal(plaintext: bytes, recipient_kx_key: bytes, sender_id: str) -> bytes:
    """Encrypt for the holder of `recipient_kx_key` (raw X25519 public key)."""
    ephemeral = X25519PrivateKey.generate()
    eph_pub = ephemeral.public_key().public_bytes_raw()
    key = _derive(ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_kx_key)), eph_pub, recipient_kx_key)
    aead, aad = AESGCM(key), sender_id.encode()
    data = bytes(plaintext)
    count = max(1, -(-len(data) // SEGMENT))
    parts = [_HEADER.pack(VERSION, eph_pub, SEGMENT)]
    for index in range(count):
        segment = data[index * SEGMENT : (index + 1) * SEGMENT]
        parts.append(aead.encrypt(_nonce(index, index == count - 1), segment, aad))
    return b"".join(parts)


def open_sealed(ciphertext: bytes, kx_key: X25519PrivateKey, sender_id: str) -> bytes:
    """Decrypt a `seal` output addressed to us and sent by `sender_id`."""
    if len(ciphertext) < _HEADER.size + TAG:
        raise DecryptionError("ciphertext too short")
    version, eph_pub, segment = _HEADER.unpack_from(ciphertext)
    if version != VERSION or segment != SEGMENT:
        raise DecryptionError(f"unsupported envelope version {version} / segment {segment}")
    own_pub = kx_key.public_key().public_bytes_raw()
    aead = AESGCM(_derive(kx_key.exchange(X25519PublicKey.from_public_bytes(eph_pub)), eph_pub, own_pub))
    body = bytes(ciphertext)[_HEADER.size :]
    step = SEGMENT + TAG
    count = max(1, -(-len(body) // step))
    parts = []
    try:
        for index in range(count):
            parts.append(aead.decrypt(_nonce(index, index == count - 1), body[index * step : (index + 1) * step], sender_id.encode()))
    except InvalidTag:
        raise DecryptionError("authentication failed: wrong key, wrong sender, or altered/truncated data") from None
    return b"".join(parts)


def _derive(shared: bytes, eph_pub: bytes, recipient_pub: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO + eph_pub + recipient_pub).derive(shared)


def _nonce(index: int, last: bool) -> bytes:
    return struct.pack(">QI", index, 1 if last else 0)
