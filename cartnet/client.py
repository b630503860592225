"""BridgeClient: a cart's single connection to the swarm, through one of the bridges it dials out to.

Carts sit behind NAT, so a cart never listens: it opens one WebSocket to a bridge's
`/ws`, proves its identity and shows its swarm certificate (cartnet.admission), and from then on
reaches any other cart by node id. Everything a cart sends to a peer travels as a
routed frame `R <to> <from> <inner>`; the bridge reads only the 41-byte header.

What the client takes care of, so the rounds engine does not have to:

* admission, then a signed presence record (cartnet.presence) refreshed before it expires;
  it names the cart's task and, once `announce(ready=True)` was called, that it has an
  update on offer (re-signed and sent at once whenever that changes);
* asking the bridge whom to talk to: `peers(sample=k, task=T)` draws k random announced
  carts (ready ones first), `lookup(node_id)` one cart's entry;
* heartbeats at the interval the bridge asked for, and noticing a silent bridge;
* failing over: given several bridges (primary first), it dials the next one in the list
  whenever its bridge goes away or a dial fails, with exponential backoff plus jitter once
  a whole pass over the list failed, and announces its presence afresh on the new bridge;
* admission refusals: one that judges our certificate, key or token (revoked, expired,
  another swarm, ...; `AdmissionRefused.of_the_node`) rules that bridge out, and once every
  bridge in the list has refused us so the refusal is final (every bridge of a swarm checks
  alike, and no single bridge's word ends a cart); any other refusal (no answer in time,
  bridge full or stopping) is retried like an unreachable bridge;
* TLS to an https:// or wss:// bridge, verified against the SSL context given (a cart's
  comes from cartnet.tls: TLS_CA, else the swarm CA, else the system's); a bridge whose
  certificate is not trusted is logged as an error saying so, and kept being retried (it may
  be renewed), and `wait_connected` names it when it gives up;
* a TransferHub (`client.transfers`) whose frames are routed, so
  `await client.transfers.send_blob(peer_id, blob, purpose, meta)` works cart to cart,
  and received blobs appear on `client.transfers.received`;
* failing pending sends promptly (hub.fail_peer) when the bridge reports a peer
  undeliverable or the bridge connection itself is lost;
* handing every revocation list the bridge passes on to the cart's `PeerVerifier`
  (cartnet.peers), which adopts it only when the swarm's authority signed it and it is newer;
* handling every received frame inside the frame boundary (cartnet.boundary): a frame
  from a peer that cannot be decoded or handled earns that peer an Error and a count in
  `client.refused`, one from the bridge a count and a log line; the session goes on.

Typical use::

    async with BridgeClient(identity, ["http://bridge-0:8470", "http://bridge-1:8470"], certificate) as client:
        await client.wait_connected()
        peers = await client.peers()
        await client.send_message(peers[0].node_id, UpdateRequest(...))
        async for incoming in client:          # control messages peers routed to us
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import aiohttp

from cartnet import boundary, frames, phone_models, presence, tls, wsock
from cartnet.boundary import Refusal
from cartnet.handshake import MAX_FRAME, AdmissionRefused, join, ws_url
from cartnet.identity import Identity
from cartnet.messages import (
    KNOWN_PREFIX,
    AnyMessage,
    Bye,
    Certificate,
    Error,
    Heartbeat,
    HeldPeer,
    Message,
    MessageError,
    PeerInfo,
    PeerList,
    PeersRequest,
    Presence,
    RevocationList,
    Undeliverable,
    Welcome,
)
from cartnet.payloads import ModelPublication
from cartnet.peers import PeerVerifier
from cartnet.phone_models import ModelClaims
from cartnet.transfer import TransferHub, TransferLimits

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_DRAW_LOOKUPS = 4
"""Carts of one draw named by id alone that are looked up whole: an honest bridge needs one for a cart that moved
bridges and rarely another; a bridge naming carts we never verified gets no more than this many lookups out of us."""
MISSED_HEARTBEATS = 3
"""A bridge silent for this many heartbeat intervals is treated as gone."""


class NotConnected(ConnectionError):
    """There is no live bridge connection right now (the client is reconnecting or closed)."""


@dataclass(frozen=True)
class Incoming:
    """A control message another cart routed to us (transfer frames go to `client.transfers`)."""

    peer: str
    message: Message


@dataclass(frozen=True)
class Backoff:
    """Reconnect delays: exponential, capped, and jittered so a restarted bridge is not stampeded."""

    initial: float = 0.2
    maximum: float = 10.0
    factor: float = 2.0
    jitter: float = 0.5

    def delay(self, attempt: int) -> float:
        base = min(self.maximum, self.initial * self.factor**attempt)
        return base * (1.0 - self.jitter * random.random())


class BridgeClient:
    """One cart's connection to the swarm; see the module docstring for the whole picture.

    Public state, all safe to read at any time:

    * `connected` (Event): set while admitted; `disconnected` (Event): set when an admitted
      session ends, cleared at the next admission; `closed` (Event): set after `close()` or
      a final refusal (then `failure` holds the AdmissionRefused).
    * `bridge_id`, `heartbeat_interval`: from the last Welcome; `sessions`: admissions so far.
    * `urls`: the bridges' `/ws` URLs, primary first; `url`: the one we are on or dialing next;
      `refused_by`: bridges that refused our certificate, key or token, with their refusal.
    * `transfers` (TransferHub): cart-to-cart blobs; verified arrivals on `transfers.received`.
    * `inbox` (Queue[Incoming]): control messages peers routed to us; also `async for x in client`.
    * `undeliverable` (Queue[Undeliverable]): frames the bridge could not deliver, with reasons;
      pending transfers to that peer have already been failed when one arrives here.
    * `errors` (Queue[Error]): complaints from the bridge (malformed frame, rate limited, ...).
    * `refused` (Counter[str]): frames this client refused, by refusal code (`bad_message`,
      `bad_frame`, `inbox_full`, ...); the sender of a refused routed frame got an Error.

    Notification queues keep the newest entries when nobody reads them; a full inbox makes
    the client answer the sending peer with an Error instead of blocking its reader.
    """

    def __init__(
        self,
        identity: Identity,
        bridge_url: str | Sequence[str],
        certificate: Certificate,
        *,
        swarm_token: str = "",
        verifier: PeerVerifier | None = None,
        limits: TransferLimits | None = None,
        presence_ttl: float = 60.0,
        backoff: Backoff | None = None,
        handshake_timeout: float = 10.0,
        queue_size: int = 1024,
        session: aiohttp.ClientSession | None = None,
        task: str = "",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.identity = identity
        urls = [bridge_url] if isinstance(bridge_url, str) else list(bridge_url)
        self.urls = list(dict.fromkeys(ws_url(url) for url in urls))
        if not self.urls:
            raise ValueError("a BridgeClient needs at least one bridge URL")
        self._at = 0
        self.refused_by: dict[str, AdmissionRefused] = {}
        self.transfers = TransferHub(identity, self._hub_send, limits)
        self.inbox: asyncio.Queue[Incoming] = asyncio.Queue(queue_size)
        self.undeliverable: asyncio.Queue[Undeliverable] = asyncio.Queue(queue_size)
        self.errors: asyncio.Queue[Error] = asyncio.Queue(queue_size)
        self.connected = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.closed = asyncio.Event()
        self.bridge_id: str | None = None
        self.heartbeat_interval: float | None = None
        self.sessions = 0
        self.failure: Exception | None = None
        self.last_error = ""
        """Why the last attempt to reach the bridge failed (empty once admitted)."""
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self.refused: Counter[str] = Counter()
        self.wire_bytes_in = 0
        self.wire_bytes_out = 0
        """WebSocket bytes received from and sent to the bridge since start, frame headers included (the
        admission handshake aside): what a round costs on the wire, not only its payload."""
        self.wire_bytes_relayed_in = 0
        """The part of `wire_bytes_in` that another cart sent (routed frames): counted at its sender already."""
        self.certificate = certificate
        self._token = swarm_token
        self._presence_ttl = presence_ttl
        self._task, self._ready, self._issued_ms = task, False, 0
        self._backoff = backoff or Backoff()
        self._handshake_timeout = handshake_timeout
        self.verifier = verifier
        """Checks peers' keys; the revocation lists the bridge passes on go to it."""
        self._session = session
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._send_lock = asyncio.Lock()
        self._peers_lock = asyncio.Lock()
        self._peer_list: asyncio.Future[PeerList] | None = None
        self._contacts: set[str] = set()
        self._closing = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None

    @property
    def node_id(self) -> str:
        return self.identity.node_id

    @property
    def url(self) -> str:
        """The `/ws` URL of the bridge we are connected to, or dialing next."""
        return self.urls[self._at]

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Begin connecting in the background; `connected` is set once admitted."""
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name=f"bridge-client-{self.node_id[:8]}")

    async def wait_connected(self, timeout: float = 30.0) -> None:
        """Wait until admitted; AdmissionRefused if the bridge said no, TimeoutError if it never answered."""
        waiters = {asyncio.ensure_future(self.connected.wait()), asyncio.ensure_future(self.closed.wait())}
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        if self.connected.is_set():
            return
        if self.failure is not None:
            raise self.failure
        why = f": {self.last_error}" if self.last_error else ""
        where = self.url if len(self.urls) == 1 else f"any of {', '.join(self.urls)}"
        raise TimeoutError(f"not admitted by {where} within {timeout}s{why}")

    async def close(self, reason: str = "cart shutting down") -> None:
        """Say Bye to the bridge (so peers learn we left on purpose) and stop reconnecting."""
        self._closing.set()
        ws = self._ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._send_raw(frames.control(Bye(reason=reason)))
            await ws.close()
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        self.closed.set()

    async def __aenter__(self) -> BridgeClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- sending -------------------------------------------------------------------------

    async def send_to(self, peer_id: str, inner: bytes, *, handed_over: bool = False) -> None:
        """Route one frame (control, chunk, anything) to another cart; NotConnected if the bridge is gone. A
        bytearray `handed_over` (never read or sent again by the caller) is masked in place (cartnet.wsock)."""
        if len(inner) + frames.ROUTE_HEAD > MAX_FRAME:
            raise ValueError(f"frame of {len(inner)} bytes exceeds the {MAX_FRAME}-byte limit once routed")
        self._contacts.add(peer_id)
        await self._send_raw(inner, prefix=frames.route_header(peer_id, self.node_id), handed_over=handed_over)

    async def send_message(self, peer_id: str, message: Message) -> None:
        """Route a control message to another cart."""
        await self.send_to(peer_id, frames.control(message))

    async def send_control(self, message: Message) -> None:
        """Send a control message to the bridge itself (not routed)."""
        await self._send_raw(frames.control(message))

    async def peers(
        self,
        timeout: float = 10.0,
        *,
        sample: int | None = None,
        task: str | None = None,
        known: Sequence[str] = (),
        by_id: bool = False,
    ) -> list[PeerInfo]:
        """Announced carts the bridge knows to be alive (ourselves excluded): with `sample`, that many drawn
        at random by the bridge (those ready with an update for `task` first; the `known` ones, node id prefixes
        of carts whose certificates we hold, without them, or, `by_id`, named by id alone and made whole from what
        our verifier holds), else the directory as far as one message holds it."""
        request = PeersRequest(sample=sample, task=task, known=list(known), by_id=by_id and self.verifier is not None)
        reply = await self._directory(request, timeout)
        made_whole = await self._made_whole(reply.held, timeout)
        return [peer for peer in reply.in_draw_order(made_whole) if peer.node_id != self.node_id]

    async def _made_whole(self, drawn: list[HeldPeer], timeout: float) -> dict[str, PeerInfo | None]:
        """The carts a draw named by id alone, as our verifier holds them. Up to MAX_DRAW_LOOKUPS others are looked
        up whole, within `timeout` in all: one we do not hold (a chance match of its id prefix, or forgotten since)
        or that moved to another bridge since the record we hold. More, or lookups the bridge leaves unanswered, it
        named to stall us: those carts are left out of the draw."""
        made: dict[str, PeerInfo | None] = {held.node_id: self._held_entry(held) for held in drawn}
        unmade = [held.node_id for held in drawn if made[held.node_id] is None][:MAX_DRAW_LOOKUPS]
        try:
            async with asyncio.timeout(timeout):
                for node_id in unmade:
                    made[node_id] = await self.lookup(node_id, timeout, held=self._holds(node_id))
        except TimeoutError:
            log.info("%s: lookups of carts drawn by id alone went unanswered: left out", self.node_id[:8])
        return made

    def _held_entry(self, held: HeldPeer) -> PeerInfo | None:
        entry = self.verifier.entry(held) if self.verifier is not None else None
        return entry if entry is not None and entry.bridge_id == held.bridge_id else None

    def _holds(self, node_id: str) -> bool:
        return self.verifier is not None and self.verifier.known(node_id) is not None

    async def lookup(self, node_id: str, timeout: float = 10.0, *, held: bool = False) -> PeerInfo | None:
        """One cart's directory entry, or None when it is not an announced, live cart; without its certificate
        when `held` (we hold it already: `PeersRequest.known`)."""
        known = [node_id[:KNOWN_PREFIX]] if held else []
        reply = await self._directory(PeersRequest(node_id=node_id, known=known), timeout)
        return next((peer for peer in reply.peers if peer.node_id == node_id), None)

    async def _directory(self, request: PeersRequest, timeout: float) -> PeerList:
        async with self._peers_lock:
            self._peer_list = asyncio.get_running_loop().create_future()
            try:
                await self.send_control(request)
                return await asyncio.wait_for(self._peer_list, timeout)
            finally:
                self._peer_list = None

    async def announce(self, *, ready: bool, task: str | None = None) -> None:
        """Say (in a freshly signed presence) whether we have an update on offer, for `task` if given.

        Sent now when connected, and in every presence from then on (reconnects included)."""
        if (task is None or task == self._task) and ready == self._ready:
            return
        self._task, self._ready = self._task if task is None else task, ready
        if self.bridge_id is not None and self.connected.is_set():
            with contextlib.suppress(ConnectionError):
                await self._send_raw(frames.control(self._presence(self.bridge_id)))

    def _presence(self, bridge_id: str) -> Presence:
        """A freshly signed presence; issue times only grow, so the newest always wins."""
        self._issued_ms = max(presence.now_ms(), self._issued_ms + 1)
        return presence.sign(
            self.identity, bridge_id, self._presence_ttl, self._issued_ms, task=self._task, ready=self._ready
        )

    async def publish_model(self, tflite: bytes, claims: ModelClaims) -> str:
        """Sign a manifest of a TFLite model with our key and certificate (cartnet.phone_models) and upload
        both to the bridge for phones; TransferError says why the bridge refused it."""
        if self.bridge_id is None:
            raise NotConnected("not connected to a bridge")
        manifest = await asyncio.to_thread(phone_models.describe, tflite, self.certificate, claims)
        signed = phone_models.sign(self.identity, manifest)
        publication = ModelPublication(manifest=signed.manifest_b64, signature=signed.signature_b64)
        return await self.transfers.send_blob(self.bridge_id, tflite, ModelPublication.purpose, publication.to_meta())

    async def _hub_send(self, peer: str, frame: bytes) -> None:
        """Transfer frames: straight to the bridge when it is the peer, else routed."""
        if peer == self.bridge_id:
            await self._send_raw(frame, handed_over=True)  # the hub never touches a frame it sent (SendFn)
        else:
            await self.send_to(peer, frame, handed_over=True)

    async def _send_raw(self, frame: bytes | bytearray, *, prefix: bytes = b"", handed_over: bool = False) -> None:
        """One frame (`prefix` + `frame`) to the bridge; a frame `handed_over` is masked in place (cartnet.wsock)."""
        ws = self._ws
        if ws is None or ws.closed:
            raise NotConnected(f"not connected to {self.url}")
        try:
            async with self._send_lock:
                await wsock.send(ws, frame, prefix=prefix, handed_over=handed_over)
                self.wire_bytes_out += ws_frame_size(len(prefix) + len(frame), masked=True)
        except (aiohttp.ClientError, ConnectionResetError) as exc:
            raise NotConnected(f"connection to {self.url} lost: {exc}") from None

    # --- receiving -----------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Incoming]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Incoming]:
        while True:
            yield await self.inbox.get()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, deadline: float) -> str:
        """Handle frames until the connection ends; returns why it ended."""
        source = f"bridge {(self.bridge_id or '')[:8]}"
        while True:
            try:
                msg = await ws.receive(timeout=deadline)
            except TimeoutError:
                return f"bridge silent for {deadline:.1f}s"
            if msg.type is aiohttp.WSMsgType.BINARY:
                data = memoryview(msg.data)
            elif msg.type is aiohttp.WSMsgType.TEXT:
                data = memoryview(msg.data.encode("utf-8", "surrogatepass"))
            else:
                return _ending(ws, msg)
            size = ws_frame_size(len(data), masked=False)
            self.wire_bytes_in += size
            if data[:1] == frames.ROUTED:
                self.wire_bytes_relayed_in += size
            said = await boundary.guard(self._from_bridge(data), self._refused_by_bridge, source)
            if said is not None:
                return f"bridge said bye: {said}"

    async def _from_bridge(self, data: memoryview) -> str | None:
        """Handle one frame from the bridge (inside the boundary: it may raise); its reason if it said Bye."""
        item = frames.parse(data)
        if isinstance(item, Bye):
            return item.reason or "no reason given"
        await self._dispatch(item)
        return None

    async def _refused_by_bridge(self, refusal: Refusal) -> None:
        """Counted and logged (by the boundary), never answered: an Error to the bridge would only bounce."""
        self.refused[refusal.code] += 1

    async def _dispatch(self, item: AnyMessage | frames.Chunk | frames.Routed) -> None:
        if isinstance(item, frames.Routed):
            await self._on_routed(item)
        elif isinstance(item, Undeliverable):
            self.transfers.fail_peer(item.to, item.reason)
            _notify(self.undeliverable, item)
        elif isinstance(item, PeerList):
            if self._peer_list is not None and not self._peer_list.done():
                self._peer_list.set_result(item)
        elif isinstance(item, Error):
            log.warning("bridge reported %s: %s", item.code, item.detail)
            _notify(self.errors, item)
        elif isinstance(item, RevocationList):
            if self.verifier is not None:
                await self.verifier.offer_revocations(item, f"bridge {(self.bridge_id or '')[:8]}")
        elif not await self.transfers.handle(self.bridge_id or "", item):
            log.debug("ignoring %s from the bridge", type(item).__name__)

    async def _on_routed(self, routed: frames.Routed) -> None:
        async def refuse(refusal: Refusal) -> None:
            await self._complain(routed.sender, refusal)

        await boundary.guard(self._from_peer(routed), refuse, f"peer {routed.sender[:8]}")

    async def _from_peer(self, routed: frames.Routed) -> None:
        """Handle one frame another cart routed to us (inside the boundary: it may raise)."""
        inner = frames.parse(routed.inner)
        if isinstance(inner, frames.Routed):
            raise frames.FrameError("nested routed frames are not allowed")
        if await self.transfers.handle(routed.sender, inner) or not isinstance(inner, Message):
            return
        if not _enqueue(self.inbox, Incoming(routed.sender, inner)):
            refusal = Refusal("inbox_full", "receiver inbox is full, message dropped")
            log.warning("peer %s: %s", routed.sender[:8], refusal)
            await self._complain(routed.sender, refusal)

    async def _complain(self, peer: str, refusal: Refusal) -> None:
        """Count a refused frame and tell the peer that sent it (if the bridge is still there)."""
        self.refused[refusal.code] += 1
        with contextlib.suppress(ConnectionError):
            await self.send_message(peer, refusal.error())

    # --- connection loop -----------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0  # dials since the last admission that did not end in one
        async with contextlib.AsyncExitStack() as stack:
            session = self._session
            if session is None:
                session = await stack.enter_async_context(aiohttp.ClientSession())
            while not self._closing.is_set():
                admitted_before = self.sessions
                try:
                    reason = await self._connect_once(session)
                    log.info("%s: connection to %s ended: %s", self.node_id[:8], self.url, reason)
                except AdmissionRefused as exc:
                    if self._refused(exc):
                        self.failure = exc
                        break
                except (
                    aiohttp.ClientError,
                    ConnectionError,
                    TimeoutError,
                    OSError,
                    MessageError,
                    frames.FrameError,
                ) as exc:
                    self._unreachable(exc)
                except Exception:  # noqa: BLE001 - a bug in one session must not end reconnecting for good
                    log.exception("%s: session with %s failed", self.node_id[:8], self.url)
                failures = 0 if self.sessions > admitted_before else failures + 1
                passes = failures // len(self._candidates())  # whole passes over the list that failed
                self._fail_over()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self._backoff.delay(passes))
        self.closed.set()

    def _candidates(self) -> list[str]:
        """The bridges still worth dialing: every one in the list that has not refused our certificate."""
        return [url for url in self.urls if url not in self.refused_by]

    def _fail_over(self) -> None:
        """Move on to the next bridge of the list that has not refused us (with one bridge: the same again)."""
        for step in range(1, len(self.urls) + 1):
            at = (self._at + step) % len(self.urls)
            if self.urls[at] not in self.refused_by:
                if at != self._at:
                    log.info("%s: trying bridge %s next", self.node_id[:8], self.urls[at])
                self._at = at
                return

    def _refused(self, refusal: AdmissionRefused) -> bool:
        """Take a bridge's refusal to admit us; True when it is final.

        A refusal that judges our certificate, key or token rules that bridge out for good; it is final once
        every bridge of the list has said so. Any other refusal is worth another try, as an unreachable bridge is."""
        self.last_error = f"{self.url}: {refusal}"
        if not refusal.of_the_node:
            log.warning("%s: %s (will try again)", self.node_id[:8], self.last_error)
            return False
        self.refused_by[self.url] = refusal
        if not self._candidates():
            everyone = "" if len(self.urls) == 1 else f" (and by every other bridge of the {len(self.urls)} it knows)"
            log.error("%s: %s%s", self.node_id[:8], self.last_error, everyone)
            return True
        log.error("%s: %s; trying the other bridges", self.node_id[:8], self.last_error)
        return False

    def _unreachable(self, exc: BaseException) -> None:
        """Log why the bridge could not be reached: a TLS failure as an error, once per new reason."""
        problem = tls.explain(exc, self.url)
        reason = problem or f"cannot reach {self.url}: {exc or type(exc).__name__}"
        if problem is not None and reason != self.last_error:
            log.error("%s: %s", self.node_id[:8], problem)
        else:
            log.info("%s: %s", self.node_id[:8], reason)
        self.last_error = reason

    async def _connect_once(self, session: aiohttp.ClientSession) -> str:
        timeout = aiohttp.ClientWSTimeout(ws_close=2.0)
        async with session.ws_connect(self.url, max_msg_size=MAX_FRAME, timeout=timeout, ssl=self._ssl) as ws:
            welcome = await join(
                ws, self.identity, self.certificate, timeout=self._handshake_timeout, swarm_token=self._token
            )
            self.bridge_id, self.heartbeat_interval = welcome.bridge_id, welcome.heartbeat_interval
            self._ws = ws
            self.last_error = ""
            keepalive = asyncio.create_task(self._keepalive(welcome))
            try:
                await self._send_raw(frames.control(self._presence(welcome.bridge_id)))
                self.sessions += 1
                self.disconnected.clear()
                self.connected.set()
                log.info("%s: admitted by bridge %s", self.node_id[:8], welcome.bridge_id[:8])
                return await self._read(ws, welcome.heartbeat_interval * MISSED_HEARTBEATS)
            finally:
                keepalive.cancel()
                self._disconnected()

    async def _keepalive(self, welcome: Welcome) -> None:
        """Heartbeat every interval; re-sign the presence record well before it expires."""
        interval, seq = welcome.heartbeat_interval, 0
        refresh_every = max(1, int(self._presence_ttl / 3 / interval))
        with contextlib.suppress(ConnectionError):
            while True:
                await asyncio.sleep(interval)
                seq += 1
                await self._send_raw(frames.control(Heartbeat(seq=seq)))
                if seq % refresh_every == 0:
                    await self._send_raw(frames.control(self._presence(welcome.bridge_id)))

    def _disconnected(self) -> None:
        """The bridge is gone: nothing in flight can complete, so fail it now rather than time out."""
        self.connected.clear()
        self.disconnected.set()
        self._ws = None
        for peer in {*self._contacts, self.bridge_id or ""}:
            self.transfers.fail_peer(peer, "connection to the bridge was lost")
        self._contacts.clear()
        if self._peer_list is not None and not self._peer_list.done():
            self._peer_list.set_exception(NotConnected("connection to the bridge was lost"))


def ws_frame_size(payload: int, *, masked: bool) -> int:
    """Bytes of one unfragmented WebSocket frame carrying `payload` bytes (RFC 6455 5.2): a 2-byte header,
    2 or 8 more for a long length, 4 for the mask a client adds."""
    extended = 0 if payload < 126 else 2 if payload < 1 << 16 else 8
    return payload + 2 + extended + (4 if masked else 0)


def _enqueue(queue: asyncio.Queue[Incoming], item: Incoming) -> bool:
    """Hand a peer's message to the consumer without blocking the reader; False when full."""
    try:
        queue.put_nowait(item)
    except asyncio.QueueFull:
        return False
    return True


def _notify(queue: asyncio.Queue[T], item: T) -> None:
    """Queue a notification; a consumer that never reads loses the oldest ones, not the reader."""
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)


def _ending(ws: aiohttp.ClientWebSocketResponse, msg: aiohttp.WSMessage) -> str:
    """Why the socket ended, in words: a close with its code and reason, or the error that broke it."""
    if msg.type is aiohttp.WSMsgType.CLOSE:
        return f"bridge closed the connection ({msg.data} {msg.extra or 'no reason given'})".rstrip()
    if msg.type is aiohttp.WSMsgType.ERROR:
        return f"connection failed ({ws.close_code}: {msg.data})"
    return f"connection closed ({msg.type.name}, code {ws.close_code})"
