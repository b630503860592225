"""Transfers over a real aiohttp WebSocket on 127.0.0.1: integrity, resumption, and every refusal."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os

import pytest

from cartnet import frames
from cartnet.identity import Identity
from cartnet.messages import Error, TransferDone, TransferWant
from cartnet.transfer import TransferError, TransferHub, TransferLimits, build_manifest, sign_manifest

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
