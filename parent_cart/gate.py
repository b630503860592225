"""`GET /ws`: swarm admission for every incoming connection, then hand-off to a cart session or a link.

The bridge sends a fresh challenge; the newcomer must answer within `admission_timeout`
with a valid signature and a certificate of this swarm for the role it asks for, not revoked
(cartnet.admission, checked against the bridge's `Membership`). A refusal is a Reject carrying
the reason, then a close with the same reason: the newcomer always learns why, and no
other connection notices anything. A Reject is final (a client does not retry a refused
certificate), so a bridge that is merely busy or shutting down says Bye instead and closes
with "try again later": the client backs off and returns.

Whatever the answer to the challenge is (not a frame, 60,000 levels of JSON, a `type`
that is a list), reading it can only end in a Reject with a reason and a counted
refusal, never in an exception escaping the handler. Sockets opened here also close
a frame over MAX_FRAME with a reason the sender can read (`BoundedSocket`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiohttp import WSCloseCode, WSMsgType, web

from cartnet import admission, frames
from cartnet.admission import AdmissionError
from cartnet.boundary import refusal_for
from cartnet.handshake import MAX_FRAME
from cartnet.identity import Identity
from cartnet.messages import Auth, Bye, Reject, Welcome
from parent_cart.directory import Directory
from parent_cart.membership import Membership
from parent_cart.metrics import BridgeMetrics, reject_code
from parent_cart.peer import Outbox, Peer
from parent_cart.settings import BridgeSettings

log = logging.getLogger(__name__)

Serve = Callable[[Peer], Awaitable[None]]
MakeLinkPeer = Callable[[Auth, web.WebSocketResponse], Peer]

OVERSIZED = f"frame over the {MAX_FRAME}-byte limit"
"""The close reason of a socket that sent a frame over MAX_FRAME (fits the 123 bytes a close frame carries)."""


class Busy(Exception):
    """The bridge cannot take this connection now, through no fault of the newcomer's."""


class BoundedSocket(web.WebSocketResponse):
    """A `/ws` socket that says why it closes when a frame is over MAX_FRAME.

    aiohttp refuses such a frame from its header alone (nothing of it is buffered) and
    closes with 1009 and no reason; this adds the reason and remembers that it happened,
    so the session can count it and name it as the cart's way of leaving.
    """

    oversized = False

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True) -> bool:
        if code == WSCloseCode.MESSAGE_TOO_BIG and not message:
            self.oversized = True
            message = OVERSIZED.encode()
        return await super().close(code=code, message=message, drain=drain)


def close_reason(text: str) -> bytes:
    """`text` cut to what a close frame carries (123 bytes), at a character boundary."""
    return text.encode()[:120].decode("utf-8", "ignore").encode()


def sent_oversized(ws: object) -> bool:
    """Whether `ws` was closed because the other end sent a frame over MAX_FRAME."""
    return bool(getattr(ws, "oversized", False)) or getattr(ws, "close_code", None) == WSCloseCode.MESSAGE_TOO_BIG


class Gate:
    """Admits carts and bridges on `/ws`."""

    def __init__(
        self,
        identity: Identity,
        settings: BridgeSettings,
        membership: Membership,
        directory: Directory,
        metrics: BridgeMetrics,
        serve_cart: Serve,
        link_peer: MakeLinkPeer,
        serve_link: Serve,
    ) -> None:
        self.identity = identity
        self.settings = settings
        self.membership = membership
        self.directory = directory
        self.metrics = metrics
        self._serve_cart = serve_cart
        self._link_peer = link_peer
        self._serve_link = serve_link
        self.closing = False

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = BoundedSocket(max_msg_size=MAX_FRAME)
        await ws.prepare(request)
        try:
            auth = await self._admit(ws)
        except AdmissionError as exc:
            await self._refuse(ws, Reject(reason=str(exc)[:512]), WSCloseCode.POLICY_VIOLATION, request.remote)
            return ws
        except Busy as exc:
            await self._refuse(ws, Bye(reason=str(exc)[:512]), WSCloseCode.TRY_AGAIN_LATER, request.remote)
            return ws
        except Exception as exc:  # noqa: BLE001 - the boundary before admission: a refusal with a reason, never a crash
            reason = f"admission failed: {type(exc).__name__}: {exc}"
            await self._refuse(ws, Reject(reason=reason[:512]), WSCloseCode.POLICY_VIOLATION, request.remote)
            return ws
        welcome = Welcome(
            node_id=auth.node_id, bridge_id=self.identity.node_id, heartbeat_interval=self.settings.heartbeat_interval
        )
        try:
            await ws.send_bytes(frames.control(welcome))
        except (ConnectionError, RuntimeError) as exc:
            log.info("%s left before its welcome: %s", auth.node_id[:8], exc or type(exc).__name__)
            return ws
        if auth.role == "bridge":
            await self._serve_link(self._link_peer(auth, ws))
        else:
            outbox = Outbox(ws, self.settings.queue_frames, self.settings.queue_bytes, self.settings.liveness_deadline)
            await self._serve_cart(Peer(auth, ws, outbox))
        return ws

    async def _admit(self, ws: web.WebSocketResponse) -> Auth:
        """The verified Auth of the newcomer; AdmissionError says why not."""
        if self.closing:
            raise Busy("bridge is shutting down")
        issued = admission.challenge(self.identity.node_id)
        await ws.send_bytes(frames.control(issued))
        auth = await self._read_auth(ws)
        self.membership.verify(auth, issued)
        if auth.node_id == self.identity.node_id:
            raise AdmissionError("that node id is this bridge's own")
        if auth.role == "bridge" and not auth.relay_url.startswith(("http://", "https://")):
            raise AdmissionError("a bridge must sign its relay URL (http:// or https://)")
        if (
            auth.role == "cart"
            and auth.node_id not in self.directory.local
            and len(self.directory.local) >= self.settings.max_carts
        ):
            raise Busy(f"bridge is full ({self.settings.max_carts} carts)")
        return auth

    async def _read_auth(self, ws: web.WebSocketResponse) -> Auth:
        try:
            msg = await ws.receive(timeout=self.settings.admission_timeout)
        except TimeoutError:
            raise AdmissionError(f"did not answer the challenge within {self.settings.admission_timeout}s") from None
        if msg.type is WSMsgType.ERROR and sent_oversized(ws):
            raise AdmissionError(f"malformed answer to the challenge: {OVERSIZED}")
        if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
            raise AdmissionError("connection closed before answering the challenge")
        data = msg.data if msg.type is WSMsgType.BINARY else msg.data.encode("utf-8", "surrogatepass")
        try:
            item = frames.parse(data)
        except Exception as exc:  # noqa: BLE001 - whatever the answer raises, it is a malformed answer
            raise AdmissionError(f"malformed answer to the challenge: {refusal_for(exc).detail}") from None
        if not isinstance(item, Auth):
            raise AdmissionError(f"expected auth, got {type(item).__name__}")
        return item

    async def _refuse(
        self, ws: web.WebSocketResponse, why: Reject | Bye, code: WSCloseCode, remote: str | None
    ) -> None:
        log.info("refused %s: %s", remote, why.reason)
        self.metrics.rejects.labels(reject_code(why.reason)).inc()
        if not ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_bytes(frames.control(why))
            await ws.close(code=code, message=close_reason(why.reason))
