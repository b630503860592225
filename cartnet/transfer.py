"""Chunked, signed, resumable transfers of large blobs over any frame channel.

The sender announces a signed manifest (size, chunk size, the SHA-256 of every
chunk and their root digest); the receiver answers with the chunk indices it is
missing, and only those travel. The same exchange gives resumption after a
broken connection (the receiver keeps verified chunks), de-duplication, and
integrity: every chunk is checked against the signed manifest before it is kept,
and the blob is delivered only when all chunks verified.

A `TransferHub` serves one node. It does no I/O itself: the owner passes a
`send(peer, frame)` coroutine and feeds received frames to `handle`, so it works
over a direct WebSocket as well as over routed frames through a bridge.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property

from cartnet import frames
from cartnet.files import sha256_hex
from cartnet.identity import Identity, node_id_of, verify_signature
from cartnet.messages import AnyMessage, Error, Message, TransferDone, TransferManifest, TransferWant, signed_bytes
from cartnet.payloads import TransferMeta

log = logging.getLogger(__name__)

SendFn = Callable[[str, bytes], Awaitable[None]]
_HASH_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cartnet-hash")
_INLINE_HASH_BYTES = 256 * 1024
_MANIFEST_LABEL = b"fedcart-manifest-v1|"


@dataclass(frozen=True)
class TransferLimits:
    """Bounds a receiver enforces, so one peer cannot exhaust memory or attention."""

    chunk_size: int = 1024 * 1024
    max_chunk_size: int = 3 * 1024 * 1024
    max_size: int = 512 * 1024 * 1024
    max_concurrent_per_peer: int = 4
    max_buffered: int = 1024 * 1024 * 1024
    reply_timeout: float = 30.0
    partial_ttl: float = 600.0
    verify_window: int = 4
    """Chunks hashed concurrently while the socket keeps reading (bounded, so memory is too)."""


class TransferError(Exception):
    """A transfer failed; the message is the reason (the receiver's, or ours)."""


@dataclass(frozen=True)
class Received:
    """A verified blob and the signed manifest that describes it.

    The chunks are kept as they came off the socket (no copy); `data` joins them
    once, on first use, for consumers that need one contiguous buffer.
    """

    peer: str
    manifest: TransferManifest
    chunks: list[bytes | memoryview]

    @cached_property
    def data(self) -> bytes:
        return b"".join(self.chunks)


@dataclass
class _Outgoing:
    peer: str
    replies: asyncio.Queue[AnyMessage] = field(default_factory=asyncio.Queue)


@dataclass
class _Partial:
    peer: str
    manifest: TransferManifest
    parts: list[bytes | memoryview | None]
    missing: set[int]
    expires: float
    attached: bool = True


def root_digest(chunk_digests: list[str]) -> str:
    """One SHA-256 that commits to the whole blob: the hash of its chunk hashes."""
    return sha256_hex("".join(chunk_digests).encode())


async def chunk_digests(blob: bytes | bytearray, chunk_size: int) -> list[str]:
    """SHA-256 of every chunk, hashed on worker threads (hashlib releases the GIL)."""
    loop = asyncio.get_running_loop()
    view = memoryview(blob)
    jobs = [
        loop.run_in_executor(_HASH_POOL, sha256_hex, view[offset : offset + chunk_size])
        for offset in range(0, len(blob), chunk_size)
    ]
    return list(await asyncio.gather(*jobs))


def _signed_bytes(manifest: TransferManifest) -> bytes:
    return signed_bytes(manifest, _MANIFEST_LABEL)


async def build_manifest(
    identity: Identity,
    blob: bytes | bytearray,
    purpose: str,
    meta: TransferMeta,
    chunk_size: int,
    transfer_id: str | None = None,
) -> TransferManifest:
    """A signed manifest for `blob`; reuse `transfer_id` to resume an earlier transfer."""
    digests = await chunk_digests(blob, chunk_size)
    unsigned = TransferManifest(
        transfer_id=transfer_id or secrets.token_hex(16),
        sender=identity.node_id,
        sender_key=identity.public_key,
        purpose=purpose,
        total_size=len(blob),
        chunk_size=chunk_size,
        chunks=digests,
        root=root_digest(digests),
        meta=meta,
        signature=bytes(64),
    )
    return sign_manifest(identity, unsigned)


def sign_manifest(identity: Identity, manifest: TransferManifest) -> TransferManifest:
    """The manifest with the sender's signature over every other field."""
    return manifest.model_copy(update={"signature": identity.sign(_signed_bytes(manifest))})


def check_manifest(manifest: TransferManifest, limits: TransferLimits) -> str | None:
    """None when the manifest is acceptable, else the reason it is refused."""
    if node_id_of(manifest.sender_key) != manifest.sender:
        return "sender id does not match sender key"
    if not verify_signature(manifest.sender_key, manifest.signature, _signed_bytes(manifest)):
        return "bad manifest signature"
    if manifest.total_size > limits.max_size:
        return f"declared size {manifest.total_size} exceeds the limit of {limits.max_size} bytes"
    if manifest.chunk_size > limits.max_chunk_size:
        return f"chunk size {manifest.chunk_size} exceeds the limit of {limits.max_chunk_size} bytes"
    if len(manifest.chunks) != -(-manifest.total_size // manifest.chunk_size):
        return "chunk count does not match size and chunk size"
    if root_digest(manifest.chunks) != manifest.root:
        return "root digest does not match the chunk digests"
    return None


class TransferHub:
    """Sends and receives transfers for one node over frames it does not own."""

    def __init__(
        self,
        identity: Identity,
        send: SendFn,
        limits: TransferLimits | None = None,
        accept: Callable[[str, TransferManifest], str | None] | None = None,
    ) -> None:
        self.identity = identity
        self.limits = limits or TransferLimits()
        self.received: asyncio.Queue[Received] = asyncio.Queue()
        self._send = send
        self._accept = accept
        self._outgoing: dict[str, _Outgoing] = {}
        self._partials: dict[str, _Partial] = {}
        self._completed: OrderedDict[str, None] = OrderedDict()
        self._verify_slots = asyncio.Semaphore(self.limits.verify_window)
        self._verifying: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._outgoing) + sum(p.attached for p in self._partials.values())

    # --- sending -------------------------------------------------------------------------

    async def send_blob(
        self,
        peer: str,
        blob: bytes | bytearray,
        purpose: str,
        meta: TransferMeta | None = None,
        transfer_id: str | None = None,
    ) -> str:
        """Deliver `blob` to `peer`; returns the transfer id, raises TransferError with the reason.

        `meta` is what the receiver reads besides the blob: for a known purpose, a
        `cartnet.payloads` model's `to_meta()`.
        """
        manifest = await build_manifest(self.identity, blob, purpose, meta or {}, self.limits.chunk_size, transfer_id)
        await self.send_manifest(peer, manifest, blob)
        return manifest.transfer_id

    async def send_manifest(self, peer: str, manifest: TransferManifest, blob: bytes | bytearray) -> None:
        """Run the manifest / want / chunks / done exchange for an already built manifest."""
        if manifest.transfer_id in self._outgoing:
            raise TransferError(f"transfer {manifest.transfer_id} is already being sent")
        outgoing = self._outgoing[manifest.transfer_id] = _Outgoing(peer)
        try:
            await self._send(peer, frames.control(manifest))
            reply = await self._next_reply(outgoing, "the list of missing chunks")
            if isinstance(reply, TransferWant):
                await self._send_chunks(peer, manifest, blob, reply.missing)
                reply = await self._next_reply(outgoing, "confirmation of delivery")
            if not isinstance(reply, TransferDone):
                raise TransferError(f"unexpected reply {reply.type}")
            if not reply.ok:
                raise TransferError(f"receiver refused the transfer: {reply.reason}")
        finally:
            del self._outgoing[manifest.transfer_id]

    async def _send_chunks(
        self, peer: str, manifest: TransferManifest, blob: bytes | bytearray, missing: list[int]
    ) -> None:
        size, count, view = manifest.chunk_size, len(manifest.chunks), memoryview(blob)
        for index in missing:
            if index >= count:
                raise TransferError(f"receiver asked for chunk {index} of {count}")
            await self._send(peer, frames.chunk(manifest.transfer_id, index, view[index * size : (index + 1) * size]))

    async def _next_reply(self, outgoing: _Outgoing, what: str) -> AnyMessage:
        try:
            reply = await asyncio.wait_for(outgoing.replies.get(), self.limits.reply_timeout)
        except TimeoutError:
            raise TransferError(
                f"peer {outgoing.peer[:8]} did not send {what} within {self.limits.reply_timeout}s"
            ) from None
        if isinstance(reply, Error):
            raise TransferError(reply.detail)
        return reply

    def fail_peer(self, peer: str, reason: str) -> None:
        """The peer is gone: fail our sends to it now, keep its partial uploads for a resume."""
        for outgoing in self._outgoing.values():
            if outgoing.peer == peer:
                outgoing.replies.put_nowait(Error(code="peer_gone", detail=reason))
        for partial in self._partials.values():
            if partial.peer == peer:
                partial.attached = False

    # --- receiving -----------------------------------------------------------------------

    async def handle(self, peer: str, item: AnyMessage | frames.Chunk) -> bool:
        """Consume a transfer frame from `peer`; False when `item` is not about transfers."""
        if isinstance(item, frames.Chunk):
            await self._on_chunk(peer, item)
        elif isinstance(item, TransferManifest):
            await self._on_manifest(peer, item)
        elif isinstance(item, (TransferWant, TransferDone)) and item.transfer_id in self._outgoing:
            self._outgoing[item.transfer_id].replies.put_nowait(item)
        else:
            return False
        return True

    async def _on_manifest(self, peer: str, manifest: TransferManifest) -> None:
        tid = manifest.transfer_id
        if tid in self._completed:
            await self._reply(peer, TransferDone(transfer_id=tid, ok=True, reason="already delivered"))
            return
        reason = check_manifest(manifest, self.limits) or self._admit(peer, manifest)
        if reason:
            log.warning("refused transfer %s from %s: %s", tid[:8], peer[:8], reason)
            await self._reply(peer, TransferDone(transfer_id=tid, ok=False, reason=reason))
            return
        if tid in self._partials and self._verifying:
            await asyncio.gather(*self._verifying, return_exceptions=True)
        partial = self._partials.get(tid) or self._start(peer, manifest)
        partial.peer, partial.attached = peer, True
        partial.expires = time.monotonic() + self.limits.partial_ttl
        await self._reply(peer, TransferWant(transfer_id=tid, missing=sorted(partial.missing)))
        if not partial.missing:
            await self._complete(partial)

    def _admit(self, peer: str, manifest: TransferManifest) -> str | None:
        self._expire()
        known = self._partials.get(manifest.transfer_id)
        if known is not None:
            return None if known.manifest.chunks == manifest.chunks else "transfer id reused for different content"
        active = sum(1 for p in self._partials.values() if p.peer == peer and p.attached)
        if active >= self.limits.max_concurrent_per_peer:
            return f"too many concurrent transfers from this peer (limit {self.limits.max_concurrent_per_peer})"
        buffered = sum(p.manifest.total_size for p in self._partials.values())
        if buffered + manifest.total_size > self.limits.max_buffered:
            return "receiver is out of transfer buffer space, retry later"
        return self._accept(peer, manifest) if self._accept else None

    def _start(self, peer: str, manifest: TransferManifest) -> _Partial:
        count = len(manifest.chunks)
        partial = _Partial(peer, manifest, [None] * count, set(range(count)), 0.0)
        self._partials[manifest.transfer_id] = partial
        return partial

    def _expire(self) -> None:
        now = time.monotonic()
        for tid in [tid for tid, p in self._partials.items() if p.expires < now]:
            log.info("dropping stale partial transfer %s", tid[:8])
            del self._partials[tid]

    async def _on_chunk(self, peer: str, chunk: frames.Chunk) -> None:
        partial = self._partials.get(chunk.transfer_id)
        if partial is None or partial.peer != peer:
            await self._reply(peer, Error(code="unknown_transfer", detail=f"no open transfer {chunk.transfer_id}"))
            return
        await self._verify_slots.acquire()
        task = asyncio.create_task(self._verify_chunk(peer, partial, chunk))
        self._verifying.add(task)
        task.add_done_callback(self._verified)

    def _verified(self, task: asyncio.Task[None]) -> None:
        self._verifying.discard(task)
        self._verify_slots.release()

    async def _verify_chunk(self, peer: str, partial: _Partial, chunk: frames.Chunk) -> None:
        reason = await self._store_chunk(partial, chunk)
        if reason:
            log.warning("transfer %s from %s: %s", chunk.transfer_id[:8], peer[:8], reason)
            await self._reply(peer, TransferDone(transfer_id=chunk.transfer_id, ok=False, reason=reason))
        elif not partial.missing:
            await self._complete(partial)

    async def _store_chunk(self, partial: _Partial, chunk: frames.Chunk) -> str | None:
        manifest = partial.manifest
        if chunk.index >= len(manifest.chunks):
            return f"chunk index {chunk.index} out of range"
        if chunk.index not in partial.missing:
            return None
        start = chunk.index * manifest.chunk_size
        expected = min(manifest.chunk_size, manifest.total_size - start)
        if len(chunk.data) != expected:
            return f"chunk {chunk.index} has {len(chunk.data)} bytes, expected {expected}"
        digest = await self._digest(chunk.data)
        if digest != manifest.chunks[chunk.index]:
            return f"chunk {chunk.index} failed its SHA-256 check"
        if partial.manifest.transfer_id in self._partials:
            partial.parts[chunk.index] = chunk.data
            partial.missing.discard(chunk.index)
        return None

    async def _digest(self, data: bytes | memoryview) -> str:
        if len(data) < _INLINE_HASH_BYTES:
            return sha256_hex(data)
        return await asyncio.get_running_loop().run_in_executor(_HASH_POOL, sha256_hex, data)

    async def _complete(self, partial: _Partial) -> None:
        tid = partial.manifest.transfer_id
        if self._partials.pop(tid, None) is None:
            return
        self._completed[tid] = None
        while len(self._completed) > 1024:
            self._completed.popitem(last=False)
        parts = [part for part in partial.parts if part is not None]
        if len(parts) != len(partial.parts):
            raise TransferError(f"transfer {tid} completed with chunks missing")
        await self.received.put(Received(partial.peer, partial.manifest, parts))
        await self._reply(partial.peer, TransferDone(transfer_id=tid, ok=True))

    async def _reply(self, peer: str, message: Message) -> None:
        try:
            await self._send(peer, frames.control(message))
        except (ConnectionError, RuntimeError) as exc:
            log.debug("could not reply to %s: %s", peer[:8], exc)
