"""Bare relays for `bench/relay.py`: the bridge's routing step (`R <to 20> <from 20> <inner>` forwarded to the
connection registered as `to`) on different WebSocket layers, nothing else (no admission, no limits).

A connection registers by sending its 20-byte node id as its first message. Each relay forwards the frame
object its layer handed it (aiohttp: through a queue and writer task per connection, as the bridge's outbox
does, so reading goes on while writing); a sender whose receiver has over 16 MiB queued stops being read
until it drains (the backpressure the bridge's bounded outbox gives). Runs in its own process: `serve(pipe, layer)`
sends back the port it listens on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any

MAX_FRAME = 4 * 1024 * 1024
HIGH_WATER = 16 * 1024 * 1024
LAYERS = ("aiohttp (asyncio loop)", "aiohttp (uvloop)", "picows (uvloop)")


def available(layer: str) -> str | None:
    """None when `layer` can run here, else why not."""
    for module in {"aiohttp (uvloop)": ["uvloop"], "picows (uvloop)": ["uvloop", "picows"]}.get(layer, []):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (pip install {module})"
    return None


def serve(pipe: Any, layer: str) -> None:
    factory = None
    if "uvloop" in layer:
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run((_picows if layer.startswith("picows") else _aiohttp)(pipe))


async def _aiohttp(pipe: Any) -> None:
    from aiohttp import web

    conns: dict[bytes, Writer] = {}

    class Writer:
        """One connection's queue and writer task (as the bridge's outbox): reading goes on while writing."""

        def __init__(self, ws: web.WebSocketResponse) -> None:
            self.ws, self.queue, self.queued = ws, deque[bytes](), 0
            self.ready, self.room = asyncio.Event(), asyncio.Event()
            self.task = asyncio.create_task(self.run())

        async def put(self, frame: bytes) -> None:
            while self.queued > HIGH_WATER:
                self.room.clear()
                await self.room.wait()
            self.queue.append(frame)
            self.queued += len(frame)
            self.ready.set()

        async def run(self) -> None:
            while True:
                if not self.queue:
                    self.ready.clear()
                    await self.ready.wait()
                    continue
                frame = self.queue.popleft()
                await self.ws.send_bytes(frame)
                self.queued -= len(frame)
                self.room.set()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME)
        await ws.prepare(request)
        me = None
        async for msg in ws:
            data = msg.data
            if me is None:
                me = bytes(data[:20])
                conns[me] = Writer(ws)
                continue
            target = conns.get(data[1:21])
            if target is not None:
                await target.put(data)
        if me is not None and (writer := conns.pop(me, None)) is not None:
            writer.task.cancel()
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    pipe.send(f"http://127.0.0.1:{runner.addresses[0][1]}")
    await asyncio.Event().wait()


async def _picows(pipe: Any) -> None:
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server

    conns: dict[bytes, Relayed] = {}

    class Relayed(WSListener):
        def __init__(self) -> None:
            self.me: bytes | None = None
            self.transport: WSTransport | None = None
            self.blocked: list[WSTransport] = []

        def on_ws_connected(self, transport: WSTransport) -> None:
            self.transport = transport

        def on_ws_disconnected(self, transport: WSTransport) -> None:
            if self.me is not None:
                conns.pop(self.me, None)
            self.resume_writing()

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()
                return
            if frame.msg_type != WSMsgType.BINARY:
                return
            data = frame.get_payload_as_memoryview()  # valid during this call: send copies it once
            if self.me is None:
                self.me = bytes(data[:20])
                conns[self.me] = self
                return
            target = conns.get(bytes(data[1:21]))
            if target is None or target.transport is None:
                return
            target.transport.send(WSMsgType.BINARY, data)
            if target.transport.underlying_transport.get_write_buffer_size() > HIGH_WATER:
                transport.underlying_transport.pause_reading()
                target.blocked.append(transport)

        def resume_writing(self) -> None:
            blocked, self.blocked = self.blocked, []
            for transport in blocked:
                with contextlib.suppress(Exception):
                    transport.underlying_transport.resume_reading()

    server = await ws_create_server(lambda _request: Relayed(), "127.0.0.1", 0, max_frame_size=MAX_FRAME)
    pipe.send(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    await asyncio.Event().wait()
