"""A real aiohttp WebSocket server on 127.0.0.1 whose connections feed one receiving TransferHub."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from cartnet import frames, wsock
from cartnet.identity import Identity
from cartnet.messages import Error, MessageError
from cartnet.transfer import TransferHub, TransferLimits

PEER = "client"


@dataclass
class Receiver:
    """Server side: one hub for all connections, so a reconnecting sender can resume."""

    identity: Identity = field(default_factory=Identity.generate)
    limits: TransferLimits = field(default_factory=TransferLimits)
    sockets: dict[str, web.WebSocketResponse] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    closed: asyncio.Queue = field(default_factory=asyncio.Queue)
    url: str = ""

    def __post_init__(self) -> None:
        self.hub = TransferHub(self.identity, self._send, self.limits)

    async def _send(self, peer: str, frame: bytes) -> None:
        await self.sockets[peer].send_bytes(frame)

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=4 * 1024 * 1024)
        await ws.prepare(request)
        self.sockets[PEER] = ws
        async for msg in ws:
            await self._dispatch(ws, msg.data)
        self.hub.fail_peer(PEER, "disconnected")
        await self.closed.put(ws)
        return ws

    async def _dispatch(self, ws: web.WebSocketResponse, data: bytes) -> None:
        try:
            item = frames.parse(data)
        except (frames.FrameError, MessageError) as exc:
            self.errors.append(str(exc))
            await ws.send_bytes(frames.control(Error(code="bad_frame", detail=str(exc))))
            return
        await self.hub.handle(PEER, item)


@dataclass
class Sender:
    """Client side: a hub whose frames go out over one WebSocket; replies are fed back in."""

    ws: aiohttp.ClientWebSocketResponse
    hub: TransferHub
    other: asyncio.Queue = field(default_factory=asyncio.Queue)


@contextlib.asynccontextmanager
async def receiver_server(limits: TransferLimits | None = None) -> AsyncIterator[Receiver]:
    receiver = Receiver(limits=limits or TransferLimits())
    app = web.Application()
    app.router.add_get("/ws", receiver.handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    receiver.url = f"http://127.0.0.1:{port}/ws"
    try:
        yield receiver
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def connect(url: str, identity: Identity, limits: TransferLimits | None = None) -> AsyncIterator[Sender]:
    """Open a sender connection whose reader feeds transfer replies to the hub, other frames to `other`."""
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(url, max_msg_size=4 * 1024 * 1024)

        async def send(_peer: str, frame: bytes) -> None:
            await wsock.send(ws, frame, handed_over=True)  # as a cart sends

        sender = Sender(ws, TransferHub(identity, send, limits))
        reader = asyncio.create_task(_read(sender))
        try:
            yield sender
        finally:
            reader.cancel()
            await ws.close()


async def _read(sender: Sender) -> None:
    async for msg in sender.ws:
        item = frames.parse(msg.data)
        if not await sender.hub.handle(PEER, item):
            await sender.other.put(item)
    sender.hub.fail_peer(PEER, "connection closed")
