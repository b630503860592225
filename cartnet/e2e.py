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


def seal(plaintext: bytes, recipient_kx_key: bytes, sender_id: str) -> bytearray:
    """Encrypt for the holder of `recipient_kx_key` (raw X25519 public key)."""
    ephemeral = X25519PrivateKey.generate()
    eph_pub = ephemeral.public_key().public_bytes_raw()
    key = _derive(ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_kx_key)), eph_pub, recipient_kx_key)
    aead, aad, data = AESGCM(key), sender_id.encode(), memoryview(plaintext)
    count = max(1, -(-len(data) // SEGMENT))
    out = bytearray(_HEADER.size + len(data) + count * TAG)
    _HEADER.pack_into(out, 0, VERSION, eph_pub, SEGMENT)
    view, pos = memoryview(out), _HEADER.size
    for index in range(count):
        segment = data[index * SEGMENT : (index + 1) * SEGMENT]
        aead.encrypt_into(_nonce(index, index == count - 1), segment, aad, view[pos : pos + len(segment) + TAG])
        pos += len(segment) + TAG
    return out


def open_sealed(ciphertext: bytes, kx_key: X25519PrivateKey, sender_id: str) -> bytearray:
    """Decrypt a `seal` output addressed to us and sent by `sender_id`."""
    if len(ciphertext) < _HEADER.size + TAG:
        raise DecryptionError("ciphertext too short")
    version, eph_pub, segment = _HEADER.unpack_from(ciphertext)
    if version != VERSION or segment != SEGMENT:
        raise DecryptionError(f"unsupported envelope version {version} / segment {segment}")
    own_pub = kx_key.public_key().public_bytes_raw()
    aead = AESGCM(_derive(kx_key.exchange(X25519PublicKey.from_public_bytes(eph_pub)), eph_pub, own_pub))
    body, step = memoryview(ciphertext)[_HEADER.size :], SEGMENT + TAG
    count = max(1, -(-len(body) // step))
    out = bytearray(len(body) - count * TAG)
    view = memoryview(out)
    try:
        for index in range(count):
            sealed = body[index * step : (index + 1) * step]
            target = view[index * SEGMENT : index * SEGMENT + len(sealed) - TAG]
            aead.decrypt_into(_nonce(index, index == count - 1), sealed, sender_id.encode(), target)
    except (InvalidTag, ValueError):
        raise DecryptionError("authentication failed: wrong key, wrong sender, or altered/truncated data") from None
    return out


def _derive(shared: bytes, eph_pub: bytes, recipient_pub: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO + eph_pub + recipient_pub).derive(shared)


def _nonce(index: int, last: bool) -> bytes:
    return struct.pack(">QI", index, 1 if last else 0)
