"""One admitted cart's life on this bridge: read its frames until it leaves, then clean up.

Each cart is read on its own task, paced by its own rate budget, and dropped after
`liveness_deadline` seconds of silence. Every frame is handled inside the frame
boundary (cartnet.boundary): whatever it raises earns an Error reply naming what is
wrong and a count in `fedcart_bridge_bad_frames{code}`, and the connection carries on.
A frame over MAX_FRAME cannot be skipped on a WebSocket: the socket closes with 1009
and a reason, and that is counted too. How the cart leaves (Bye, silence, a dropped
socket, an oversized frame) becomes the reason every interested party is told.

The bridge's own replies (acks, peer lists, errors) are never lost silently: a cart
that asks faster than it reads is slowed down (its reader waits for room), and a reply
that still finds none is counted in `fedcart_bridge_replies_dropped{kind}` and reported
to the cart in an Error `replies_dropped` as soon as there is room again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable

from cartnet import boundary, frames, presence
from cartnet.boundary import Refusal
from cartnet.handshake import MAX_FRAME
from cartnet.identity import Identity
from cartnet.messages import (
    KNOWN_PREFIX,
    MAX_SAMPLE,
    Bye,
    Error,
    Heartbeat,
    HeartbeatAck,
    HeldPeer,
    Message,
    PeerInfo,
    PeerList,
    PeersRequest,
    Presence,
    PresenceRecord,
    RevocationList,
)
from cartnet.transfer import TransferHub
from parent_cart.directory import Directory
from parent_cart.gate import OVERSIZED, sent_oversized
from parent_cart.metrics import BridgeMetrics
from parent_cart.peer import Outbox, Peer, Silent, incoming
from parent_cart.ratelimit import SendBudget
from parent_cart.relay import Relay
from parent_cart.settings import BridgeSettings

log = logging.getLogger(__name__)

MAX_PEER_LIST = MAX_SAMPLE
"""A PeerInfo, with the cart's signed presence and certificate, is ~0.9 KB of JSON (1.2 KB at most); 64 of them stay
under cartnet's 128 KiB control limit. Rounds never need more: they ask for a sample (at most `MAX_SAMPLE`), and
a whole-directory answer says its `total`."""

JoinedFn = Callable[[PresenceRecord], None]
LeftFn = Callable[[str, str, PresenceRecord | None], None]


class Replies:
    """What the bridge itself says to one cart (acks, peer lists, errors); never lost silently.

    A reply takes the urgent lane of the cart's outbox. When even that is full, the cart
    asks faster than it reads: the cart's own reader waits up to `wait` for room (TCP
    then slows the cart down, nobody else), and a reply that still finds none is dropped,
    counted by kind, and owed: the next reply that fits is followed by an Error
    `replies_dropped` saying how many were lost.
    """

    def __init__(self, outbox: Outbox, metrics: BridgeMetrics, wait: float) -> None:
        self.outbox = outbox
        self.metrics = metrics
        self.wait = wait
        self.dropped: Counter[str] = Counter()

    async def send(self, message: Message) -> bool:
        """Queue `message`, waiting up to `wait` for room; False (counted) when it had to be dropped."""
        frame = frames.control(message)
        if self.outbox.closed:
            return False
        if not (self.outbox.offer(frame, urgent=True) or await self.outbox.put(frame, self.wait)):
            kind = str(getattr(message, "type", type(message).__name__))
            self.dropped[kind] += 1
            self.metrics.replies_dropped.labels(kind).inc()
            return False
        if self.dropped:
            self._report()
        return True

    def _report(self) -> None:
        """Tell the cart how many replies it lost (once there is room for the telling)."""
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(self.dropped.items()))
        detail = f"{self.dropped.total()} replies dropped ({kinds}): you send requests faster than you read the answers"
        if self.outbox.offer(frames.control(Error(code="replies_dropped", detail=detail)), urgent=True):
            log.info("told a cart: %s", detail)
            self.dropped.clear()


class CartSessions:
    """Serves admitted carts: heartbeats, directory requests, presence, routing, model uploads."""

    def __init__(
        self,
        identity: Identity,
        settings: BridgeSettings,
        directory: Directory,
        relay: Relay,
        hub: TransferHub,
        metrics: BridgeMetrics,
        joined: JoinedFn,
        left: LeftFn,
    ) -> None:
        self.identity = identity
        self.settings = settings
        self.directory = directory
        self.relay = relay
        self.hub = hub
        self.metrics = metrics
        self._joined = joined
        self._left = left

    async def serve(self, peer: Peer) -> None:
        """Run one cart's connection to its end (returns when it has left)."""
        await self._attach(peer)
        reason, how = "disconnected without saying goodbye", "dropped"
        try:
            reason, how = await self._read(peer) or (reason, how)
        except Silent as exc:
            reason, how = f"{exc} (missed {self.settings.heartbeat_misses} heartbeats)", "silent"
        finally:
            if peer.farewell is not None:
                reason, how = peer.farewell, "removed"
            elif sent_oversized(peer.ws):
                reason, how = f"sent a {OVERSIZED}: closed with 1009", "oversized"
                log.info("cart %s %s", peer.node_id[:8], reason)
                self.metrics.bad_frames.labels("oversized_frame").inc()
            elif peer.outbox.failure:
                reason, how = peer.outbox.failure, "stalled"
            await self._leave(peer, reason, how)

    async def drop(self, peer: Peer, reason: str) -> None:
        """End a cart's session from this side (its certificate no longer holds): Bye with the reason, which
        also becomes the reason its peers are told."""
        log.info("removing cart %s: %s", peer.node_id[:8], reason)
        peer.farewell = reason
        await peer.close(frames.control(Bye(reason=reason[:512])), self.settings.shutdown_grace)

    async def _attach(self, peer: Peer) -> None:
        older = self.directory.attach(peer)
        if older is not None:
            log.info("cart %s reconnected; closing its older connection", peer.node_id[:8])
            await older.close(
                frames.control(Bye(reason="replaced by a newer connection")), self.settings.shutdown_grace
            )
        self.relay.arrived(peer.node_id)
        peer.start_writer()
        log.info("cart %s attached", peer.node_id[:8])

    def announce_revocations(self, revocations: RevocationList) -> None:
        """Pass a newly adopted revocation list on to every attached cart: carts check their peers' certificates
        against it too (cartnet.peers). A cart that joins later has the list its enrolment wrote into its data
        dir, and the next one adopted; a full outbox drops it (the cart's peers stay checked against its older
        list, as when a bridge withholds one)."""
        frame = frames.control(revocations)
        for peer in list(self.directory.local.values()):
            peer.outbox.offer(frame, urgent=True)

    async def _read(self, peer: Peer) -> tuple[str, str] | None:
        """Handle the cart's frames, paced by its budget; (reason, how) if it said Bye, None if the socket ended."""
        budget = SendBudget(self.settings.rate_frames, self.settings.rate_bytes, MAX_FRAME)
        replies = Replies(peer.outbox, self.metrics, self.settings.send_timeout)
        told = 0.0
        source = f"cart {peer.node_id[:8]}"

        async def refuse(refusal: Refusal) -> None:
            await self._refuse(replies, refusal)

        async for data in incoming(peer.ws, self.settings.liveness_deadline):
            pause = budget.charge(len(data))
            if pause:
                told = await self._pace_notice(replies, told)
                self.metrics.paced.inc(pause)
                await asyncio.sleep(pause)
            said = await boundary.guard(self._dispatch(peer, replies, data), refuse, source)
            if said is not None:
                return f"said bye ({said or 'no reason given'})", "bye"
        return None

    async def _pace_notice(self, replies: Replies, told: float) -> float:
        """Tell a cart (at most once a second) that it is being slowed down, and why."""
        now = time.monotonic()
        if now - told < 1.0:
            return told
        detail = (
            f"sending faster than {self.settings.rate_frames:g} frames/s or {self.settings.rate_bytes:g} bytes/s: paced"
        )
        await replies.send(Error(code="rate_limited", detail=detail))
        return now

    async def _dispatch(self, peer: Peer, replies: Replies, data: bytes) -> str | None:
        """Handle one frame (inside the boundary: it may raise); returns the cart's goodbye reason on Bye."""
        if data[:1] == frames.ROUTED:
            await self._route(peer, replies, data)
            return None
        item = frames.parse(memoryview(data))
        if isinstance(item, Bye):
            return item.reason
        if isinstance(item, Message) and await self._answer(peer, replies, item):
            return None
        if isinstance(item, frames.Routed) or not await self.hub.handle(peer.node_id, item):
            await self._refuse(
                replies, Refusal("unexpected", f"the bridge does not handle {type(item).__name__} frames from carts")
            )
        return None

    async def _route(self, peer: Peer, replies: Replies, data: bytes) -> None:
        """The fast path: the 41-byte header is read in place (the sender compared as raw bytes), and the frame
        object the socket handed us is what the receiver's outbox writes: no copy, no parse of the inner frame."""
        if len(data) <= frames.ROUTE_HEAD:
            frames.parse_route(data)  # raises FrameError with the reason
        if data[21:41] != peer.id_bytes:
            detail = f"routed frame claims sender {data[21:41].hex()[:8]}, you are {peer.node_id[:8]}"
            await self._refuse(replies, Refusal("spoofed_sender", detail))
            return
        await self.relay.route(data, data[1:21].hex(), peer.node_id, peer)

    async def _answer(self, peer: Peer, replies: Replies, message: Message) -> bool:
        """Control messages meant for the bridge itself; False when it is not one of them."""
        if isinstance(message, Heartbeat):
            await replies.send(HeartbeatAck(seq=message.seq))
        elif isinstance(message, PeersRequest):
            await replies.send(self._peer_list(peer, message))
        elif isinstance(message, Presence):
            reason = self._presence_problem(peer, message)
            if reason:
                await self._refuse(replies, Refusal("bad_presence", reason))
            else:
                self.directory.set_presence(peer.node_id, message)
                self._joined(message.record)
        else:
            return False
        return True

    def _peer_list(self, peer: Peer, request: PeersRequest) -> PeerList:
        """A sample, one entry or the directory (as far as one message holds it), as the cart asked."""
        if request.node_id is not None:
            found = self.directory.member(request.node_id)
            return PeerList(
                peers=[_for_holder(found.info, set(request.known))] if found else [], total=1 if found else 0
            )
        if request.sample is not None:
            infos, pool = self.directory.sample(request.sample, request.task, exclude=peer.node_id)
            return _drawn_for(infos, pool, set(request.known), request.by_id)
        members = self.directory.members()
        return PeerList(peers=[member.info for member in members[:MAX_PEER_LIST]], total=len(members))

    def _presence_problem(self, peer: Peer, signed: Presence) -> str | None:
        record = signed.record
        if (record.node_id, record.public_key, record.kx_public_key) != (
            peer.node_id,
            peer.auth.public_key,
            peer.auth.kx_public_key,
        ):
            return "presence is not for the identity admitted on this connection"
        if record.bridge_id != self.identity.node_id:
            return f"presence names bridge {record.bridge_id[:8]}, this is {self.identity.node_id[:8]}"
        if record.state != "alive":
            return "presence must be alive; leave with Bye"
        if record.expires_ms - presence.now_ms() > self.settings.presence_max_ttl * 1000:
            return f"presence lifetime exceeds {self.settings.presence_max_ttl:.0f}s"
        reason = presence.check(record)
        if reason is None and presence.check(presence.withdrawal(signed)) is not None:
            reason = "bad withdrawal signature"
        return reason

    async def _refuse(self, replies: Replies, refusal: Refusal) -> None:
        """A refused frame: counted by code, and the cart told why."""
        self.metrics.bad_frames.labels(refusal.code).inc()
        await replies.send(refusal.error())

    async def _leave(self, peer: Peer, reason: str, how: str) -> None:
        signed = self.directory.presences.get(peer.node_id)
        if self.directory.detach(peer):
            log.info("cart %s left: %s", peer.node_id[:8], reason)
            self.metrics.departures.labels(how).inc()
            self.hub.fail_peer(peer.node_id, reason)
            self.relay.departed(peer.node_id, reason)
            self._left(peer.node_id, reason, presence.withdrawal(signed) if signed else None)
        await peer.close(None, self.settings.shutdown_grace)


def _drawn_for(infos: list[PeerInfo], pool: int, known: set[str], by_id: bool) -> PeerList:
    """A sample for its asker: the carts it holds without their certificates, or, `by_id`, by id alone."""
    by_id_alone = {at for at, info in enumerate(infos) if by_id and info.node_id[:KNOWN_PREFIX] in known}
    drawn = list(enumerate(infos))
    return PeerList(
        peers=[_for_holder(info, known) for at, info in drawn if at not in by_id_alone],
        held=[
            HeldPeer(node_id=info.node_id, bridge_id=info.bridge_id, bridge_url=info.bridge_url, at=at)
            for at, info in drawn
            if at in by_id_alone
        ],
        total=pool,
    )


def _for_holder(info: PeerInfo, held: set[str]) -> PeerInfo:
    """`info` without its certificate when the asker said it holds it (`PeersRequest.known`)."""
    return info.without_certificate() if info.node_id[:KNOWN_PREFIX] in held else info
