"""One admitted cart's life on this bridge: read its frames until it leaves, then clean up.

Each cart is read on its own task, paced by its own rate budget, and dropped after
`liveness_deadline` seconds of silence. A malformed frame earns an Error reply naming
what is wrong, and the connection carries on. How the cart leaves (Bye, silence, a
dropped socket) becomes the reason every interested party is told.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from cartnet import frames, presence
from cartnet.handshake import MAX_FRAME
from cartnet.identity import Identity
from cartnet.messages import (
    Bye,
    Error,
    Heartbeat,
    HeartbeatAck,
    Message,
    MessageError,
    PeerList,
    PeersRequest,
    Presence,
    PresenceRecord,
)
from cartnet.transfer import TransferHub
from parent_cart.directory import Directory
from parent_cart.metrics import BridgeMetrics
from parent_cart.peer import Peer, Silent, incoming
from parent_cart.ratelimit import SendBudget
from parent_cart.relay import Relay
from parent_cart.settings import BridgeSettings

log = logging.getLogger(__name__)

MAX_PEER_LIST = 400
"""PeerInfo is ~280 bytes of JSON; 400 of them stay under cartnet's 128 KiB control limit."""

JoinedFn = Callable[[PresenceRecord], None]
LeftFn = Callable[[str, str, PresenceRecord | None], None]


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
            if peer.outbox.failure:
                reason, how = peer.outbox.failure, "stalled"
            await self._leave(peer, reason, how)

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

    async def _read(self, peer: Peer) -> tuple[str, str] | None:
        """Handle the cart's frames, paced by its budget; (reason, how) if it said Bye, None if the socket ended."""
        budget = SendBudget(self.settings.rate_frames, self.settings.rate_bytes, MAX_FRAME)
        told = 0.0
        async for data in incoming(peer.ws, self.settings.liveness_deadline):
            pause = budget.charge(len(data))
            if pause:
                told = self._pace_notice(peer, told)
                self.metrics.paced.inc(pause)
                await asyncio.sleep(pause)
            said = await self._dispatch(peer, data)
            if said is not None:
                return f"said bye ({said or 'no reason given'})", "bye"
        return None

    def _pace_notice(self, peer: Peer, told: float) -> float:
        """Tell a cart (at most once a second) that it is being slowed down, and why."""
        now = time.monotonic()
        if now - told < 1.0:
            return told
        detail = (
            f"sending faster than {self.settings.rate_frames:g} frames/s or {self.settings.rate_bytes:g} bytes/s: paced"
        )
        peer.outbox.offer(frames.control(Error(code="rate_limited", detail=detail)), urgent=True)
        return now

    async def _dispatch(self, peer: Peer, data: bytes) -> str | None:
        """Handle one frame; returns the cart's goodbye reason when it said Bye."""
        if data[:1] == frames.ROUTED:
            await self._route(peer, data)
            return None
        try:
            item = frames.parse(memoryview(data))
        except MessageError as exc:
            self._error(peer, "bad_message", str(exc), exc.field)
            return None
        except frames.FrameError as exc:
            self._error(peer, "bad_frame", str(exc))
            return None
        if isinstance(item, Bye):
            return item.reason
        if isinstance(item, Message) and self._answer(peer, item):
            return None
        if not await self.hub.handle(peer.node_id, item):
            self._error(peer, "unexpected", f"the bridge does not handle {type(item).__name__} frames from carts")
        return None

    async def _route(self, peer: Peer, data: bytes) -> None:
        try:
            route = frames.parse_route(memoryview(data))
        except frames.FrameError as exc:
            self._error(peer, "bad_frame", str(exc))
            return
        if route.sender != peer.node_id:
            self._error(
                peer, "spoofed_sender", f"routed frame claims sender {route.sender[:8]}, you are {peer.node_id[:8]}"
            )
            return
        await self.relay.route(data, route.to, route.sender, peer)

    def _answer(self, peer: Peer, message: Message) -> bool:
        """Control messages meant for the bridge itself; False when it is not one of them."""
        if isinstance(message, Heartbeat):
            peer.outbox.offer(frames.control(HeartbeatAck(seq=message.seq)), urgent=True)
        elif isinstance(message, PeersRequest):
            infos = [member.info for member in self.directory.members()[:MAX_PEER_LIST]]
            peer.outbox.offer(frames.control(PeerList(peers=infos)), urgent=True)
        elif isinstance(message, Presence):
            self._on_presence(peer, message)
        else:
            return False
        return True

    def _on_presence(self, peer: Peer, signed: Presence) -> None:
        reason = self._presence_problem(peer, signed)
        if reason:
            self._error(peer, "bad_presence", reason)
            return
        self.directory.set_presence(peer.node_id, signed)
        self._joined(signed.record)

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

    def _error(self, peer: Peer, code: str, detail: str, field: str = "") -> None:
        log.info("cart %s: %s: %s", peer.node_id[:8], code, detail)
        self.metrics.bad_frames.labels(code).inc()
        peer.outbox.offer(frames.control(Error(code=code, detail=detail[:512], field=field[:128])), urgent=True)

    async def _leave(self, peer: Peer, reason: str, how: str) -> None:
        signed = self.directory.presences.get(peer.node_id)
        if self.directory.detach(peer):
            log.info("cart %s left: %s", peer.node_id[:8], reason)
            self.metrics.departures.labels(how).inc()
            self.hub.fail_peer(peer.node_id, reason)
            self.relay.departed(peer.node_id, reason)
            self._left(peer.node_id, reason, presence.withdrawal(signed) if signed else None)
        await peer.close(None, self.settings.shutdown_grace)
