"""Chunked, signed, resumable transfers of large blobs over any frame channel.

The sender announces a signed manifest; the receiver answers with the chunk indices
it is missing, and only those travel. The same exchange gives resumption after a
broken connection (the receiver keeps verified chunks) and integrity: every chunk is
checked before it is kept, and the blob is delivered only when all chunks verified.
A manifest comes in one of two shapes:

* listed (`build_manifest`): the SHA-256 of every chunk and their root digest, so
  chunks are content-addressed; it takes a pass over the whole blob before the
  first chunk moves.
* streamed (`send_blob`, the default): size, chunk size and, for a blob sealed for
  the receiver, the ephemeral key of its end-to-end encryption (cartnet.e2e). Each
  chunk is made (sealed, or hashed and signed) just before it is sent, on worker
  threads a few chunks ahead of the socket, and carries its own proof: a plain chunk
  starts with the sender's Ed25519 signature over (transfer id, index, BLAKE3 of the
  chunk: a secure 256-bit hash that runs ~6x faster than SHA-256 here, so checking
  a chunk costs a fraction of sending it); a sealed chunk is one AES-GCM segment whose nonce is its index and
  last-flag, so only the sender that signed the manifest could have made it, and a
  chunk altered, moved, cut or presented as the last fails to open. The receiver
  checks (and opens) each chunk as it arrives, on worker threads, while the socket
  keeps reading, and keeps the plaintext: a resume, even under a fresh ephemeral key,
  sends only what is missing.

A `TransferHub` serves one node. It does no I/O itself: the owner passes a
`send(peer, frame)` coroutine and feeds received frames to `handle`, so it works
over a direct WebSocket as well as over routed frames through a bridge. The owner
may also pass `accept` (refuse a manifest before any chunk travels) and `check`
(refuse a complete blob on its contents, say a model that does not load): the
sender's TransferDone then carries the owner's reason. `accept` and every hook in
`admission_checks` (added later by the hub's users, say a cart's update exchange,
which refuses an `update` answering no request of its own) run before the manifest
reserves or frees any buffer space: a refused manifest costs the receiver nothing.

Buffer space belongs to the sender that asked for it. An accepted manifest reserves
its declared size only while its sender is live: attached (`fail_peer` detaches it)
and sending (a chunk at least every `idle_timeout` seconds). A partial that is not
live holds only the bytes it verified, kept for a resume until the space is needed
(or `partial_ttl` passes); one that verified nothing is dropped at once. No sender
reserves more than its share (`TransferLimits.sender_share`), so a manifest that is
never followed by chunks blocks nobody for long, and never the whole buffer.
Every refusal is said to the sender and told to `refusal_listeners`, so the owner
can name the real reason (say, in a round log) instead of a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import struct
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar, cast

from blake3 import blake3

from cartnet import e2e, frames
from cartnet.files import sha256_hex
from cartnet.identity import Identity, node_id_of, verify_signature
from cartnet.messages import AnyMessage, Error, Message, TransferDone, TransferManifest, TransferWant, signed_bytes
from cartnet.payloads import TransferMeta

log = logging.getLogger(__name__)
_T = TypeVar("_T")

SendFn = Callable[[str, bytes], Awaitable[None]]
"""(peer, frame): the hub never reads or sends a frame again once it is sent, so a WebSocket client may mask it
in place (cartnet.wsock)."""
RefusalFn = Callable[[str, TransferManifest, str], None]
"""(sender, manifest, reason): a transfer this hub refused or gave up receiving."""
AdmitFn = Callable[[str, TransferManifest], str | None]
"""(sender, manifest): None, or why the manifest is refused before it reserves any buffer space (an `Unwanted`
reason when the sender did nothing wrong)."""
CheckFn = Callable[["Received"], Awaitable[str | None]]
"""The receiver's last word on a complete, verified blob before it is delivered: None, or why it is refused."""
_HASH_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cartnet-hash")
_INLINE_HASH_BYTES = 256 * 1024
_MANIFEST_LABEL = b"fedcart-manifest-v1|"
_CHUNK_LABEL = b"fedcart-chunk-blake3-v1|"
_CHUNK_PROOF = struct.Struct(">16sI32s")
SIGNATURE_BYTES = 64
MAX_CHUNKS = 1024
"""Chunks in one transfer (a TransferWant lists at most this many missing ones)."""


@dataclass(frozen=True)
class TransferLimits:
    """Bounds a receiver enforces, so one peer cannot exhaust memory or attention."""

    chunk_size: int = 1024 * 1024
    max_chunk_size: int = 3 * 1024 * 1024
    max_size: int = 256 * 1024 * 1024
    max_concurrent_per_peer: int = 4
    max_buffered: int = 1024 * 1024 * 1024
    max_buffered_per_peer: int | None = None
    """One sender's share of `max_buffered`; None: a quarter of it, but room for one transfer of `max_size`."""
    reply_timeout: float = 30.0
    idle_timeout: float = 10.0
    """A partial transfer whose sender sent no chunk for this long stops reserving buffer space."""
    partial_ttl: float = 600.0
    """How long the verified chunks of a stalled or detached transfer are kept for a resume (if space allows)."""
    verify_window: int = 4
    """Chunks hashed (or opened) concurrently while the socket keeps reading (bounded, so memory is too)."""
    send_window: int = 3
    """Chunks a sender seals or hashes ahead of the one on the socket (bounded, so memory is too)."""
    eager_bytes: int = 64 * 1024
    """A streamed blob up to this size sent `eager` goes with its manifest (`TransferManifest.eager`), not after the
    receiver's want: a model update of a few KB saves a frame and a round trip. A receiver that refuses the manifest
    drops the chunks unread, so what a refusal wastes is bounded by this."""

    @property
    def sender_share(self) -> int:
        if self.max_buffered_per_peer is not None:
            return min(self.max_buffered_per_peer, self.max_buffered)
        return min(self.max_buffered, max(self.max_size, self.max_buffered // 4))


class TransferError(Exception):
    """A transfer failed; the message is the reason (the receiver's, or ours)."""


class TransferRefused(TransferError):
    """The receiver answered the manifest or the blob with a refusal (it was reachable and said no)."""


class Unwanted(str):
    """A refusal that blames nobody: the receiver has no use for the blob (it has enough answers already).
    Logged at info, where a refusal of a faulty or unsolicited transfer is a warning."""


@dataclass(frozen=True)
class Received:
    """A verified blob and the signed manifest that describes it.

    The chunks are kept as they came off the socket (no copy); `data` joins them
    once, on first use, for consumers that need one contiguous buffer.
    """

    peer: str
    manifest: TransferManifest
    chunks: list[bytes | bytearray | memoryview]

    @property
    def sealed(self) -> bool:
        """The blob came end-to-end encrypted for us and was opened here: `chunks` are the plaintext."""
        return self.manifest.sealed is not None

    @cached_property
    def data(self) -> bytes:
        return b"".join(self.chunks)


@dataclass
class _Outgoing:
    peer: str
    reply_timeout: float
    replies: asyncio.Queue[AnyMessage] = field(default_factory=asyncio.Queue)


@dataclass
class _Partial:
    peer: str
    manifest: TransferManifest
    parts: list[bytes | bytearray | memoryview | None]
    missing: set[int]
    expires: float
    active: float
    """When the sender last sent the manifest or a chunk (hub clock)."""
    attached: bool = True
    held: int = 0
    """Bytes of verified chunks kept."""
    verifying: int = 0
    """Chunks received and being hashed (not yet in `held`)."""
    opener: e2e.Opener | None = None
    """Opens the chunks of a sealed streamed transfer (for the manifest's ephemeral key)."""

    @property
    def empty(self) -> bool:
        """Nothing worth keeping for a resume: no chunk verified or being verified."""
        return not self.held and not self.verifying


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
    count = chunk_count(manifest)
    if count > MAX_CHUNKS:
        return f"{count} chunks exceed the limit of {MAX_CHUNKS}: use larger chunks"
    if manifest.streamed:
        if manifest.chunks or manifest.root is not None:
            return "a streamed manifest lists no chunk digests and no root"
        return None
    if manifest.sealed is not None:
        return "only a streamed manifest can be sealed"
    if len(manifest.chunks) != count:
        return "chunk count does not match size and chunk size"
    if root_digest(manifest.chunks) != manifest.root:
        return "root digest does not match the chunk digests"
    return None


def chunk_count(manifest: TransferManifest) -> int:
    return -(-manifest.total_size // manifest.chunk_size)


def stream_manifest(
    identity: Identity,
    size: int,
    purpose: str,
    meta: TransferMeta,
    chunk_size: int,
    transfer_id: str | None = None,
    sealed: bytes | None = None,
    eager: bool = False,
) -> TransferManifest:
    """A signed streamed manifest: no pass over the blob (each chunk proves itself); `sealed` is the
    ephemeral key of an end-to-end sealed stream; `eager`: the chunks follow unasked."""
    unsigned = TransferManifest(
        transfer_id=transfer_id or secrets.token_hex(16),
        sender=identity.node_id,
        sender_key=identity.public_key,
        purpose=purpose,
        total_size=size,
        chunk_size=chunk_size,
        chunks=[],
        root=None,
        meta=meta,
        streamed=True,
        sealed=sealed,
        eager=eager,
        signature=bytes(64),
    )
    return sign_manifest(identity, unsigned)


def stream_chunk(
    identity: Identity,
    manifest: TransferManifest,
    index: int,
    part: bytes | bytearray | memoryview,
    sealer: e2e.Sealer | None = None,
) -> bytes | bytearray:
    """The frame of chunk `index` of a streamed transfer whose plaintext is `part`: the sealed segment (one pass,
    straight into the frame), or the sender's signature over its BLAKE3 digest and the data. Thread-safe."""
    head = frames.chunk_header(manifest.transfer_id, index)
    if sealer is None:
        proof = identity.sign(_chunk_proof(manifest.transfer_id, index, part))
        frame = bytearray(len(head) + len(proof) + len(part))
        frame[: len(head)], frame[len(head) : len(head) + len(proof)] = head, proof
        frame[len(head) + len(proof) :] = part
        return frame
    frame = bytearray(len(head) + len(part) + e2e.TAG)
    frame[: len(head)] = head
    sealer.seal_into(index, chunk_count(manifest), part, memoryview(frame)[len(head) :])
    return frame


def _chunk_proof(transfer_id: str, index: int, data: bytes | bytearray | memoryview) -> bytes:
    """What the sender signs for one plain streamed chunk: transfer, position and content."""
    return _CHUNK_LABEL + _CHUNK_PROOF.pack(bytes.fromhex(transfer_id), index, blake3(data).digest())


def _same_content(known: TransferManifest, new: TransferManifest) -> bool:
    """May `new` resume `known`? Listed: the same chunks. Streamed: the same shape (the key of a sealed
    one may change: what was kept is plaintext)."""
    if known.streamed != new.streamed or (known.sealed is None) != (new.sealed is None):
        return False
    if not known.streamed:
        return known.chunks == new.chunks
    return (known.total_size, known.chunk_size, known.purpose, known.meta) == (
        new.total_size,
        new.chunk_size,
        new.purpose,
        new.meta,
    )


def _prove_chunk(
    manifest: TransferManifest, opener: e2e.Opener | None, index: int, count: int, data: bytes | memoryview
) -> bytes | bytearray | memoryview | str:
    """A streamed chunk checked (worker thread): its plaintext, or why it is refused."""
    if manifest.sealed is not None:
        if opener is None:
            return f"chunk {index} of a sealed transfer arrived with no key to open it"
        try:
            return opener.open(index, count, data)
        except e2e.DecryptionError:
            return f"chunk {index} failed to open: altered, cut, moved, or not sealed for us by this sender"
    view = memoryview(data)
    body = view[SIGNATURE_BYTES:]
    proof = _chunk_proof(manifest.transfer_id, index, body)
    if not verify_signature(manifest.sender_key, bytes(view[:SIGNATURE_BYTES]), proof):
        return f"chunk {index} failed its signature check"
    return body


class TransferHub:
    """Sends and receives transfers for one node over frames it does not own."""

    def __init__(
        self,
        identity: Identity,
        send: SendFn,
        limits: TransferLimits | None = None,
        accept: Callable[[str, TransferManifest], str | None] | None = None,
        check: CheckFn | None = None,
    ) -> None:
        self.identity = identity
        self.limits = limits or TransferLimits()
        self.received: asyncio.Queue[Received] = asyncio.Queue()
        self._send = send
        self._accept = accept
        self._check = check
        self._outgoing: dict[str, _Outgoing] = {}
        self._partials: dict[str, _Partial] = {}
        self._completed: OrderedDict[str, None] = OrderedDict()
        self._dropped: OrderedDict[str, str] = OrderedDict()
        self._eager_declined: OrderedDict[str, None] = OrderedDict()
        """Eager transfers refused at their manifest: their chunks are dropped unread."""
        self.refusal_listeners: list[RefusalFn] = []
        self.admission_checks: list[AdmitFn] = []
        """Asked, in order, before a manifest reserves buffer space: the first reason given refuses it."""
        self.clock: Callable[[], float] = time.monotonic
        """The hub's notion of now (monotonic seconds); tests may replace it."""
        self._verify_slots = asyncio.Semaphore(self.limits.verify_window)
        self._verifying: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        now = self.clock()
        return len(self._outgoing) + sum(self._live(p, now) for p in self._partials.values())

    def reserved(self, peer: str | None = None) -> int:
        """Buffer bytes reserved now, by every sender or by `peer`: declared sizes of live partial
        transfers, verified bytes of the others."""
        now = self.clock()
        return sum(self._reserve(p, now) for p in self._partials.values() if peer is None or p.peer == peer)

    # --- sending -------------------------------------------------------------------------

    async def send_blob(
        self,
        peer: str,
        blob: bytes | bytearray | memoryview,
        purpose: str,
        meta: TransferMeta | None = None,
        transfer_id: str | None = None,
        *,
        seal_to: bytes | e2e.Sealer | None = None,
        reply_timeout: float | None = None,
        eager: bool = False,
    ) -> str:
        """Deliver `blob` to `peer` as a streamed transfer; returns the transfer id, raises TransferError with
        the reason.

        `meta` is what the receiver reads besides the blob: for a known purpose, a
        `cartnet.payloads` model's `to_meta()`. `seal_to` (the receiver's X25519 key, from a record the
        caller verified) encrypts the blob end to end, chunk by chunk as it is sent; the receiving hub
        opens it chunk by chunk as it arrives (`Received.sealed`). A `Sealer` instead of the key seals under its
        ephemeral key (an `e2e.CachedSealer` sent the same blob again only copies what it sealed before: the
        receiver gets the same plaintext either way). Reuse `transfer_id` to resume. `reply_timeout` (default:
        the limits') bounds each wait for the receiver's next reply: an answer to a request can use less. `eager`:
        the receiver will take the blob in (it asked for it and only it), so a blob up to `eager_bytes` goes with
        the manifest; a receiver that may refuse it at its manifest is better sent the manifest alone.
        """
        sealer = e2e.Sealer(seal_to, self.identity.node_id) if isinstance(seal_to, bytes) else seal_to
        chunk_size = max(self.limits.chunk_size, -(-len(blob) // MAX_CHUNKS))
        manifest = stream_manifest(
            self.identity,
            len(blob),
            purpose,
            meta or {},
            chunk_size,
            transfer_id,
            sealer.ephemeral_key if sealer is not None else None,
            eager=eager and len(blob) <= self.limits.eager_bytes,
        )
        await self.send_manifest(peer, manifest, blob, sealer, reply_timeout)
        return manifest.transfer_id

    async def send_manifest(
        self,
        peer: str,
        manifest: TransferManifest,
        blob: bytes | bytearray | memoryview,
        sealer: e2e.Sealer | None = None,
        reply_timeout: float | None = None,
    ) -> None:
        """Run the manifest / want / chunks / done exchange for an already built manifest (and, for a sealed
        streamed one, the sealer whose ephemeral key it names). An eager manifest's chunks follow it at once; a
        receiver that resumes still sends its want, and gets what it lacks again."""
        if manifest.sealed != (sealer.ephemeral_key if sealer is not None else None):
            raise ValueError("a sealed manifest needs the sealer of its ephemeral key, and only it")
        if manifest.transfer_id in self._outgoing:
            raise TransferError(f"transfer {manifest.transfer_id} is already being sent")
        outgoing = self._outgoing[manifest.transfer_id] = _Outgoing(peer, reply_timeout or self.limits.reply_timeout)
        try:
            await self._send(peer, frames.control(manifest))
            if manifest.eager:
                await self._send_missing(peer, manifest, blob, list(range(chunk_count(manifest))), sealer)
            reply = await self._next_reply(
                outgoing, "confirmation of delivery" if manifest.eager else "the list of missing chunks"
            )
            if isinstance(reply, TransferWant):
                await self._send_missing(peer, manifest, blob, reply.missing, sealer)
                reply = await self._next_reply(outgoing, "confirmation of delivery")
            if not isinstance(reply, TransferDone):
                raise TransferError(f"unexpected reply {reply.type}")
            if not reply.ok:
                raise TransferRefused(f"receiver refused the transfer: {reply.reason}")
        finally:
            del self._outgoing[manifest.transfer_id]

    async def _send_missing(
        self,
        peer: str,
        manifest: TransferManifest,
        blob: bytes | bytearray | memoryview,
        missing: list[int],
        sealer: e2e.Sealer | None,
    ) -> None:
        if manifest.streamed:
            await self._stream_chunks(peer, manifest, blob, missing, sealer)
        else:
            await self._send_chunks(peer, manifest, blob, missing)

    async def _send_chunks(
        self, peer: str, manifest: TransferManifest, blob: bytes | bytearray | memoryview, missing: list[int]
    ) -> None:
        size, count, view = manifest.chunk_size, len(manifest.chunks), memoryview(blob)
        for index in missing:
            if index >= count:
                raise TransferError(f"receiver asked for chunk {index} of {count}")
            await self._send(peer, frames.chunk(manifest.transfer_id, index, view[index * size : (index + 1) * size]))

    async def _stream_chunks(
        self,
        peer: str,
        manifest: TransferManifest,
        blob: bytes | bytearray | memoryview,
        missing: list[int],
        sealer: e2e.Sealer | None,
    ) -> None:
        """Send the chunks the receiver asked for, each made (sealed, or hashed and signed) on a worker thread
        while up to `send_window` earlier ones are still being made and one is on the socket."""
        size, count, view = manifest.chunk_size, chunk_count(manifest), memoryview(blob)
        if any(index >= count for index in missing):
            raise TransferError(f"receiver asked for a chunk beyond the {count} there are")
        loop = asyncio.get_running_loop()
        todo = iter(missing)
        ahead: deque[asyncio.Future[bytes | bytearray]] = deque()

        def make_next() -> None:
            index = next(todo, None)
            if index is not None:
                part = view[index * size : (index + 1) * size]
                args = (self.identity, manifest, index, part, sealer)
                ahead.append(loop.run_in_executor(_HASH_POOL, stream_chunk, *args))

        try:
            for _ in range(max(1, self.limits.send_window)):
                make_next()
            while ahead:
                made = ahead.popleft()
                make_next()
                await self._send(peer, cast(bytes, await made))
        finally:
            for pending in ahead:
                pending.cancel()

    async def _next_reply(self, outgoing: _Outgoing, what: str) -> AnyMessage:
        try:
            reply = await asyncio.wait_for(outgoing.replies.get(), outgoing.reply_timeout)
        except TimeoutError:
            raise TransferError(
                f"peer {outgoing.peer[:8]} did not send {what} within {outgoing.reply_timeout}s"
            ) from None
        if isinstance(reply, Error):
            raise TransferError(reply.detail)
        return reply

    def fail_peer(self, peer: str, reason: str) -> None:
        """The peer is gone: fail our sends to it now; its partial uploads stop reserving buffer space
        (those with verified chunks are kept for a resume while space allows, the others dropped)."""
        for outgoing in self._outgoing.values():
            if outgoing.peer == peer:
                outgoing.replies.put_nowait(Error(code="peer_gone", detail=reason))
        for tid, partial in list(self._partials.items()):
            if partial.peer == peer:
                partial.attached = False
                if partial.empty:
                    self._drop(tid, f"its sender left ({reason}) before sending any chunk")

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
            self._decline_eager(manifest)
            await self._reply(peer, TransferDone(transfer_id=tid, ok=True, reason="already delivered"))
            return
        reason = check_manifest(manifest, self.limits) or self._admit(peer, manifest)
        opener = None
        if not reason and manifest.sealed is not None:
            try:
                opener = e2e.Opener(self.identity.kx_key, manifest.sealed, manifest.sender)
            except e2e.DecryptionError as exc:
                reason = f"sealed transfer: {exc}"
        if reason:
            self._decline_eager(manifest)
            await self._refuse(peer, manifest, reason)
            return
        resumed = tid in self._partials
        if resumed and self._verifying:
            await asyncio.gather(*self._verifying, return_exceptions=True)
        partial = self._partials.get(tid) or self._start(peer, manifest)
        if manifest.streamed:
            partial.manifest, partial.opener = manifest, opener
        partial.peer, partial.attached = peer, True
        partial.active = self.clock()
        partial.expires = partial.active + self.limits.partial_ttl
        if resumed or not manifest.eager:
            await self._reply(peer, TransferWant(transfer_id=tid, missing=sorted(partial.missing)))
        if not partial.missing:
            await self._complete(partial)

    def _decline_eager(self, manifest: TransferManifest) -> None:
        """An eager manifest this hub will not receive: its chunks, already on their way, are dropped unread (the
        sender was told why by the Done), not each answered with an Error."""
        if manifest.eager:
            self._eager_declined[manifest.transfer_id] = None
            while len(self._eager_declined) > 1024:
                self._eager_declined.popitem(last=False)

    def _admit(self, peer: str, manifest: TransferManifest) -> str | None:
        now = self.clock()
        self._expire(now)
        known = self._partials.get(manifest.transfer_id)
        if known is not None and not _same_content(known.manifest, manifest):
            return "transfer id reused for different content"
        reason = self._owner_admits(peer, manifest)
        if reason or (known is not None and self._live(known, now)):
            return reason
        active = sum(1 for p in self._partials.values() if p.peer == peer and self._live(p, now))
        if active >= self.limits.max_concurrent_per_peer:
            return f"too many concurrent transfers from this peer (limit {self.limits.max_concurrent_per_peer})"
        return self._make_room(peer, manifest.total_size, known, now)

    def _owner_admits(self, peer: str, manifest: TransferManifest) -> str | None:
        """The owner's word on a manifest before it reserves anything: None, or the first reason refusing it."""
        for admit in [self._accept, *self.admission_checks]:
            reason = admit(peer, manifest) if admit is not None else None
            if reason:
                return reason
        return None

    def _live(self, partial: _Partial, now: float) -> bool:
        """Attached and sending: a live partial reserves its whole declared size."""
        return partial.attached and now - partial.active < self.limits.idle_timeout

    def _reserve(self, partial: _Partial, now: float) -> int:
        return partial.manifest.total_size if self._live(partial, now) else partial.held

    def _make_room(self, peer: str, size: int, keep: _Partial | None, now: float) -> str | None:
        """Reserve `size` bytes for `peer` (for `keep`, a partial coming back to life, or a new transfer): within
        the sender's share and the whole buffer, evicting partials that are not live, the stalest first."""
        share, limit = self.limits.sender_share, self.limits.max_buffered
        others = [p for p in self._partials.values() if p is not keep]
        mine = sum(self._reserve(p, now) for p in others if p.peer == peer)
        if mine + size > share:
            mine -= self._evict([p for p in others if p.peer == peer], mine + size - share, now)
        if mine + size > share:
            return (
                f"your share of our transfer buffer is full: {mine} of {share} bytes are reserved for your "
                f"transfers, this one needs {size}"
            )
        total = sum(self._reserve(p, now) for p in self._partials.values() if p is not keep)
        if total + size > limit:
            total -= self._evict([p for p in self._partials.values() if p is not keep], total + size - limit, now)
        if total + size > limit:
            return f"our transfer buffer is full: {total} of {limit} bytes are reserved, retry later"
        return None

    def _evict(self, candidates: list[_Partial], needed: int, now: float) -> int:
        """Drop partials that are not live (the longest idle first) until `needed` bytes are free; bytes freed."""
        freed = 0
        for partial in sorted((p for p in candidates if not self._live(p, now)), key=lambda p: p.active):
            if freed >= needed:
                break
            freed += partial.held
            self._drop(partial.manifest.transfer_id, "it stalled and its buffer space was needed")
        return freed

    def _drop(self, tid: str, why: str) -> None:
        """Forget a partial transfer, remembering why (a late chunk for it is told)."""
        if self._partials.pop(tid, None) is None:
            return
        log.info("dropped partial transfer %s: %s", tid[:8], why)
        self._dropped[tid] = why
        while len(self._dropped) > 1024:
            self._dropped.popitem(last=False)

    def _start(self, peer: str, manifest: TransferManifest) -> _Partial:
        count = chunk_count(manifest)
        partial = _Partial(peer, manifest, [None] * count, set(range(count)), 0.0, self.clock())
        self._partials[manifest.transfer_id] = partial
        return partial

    def _expire(self, now: float) -> None:
        for tid in [
            tid for tid, p in self._partials.items() if p.expires < now or (p.empty and not self._live(p, now))
        ]:
            self._drop(tid, "it stalled" if self._partials[tid].held else "its sender sent no chunk in time")

    async def _on_chunk(self, peer: str, chunk: frames.Chunk) -> None:
        partial = self._partials.get(chunk.transfer_id)
        if partial is None and chunk.transfer_id in self._eager_declined:
            return
        if partial is None or partial.peer != peer:
            why = self._dropped.get(chunk.transfer_id)
            detail = (
                f"transfer {chunk.transfer_id} was dropped: {why}" if why else f"no open transfer {chunk.transfer_id}"
            )
            await self._reply(peer, Error(code="unknown_transfer", detail=detail))
            return
        now = self.clock()
        if not self._live(partial, now):
            reason = self._make_room(peer, partial.manifest.total_size, partial, now)
            if reason:
                self._drop(chunk.transfer_id, f"it stalled and no buffer space is left for it ({reason})")
                await self._refuse(peer, partial.manifest, f"the transfer stalled and was dropped: {reason}")
                return
        partial.attached, partial.active = True, now
        await self._verify_slots.acquire()
        partial.verifying += 1
        task = asyncio.create_task(self._verify_chunk(peer, partial, chunk))
        self._verifying.add(task)
        task.add_done_callback(self._verified)

    def _verified(self, task: asyncio.Task[None]) -> None:
        self._verifying.discard(task)
        self._verify_slots.release()

    async def _verify_chunk(self, peer: str, partial: _Partial, chunk: frames.Chunk) -> None:
        try:
            reason = await self._store_chunk(partial, chunk)
        finally:
            partial.verifying -= 1
        if reason:
            await self._refuse(peer, partial.manifest, reason)
        elif not partial.missing:
            await self._complete(partial)

    async def _store_chunk(self, partial: _Partial, chunk: frames.Chunk) -> str | None:
        manifest = partial.manifest
        count = chunk_count(manifest)
        if chunk.index >= count:
            return f"chunk index {chunk.index} out of range"
        if chunk.index not in partial.missing:
            return None
        start = chunk.index * manifest.chunk_size
        expected = min(manifest.chunk_size, manifest.total_size - start)
        if manifest.streamed:
            expected += e2e.TAG if manifest.sealed is not None else SIGNATURE_BYTES
        if len(chunk.data) != expected:
            return f"chunk {chunk.index} has {len(chunk.data)} bytes, expected {expected}"
        part: bytes | bytearray | memoryview
        if manifest.streamed:
            opened = await self._off_loop(
                len(chunk.data), _prove_chunk, manifest, partial.opener, chunk.index, count, chunk.data
            )
            if isinstance(opened, str):
                return opened
            part = opened
        else:
            if await self._off_loop(len(chunk.data), sha256_hex, chunk.data) != manifest.chunks[chunk.index]:
                return f"chunk {chunk.index} failed its SHA-256 check"
            part = chunk.data
        if partial.manifest.transfer_id in self._partials and chunk.index in partial.missing:
            partial.parts[chunk.index] = part
            partial.missing.discard(chunk.index)
            partial.held += len(part)
        return None

    async def _off_loop(self, size: int, work: Callable[..., _T], *args: Any) -> _T:
        """`work(*args)` on a worker thread (hashing and AES release the GIL); inline when it is small."""
        if size < _INLINE_HASH_BYTES:
            return work(*args)
        return await asyncio.get_running_loop().run_in_executor(_HASH_POOL, work, *args)

    async def _complete(self, partial: _Partial) -> None:
        """Deliver a transfer whose chunks all verified, once the owner's `check` (if any) agrees; the sender's
        Done says which (a refused blob is dropped, so resending it starts over and meets the same check)."""
        tid = partial.manifest.transfer_id
        if self._partials.pop(tid, None) is None:
            return
        parts = [part for part in partial.parts if part is not None]
        if len(parts) != len(partial.parts):
            raise TransferError(f"transfer {tid} completed with chunks missing")
        received = Received(partial.peer, partial.manifest, parts)
        reason = await self._check(received) if self._check is not None else None
        if reason:
            self._dropped[tid] = reason
            while len(self._dropped) > 1024:
                self._dropped.popitem(last=False)
            await self._refuse(partial.peer, partial.manifest, reason)
            return
        self._completed[tid] = None
        while len(self._completed) > 1024:
            self._completed.popitem(last=False)
        await self.received.put(received)
        await self._reply(partial.peer, TransferDone(transfer_id=tid, ok=True))

    async def _refuse(self, peer: str, manifest: TransferManifest, reason: str) -> None:
        """Tell the sender (and every refusal listener) that this transfer will not be delivered, and why."""
        level = logging.INFO if isinstance(reason, Unwanted) else logging.WARNING
        log.log(level, "refused transfer %s from %s: %s", manifest.transfer_id[:8], peer[:8], reason)
        for listener in self.refusal_listeners:
            listener(peer, manifest, reason)
        await self._reply(peer, TransferDone(transfer_id=manifest.transfer_id, ok=False, reason=reason))

    async def _reply(self, peer: str, message: Message) -> None:
        try:
            await self._send(peer, frames.control(message))
        except (ConnectionError, RuntimeError) as exc:
            log.debug("could not reply to %s: %s", peer[:8], exc)
