"""Transfers over a real aiohttp WebSocket on 127.0.0.1: integrity, resumption, and every refusal, for listed
manifests and for streamed transfers (signed or end-to-end sealed chunks)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os

import pytest

from cartnet import e2e, frames
from cartnet.identity import Identity
from cartnet.messages import Error, TransferDone, TransferWant
from cartnet.transfer import (
    TransferError,
    TransferHub,
    TransferLimits,
    build_manifest,
    sign_manifest,
    stream_chunk,
    stream_manifest,
)

from .wspair import connect, receiver_server

DEADLINE = 60


async def next_received(receiver, what: str = "a delivered transfer"):
    try:
        return await asyncio.wait_for(receiver.hub.received.get(), DEADLINE)
    except TimeoutError:
        pytest.fail(f"{what} never arrived within {DEADLINE}s")


async def test_50mb_transfer_arrives_intact():
    blob = os.urandom(50 * 1024 * 1024)
    async with receiver_server() as receiver:
        async with connect(receiver.url, Identity.generate()) as sender:
            tid = await sender.hub.send_blob("client", blob, "test", {"k": "v"})
        got = await next_received(receiver)
    assert got.manifest.transfer_id == tid
    assert got.manifest.meta == {"k": "v"}
    assert hashlib.sha256(got.data).digest() == hashlib.sha256(blob).digest()


async def test_broken_transfer_resumes_from_last_chunk():
    identity = Identity.generate()
    blob = os.urandom(8 * 1024 * 1024 + 123)
    async with receiver_server() as receiver:
        manifest = await build_manifest(identity, blob, "test", {}, 1024 * 1024)
        async with connect(receiver.url, identity) as sender:
            await sender.ws.send_bytes(frames.control(manifest))
            want = await asyncio.wait_for(sender.other.get(), DEADLINE)
            assert isinstance(want, TransferWant) and len(want.missing) == 9
            for index in range(4):
                await sender.ws.send_bytes(
                    frames.chunk(manifest.transfer_id, index, blob[index << 20 : (index + 1) << 20])
                )
        await asyncio.wait_for(receiver.closed.get(), DEADLINE)
        sent_after_resume: list[int] = []
        async with connect(receiver.url, identity) as sender:
            original = sender.hub._send_chunks

            async def record(peer, m, b, missing):
                sent_after_resume.extend(missing)
                await original(peer, m, b, missing)

            sender.hub._send_chunks = record
            await sender.hub.send_manifest("client", manifest, blob)
        got = await next_received(receiver)
    assert bytes(got.data) == blob
    assert sent_after_resume == [4, 5, 6, 7, 8]


def _flip(data: bytes) -> bytes:
    return bytes([data[0] ^ 0xFF]) + data[1:]


async def _corrupt_chunk(sender, identity, blob):
    manifest = await build_manifest(identity, blob, "test", {}, 1024 * 1024)
    await sender.ws.send_bytes(frames.control(manifest))
    await sender.other.get()
    await sender.ws.send_bytes(frames.chunk(manifest.transfer_id, 0, _flip(blob[: 1 << 20])))


async def _wrong_hash(sender, identity, blob):
    manifest = await build_manifest(identity, _flip(blob), "test", {}, 1024 * 1024)
    await sender.ws.send_bytes(frames.control(manifest))
    await sender.other.get()
    await sender.ws.send_bytes(frames.chunk(manifest.transfer_id, 0, blob[: 1 << 20]))


async def _wrong_signature(sender, identity, blob):
    manifest = await build_manifest(identity, blob, "test", {}, 1024 * 1024)
    forged = manifest.model_copy(update={"signature": Identity.generate().sign(b"x")})
    await sender.ws.send_bytes(frames.control(forged))


async def _truncated_header(sender, identity, blob):
    await sender.ws.send_bytes(frames.CHUNK + b"\x01\x02\x03")


async def _oversized(sender, identity, blob):
    manifest = await build_manifest(identity, blob, "test", {}, 1024 * 1024)
    big = sign_manifest(identity, manifest.model_copy(update={"total_size": 10**12}))
    await sender.ws.send_bytes(frames.control(big))


FAULTS = {
    "corrupted chunk": (_corrupt_chunk, "failed its SHA-256 check"),
    "wrong hash": (_wrong_hash, "failed its SHA-256 check"),
    "wrong signature": (_wrong_signature, "bad manifest signature"),
    "truncated header": (_truncated_header, "truncated chunk header"),
    "oversized declared size": (_oversized, "exceeds the limit"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_bad_transfer_is_refused_and_connection_carries_on(fault):
    inject, reason = FAULTS[fault]
    identity = Identity.generate()
    blob = os.urandom(2 * 1024 * 1024)
    async with receiver_server() as receiver:
        async with connect(receiver.url, identity) as sender:
            await inject(sender, identity, blob)
            reply = await asyncio.wait_for(_first_refusal(sender), DEADLINE)
            assert reason in reply
            good = os.urandom(3 * 1024 * 1024)
            await sender.hub.send_blob("client", good, "test")
        got = await next_received(receiver, "the good transfer after the fault")
    assert bytes(got.data) == good


async def _first_refusal(sender) -> str:
    while True:
        item = await sender.other.get()
        if isinstance(item, Error):
            return item.detail
        if getattr(item, "ok", True) is False:
            return item.reason


async def test_refusal_reaches_send_blob_as_transfer_error():
    limits = TransferLimits(max_size=1024)
    async with receiver_server(limits) as receiver, connect(receiver.url, Identity.generate()) as sender:
        with pytest.raises(TransferError, match="exceeds the limit of 1024"):
            await sender.hub.send_blob("client", os.urandom(4096), "test")


async def test_concurrent_transfer_limit_per_peer():
    limits = TransferLimits(max_concurrent_per_peer=1)
    identity = Identity.generate()
    async with receiver_server(limits) as receiver, connect(receiver.url, identity) as sender:
        first = await build_manifest(identity, os.urandom(4 << 20), "test", {}, 1 << 20)
        await sender.ws.send_bytes(frames.control(first))
        await sender.other.get()
        with pytest.raises(TransferError, match="too many concurrent transfers"):
            await sender.hub.send_blob("client", os.urandom(1 << 20), "test")


async def test_sender_fails_promptly_when_peer_goes_silent():
    limits = dataclasses.replace(TransferLimits(), reply_timeout=0.5)
    async with receiver_server() as receiver:
        receiver.hub.handle = _ignore
        async with connect(receiver.url, Identity.generate(), limits) as sender:
            with pytest.raises(TransferError, match="did not send"):
                await sender.hub.send_blob("client", b"abc", "test")


async def test_one_send_may_wait_less_than_the_limits_say():
    """An answer to a request waits `reply_timeout` of its own (the exchange: 10 s), not the hub's 30 s default."""
    async with receiver_server() as receiver:
        receiver.hub.handle = _ignore
        async with connect(receiver.url, Identity.generate()) as sender:
            assert sender.hub.limits.reply_timeout == 30.0
            with pytest.raises(TransferError, match=r"did not send .* within 0.3s"):
                await asyncio.wait_for(sender.hub.send_blob("client", b"abc", "test", reply_timeout=0.3), 10.0)


async def _ignore(peer, item) -> bool:
    return True


# --- buffer space belongs to its sender (issue 14, finding 3) --------------------------------------

MIB = 1 << 20


class Hub:
    """A receiving hub without sockets: replies are collected per peer, time is a number the test moves."""

    def __init__(self, limits: TransferLimits) -> None:
        self.now = 1000.0
        self.replies: dict[str, list] = {}
        self.refusals: list[tuple[str, str]] = []
        self.hub = TransferHub(Identity.generate(), self._send, limits)
        self.hub.clock = lambda: self.now
        self.hub.refusal_listeners.append(lambda peer, _manifest, reason: self.refusals.append((peer, reason)))

    async def _send(self, peer: str, frame: bytes) -> None:
        self.replies.setdefault(peer, []).append(frames.parse(frame))

    async def offer(self, sender: Identity, size: int):
        """Send a manifest of `size` bytes from `sender`; the hub's answer (TransferWant, or TransferDone refusing)."""
        manifest = await build_manifest(sender, bytes(size), "test", {}, MIB)
        await self.hub.handle(sender.node_id, manifest)
        return manifest, self.replies[sender.node_id][-1]


async def test_a_manifest_never_followed_by_chunks_stops_reserving_once_its_sender_idles():
    limits = TransferLimits(max_size=8 * MIB, max_buffered=8 * MIB, max_buffered_per_peer=8 * MIB, idle_timeout=5.0)
    receiver, squatter, honest = Hub(limits), Identity.generate(), Identity.generate()
    _, want = await receiver.offer(squatter, 8 * MIB)
    assert isinstance(want, TransferWant) and receiver.hub.reserved(squatter.node_id) == 8 * MIB
    _, refused = await receiver.offer(honest, MIB)
    assert isinstance(refused, TransferDone) and not refused.ok
    assert refused.reason.startswith("our transfer buffer is full"), refused.reason
    assert receiver.refusals == [(honest.node_id, refused.reason)], "listeners hear every refusal"
    receiver.now += limits.idle_timeout
    assert receiver.hub.reserved(squatter.node_id) == 0, "an idle sender reserves nothing"
    _, want = await receiver.offer(honest, MIB)
    assert isinstance(want, TransferWant)


async def test_a_departed_sender_releases_its_reservations_at_once():
    limits = TransferLimits(max_size=8 * MIB, max_buffered=8 * MIB, max_buffered_per_peer=8 * MIB)
    receiver, squatter, honest = Hub(limits), Identity.generate(), Identity.generate()
    await receiver.offer(squatter, 8 * MIB)
    receiver.hub.fail_peer(squatter.node_id, "disconnected without saying goodbye")
    assert receiver.hub.reserved() == 0
    _, want = await receiver.offer(honest, 8 * MIB)
    assert isinstance(want, TransferWant)


async def test_one_sender_gets_no_more_than_its_share():
    limits = TransferLimits(max_size=4 * MIB, max_buffered=16 * MIB)
    assert limits.sender_share == 4 * MIB, "a quarter of the buffer, at least one largest transfer"
    receiver, squatter, honest = Hub(limits), Identity.generate(), Identity.generate()
    _, want = await receiver.offer(squatter, 4 * MIB)
    assert isinstance(want, TransferWant)
    _, refused = await receiver.offer(squatter, 4 * MIB)
    assert isinstance(refused, TransferDone) and refused.reason.startswith("your share of our transfer buffer is full")
    _, want = await receiver.offer(honest, 4 * MIB)
    assert isinstance(want, TransferWant), "the others' space is untouched"
    assert receiver.hub.reserved(squatter.node_id) == 4 * MIB


async def test_a_stalled_transfer_keeps_its_chunks_until_the_space_is_needed():
    limits = TransferLimits(max_size=4 * MIB, max_buffered=4 * MIB, max_buffered_per_peer=4 * MIB, idle_timeout=5.0)
    receiver, slow, honest = Hub(limits), Identity.generate(), Identity.generate()
    blob = os.urandom(4 * MIB)
    manifest = await build_manifest(slow, blob, "test", {}, MIB)
    await receiver.hub.handle(slow.node_id, manifest)
    await receiver.hub.handle(slow.node_id, frames.Chunk(manifest.transfer_id, 0, blob[:MIB]))
    await asyncio.gather(*receiver.hub._verifying)
    receiver.now += limits.idle_timeout
    assert receiver.hub.reserved(slow.node_id) == MIB, "a stalled transfer holds only what it verified"
    _, want = await receiver.offer(honest, 4 * MIB)
    assert isinstance(want, TransferWant), "the stalled transfer made room"
    await receiver.hub.handle(slow.node_id, frames.Chunk(manifest.transfer_id, 1, blob[MIB : 2 * MIB]))
    late = receiver.replies[slow.node_id][-1]
    assert isinstance(late, Error) and "was dropped: it stalled and its buffer space was needed" in late.detail


async def test_an_admission_check_refuses_a_manifest_before_it_reserves_or_evicts_anything():
    """The owner's admission checks (a cart's exchange: an `update` answering no request of its own) run before a
    manifest reserves buffer space or evicts a stalled partial: a refused manifest costs the receiver nothing, and
    its sender hears the owner's reason."""
    limits = TransferLimits(max_size=4 * MIB, max_buffered=4 * MIB, max_buffered_per_peer=4 * MIB, idle_timeout=5.0)
    receiver, slow, squatter = Hub(limits), Identity.generate(), Identity.generate()
    receiver.hub.admission_checks.append(
        lambda peer, manifest: "answers no request of ours" if peer == squatter.node_id else None
    )
    blob = os.urandom(4 * MIB)
    manifest = await build_manifest(slow, blob, "test", {}, MIB)
    await receiver.hub.handle(slow.node_id, manifest)
    await receiver.hub.handle(slow.node_id, frames.Chunk(manifest.transfer_id, 0, blob[:MIB]))
    await asyncio.gather(*receiver.hub._verifying)
    receiver.now += limits.idle_timeout
    _, refused = await receiver.offer(squatter, 4 * MIB)
    assert isinstance(refused, TransferDone) and not refused.ok and refused.reason == "answers no request of ours"
    assert receiver.refusals == [(squatter.node_id, "answers no request of ours")]
    assert receiver.hub.reserved(squatter.node_id) == 0
    assert receiver.hub.reserved(slow.node_id) == MIB, "the stalled partial was not evicted for a refused manifest"
    await receiver.hub.handle(slow.node_id, manifest)
    assert isinstance(receiver.replies[slow.node_id][-1], TransferWant), "an admitted sender resumes as before"
    assert receiver.replies[slow.node_id][-1].missing == [1, 2, 3]


# --- streamed transfers: each chunk proves itself as it arrives; sealed ones are opened as they arrive (issue 19) ---


def _stream(sender: Identity, receiver: Identity, blob: bytes, sealed: bool, transfer_id: str | None = None):
    """A streamed manifest from `sender` (sealed for `receiver`, or plain) and a maker of its chunk frames."""
    sealer = e2e.Sealer(receiver.kx_public_key, sender.node_id) if sealed else None
    key = sealer.ephemeral_key if sealer else None
    manifest = stream_manifest(sender, len(blob), "test", {}, MIB, transfer_id, key)

    def chunk(index: int, data: bytes | None = None) -> bytes:
        part = blob[index * MIB : (index + 1) * MIB] if data is None else data
        return bytes(stream_chunk(sender, manifest, index, part, sealer))

    return manifest, sealer, chunk


@pytest.mark.parametrize("sealed", [False, True], ids=["signed", "sealed"])
async def test_streamed_transfer_arrives_intact(sealed):
    blob = os.urandom(5 * MIB + 321)
    async with receiver_server() as receiver:
        async with connect(receiver.url, Identity.generate()) as sender:
            seal_to = receiver.identity.kx_public_key if sealed else None
            tid = await sender.hub.send_blob("client", blob, "test", {"k": "v"}, seal_to=seal_to)
        got = await next_received(receiver)
    assert got.manifest.transfer_id == tid and got.manifest.streamed and got.manifest.chunks == []
    assert got.sealed is sealed and got.manifest.meta == {"k": "v"}
    assert got.data == blob, "the receiver holds the plaintext"


@pytest.mark.parametrize("sealed", [False, True], ids=["signed", "sealed"])
async def test_streamed_transfer_resumes_with_the_missing_chunks_only(sealed):
    """A broken streamed transfer resumes: a sealed one even under a fresh ephemeral key (the receiver kept plaintext)."""
    identity = Identity.generate()
    blob = os.urandom(6 * MIB + 99)
    async with receiver_server() as receiver:
        manifest, _, chunk = _stream(identity, receiver.identity, blob, sealed)
        async with connect(receiver.url, identity) as sender:
            await sender.ws.send_bytes(frames.control(manifest))
            want = await asyncio.wait_for(sender.other.get(), DEADLINE)
            assert isinstance(want, TransferWant) and want.missing == list(range(7))
            for index in (0, 1, 3):
                await sender.ws.send_bytes(chunk(index))
        await asyncio.wait_for(receiver.closed.get(), DEADLINE)
        asked: list[int] = []
        async with connect(receiver.url, identity) as sender:
            original = sender.hub._stream_chunks

            async def record(peer, m, b, missing, sealer):
                asked.extend(missing)
                await original(peer, m, b, missing, sealer)

            sender.hub._stream_chunks = record
            seal_to = receiver.identity.kx_public_key if sealed else None
            await sender.hub.send_blob("client", blob, "test", transfer_id=manifest.transfer_id, seal_to=seal_to)
        got = await next_received(receiver)
    assert got.data == blob
    assert asked == [2, 4, 5, 6]


def _swap_tail(frame: bytes) -> bytes:
    return frame[:-1] + bytes([frame[-1] ^ 1])


async def _streamed_fault(sender, identity, receiver_identity, sealed, fault):
    """Announce a 3-chunk streamed transfer and send one bad chunk frame, as `fault` says."""
    blob = os.urandom(3 * MIB)
    manifest, sealer, chunk = _stream(identity, receiver_identity, blob, sealed)
    await sender.ws.send_bytes(frames.control(manifest))
    await sender.other.get()
    if fault == "altered":
        bad = _swap_tail(chunk(0))
    elif fault == "cut":
        bad = chunk(0)[:-1]
    elif fault == "reordered":
        bad = frames.chunk(manifest.transfer_id, 0, chunk(1)[frames.CHUNK_HEAD :])
    elif fault == "presented as last":
        assert sealer is not None
        bad = frames.chunk(manifest.transfer_id, 0, sealer.seal(0, 1, blob[:MIB]))  # same key, flagged as the last
    elif fault == "another sender":
        _, _, forged = _stream(Identity.generate(), receiver_identity, blob, sealed, manifest.transfer_id)
        bad = forged(0)
    else:  # another transfer's chunk replayed
        _, _, replayed = _stream(identity, receiver_identity, blob, sealed)
        bad = frames.chunk(manifest.transfer_id, 0, replayed(0)[frames.CHUNK_HEAD :])
    await sender.ws.send_bytes(bad)


STREAM_FAULTS = ["altered", "cut", "reordered", "presented as last", "another sender", "replayed from another transfer"]


@pytest.mark.parametrize(
    ("sealed", "fault"),
    [(False, fault) for fault in STREAM_FAULTS if fault != "presented as last"] + [(True, f) for f in STREAM_FAULTS],
    ids=[f"signed-{f}" for f in STREAM_FAULTS if f != "presented as last"] + [f"sealed-{f}" for f in STREAM_FAULTS],
)
async def test_bad_streamed_chunk_is_refused_and_connection_carries_on(sealed, fault):
    """Every chunk is checked on its own as it arrives. (A signed chunk has no last-flag to fake: its count
    comes from the signed manifest, and its signature covers transfer, index and content.)"""
    identity = Identity.generate()
    async with receiver_server() as receiver:
        async with connect(receiver.url, identity) as sender:
            await _streamed_fault(sender, identity, receiver.identity, sealed, fault)
            reason = await asyncio.wait_for(_first_refusal(sender), DEADLINE)
            expected = "has 1048" if fault == "cut" else ("failed to open" if sealed else "failed its signature check")
            assert expected in reason, reason
            good = os.urandom(2 * MIB + 5)
            await sender.hub.send_blob("client", good, "test", seal_to=receiver.identity.kx_public_key)
        got = await next_received(receiver, "the good transfer after the fault")
    assert got.data == good and got.sealed
    assert receiver.hub.received.empty(), "nothing from the bad transfer was delivered"


class _CountingAead:
    """An AEAD that counts the plaintext bytes it encrypts."""

    def __init__(self, aead) -> None:
        self.aead, self.encrypted = aead, 0

    def encrypt_into(self, nonce, data, aad, out) -> None:
        self.encrypted += len(data)
        self.aead.encrypt_into(nonce, data, aad, out)


async def test_cached_sealer_sends_a_blob_twice_and_seals_each_chunk_once():
    """A second transfer of the same blob through one CachedSealer (a second answer to one requester) copies
    what the first sealed; the receiver opens both."""
    blob = os.urandom(3 * MIB + 7)
    async with receiver_server() as receiver, connect(receiver.url, Identity.generate()) as sender:
        sealer = e2e.CachedSealer(receiver.identity.kx_public_key, sender.hub.identity.node_id)
        sealer._aead = counting = _CountingAead(sealer._aead)  # type: ignore[assignment]
        for _ in range(2):
            await sender.hub.send_blob("client", blob, "test", seal_to=sealer)
            got = await next_received(receiver)
            assert got.sealed and got.data == blob
    assert counting.encrypted == len(blob), "each chunk was encrypted once, for the first transfer only"


async def test_sealed_stream_for_someone_else_is_refused():
    async with receiver_server() as receiver, connect(receiver.url, Identity.generate()) as sender:
        with pytest.raises(TransferError, match="failed to open"):
            await sender.hub.send_blob("client", os.urandom(MIB), "test", seal_to=Identity.generate().kx_public_key)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"chunks": ["0" * 64]}, "lists no chunk digests"),
        ({"streamed": False, "root": None}, "only a streamed manifest can be sealed"),
        ({"total_size": 2000 * MIB, "chunk_size": MIB}, "exceed the limit"),
        ({"sealed": bytes(32)}, "bad ephemeral key"),
    ],
    ids=["streamed with digests", "listed but sealed", "too many chunks", "low-order ephemeral key"],
)
async def test_malformed_streamed_manifest_is_refused(change, reason):
    limits = TransferLimits(max_size=4096 * MIB)
    receiver, sender = Hub(limits), Identity.generate()
    manifest, _, _ = _stream(sender, receiver.hub.identity, bytes(MIB), sealed=True)
    bad = sign_manifest(sender, manifest.model_copy(update=change))
    await receiver.hub.handle(sender.node_id, bad)
    refused = receiver.replies[sender.node_id][-1]
    assert isinstance(refused, TransferDone) and not refused.ok and reason in refused.reason, refused


async def test_streamed_transfer_counts_against_limits_like_a_listed_one():
    limits = TransferLimits(max_size=4 * MIB, max_buffered=4 * MIB, max_buffered_per_peer=4 * MIB)
    receiver, squatter, honest = Hub(limits), Identity.generate(), Identity.generate()
    manifest, _, _ = _stream(squatter, receiver.hub.identity, bytes(4 * MIB), sealed=False)
    await receiver.hub.handle(squatter.node_id, manifest)
    assert receiver.hub.reserved(squatter.node_id) == 4 * MIB
    other, _, _ = _stream(honest, receiver.hub.identity, bytes(MIB), sealed=True)
    await receiver.hub.handle(honest.node_id, other)
    refused = receiver.replies[honest.node_id][-1]
    assert isinstance(refused, TransferDone) and refused.reason.startswith("our transfer buffer is full")
    too_big, _, _ = _stream(honest, receiver.hub.identity, bytes(5 * MIB), sealed=True)
    await receiver.hub.handle(honest.node_id, too_big)
    assert "exceeds the limit" in receiver.replies[honest.node_id][-1].reason


# --- eager transfers: a small blob goes with its manifest, unasked ---------------------------------------------


class Tap:
    """What the receiving hub sends back to one sender, by message type."""

    def __init__(self, receiver) -> None:
        self.sent: list[str] = []
        original = receiver._send

        async def send(peer: str, frame: bytes) -> None:
            self.sent.append(type(frames.parse(frame)).__name__)
            await original(peer, frame)

        receiver.hub._send = send


@pytest.mark.parametrize("sealed", [False, True], ids=["signed", "sealed"])
async def test_a_small_blob_goes_with_its_manifest_and_the_receiver_asks_for_nothing(sealed):
    blob = os.urandom(1104)
    async with receiver_server() as receiver:
        tap = Tap(receiver)
        async with connect(receiver.url, Identity.generate()) as sender:
            seal_to = receiver.identity.kx_public_key if sealed else None
            await sender.hub.send_blob("client", blob, "update", seal_to=seal_to, eager=True)
        got = await next_received(receiver)
    assert got.manifest.eager and got.data == blob
    assert tap.sent == ["TransferDone"], "no TransferWant: one frame and one round trip less"


@pytest.mark.parametrize(("size", "eager"), [(1001, True), (10, False)], ids=["above eager_bytes", "not eager"])
async def test_a_blob_sent_otherwise_waits_for_the_want(size, eager):
    limits = TransferLimits(eager_bytes=1000)
    async with receiver_server() as receiver:
        tap = Tap(receiver)
        async with connect(receiver.url, Identity.generate(), limits) as sender:
            await sender.hub.send_blob("client", os.urandom(size), "update", eager=eager)
        got = await next_received(receiver)
    assert not got.manifest.eager and tap.sent == ["TransferWant", "TransferDone"]


async def test_the_chunks_of_a_refused_eager_manifest_are_dropped_unread():
    """The sender hears the reason once, in the Done; the chunk already on its way earns no Error."""
    async with receiver_server() as receiver:
        receiver.hub.admission_checks.append(
            lambda _peer, manifest: "answers no request of ours" if manifest.purpose == "update" else None
        )
        tap = Tap(receiver)
        async with connect(receiver.url, Identity.generate()) as sender:
            with pytest.raises(TransferError, match="answers no request of ours"):
                await sender.hub.send_blob("client", os.urandom(1104), "update", eager=True)
            await sender.hub.send_blob("client", b"later", "test")  # by its Done, the refused chunk came and went
        assert tap.sent == ["TransferDone", "TransferWant", "TransferDone"] and receiver.errors == []
        assert receiver.hub.reserved() == 0


async def test_an_eager_transfer_that_resumes_gets_the_want():
    """A receiver holding part of the blob says what it lacks, even to an eager manifest, and gets it."""
    limits = TransferLimits(eager_bytes=8 * MIB, chunk_size=MIB)
    identity, blob = Identity.generate(), os.urandom(3 * MIB + 5)
    receiver = Hub(limits)
    manifest = stream_manifest(identity, len(blob), "test", {}, MIB, eager=True)
    await receiver.hub.handle(identity.node_id, manifest)
    assert receiver.replies == {}, "afresh: nothing asked"
    for index in (0, 2):
        part = blob[index * MIB : (index + 1) * MIB]
        frame = frames.parse(bytes(stream_chunk(identity, manifest, index, part)))
        await receiver.hub.handle(identity.node_id, frame)
    await asyncio.gather(*receiver.hub._verifying)
    await receiver.hub.handle(identity.node_id, manifest)
    want = receiver.replies[identity.node_id][-1]
    assert isinstance(want, TransferWant) and want.missing == [1, 3]
