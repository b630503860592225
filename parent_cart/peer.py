"""One admitted WebSocket connection (a cart or another bridge) and its bounded outbox.

Every frame the bridge sends goes through the connection's outbox, drained by a single
writer task. The outbox is bounded in frames and bytes. A sender that finds it full
waits at most `send_timeout`; if no room appeared the outbox is marked congested and
later frames for it are refused at once (the sender gets an Undeliverable) until it has
drained to half. So a receiver that stops reading costs others one bounded wait, not one
per frame. A receiver whose socket accepts nothing for `stall_timeout` is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import cached_property

from aiohttp import WSMsgType, web
from aiohttp.client_ws import ClientWebSocketResponse

from cartnet import wsock
from cartnet.messages import Auth

log = logging.getLogger(__name__)

WebSocket = web.WebSocketResponse | ClientWebSocketResponse


class Silent(Exception):
    """The other end sent nothing within the liveness deadline."""


class Outbox:
    """A bounded frame queue in front of one socket, drained by `run`."""

    def __init__(self, ws: WebSocket, max_frames: int, max_bytes: int, stall_timeout: float) -> None:
        self._ws = ws
        self._frames: deque[bytes] = deque()
        self._bytes = 0
        self._max_frames = max_frames
        self._max_bytes = max_bytes
        self._stall_timeout = stall_timeout
        self._ready = asyncio.Event()
        self._space = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self.congested = False
        self.closed = False
        self.failure: str | None = None

    def __len__(self) -> int:
        return len(self._frames)

    def _fits(self, size: int, urgent: bool) -> bool:
        if not self._frames:
            return True
        if urgent:
            return len(self._frames) < 2 * self._max_frames
        return len(self._frames) < self._max_frames and self._bytes + size <= self._max_bytes

    def offer(self, frame: bytes, urgent: bool = False) -> bool:
        """Queue without waiting; False when full or closed (the caller decides what that means).

        `urgent` is for small control frames (acks, Undeliverable, rosters, Bye): they may pass
        the byte bound, so they are not starved behind bulk chunks, but not an unbounded count.
        """
        if self.closed or not self._fits(len(frame), urgent):
            return False
        self._frames.append(frame)
        self._bytes += len(frame)
        self._ready.set()
        self._empty.clear()
        return True

    async def put(self, frame: bytes, timeout: float) -> bool:
        """Queue, waiting up to `timeout` seconds for room; False if there was none (or it is congested)."""
        if self.congested:
            return self.offer(frame)
        deadline = time.monotonic() + timeout
        while not self.offer(frame):
            remaining = deadline - time.monotonic()
            if self.closed or remaining <= 0:
                self.congested = not self.closed
                return False
            self._space.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._space.wait(), remaining)
        return True

    async def run(self) -> None:
        """Write queued frames in order until closed, the socket fails, or it stops taking data."""
        try:
            while not self.closed:
                if not self._frames:
                    self._ready.clear()
                    self._empty.set()
                    await self._ready.wait()
                    continue
                frame = self._frames[0]
                await asyncio.wait_for(wsock.send(self._ws, frame), self._stall_timeout)
                self._frames.popleft()
                self._bytes -= len(frame)
                self._drained()
        except TimeoutError:
            self.failure = f"stopped reading: nothing could be written to it for {self._stall_timeout:.1f}s"
            log.info("closing a connection that %s", self.failure)
            await self._ws.close()
        except (ConnectionError, RuntimeError) as exc:
            log.debug("writer stopped: %s", exc)
        finally:
            self.close()

    def _drained(self) -> None:
        self._space.set()
        if self.congested and len(self._frames) <= self._max_frames // 2 and self._bytes <= self._max_bytes // 2:
            self.congested = False

    async def flush(self, timeout: float) -> None:
        """Wait (bounded) until everything queued has been written."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._empty.wait(), timeout)

    def close(self) -> None:
        self.closed = True
        self._ready.set()
        self._space.set()
        self._empty.set()


@dataclass(eq=False)
class Peer:
    """An authenticated connection: who is on the other end and how to send to it."""

    auth: Auth
    ws: WebSocket
    outbox: Outbox
    url: str = ""
    initiator: bool = False
    writer: asyncio.Task[None] | None = None
    connected_at: float = field(default_factory=time.time)
    farewell: str | None = None
    """Why this bridge itself ended the connection (a revoked or expired certificate), if it did."""

    @property
    def node_id(self) -> str:
        return self.auth.node_id

    @cached_property
    def id_bytes(self) -> bytes:
        """The node id as the 20 raw bytes routed frames carry."""
        return bytes.fromhex(self.auth.node_id)

    @property
    def role(self) -> str:
        return self.auth.role

    def start_writer(self) -> None:
        self.writer = asyncio.create_task(self.outbox.run(), name=f"outbox-{self.node_id[:8]}")

    async def close(self, final_frame: bytes | None, grace: float) -> None:
        """Send `final_frame` (a Bye) after what is queued, then close the socket, all bounded by `grace`."""
        if final_frame is not None:
            self.outbox.offer(final_frame, urgent=True)
            await self.outbox.flush(grace)
        self.outbox.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), grace)
        if self.writer is not None:
            self.writer.cancel()


async def incoming(ws: WebSocket, deadline: float) -> AsyncIterator[bytes]:
    """Binary frames from `ws` until it closes; raises Silent when nothing arrives within `deadline`.

    The clock only runs while we are waiting to read, so time the caller spends
    forwarding (or pacing) a frame never counts as the peer's silence. Between two frames
    the loop gets one turn: a connection with frames queued would otherwise be read on
    without a pause, and every other connection waits its turn frame by frame instead.
    """
    while True:
        await asyncio.sleep(0)
        try:
            msg = await ws.receive(timeout=deadline)
        except TimeoutError:
            raise Silent(f"silent for {deadline:.1f}s") from None
        if msg.type is WSMsgType.BINARY:
            yield msg.data
        elif msg.type is WSMsgType.TEXT:
            yield msg.data.encode()
        else:
            return
