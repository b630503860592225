"""Every fault in one table: what it must do to the offender, and that a healthy pair never notices.

Each row runs in a fresh swarm of two linked bridges with a healthy cart A on bridge 1 and
B on bridge 2. A row either injects a fault and returns what the offender was told, or
(departure rows) builds a victim cart on bridge 2 that A is sending a transfer to, then
takes it away: A's transfer must fail promptly with the departure's reason, the victim
must leave every directory, and a later frame to it must bounce with that reason.
Afterwards A -> B must still carry a transfer and a message, and no row may leave a
traceback in the log: every frame is handled inside the frame boundary (cartnet.boundary).

The hostile-payload rows (issue 14) send what once ended sessions or escaped the handlers:
120 KB of JSON nested 60,000 levels deep, a control message whose `type` is a list, each
routed to an honest cart, sent to the bridge after admission and sent instead of the
admission answer; a burst of 10,000 heartbeats; frames of 10 MB and 100 MB; a frame of an
unknown kind. Each checks the reply or close reason and the counter that moved.

The HTTP rows (issue 14, finding 5) open raw TCP connections to a bridge of their own with
short header and idle deadlines: half-sent upgrade requests and connections that say
nothing are closed at the header deadline, idle keep-alive connections at the idle
deadline, and a cart admitted on that bridge meanwhile keeps its WebSocket past both.

The buffer-squatting rows (issue 14, finding 3) send cart B signed manifests that are never
followed by chunks: B's space must come back when the squatter leaves or idles, one sender
may never reserve more than its share, and a refused sender must hear the real reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from bridgekit import (
    DEADLINE,
    FAST_BACKOFF,
    Swarm,
    authority,
    bridge_settings,
    cart,
    certificate,
    enrol,
    gone_everywhere,
    http_peers,
    new_client,
    raw_cart,
    seen_everywhere,
    until,
    within,
)
from pydantic import ValidationError

from cartnet import admission, compact, frames, presence
from cartnet.authority import Authority, store_revocations
from cartnet.certificates import CertificateError
from cartnet.client import Backoff, BridgeClient, Incoming
from cartnet.handshake import AdmissionRefused, receive_control, ws_url
from cartnet.identity import Identity
from cartnet.messages import (
    Challenge,
    Error,
    Heartbeat,
    HeartbeatAck,
    Message,
    Reject,
    TransferDone,
    TransferWant,
    Welcome,
)
from cartnet.transfer import TransferError, TransferLimits, build_manifest
from fedcart.local_swarm import bridge_argv
from parent_cart.bridge import Bridge
from parent_cart.gate import OVERSIZED
from parent_cart.metrics import BridgeMetrics
from parent_cart.peer import Outbox
from parent_cart.session import Replies
from parent_cart.settings import BridgeSettings

CART_PROCESS = Path(__file__).with_name("cart_process.py")
REPO = Path(__file__).resolve().parents[2]


class Fault(enum.Enum):
    NOT_ENROLLED = "node without a certificate"
    DEFAULT_SECRET = "swarm left on a published default secret"
    FOREIGN_SWARM = "certificate from another swarm"
    EXPIRED_CERTIFICATE = "expired certificate"
    CART_AS_BRIDGE = "cart certificate used to act as a bridge"
    REVOKED = "revoked node"
    WRONG_TOKEN = "wrong optional swarm token"
    BAD_SIGNATURE = "bad signature"
    REPLAYED_ANSWER = "replayed admission answer"
    MALFORMED_FRAMES = "malformed frames"
    SPOOFED_SENDER = "spoofed sender"
    LINK_SPOOF = "bridge forwarding for a cart it does not hold"
    UNKNOWN_DESTINATION = "unknown destination"
    OVERSIZED_FRAME = "10 MB frame after admission"
    OVERSIZED_100MB = "100 MB frame after admission"
    UNKNOWN_FRAME_KIND = "frame of an unknown kind"
    DEEP_NESTING_TO_CART = "arrays nested 120,000 deep routed to a cart"
    TYPE_LIST_TO_CART = "control message whose type is a list routed to a cart"
    DEEP_NESTING_TO_BRIDGE = "arrays nested 120,000 deep sent to the bridge"
    TYPE_LIST_TO_BRIDGE = "control message whose type is a list sent to the bridge"
    DEEP_NESTING_AS_ADMISSION = "arrays nested 120,000 deep instead of the admission answer"
    TYPE_LIST_AS_ADMISSION = "type-is-a-list message instead of the admission answer"
    HEARTBEAT_BURST = "burst of 10,000 heartbeats"
    SQUAT_THEN_LEAVE = "manifests never followed by chunks, then the sender leaves"
    SQUAT_IDLE = "manifests never followed by chunks, the sender stays connected and idle"
    SQUAT_OVER_SHARE = "one sender reserving more than its share of a receiver's buffer"
    HALF_SENT_UPGRADES = "30 half-sent upgrade requests, some still trickling"
    IDLE_CONNECTIONS = "idle TCP connections and idle keep-alive connections"
    FLOOD = "flooding cart"
    SLOW_RECEIVER = "receiver that stops reading"
    BRIDGE_RESTART = "bridge restart"
    LEFT_WITH_BYE = "cart leaves with Bye"
    TASK_CANCELLED = "cart task cancelled"
    SOCKET_DROPPED = "socket dropped"
    WENT_SILENT = "cart goes silent"
    PROCESS_SIGKILLED = "cart process SIGKILLed"
    PROCESS_SIGSTOPPED = "cart process SIGSTOPped"


@dataclass
class World:
    swarm: Swarm
    b1: Bridge
    b2: Bridge
    a: BridgeClient
    b: BridgeClient
    stack: contextlib.AsyncExitStack
    background: list[asyncio.Task] = field(default_factory=list)

    def spawn(self, coro: Awaitable[None]) -> None:
        self.background.append(asyncio.ensure_future(coro))


@dataclass
class Victim:
    node_id: str
    frames: asyncio.Queue[str]
    kill: Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Case:
    expect: str
    inject: Callable[[World], Awaitable[str]] | None = None
    victim: Callable[[World], Awaitable[Victim]] | None = None


# --- admission -----------------------------------------------------------------------------


async def _handshake(bridge: Bridge, answer: Callable[[Challenge], Message | bytes]) -> tuple[Message, str]:
    """Answer one challenge with `answer(challenge)` (a message, or raw frame bytes); returns the reply and
    how the socket ended."""
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(bridge.url)) as ws:
        challenge = await receive_control(ws, DEADLINE)
        answered = answer(challenge)
        await ws.send_bytes(answered if isinstance(answered, bytes) else frames.control(answered))
        reply = await receive_control(ws, DEADLINE)
        if isinstance(reply, Welcome):
            return reply, "admitted"
        ending = await ws.receive(timeout=DEADLINE)
    return reply, f"{ending.type.name} {ending.data} {ending.extra}"


async def _refused(bridge: Bridge, answer: Callable[[Challenge], Message | bytes]) -> str:
    reply, ending = await _handshake(bridge, answer)
    assert isinstance(reply, Reject), reply
    assert ending.startswith("CLOSE 1008") and reply.reason[:40] in ending, ending
    return reply.reason


async def _admission_refused(bridge: Bridge, connection: BridgeClient) -> str:
    """`connection` must be refused for good (no retry) with a reason; returns it."""
    await connection.start()
    try:
        with pytest.raises(AdmissionRefused) as refused:
            await connection.wait_connected(DEADLINE)
        assert connection.sessions == 0 and connection.closed.is_set()
    finally:
        await connection.close()
    return refused.value.reason


async def _not_enrolled(world: World) -> str:
    """No certificate: a bridge and a cart refuse to start saying which command to run; an answer without one is refused."""
    stranger = world.swarm.root / "not-enrolled"
    with pytest.raises(CertificateError, match=f"run: fedcart enrol --authority AUTHORITY_DIR --data-dir {stranger}"):
        Bridge(bridge_settings(stranger))
    cart_dir = world.swarm.root / "cart-not-enrolled"
    ran = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fedcart", "node", "--data-dir", str(cart_dir), "--ui-port", "1",
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "SWARM_TOKEN": ""}, cwd=world.swarm.root,
    )  # fmt: skip
    _, err = await within(ran.communicate(), "`fedcart node` refusing to start")
    assert ran.returncode == 2 and f"fedcart enrol --authority AUTHORITY_DIR --data-dir {cart_dir} --role cart" in (
        err.decode()
    ), err.decode()
    identity = Identity.generate()

    def without_certificate(challenge: Challenge) -> bytes:
        body = admission.answer(challenge, identity, certificate(identity)).model_dump(mode="json")
        del body["certificate"]
        return frames.CONTROL + compact.dumps(body)

    return await _refused(world.b1, without_certificate)


async def _default_secret(world: World) -> str:
    """SWARM_TOKEN left on the value printed in .env.example: the settings and the `fedcart bridge` process refuse."""
    with pytest.raises(ValidationError, match="a value published with fedcart"):
        BridgeSettings(_env_file=None, swarm_token="change-me-swarm-token")
    data_dir = enrol(world.swarm.root / "default-secret")
    ran = await asyncio.create_subprocess_exec(
        *bridge_argv(data_dir), stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "SWARM_TOKEN": "change-me-swarm-token", "COLUMNS": "300"}, cwd=world.swarm.root,
    )  # fmt: skip
    _, err = await within(ran.communicate(), "`fedcart bridge` refusing the published token")
    said = " ".join(err.decode().split())
    assert ran.returncode == 2 and "remove SWARM_TOKEN" in said, said
    return said


async def _foreign_swarm(world: World) -> str:
    other = Authority.create(world.swarm.root / "other-authority")
    identity = Identity.generate()
    foreign = BridgeClient(identity, world.b1.url, other.issue(identity.public_key, "cart"), backoff=FAST_BACKOFF)
    return await _admission_refused(world.b1, foreign)


async def _expired_certificate(world: World) -> str:
    identity = Identity.generate()
    old = certificate(identity, days=1, now=presence.now_ms() - 3 * 24 * 3600 * 1000)
    return await _admission_refused(world.b1, BridgeClient(identity, world.b1.url, old, backoff=FAST_BACKOFF))


async def _cart_as_bridge(world: World) -> str:
    identity = Identity.generate()
    return await _refused(
        world.b1,
        lambda challenge: admission.answer(challenge, identity, certificate(identity), "bridge", "http://127.0.0.1:9"),
    )


async def _revoked(world: World) -> str:
    """C (on bridge 2) talks with A; the operator drops a revocation list naming C into bridge 1's data dir.
    Bridge 1 picks it up at its next refresh and passes it on; bridge 2 drops C, which cannot come back."""
    c = await world.stack.enter_async_context(cart(world.b2))
    await seen_everywhere(c.node_id, world.b1, world.b2)
    await world.a.send_message(c.node_id, Heartbeat(seq=7))
    assert (await within(c.inbox.get(), "C hearing from A before the revocation")).message == Heartbeat(seq=7)
    revocations = authority().revoke([c.node_id])
    store_revocations(world.b1.settings.data_dir, revocations)
    await within(c.closed.wait(), "C being dropped and then refused for good")
    assert isinstance(c.failure, AdmissionRefused) and "is revoked" in c.failure.reason, c.failure
    await gone_everywhere(c.node_id, world.b1, world.b2)
    assert world.b2.membership.serial == revocations.serial, "the list must have spread to bridge 2"
    removed = world.b2.metrics.registry.get_sample_value("fedcart_bridge_departures_total", {"how": "removed"})
    assert removed == 1, "bridge 2 must have removed C itself"
    await world.a.send_message(c.node_id, Heartbeat(seq=8))
    return await within(_undeliverable_for(world.a, c.node_id), "an Undeliverable for the revoked cart")


async def _wrong_token(world: World) -> str:
    """SWARM_TOKEN is an optional extra check: a bridge that sets one refuses a cart that does not know it."""
    world.b1.membership.swarm_token = "an-extra-secret-for-b1"
    try:
        return await _admission_refused(
            world.b1, new_client(world.b1, swarm_token="not-the-extra-secret", backoff=FAST_BACKOFF)
        )
    finally:
        world.b1.membership.swarm_token = ""


async def _bad_signature(world: World) -> str:
    identity, impostor = Identity.generate(), Identity.generate()

    def forged(challenge: Challenge) -> Message:
        answer = admission.answer(challenge, identity, certificate(identity))
        return answer.model_copy(update={"signature": impostor.sign(b"x" * 64)})

    return await _refused(world.b1, forged)


async def _replayed_answer(world: World) -> str:
    identity, recorded = Identity.generate(), []

    def honest(challenge: Challenge) -> Message:
        recorded.append(admission.answer(challenge, identity, certificate(identity)))
        return recorded[-1]

    reply, _ = await _handshake(world.b1, honest)
    assert isinstance(reply, Welcome)
    return await _refused(world.b1, lambda _challenge: recorded[0])


# --- bad frames ------------------------------------------------------------------------------

MALFORMED = [
    b"",
    b"Xnonsense",
    b"C{not json",
    frames.CONTROL + compact.dumps({"type": "heartbeat", "seq": -1}),
    frames.CONTROL + compact.dumps({"type": "teleport"}),
    frames.CHUNK + b"\x01\x02",
    frames.ROUTED + bytes(10),
]


async def _malformed_frames(world: World) -> str:
    async with raw_cart(world.b1) as ws:
        for bad in MALFORMED:
            await ws.send_bytes(bad)
        await ws.send_bytes(frames.control(Heartbeat(seq=5)))
        replies = []
        while not isinstance(reply := await receive_control(ws, DEADLINE), HeartbeatAck):
            replies.append(reply)
    assert reply.seq == 5, "the connection must stay usable after bad frames"
    assert len(replies) == len(MALFORMED) and all(isinstance(r, Error) for r in replies), replies
    assert {r.field for r in replies} >= {"seq", "type"}
    return "; ".join(f"{r.code}: {r.detail}" for r in replies)


async def _spoofed_sender(world: World) -> str:
    me = Identity.generate()
    async with raw_cart(world.b1, me) as ws:
        await ws.send_bytes(frames.control(presence.sign(me, world.b1.node_id, 60)))
        await seen_everywhere(me.node_id, world.b1, world.b2)
        await ws.send_bytes(frames.routed(world.b.node_id, world.a.node_id, frames.control(Heartbeat(seq=666))))
        error = await receive_control(ws, DEADLINE)
        await ws.send_bytes(frames.routed(world.b.node_id, me.node_id, frames.control(Heartbeat(seq=667))))
        got = await within(world.b.inbox.get(), "the honest frame after the spoofed one")
    assert got == Incoming(me.node_id, Heartbeat(seq=667)), "the spoofed frame must not have been delivered"
    assert isinstance(error, Error) and error.code == "spoofed_sender"
    return error.detail


async def _link_spoof(world: World) -> str:
    link = world.b1.links.current(world.b2.node_id)
    stranger = Identity.generate().node_id
    assert link.outbox.offer(frames.routed(world.b.node_id, stranger, frames.control(Heartbeat(seq=13))))
    await world.a.send_message(world.b.node_id, Heartbeat(seq=14))
    got = await within(world.b.inbox.get(), "the honest frame behind the forged one")
    assert got == Incoming(world.a.node_id, Heartbeat(seq=14)), "the forged frame must not have been delivered"
    refused = world.b2.metrics.registry.get_sample_value("fedcart_bridge_bad_frames_total", {"code": "spoofed_sender"})
    return f"refused {refused:.0f} frame(s) from a sender off the linked bridge's roster"


async def _unknown_destination(world: World) -> str:
    await world.a.send_message(Identity.generate().node_id, Heartbeat(seq=1))
    return (await within(world.a.undeliverable.get(), "an Undeliverable for a made-up cart")).reason


def _oversized(megabytes: int) -> Callable[[World], Awaitable[str]]:
    """A frame over MAX_FRAME after admission: the socket closes (a WebSocket frame cannot be skipped),
    with 1009 and a reason the sender can read, and the bridge counts it and names it as the way the cart left."""

    async def inject(world: World) -> str:
        refused = _sample(world.b1, "fedcart_bridge_bad_frames_total", code="oversized_frame")
        left = _sample(world.b1, "fedcart_bridge_departures_total", how="oversized")
        async with raw_cart(world.b1) as ws:
            with contextlib.suppress(ConnectionError):
                await ws.send_bytes(frames.CONTROL + bytes(megabytes * 1024 * 1024))
            ending = await ws.receive(timeout=DEADLINE)
        await until(
            lambda: _sample(world.b1, "fedcart_bridge_departures_total", how="oversized") == left + 1,
            "the bridge never counted the oversized frame's cart as gone",
            world.b1,
        )
        assert _sample(world.b1, "fedcart_bridge_bad_frames_total", code="oversized_frame") == refused + 1
        return f"{ending.type.name} {ending.data} {ending.extra}"

    return inject


# --- hostile payloads (issue 14) ---------------------------------------------------------------

DEEP_NESTING = b"\x91" * 120_000 + b"\x90"
"""Arrays nested 120,000 deep in 120 KB, under the 128 KiB control limit: only the depth bound can refuse it."""
TYPE_LIST = compact.dumps({"type": ["heartbeat"], "seq": 1})


def _sample(bridge: Bridge, name: str, **labels: str) -> float:
    return bridge.metrics.registry.get_sample_value(name, labels) or 0.0


def _total(bridge: Bridge, name: str) -> float:
    """The sum of a counter over all its labels."""
    return sum(
        sample.value for metric in bridge.metrics.registry.collect() for sample in metric.samples if sample.name == name
    )


async def _next_routed(ws: aiohttp.ClientWebSocketResponse) -> tuple[str, Message]:
    """The sender and inner message of the next routed frame on a raw cart's socket."""
    async for msg in ws:
        item = frames.parse(msg.data)
        if isinstance(item, frames.Routed):
            inner = frames.parse(item.inner)
            assert isinstance(inner, Message), inner
            return item.sender, inner
    raise ConnectionError("socket closed before a routed frame arrived")


def _routed_to_cart(payload: bytes) -> Callable[[World], Awaitable[str]]:
    """The bridges relay `payload` unread to honest cart B, whose client must refuse it, tell the sender
    and keep its session (it used to end it: RecursionError, TypeError)."""

    async def inject(world: World) -> str:
        me = Identity.generate()
        sessions, refused = world.b.sessions, world.b.refused["bad_message"]
        async with raw_cart(world.b1, me) as ws:
            await ws.send_bytes(frames.control(presence.sign(me, world.b1.node_id, 60)))
            await seen_everywhere(me.node_id, world.b1, world.b2)
            await ws.send_bytes(frames.routed(world.b.node_id, me.node_id, frames.CONTROL + payload))
            sender, error = await within(_next_routed(ws), "cart B telling the sender its frame was refused")
        assert sender == world.b.node_id and isinstance(error, Error) and error.code == "bad_message", error
        assert world.b.refused["bad_message"] == refused + 1
        assert world.b.connected.is_set() and not world.b.disconnected.is_set() and world.b.sessions == sessions, (
            "cart B must keep its session"
        )
        return f"{error.code}: {error.detail}"

    return inject


def _sent_to_bridge(payload: bytes, field: str) -> Callable[[World], Awaitable[str]]:
    """After admission: an Error reply naming the field, a count, and the session goes on."""

    async def inject(world: World) -> str:
        before = _sample(world.b1, "fedcart_bridge_bad_frames_total", code="bad_message")
        async with raw_cart(world.b1) as ws:
            await ws.send_bytes(frames.CONTROL + payload)
            await ws.send_bytes(frames.control(Heartbeat(seq=7)))
            error = await receive_control(ws, DEADLINE)
            ack = await receive_control(ws, DEADLINE)
        assert isinstance(error, Error) and error.code == "bad_message" and error.field == field, error
        assert ack == HeartbeatAck(seq=7), "the session must go on after the refused frame"
        assert _sample(world.b1, "fedcart_bridge_bad_frames_total", code="bad_message") == before + 1
        return f"{error.code}: {error.detail}"

    return inject


def _as_admission_answer(payload: bytes) -> Callable[[World], Awaitable[str]]:
    """Before admission: a Reject with the reason, a close 1008 with it, and a counted refusal."""

    async def inject(world: World) -> str:
        before = _sample(world.b1, "fedcart_bridge_rejects_total", reason="malformed")
        reason = await _refused(world.b1, lambda _challenge: frames.CONTROL + payload)
        assert _sample(world.b1, "fedcart_bridge_rejects_total", reason="malformed") == before + 1
        return reason

    return inject


async def _unknown_frame_kind(world: World) -> str:
    """The error names the byte (it used to show a memoryview's address), to the bridge and to a cart."""
    me = Identity.generate()
    async with raw_cart(world.b1, me) as ws:
        await ws.send_bytes(b"\x07hello")
        error = await receive_control(ws, DEADLINE)
        await ws.send_bytes(frames.control(presence.sign(me, world.b1.node_id, 60)))
        await seen_everywhere(me.node_id, world.b1, world.b2)
        await ws.send_bytes(frames.routed(world.b.node_id, me.node_id, b"Zzz"))
        _, from_cart = await within(_next_routed(ws), "cart B refusing a frame of an unknown kind")
    assert isinstance(error, Error) and error.code == "bad_frame", error
    assert isinstance(from_cart, Error) and "unknown frame kind b'Z' (0x5a)" in from_cart.detail, from_cart
    assert "memory at" not in error.detail + from_cart.detail
    return f"{error.detail}; from cart B: {from_cart.detail}"


BURST = 10_000


async def _heartbeat_burst(world: World) -> str:
    """Every heartbeat of a burst is answered, or its dropped reply is counted and reported to the cart."""
    async with raw_cart(world.b1) as ws:
        for seq in range(1, BURST + 1):
            await ws.send_bytes(frames.control(Heartbeat(seq=seq)))
        marker = BURST + 1
        await ws.send_bytes(frames.control(Heartbeat(seq=marker)))
        acks: set[int] = set()
        reported = 0
        while marker not in acks or reported < _total(world.b1, "fedcart_bridge_replies_dropped_total"):
            reply = await within(receive_control(ws, DEADLINE), "the rest of the burst's answers")
            if isinstance(reply, HeartbeatAck):
                acks.add(reply.seq)
            elif isinstance(reply, Error) and reply.code == "replies_dropped":
                reported += int(reply.detail.split()[0])
    dropped = _sample(world.b1, "fedcart_bridge_replies_dropped_total", kind="heartbeat_ack")
    assert len(acks) + dropped == BURST + 1, f"{len(acks)} acks + {dropped} counted drops != {BURST + 1} heartbeats"
    assert reported == _total(world.b1, "fedcart_bridge_replies_dropped_total"), "every drop must be reported"
    return f"{len(acks)} of {BURST + 1} heartbeats answered, {dropped:.0f} replies dropped, counted and reported"


# --- HTTP deadlines (issue 14) ----------------------------------------------------------------

HEADER_TIMEOUT = 0.5
IDLE_TIMEOUT = 1.5
HALF_SENT = b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"


async def _strict_bridge(world: World) -> tuple[Bridge, BridgeClient]:
    """A bridge of its own with short HTTP deadlines, and an honest cart admitted on it."""
    settings = bridge_settings(
        enrol(world.swarm.root / "strict-http"), http_header_timeout=HEADER_TIMEOUT, http_idle_timeout=IDLE_TIMEOUT
    )
    bridge = Bridge(settings)
    await bridge.start()
    world.stack.push_async_callback(bridge.stop)
    honest = await world.stack.enter_async_context(cart(bridge))
    return bridge, honest


async def _closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sent until it closed the connection."""
    try:
        return await reader.read()
    except ConnectionResetError:
        return b""


async def _trickle(writer: asyncio.StreamWriter) -> None:
    """Send a header value one byte at a time (a slowloris client) until the server hangs up."""
    writer.write(HALF_SENT + b"X-Slow: ")
    with contextlib.suppress(ConnectionError):
        while not writer.is_closing():
            writer.write(b"a")
            await writer.drain()
            await asyncio.sleep(0.05)  # the attack's pace, not a wait for something


async def _all_closed(readers: list[asyncio.StreamReader], what: str) -> list[bytes]:
    return await within(asyncio.gather(*(_closed_by_server(r) for r in readers)), what)


def _honest_cart_kept(honest: BridgeClient) -> None:
    assert honest.connected.is_set() and honest.sessions == 1, (
        "the admitted cart's WebSocket must outlive the deadlines"
    )


async def _half_sent_upgrades(world: World) -> str:
    """Each connection sends an upgrade request without its final blank line; five keep trickling header bytes."""
    bridge, honest = await _strict_bridge(world)
    before = _sample(bridge, "fedcart_bridge_http_header_timeouts_total")
    connections = [await asyncio.open_connection("127.0.0.1", bridge.port) for _ in range(30)]
    for _, writer in connections[5:]:
        writer.write(HALF_SENT)
    tricklers = [asyncio.create_task(_trickle(writer)) for _, writer in connections[:5]]
    try:
        sent_back = await _all_closed([r for r, _ in connections], "the bridge closing 30 half-sent upgrade requests")
    finally:
        for task in tricklers:
            task.cancel()
        await asyncio.gather(*tricklers, return_exceptions=True)
        for _, writer in connections:
            writer.close()
    assert sent_back == [b""] * 30, "a connection closed at the header deadline gets no response"
    closed = _sample(bridge, "fedcart_bridge_http_header_timeouts_total") - before
    assert closed == 30, f"{closed:.0f} header timeouts counted for 30 connections"
    assert bridge.header_deadline.waiting == 0
    _honest_cart_kept(honest)
    return (
        f"closed {closed:.0f} half-sent upgrade requests (5 still trickling) at the {HEADER_TIMEOUT}s header deadline"
    )


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    return head + await reader.readexactly(length)


async def _idle_connections(world: World) -> str:
    """Ten connections that never send a byte (header deadline) and ten that ask /health once and then idle."""
    bridge, honest = await _strict_bridge(world)
    before = _sample(bridge, "fedcart_bridge_http_header_timeouts_total")
    silent = [await asyncio.open_connection("127.0.0.1", bridge.port) for _ in range(10)]
    kept_alive = [await asyncio.open_connection("127.0.0.1", bridge.port) for _ in range(10)]
    try:
        for reader, writer in kept_alive:
            writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            response = await within(_read_response(reader), "a /health answer on a keep-alive connection")
            assert response.startswith(b"HTTP/1.1 200") and b'"status": "ok"' in response, response
        await _all_closed([r for r, _ in silent], "the bridge closing 10 connections that never sent a request")
        await _all_closed([r for r, _ in kept_alive], "the bridge closing 10 idle keep-alive connections")
    finally:
        for _, writer in silent + kept_alive:
            writer.close()
    closed = _sample(bridge, "fedcart_bridge_http_header_timeouts_total") - before
    assert closed == 10, f"{closed:.0f} header timeouts: only the silent connections miss the header deadline"
    _honest_cart_kept(honest)
    return (
        f"closed 10 silent connections at the {HEADER_TIMEOUT}s header deadline "
        f"and 10 idle keep-alive connections at the {IDLE_TIMEOUT}s idle deadline"
    )


# --- transfer buffer squatting (issue 14, finding 3) ---------------------------------------------

SQUAT = 8 * 1024 * 1024
IDLE = 5.0


async def _squatter(world: World) -> BridgeClient:
    squatter = await world.stack.enter_async_context(cart(world.b1))
    await seen_everywhere(world.b.node_id, world.b1, world.b2)
    return squatter


async def _squat(world: World, squatter: BridgeClient) -> Message:
    """One signed manifest of SQUAT bytes from `squatter` to B, never followed by a chunk; B's answer."""
    manifest = await build_manifest(squatter.identity, bytes(SQUAT), "update", {}, 1024 * 1024)
    await squatter.send_message(world.b.node_id, manifest)
    answer = await within(squatter.inbox.get(), "B answering the squatter's manifest")
    return answer.message


async def _refused_to_a(world: World) -> str:
    """A's transfer to B, refused while the squatter holds B's buffer: the reason A is given."""
    with pytest.raises(TransferError) as refused:
        await within(world.a.transfers.send_blob(world.b.node_id, os.urandom(1024 * 1024), "update"), "B refusing A")
    return str(refused.value)


async def _squat_then_leave(world: World) -> str:
    world.b.transfers.limits = TransferLimits(max_size=SQUAT, max_buffered=SQUAT, reply_timeout=60.0)
    squatter = await _squatter(world)
    assert isinstance(await _squat(world, squatter), TransferWant)
    assert world.b.transfers.reserved(squatter.node_id) == SQUAT
    refused = await _refused_to_a(world)
    await squatter.close("leaving its reservation behind")
    await within(_undeliverable_for(world.b, squatter.node_id), "B learning that the squatter left")
    assert world.b.transfers.reserved() == 0, "the reservation left with its sender"
    return f"{refused}; released when the squatter left"


async def _squat_idle(world: World) -> str:
    world.b.transfers.limits = TransferLimits(max_size=SQUAT, max_buffered=SQUAT, idle_timeout=IDLE, reply_timeout=60.0)
    now = [1000.0]
    world.b.transfers.clock = lambda: now[0]  # B's transfer clock, moved by the test instead of waiting
    squatter = await _squatter(world)
    assert isinstance(await _squat(world, squatter), TransferWant)
    refused = await _refused_to_a(world)
    now[0] += IDLE
    assert world.b.transfers.reserved(squatter.node_id) == 0, "an idle sender reserves nothing"
    assert squatter.connected.is_set(), "the squatter is still there: idleness alone released it"
    return f"{refused}; released after {IDLE:g}s without a chunk"


async def _squat_over_share(world: World) -> str:
    world.b.transfers.limits = TransferLimits(max_size=SQUAT, max_buffered=4 * SQUAT, reply_timeout=60.0)
    assert world.b.transfers.limits.sender_share == SQUAT
    squatter = await _squatter(world)
    assert isinstance(await _squat(world, squatter), TransferWant)
    second = await _squat(world, squatter)
    assert isinstance(second, TransferDone) and not second.ok, second
    assert world.b.transfers.reserved(squatter.node_id) == SQUAT, "no more than its share"
    return second.reason


# --- overload --------------------------------------------------------------------------------


async def _first_error(ws: aiohttp.ClientWebSocketResponse, code: str) -> Error:
    async for msg in ws:
        item = frames.parse(msg.data)
        if isinstance(item, Error) and item.code == code:
            return item
    raise ConnectionError("socket closed before the error arrived")


async def _drain(ws: aiohttp.ClientWebSocketResponse) -> None:
    async for _ in ws:
        pass


async def _flood(world: World) -> str:
    sink = await world.stack.enter_async_context(cart(world.b2))
    await seen_everywhere(sink.node_id, world.b1, world.b2)
    world.b1.settings.rate_bytes = (
        2 * 1024 * 1024
    )  # a budget a loaded test machine can still exceed; A's session keeps its own
    flooder = Identity.generate()
    ws = await world.stack.enter_async_context(raw_cart(world.b1, flooder))
    junk = frames.routed(sink.node_id, flooder.node_id, frames.chunk("00" * 16, 0, bytes(64 * 1024)))

    async def flood() -> None:
        while True:
            await ws.send_bytes(junk)

    world.spawn(flood())
    notice = await within(_first_error(ws, "rate_limited"), "the flooder being told it is paced")
    world.spawn(_drain(ws))
    return notice.detail


async def _slow_receiver(world: World) -> str:
    slow = Identity.generate()
    ws = await world.stack.enter_async_context(raw_cart(world.b2, slow))
    await ws.send_bytes(frames.control(presence.sign(slow, world.b2.node_id, 60)))

    async def heartbeat_but_never_read() -> None:
        for seq in range(1, 10**6):
            await ws.send_bytes(frames.control(Heartbeat(seq=seq)))
            await asyncio.sleep(0.3)

    world.spawn(heartbeat_but_never_read())
    await seen_everywhere(slow.node_id, world.b1, world.b2)
    sender = await world.stack.enter_async_context(cart(world.b1))
    chunk = frames.chunk("11" * 16, 0, bytes(1024 * 1024))

    async def push() -> None:
        while True:
            await sender.send_to(slow.node_id, chunk)

    world.spawn(push())

    async def from_the_receivers_bridge() -> str:
        """The first drop that names the receiver: on a loaded machine the link between the bridges may stay full
        for a second first and drop a frame itself ('the link to bridge ... stayed full'), which is backpressure
        too, but not this fault's."""
        while "not reading" not in (reason := (await sender.undeliverable.get()).reason):
            continue
        return reason

    return await within(from_the_receivers_bridge(), "an Undeliverable from the clogged receiver's bridge")


async def _bridge_restart(world: World) -> str:
    b2 = await world.swarm.restart(world.b2)
    world.b2 = b2
    await until(
        lambda: world.b.node_id in b2.directory.presences, "cart B never reconnected to the restarted bridge", b2
    )
    await seen_everywhere(world.b.node_id, world.b1, b2)
    assert world.b.sessions == 2
    return f"cart B reconnected on its own ({world.b.sessions} sessions)"


# --- departures ----------------------------------------------------------------------------


async def _in_process_victim(world: World, kill: Callable[[BridgeClient], Awaitable[None]]) -> Victim:
    client = new_client(world.b2, backoff=Backoff(initial=60.0, maximum=60.0))
    seen: asyncio.Queue[str] = asyncio.Queue()

    async def swallow(_peer: str, item: object) -> bool:
        seen.put_nowait(type(item).__name__)
        return True

    client.transfers.handle = swallow
    await client.start()
    world.stack.push_async_callback(client.close)
    await client.wait_connected(DEADLINE)
    return Victim(client.node_id, seen, lambda: kill(client))


async def _say_bye(client: BridgeClient) -> None:
    await client.close("done for today")


async def _cancel_task(client: BridgeClient) -> None:
    client._runner.cancel()


async def _drop_socket(client: BridgeClient) -> None:
    client._ws._response.connection.transport.abort()


async def _go_silent(client: BridgeClient) -> None:
    hang = asyncio.Event()

    async def send_nothing(_frame: bytes, **_options: object) -> None:
        await hang.wait()

    client._send_raw = send_nothing


def _in_process(kill: Callable[[BridgeClient], Awaitable[None]]) -> Callable[[World], Awaitable[Victim]]:
    return lambda world: _in_process_victim(world, kill)


def _process(sig: signal.Signals) -> Callable[[World], Awaitable[Victim]]:
    async def spawn(world: World) -> Victim:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(CART_PROCESS),
            world.b2.url,
            str(enrol(world.swarm.root / "cart-process", "cart")),
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        world.stack.push_async_callback(_reap, proc)
        node_id = (await within(proc.stdout.readline(), "the cart process being admitted")).decode().strip()
        assert len(node_id) == 40, f"cart process said {node_id!r}"
        seen: asyncio.Queue[str] = asyncio.Queue()
        world.spawn(_lines(proc, seen))

        async def kill() -> None:
            proc.send_signal(sig)

        return Victim(node_id, seen, kill)

    return spawn


async def _lines(proc: asyncio.subprocess.Process, into: asyncio.Queue[str]) -> None:
    while line := await proc.stdout.readline():
        into.put_nowait(line.decode().split()[-1])


async def _reap(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.kill()
    await proc.wait()


CASES: dict[Fault, Case] = {
    Fault.NOT_ENROLLED: Case("malformed answer to the challenge: certificate: Field required", inject=_not_enrolled),
    Fault.DEFAULT_SECRET: Case("a value published with fedcart", inject=_default_secret),
    Fault.FOREIGN_SWARM: Case("not this swarm", inject=_foreign_swarm),
    Fault.EXPIRED_CERTIFICATE: Case("certificate expired at", inject=_expired_certificate),
    Fault.CART_AS_BRIDGE: Case("certificate is for a cart, not a bridge", inject=_cart_as_bridge),
    Fault.REVOKED: Case("is revoked (revocation list", inject=_revoked),
    Fault.WRONG_TOKEN: Case("wrong swarm token", inject=_wrong_token),
    Fault.BAD_SIGNATURE: Case("bad signature", inject=_bad_signature),
    Fault.REPLAYED_ANSWER: Case("replayed answer", inject=_replayed_answer),
    Fault.MALFORMED_FRAMES: Case("unknown frame kind", inject=_malformed_frames),
    Fault.SPOOFED_SENDER: Case("claims sender", inject=_spoofed_sender),
    Fault.LINK_SPOOF: Case("refused 1 frame(s)", inject=_link_spoof),
    Fault.UNKNOWN_DESTINATION: Case("unknown destination", inject=_unknown_destination),
    Fault.OVERSIZED_FRAME: Case(f"CLOSE 1009 {OVERSIZED}", inject=_oversized(10)),
    Fault.OVERSIZED_100MB: Case(f"CLOSE 1009 {OVERSIZED}", inject=_oversized(100)),
    Fault.UNKNOWN_FRAME_KIND: Case("unknown frame kind b'\\x07' (0x07)", inject=_unknown_frame_kind),
    Fault.DEEP_NESTING_TO_CART: Case("nested more than 16 levels deep", inject=_routed_to_cart(DEEP_NESTING)),
    Fault.TYPE_LIST_TO_CART: Case("type: must be a string, not an array", inject=_routed_to_cart(TYPE_LIST)),
    Fault.DEEP_NESTING_TO_BRIDGE: Case(
        "nested more than 16 levels deep", inject=_sent_to_bridge(DEEP_NESTING, "message")
    ),
    Fault.TYPE_LIST_TO_BRIDGE: Case("must be a string", inject=_sent_to_bridge(TYPE_LIST, "type")),
    Fault.DEEP_NESTING_AS_ADMISSION: Case(
        "malformed answer to the challenge: message: nested more than 16 levels deep",
        inject=_as_admission_answer(DEEP_NESTING),
    ),
    Fault.TYPE_LIST_AS_ADMISSION: Case(
        "malformed answer to the challenge: type: must be a string", inject=_as_admission_answer(TYPE_LIST)
    ),
    Fault.HEARTBEAT_BURST: Case("heartbeats answered", inject=_heartbeat_burst),
    Fault.SQUAT_THEN_LEAVE: Case(
        "receiver refused the transfer: our transfer buffer is full", inject=_squat_then_leave
    ),
    Fault.SQUAT_IDLE: Case("our transfer buffer is full", inject=_squat_idle),
    Fault.SQUAT_OVER_SHARE: Case("your share of our transfer buffer is full", inject=_squat_over_share),
    Fault.HALF_SENT_UPGRADES: Case("closed 30 half-sent upgrade requests", inject=_half_sent_upgrades),
    Fault.IDLE_CONNECTIONS: Case("10 idle keep-alive connections", inject=_idle_connections),
    Fault.FLOOD: Case("paced", inject=_flood),
    Fault.SLOW_RECEIVER: Case("not reading", inject=_slow_receiver),
    Fault.BRIDGE_RESTART: Case("reconnected on its own", inject=_bridge_restart),
    Fault.LEFT_WITH_BYE: Case("said bye (done for today)", victim=_in_process(_say_bye)),
    Fault.TASK_CANCELLED: Case("without saying goodbye", victim=_in_process(_cancel_task)),
    Fault.SOCKET_DROPPED: Case("without saying goodbye", victim=_in_process(_drop_socket)),
    Fault.WENT_SILENT: Case("missed 3 heartbeats", victim=_in_process(_go_silent)),
    Fault.PROCESS_SIGKILLED: Case("without saying goodbye", victim=_process(signal.SIGKILL)),
    Fault.PROCESS_SIGSTOPPED: Case("missed 3 heartbeats", victim=_process(signal.SIGSTOP)),
}


@contextlib.asynccontextmanager
async def world_of(swarm: Swarm, b1: Bridge, b2: Bridge) -> AsyncIterator[World]:
    async with contextlib.AsyncExitStack() as stack:
        a = await stack.enter_async_context(cart(b1))
        b = await stack.enter_async_context(cart(b2))
        world = World(swarm, b1, b2, a, b, stack)
        try:
            yield world
        finally:
            for task in world.background:
                task.cancel()
            await asyncio.gather(*world.background, return_exceptions=True)


async def _first(frames: asyncio.Queue[str], kind: str) -> None:
    """Until the victim reports a frame of `kind` (a heartbeat's ack may come first)."""
    while await frames.get() != kind:
        pass


async def _departure(world: World, case: Case) -> str:
    victim = await case.victim(world)
    await seen_everywhere(victim.node_id, world.b1, world.b2)
    sending = asyncio.create_task(world.a.transfers.send_blob(victim.node_id, os.urandom(256 * 1024), "update"))
    await within(_first(victim.frames, "TransferManifest"), "the victim receiving the manifest")
    await victim.kill()
    with pytest.raises(TransferError) as failed:
        await within(sending, "the in-flight transfer to the victim failing")
    await gone_everywhere(victim.node_id, world.b1, world.b2)
    assert victim.node_id not in {p["node_id"] for p in await http_peers(world.b1)}
    await world.a.send_message(victim.node_id, Heartbeat(seq=1))
    bounced = await within(_undeliverable_for(world.a, victim.node_id), "an Undeliverable for the departed cart")
    assert case.expect in bounced, bounced
    return str(failed.value)


async def _undeliverable_for(client: BridgeClient, node_id: str) -> str:
    while (notice := await client.undeliverable.get()).to != node_id:
        pass
    return notice.reason


async def _healthy_pair_still_works(world: World) -> None:
    await seen_everywhere(world.b.node_id, world.b1, world.b2)
    blob = os.urandom(2 * 1024 * 1024 + 5)
    await within(world.a.transfers.send_blob(world.b.node_id, blob, "update"), "A's transfer to B after the fault")
    got = await within(world.b.transfers.received.get(), "B receiving A's transfer after the fault")
    assert got.data == blob
    await world.a.send_message(world.b.node_id, Heartbeat(seq=42))
    while (incoming := await within(world.b.inbox.get(), "B receiving A's message")).message != Heartbeat(seq=42):
        pass
    assert incoming.peer == world.a.node_id


def _tracebacks(records: list[logging.LogRecord]) -> list[str]:
    """Log lines that carry a traceback (aiohttp's "Error handling request" does): a frame escaped its boundary."""
    return [f"{r.name}: {r.getMessage()}" for r in records if r.exc_info or "Traceback" in r.getMessage()]


@pytest.mark.parametrize("fault", list(Fault), ids=lambda f: f.name.lower())
async def test_fault_is_contained(
    swarm: Swarm, linked: tuple[Bridge, Bridge], fault: Fault, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    case = CASES[fault]
    async with world_of(swarm, *linked) as world:
        observed = await (case.inject(world) if case.inject else _departure(world, case))
        assert case.expect in observed, f"{fault.value}: expected {case.expect!r} in {observed!r}"
        await _healthy_pair_still_works(world)
    assert not _tracebacks(caplog.records), _tracebacks(caplog.records)


class _StuckSocket:
    """A socket whose sends do not complete until `release` is set: a cart that is not reading."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.sent: list[bytes] = []

    async def send_bytes(self, data: bytes) -> None:
        await self.release.wait()
        self.sent.append(data)

    async def close(self) -> None:
        self.release.set()


async def test_dropped_replies_are_counted_and_reported() -> None:
    """When a cart's outbox stays full, the bridge's replies to it are dropped, but never silently."""
    ws, metrics = _StuckSocket(), BridgeMetrics()
    outbox = Outbox(ws, max_frames=4, max_bytes=1024 * 1024, stall_timeout=DEADLINE)
    writer = asyncio.create_task(outbox.run())
    replies = Replies(outbox, metrics, wait=0.05)
    try:
        sent = [await replies.send(HeartbeatAck(seq=seq)) for seq in range(20)]
        queued = sent.count(True)
        assert queued == 8 and sent[queued:] == [False] * 12, sent
        assert (
            metrics.registry.get_sample_value("fedcart_bridge_replies_dropped_total", {"kind": "heartbeat_ack"}) == 12
        )
        ws.release.set()
        await outbox.flush(DEADLINE)
        assert await replies.send(HeartbeatAck(seq=99))
        await outbox.flush(DEADLINE)
    finally:
        outbox.close()
        writer.cancel()
    told = [frames.parse(frame) for frame in ws.sent]
    assert told[: queued + 1] == [HeartbeatAck(seq=seq) for seq in [*range(queued), 99]]
    assert isinstance(told[-1], Error) and told[-1].code == "replies_dropped", told[-1]
    assert told[-1].detail.startswith("12 replies dropped (12 heartbeat_ack)"), told[-1].detail
    assert not replies.dropped, "a reported drop is not reported again"
