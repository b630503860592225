"""End-to-end encryption for one receiver (X25519 + HKDF + AES-256-GCM), whole blobs or streamed.

A relay sees only ciphertext. The sender's node id is bound as associated data,
so a ciphertext re-signed under another identity does not decrypt. A stream is
cut into segments (STREAM construction: counter nonce, last-segment flag) so any
size works and truncation or reordering is detected.

`Sealer` and `Opener` work one segment at a time, so a transfer seals each chunk
just before it is sent and opens each one as it arrives (cartnet.transfer does,
with the ephemeral key in the signed manifest); `seal` and `open_sealed` are the
same construction over a whole blob, with the ephemeral key in a header.
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
_FAILED = "authentication failed: wrong key, wrong sender, or altered/truncated/reordered data"


class DecryptionError(ValueError):
    """The ciphertext is not for us, was altered, truncated, or came from someone else."""


class Sealer:
    """Seals one stream for the holder of `recipient_kx_key` (raw X25519 public key), segment by segment.

    Segment `index` of `count` is sealed under nonce (index, index == count - 1), so an opener that
    knows the count refuses a segment moved, dropped or presented as the last one. Sealing the same
    segment again gives the same bytes (a resend after a broken connection is identical).
    """

    def __init__(self, recipient_kx_key: bytes, sender_id: str) -> None:
        ephemeral = X25519PrivateKey.generate()
        self.ephemeral_key = ephemeral.public_key().public_bytes_raw()
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_kx_key))
        self._aead = AESGCM(_derive(shared, self.ephemeral_key, recipient_kx_key))
        self._aad = sender_id.encode()

    def seal_into(
        self, index: int, count: int, plaintext: bytes | bytearray | memoryview, out: bytearray | memoryview
    ) -> None:
        """Write segment `index` of `count`, sealed, into `out` (exactly len(plaintext) + TAG bytes)."""
        self._aead.encrypt_into(_nonce(index, index == count - 1), plaintext, self._aad, out)

    def seal(self, index: int, count: int, plaintext: bytes | bytearray | memoryview) -> bytes:
        return self._aead.encrypt(_nonce(index, index == count - 1), plaintext, self._aad)


class CachedSealer(Sealer):
    """A Sealer that keeps every segment it seals, for a stream sent more than once (a second answer to the
    same receiver, a resume): sending it again costs a copy per segment, never another encryption.

    It holds the whole sealed stream, and is for one plaintext only: a segment is looked up by its position.
    """

    def __init__(self, recipient_kx_key: bytes, sender_id: str) -> None:
        super().__init__(recipient_kx_key, sender_id)
        self._segments: dict[tuple[int, int], bytes] = {}

    def seal_into(
        self, index: int, count: int, plaintext: bytes | bytearray | memoryview, out: bytearray | memoryview
    ) -> None:
        kept = self._segments.get((index, count))
        if kept is None or len(kept) != len(plaintext) + TAG:
            super().seal_into(index, count, plaintext, out)
            self._segments[(index, count)] = bytes(out)
        else:
            out[:] = kept


class Opener:
    """Opens the segments of one stream sealed for us (`kx_key`) by `sender_id` under `ephemeral_key`."""

    def __init__(self, kx_key: X25519PrivateKey, ephemeral_key: bytes, sender_id: str) -> None:
        try:
            shared = kx_key.exchange(X25519PublicKey.from_public_bytes(ephemeral_key))
        except ValueError:
            raise DecryptionError("bad ephemeral key") from None
        own_pub = kx_key.public_key().public_bytes_raw()
        self._aead = AESGCM(_derive(shared, ephemeral_key, own_pub))
        self._aad = sender_id.encode()

    def open(self, index: int, count: int, sealed: bytes | memoryview) -> bytearray:
        """Segment `index` of `count` in plaintext; DecryptionError if it is not exactly that segment."""
        if len(sealed) < TAG:
            raise DecryptionError("segment shorter than its tag")
        out = bytearray(len(sealed) - TAG)
        self.open_into(index, count, sealed, out)
        return out

    def open_into(self, index: int, count: int, sealed: bytes | memoryview, out: bytearray | memoryview) -> None:
        try:
            self._aead.decrypt_into(_nonce(index, index == count - 1), sealed, self._aad, out)
        except (InvalidTag, ValueError):
            raise DecryptionError(_FAILED) from None


def seal(plaintext: bytes | bytearray | memoryview, recipient_kx_key: bytes, sender_id: str) -> bytearray:
    """Encrypt a whole blob for the holder of `recipient_kx_key` (raw X25519 public key)."""
    sealer = Sealer(recipient_kx_key, sender_id)
    data = memoryview(plaintext)
    count = max(1, -(-len(data) // SEGMENT))
    out = bytearray(_HEADER.size + len(data) + count * TAG)
    _HEADER.pack_into(out, 0, VERSION, sealer.ephemeral_key, SEGMENT)
    view, pos = memoryview(out), _HEADER.size
    for index in range(count):
        segment = data[index * SEGMENT : (index + 1) * SEGMENT]
        sealer.seal_into(index, count, segment, view[pos : pos + len(segment) + TAG])
        pos += len(segment) + TAG
    return out


def open_sealed(ciphertext: bytes | bytearray | memoryview, kx_key: X25519PrivateKey, sender_id: str) -> bytearray:
    """Decrypt a `seal` output addressed to us and sent by `sender_id`."""
    if len(ciphertext) < _HEADER.size + TAG:
        raise DecryptionError("ciphertext too short")
    version, eph_pub, segment = _HEADER.unpack_from(ciphertext)
    if version != VERSION or segment != SEGMENT:
        raise DecryptionError(f"unsupported envelope version {version} / segment {segment}")
    opener = Opener(kx_key, eph_pub, sender_id)
    body, step = memoryview(ciphertext)[_HEADER.size :], SEGMENT + TAG
    count = max(1, -(-len(body) // step))
    out = bytearray(len(body) - count * TAG)
    view = memoryview(out)
    for index in range(count):
        sealed = body[index * step : (index + 1) * step]
        opener.open_into(index, count, sealed, view[index * SEGMENT : index * SEGMENT + len(sealed) - TAG])
    return out


def _derive(shared: bytes, eph_pub: bytes, recipient_pub: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO + eph_pub + recipient_pub).derive(shared)


def _nonce(index: int, last: bool) -> bytes:
    return struct.pack(">QI", index, 1 if last else 0)
