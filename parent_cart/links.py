"""Persistent, mutually authenticated WebSocket links between bridges.

A bridge dials another bridge's `/ws` and passes the same admission a cart does
(role "bridge", its relay URL in the signed transcript, its bridge certificate). Then the
dialer challenges the acceptor in turn, so each side has proven its key and shown a bridge
certificate of this swarm to the other before a single frame is forwarded. Over a link
travel: routed frames of carts on either side, rosters (the verified presence records of
each side's carts, a full one on connect and deltas after), bounces of undeliverable
frames, heartbeats for liveness, and the swarm authority's newest revocation list (sent on
connect and whenever a newer one is adopted; carts it names are never taken from a roster).

Every frame from a link is handled inside the frame boundary (cartnet.boundary): a
frame that raises earns the other bridge an Error and a count in
`fedcart_bridge_bad_frames{code}`, and the link carries on.

A relay URL is dialed only in a form `parent_cart.records.relay_url_problem` allows
(http/https/ws/wss, a host name or a unicast address, a port, a plain path), wherever it
came from: a DHT entry or a linked bridge's admission. https:// and wss:// relays are
verified (certificate chain and host name) against the SSL context the bridge was given
(TLS_CA, else the swarm CA: cartnet.tls); one that fails is logged as such and not linked.

When the last link to a bridge goes, its carts leave our directory at once and every
local cart that was talking to them is told why. A bridge that could not be dialed is
not dialed again for `link_timeout` seconds, so frames for its carts bounce at once
instead of each waiting for a connect timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Coroutine
from typing import Any, cast

import aiohttp
from aiohttp import ClientWebSocketResponse, WSCloseCode

from cartnet import admission, boundary, frames, tls
from cartnet.boundary import Refusal
from cartnet.certificates import CertificateError
from cartnet.handshake import MAX_FRAME, join, receive_control, ws_url
from cartnet.identity import Identity
from cartnet.messages import (
    MAX_ROSTER_JOINED,
    Auth,
    Bye,
    CertifiedPresence,
    Challenge,
    Error,
    Heartbeat,
    HeartbeatAck,
    LinkUndeliverable,
    Message,
    MessageError,
    RevocationList,
    Roster,
)
from parent_cart.directory import Directory
from parent_cart.gate import OVERSIZED, close_reason, sent_oversized
from parent_cart.membership import Membership
from parent_cart.peer import Outbox, Peer, Silent, WebSocket, incoming
from parent_cart.records import relay_url_problem
from parent_cart.relay import Relay
from parent_cart.settings import BridgeSettings

log = logging.getLogger(__name__)

ROSTER_BATCH = MAX_ROSTER_JOINED
_LINK_QUEUE_FACTOR = 4
_DIAL_ERRORS = (
    aiohttp.ClientError,
    ConnectionError,
    TimeoutError,
    OSError,
    PermissionError,
    MessageError,
    frames.FrameError,
)


class Links:
    """All links of this bridge, keyed by the other bridge's id (usually one each)."""

    def __init__(
        self,
        identity: Identity,
        settings: BridgeSettings,
        membership: Membership,
        directory: Directory,
        relay: Relay,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.identity = identity
        self.ssl_context = ssl_context
        self.settings = settings
        self.membership = membership
        self.directory = directory
        self.relay = relay
        self.public_url = ""
        self._links: dict[str, list[Peer]] = {}
        self._dialing: dict[str, asyncio.Future[Peer | None]] = {}
        self._unreachable: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._stopping = False

    def ids(self) -> list[str]:
        return [bridge_id for bridge_id, links in self._links.items() if links]

    def peers(self) -> list[Peer]:
        """Every open link (a bridge may briefly have two while a redial settles)."""
        return [peer for links in self._links.values() for peer in links]

    def current(self, bridge_id: str) -> Peer | None:
        links = self._links.get(bridge_id)
        return links[-1] if links else None

    # --- sending ---------------------------------------------------------------------------

    async def ensure(self, bridge_id: str, url: str) -> Peer | None:
        """The link to `bridge_id`, dialing `url` if there is none (concurrent callers share one dial)."""
        link = self.current(bridge_id)
        if link is not None or not url or self._stopping or bridge_id == self.identity.node_id:
            return link
        if self._unreachable.get(bridge_id, 0.0) > time.monotonic():
            return None
        problem = relay_url_problem(url)
        if problem is not None:
            log.warning("not dialing bridge %s at %r: %s", bridge_id[:8], url[:80], problem)
            self._unreachable[bridge_id] = time.monotonic() + self.settings.link_timeout
            return None
        pending = self._dialing.get(bridge_id)
        if pending is None:
            pending = self._dialing[bridge_id] = asyncio.ensure_future(self._dial(bridge_id, url))
            pending.add_done_callback(lambda _: self._dialing.pop(bridge_id, None))
        return await asyncio.shield(pending)

    async def forward(self, bridge_id: str, frame: bytes, timeout: float) -> str | None:
        """Queue a routed frame on the link to `bridge_id`; None when queued, else why not."""
        link = await self.ensure(bridge_id, self.directory.bridge_urls.get(bridge_id, ""))
        if link is None:
            return f"bridge {bridge_id[:8]} is unreachable"
        if not await link.outbox.put(frame, timeout):
            return f"the link to bridge {bridge_id[:8]} stayed full for {timeout}s, frame dropped"
        return None

    def announce_joined(self, card: CertifiedPresence) -> None:
        self._broadcast(Roster(joined=[card]))

    def announce_left(self, node_id: str, reason: str) -> None:
        self._broadcast(Roster(left=[node_id], reason=reason[:512]))

    def announce_revocations(self, revocations: RevocationList) -> None:
        """Pass a newly adopted revocation list on to every linked bridge."""
        self._broadcast(revocations)

    def _broadcast(self, message: Message) -> None:
        frame = frames.control(message)
        for bridge_id in self.ids():
            link = self.current(bridge_id)
            if link is not None and not link.outbox.offer(frame, urgent=True):
                log.warning("link to %s is hopelessly backed up; closing it to resync", bridge_id[:8])
                self._spawn(link.close(None, self.settings.shutdown_grace))

    # --- establishing ----------------------------------------------------------------------

    async def accept(self, peer: Peer) -> None:
        """An admitted bridge dialed us: answer its challenge, then serve the link until it ends."""
        try:
            # receive_control only calls receive(), which the server side of a socket has too
            challenge = await receive_control(cast(ClientWebSocketResponse, peer.ws), self.settings.link_timeout)
            if not isinstance(challenge, Challenge) or challenge.bridge_id != peer.node_id:
                raise ConnectionError("expected the dialing bridge's own challenge")
            answer = self.membership.answer(challenge, self.public_url)
            await peer.ws.send_bytes(frames.control(answer))
        except _DIAL_ERRORS as exc:
            log.warning("link from %s failed its handshake: %s", peer.node_id[:8], exc)
            reason = close_reason(f"link handshake failed: {exc or type(exc).__name__}")
            await peer.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=reason)
            return
        self._register(peer)
        await self._serve(peer)

    async def _dial(self, bridge_id: str, url: str) -> Peer | None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        ws = None
        try:
            async with asyncio.timeout(self.settings.link_timeout):
                ws = await self._session.ws_connect(
                    ws_url(url), max_msg_size=MAX_FRAME, ssl=self.ssl_context if self.ssl_context is not None else True
                )
                auth = await self._handshake(ws, bridge_id, url)
        except _DIAL_ERRORS as exc:
            problem = tls.explain(exc, url)
            if problem is not None:
                log.warning("cannot link to bridge %s: %s", bridge_id[:8], problem)
            else:
                log.info("cannot link to bridge %s at %s: %s", bridge_id[:8], url, exc or type(exc).__name__)
            self._unreachable[bridge_id] = time.monotonic() + self.settings.link_timeout
            if ws is not None:
                await ws.close()
            return None
        peer = self._new_peer(auth, ws, url, initiator=True)
        self._register(peer)
        self._spawn(self._serve(peer))
        return peer

    async def _handshake(self, ws: aiohttp.ClientWebSocketResponse, bridge_id: str, url: str) -> Auth:
        """Join the other bridge, then make it prove itself to us the same way."""
        welcome = await join(
            ws,
            self.identity,
            self.membership.certificate,
            "bridge",
            self.public_url,
            self.settings.link_timeout,
            self.membership.swarm_token,
        )
        if welcome.bridge_id != bridge_id:
            raise ConnectionError(f"{url} is bridge {welcome.bridge_id[:8]}, not {bridge_id[:8]}")
        challenge = admission.challenge(self.identity.node_id)
        await ws.send_bytes(frames.control(challenge))
        auth = await receive_control(ws, self.settings.link_timeout)
        if not isinstance(auth, Auth) or auth.role != "bridge" or auth.node_id != bridge_id:
            raise ConnectionError(f"bridge at {url} did not answer our challenge as {bridge_id[:8]}")
        self.membership.verify(auth, challenge)
        return auth

    def _new_peer(self, auth: Auth, ws: WebSocket, url: str, initiator: bool) -> Peer:
        factor = _LINK_QUEUE_FACTOR
        outbox = Outbox(
            ws, self.settings.queue_frames * factor, self.settings.queue_bytes * factor, self.settings.liveness_deadline
        )
        return Peer(auth, ws, outbox, url=url, initiator=initiator)

    def link_peer(self, auth: Auth, ws: aiohttp.web.WebSocketResponse) -> Peer:
        """The Peer for an inbound link (the gate admitted it)."""
        return self._new_peer(auth, ws, auth.relay_url, initiator=False)

    def _register(self, peer: Peer) -> None:
        """Make the link usable at once, with our full roster queued before any forwarded frame."""
        self._unreachable.pop(peer.node_id, None)
        self._links.setdefault(peer.node_id, []).append(peer)
        self.directory.bridge_urls[peer.node_id] = peer.url
        peer.start_writer()
        cards = self.directory.local_cards()
        for start in range(0, max(len(cards), 1), ROSTER_BATCH):
            roster = Roster(reset=start == 0, joined=cards[start : start + ROSTER_BATCH])
            peer.outbox.offer(frames.control(roster), urgent=True)
        if self.membership.revocations is not None:
            peer.outbox.offer(frames.control(self.membership.revocations), urgent=True)
        self.directory.touch()
        log.info(
            "linked with bridge %s at %s (%s)", peer.node_id[:8], peer.url, "dialed" if peer.initiator else "accepted"
        )

    # --- serving ---------------------------------------------------------------------------

    async def _serve(self, peer: Peer) -> None:
        beat = asyncio.create_task(self._heartbeat(peer))
        reason = "link closed"
        source = f"bridge {peer.node_id[:8]}"

        async def refuse(refusal: Refusal) -> None:
            self.relay.metrics.bad_frames.labels(refusal.code).inc()
            peer.outbox.offer(frames.control(refusal.error()), urgent=True)

        try:
            async for data in incoming(peer.ws, self.settings.liveness_deadline):
                said = await boundary.guard(self._dispatch(peer, data), refuse, source)
                if said is not None:
                    reason = f"said bye ({said})"
                    break
        except Silent as exc:
            reason = str(exc)
        finally:
            beat.cancel()
            if sent_oversized(peer.ws):
                reason = f"sent a {OVERSIZED}: closed with 1009"
                self.relay.metrics.bad_frames.labels("oversized_frame").inc()
            self._unregister(peer, peer.farewell or reason)
            await peer.close(None, self.settings.shutdown_grace)

    async def _heartbeat(self, peer: Peer) -> None:
        seq = 0
        while not peer.outbox.closed:
            await asyncio.sleep(self.settings.heartbeat_interval)
            seq += 1
            peer.outbox.offer(frames.control(Heartbeat(seq=seq)), urgent=True)

    async def _dispatch(self, peer: Peer, data: bytes) -> str | None:
        """Handle one frame from a linked bridge (inside the boundary: it may raise); its goodbye reason on Bye."""
        item = frames.parse(memoryview(data))
        if isinstance(item, frames.Routed):
            await self.relay.route(data, item.to, item.sender, peer)
        elif isinstance(item, Roster):
            self._on_roster(peer, item)
        elif isinstance(item, RevocationList):
            self._on_revocations(peer, item)
        elif isinstance(item, LinkUndeliverable):
            self.relay.tell_local(item.sender, item.to, item.reason)
        elif isinstance(item, Heartbeat):
            peer.outbox.offer(frames.control(HeartbeatAck(seq=item.seq)), urgent=True)
        elif isinstance(item, Bye):
            return item.reason or "no reason given"
        elif isinstance(item, Error):
            log.warning("bridge %s reported %s: %s", peer.node_id[:8], item.code, item.detail)
        return None

    def _on_roster(self, peer: Peer, roster: Roster) -> None:
        refused = {card.record.node_id: why for card in roster.joined if (why := self.membership.certifies(card))}
        if refused:
            log.info(
                "bridge %s listed %d cart(s) we do not believe; ignoring them: %s",
                peer.node_id[:8],
                len(refused),
                "; ".join(f"{node_id[:8]}: {why}" for node_id, why in list(refused.items())[:3]),
            )
            kept = [card for card in roster.joined if card.record.node_id not in refused]
            roster = roster.model_copy(update={"joined": kept})
        joined, left = self.directory.apply_roster(peer.node_id, peer.url, roster)
        for node_id in joined:
            self.relay.arrived(node_id)
        for node_id in left:
            self.relay.departed(node_id, roster.reason or f"left bridge {peer.node_id[:8]}")

    def _on_revocations(self, peer: Peer, revocations: RevocationList) -> None:
        """A list from a linked bridge: adopted (and passed on by the membership's listeners) when newer."""
        try:
            self.membership.offer(revocations, f"bridge {peer.node_id[:8]}")
        except CertificateError as exc:
            log.warning("bridge %s sent a revocation list we refuse: %s", peer.node_id[:8], exc)
            peer.outbox.offer(frames.control(Error(code="bad_revocations", detail=str(exc)[:512])), urgent=True)

    def _unregister(self, peer: Peer, reason: str) -> None:
        links = self._links.get(peer.node_id, [])
        if peer in links:
            links.remove(peer)
        self.directory.touch()
        if links:
            return
        self._links.pop(peer.node_id, None)
        log.info("lost the link to bridge %s: %s", peer.node_id[:8], reason)
        for node_id in self.directory.forget_bridge(peer.node_id):
            self.relay.departed(node_id, f"its bridge {peer.node_id[:8]} is unreachable ({reason})")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drop(self, peer: Peer, reason: str) -> None:
        """End a link from this side (the other bridge's certificate no longer holds), saying why."""
        log.info("closing the link to bridge %s: %s", peer.node_id[:8], reason)
        peer.farewell = reason
        await peer.close(frames.control(Bye(reason=reason[:512])), self.settings.shutdown_grace)

    async def close(self, reason: str) -> None:
        """Say Bye on every link and wait (bounded) for them to wind down."""
        self._stopping = True
        bye = frames.control(Bye(reason=reason))
        peers = [peer for links in self._links.values() for peer in links]
        await asyncio.gather(*(peer.close(bye, self.settings.shutdown_grace) for peer in peers), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            with contextlib.suppress(Exception):
                await self._session.close()
