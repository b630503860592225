"""cartnet.wsock against a real aiohttp server on 127.0.0.1: every length encoding arrives intact, in order with
frames aiohttp sent itself, masked under a fresh key each time, and a caller's bytes are never touched."""

from __future__ import annotations

import asyncio
import os

import aiohttp
import pytest
from aiohttp import web

from cartnet import wsock

DEADLINE = 30
SIZES = [0, 1, 125, 126, 65535, 65536, 3 * 1024 * 1024 + 5]


async def _echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=4 * 1024 * 1024)
    await ws.prepare(request)
    async for msg in ws:
        await ws.send_bytes(msg.data)
    return ws


@pytest.fixture
async def echo_url():
    app = web.Application()
    app.router.add_get("/ws", _echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/ws"
    await runner.cleanup()


async def _echoed(ws: aiohttp.ClientWebSocketResponse) -> bytes:
    try:
        msg = await asyncio.wait_for(ws.receive(), DEADLINE)
    except TimeoutError:
        pytest.fail(f"no echo within {DEADLINE}s")
    assert msg.type == aiohttp.WSMsgType.BINARY, msg
    return msg.data


async def test_every_length_arrives_intact_and_in_order_with_aiohttps_own_frames(echo_url):
    payloads = [os.urandom(size) for size in SIZES]
    async with aiohttp.ClientSession() as session, session.ws_connect(echo_url, max_msg_size=4 << 20) as ws:
        for index, payload in enumerate(payloads):
            if index % 3 == 0:
                await ws.send_bytes(payload)
            elif index % 3 == 1:
                await wsock.send(ws, payload)
            else:
                await wsock.send(ws, bytearray(payload), handed_over=True)  # masked in place
        assert [await _echoed(ws) for _ in payloads] == payloads


@pytest.mark.parametrize("prefix_size", [1, 2, 3, 41])
async def test_a_prefix_and_a_handed_over_payload_arrive_as_one_frame(echo_url, prefix_size):
    """The masking key runs on from the prefix into the payload, whatever the prefix's length."""
    prefix, payload = os.urandom(prefix_size), os.urandom(100_003)
    async with aiohttp.ClientSession() as session, session.ws_connect(echo_url, max_msg_size=4 << 20) as ws:
        await wsock.send(ws, bytearray(payload), prefix=prefix, handed_over=True)
        await wsock.send(ws, payload, prefix=prefix)
        assert [await _echoed(ws) for _ in range(2)] == [prefix + payload] * 2


async def test_a_callers_bytes_are_not_touched_and_each_frame_has_a_fresh_mask(echo_url):
    payload = bytearray(os.urandom(70_000))  # not handed over
    kept = bytes(payload)
    async with aiohttp.ClientSession() as session, session.ws_connect(echo_url, max_msg_size=4 << 20) as ws:
        written: list[bytes] = []
        transport = ws._writer.transport
        write = transport.write

        def record(data) -> None:
            written.append(bytes(data))
            write(data)

        transport.write = record
        for _ in range(2):
            await wsock.send(ws, payload)
        transport.write = write
        assert [await _echoed(ws) for _ in range(2)] == [kept, kept]
    assert payload == kept, "the caller's bytes are sent, never masked in place"
    headers = [data for data in written if len(data) < 16]
    assert len(headers) == 2 and headers[0][-4:] != headers[1][-4:], "a fresh masking key for every frame"
    assert all(data != kept for data in written), "what goes on the wire is masked"
