"""Throughput of a cartnet transfer vs raw aiohttp WebSocket sends of the same bytes.

The receiver runs in its own process (as on a real peer), on 127.0.0.1. Each
figure is the best of `--repeat` runs, from the first byte sent until the
receiver confirms it holds every chunk (verified, for cartnet; decrypted, when
sealed). Both receivers keep the frames as they arrive, without joining them.

Rows: `send_blob` as it is (streamed: each chunk signed, or sealed, as it is made,
and checked, or opened, as it arrives), and the listed shape it replaced (a pass
over the whole blob to list chunk digests, and for e2e a whole-blob `e2e.seal`
before the first chunk moves and `e2e.open_sealed` after the last one arrived),
measured in the same run. cartnet frames go out as a cart sends them
(`cartnet.wsock`: masked in place, without aiohttp's two copies); the baseline is
aiohttp's own `send_bytes`, and a second raw row sends the same bytes the carts' way,
so the table shows what the send path gains and what cartnet's own work costs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import os
import statistics
import time

import aiohttp
from _machine import describe
from aiohttp import web
from rich.console import Console
from rich.table import Table

from cartnet import e2e, frames, wsock
from cartnet.identity import Identity
from cartnet.messages import Heartbeat
from cartnet.transfer import TransferHub, TransferLimits, build_manifest

log = logging.getLogger("bench.transfer")
MAX_MSG = 4 * 1024 * 1024
CHUNK = 1024 * 1024
RAW = "raw aiohttp WebSocket"
RAW_CART_SEND = "raw, sent as carts send (cartnet.wsock)"


def receiver_main(port_pipe) -> None:
    """Child process: raw sink on /raw, cartnet TransferHub on /hub."""
    asyncio.run(_serve(port_pipe))


async def _serve(port_pipe) -> None:
    identity = Identity.generate()
    kx = identity.kx_key
    app = web.Application()
    app.router.add_get("/raw", _raw_sink)
    app.router.add_get("/hub", lambda request: _hub_sink(request, identity, kx))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port_pipe.send((site._server.sockets[0].getsockname()[1], identity.kx_public_key))
    await asyncio.Event().wait()


async def _raw_sink(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=MAX_MSG)
    await ws.prepare(request)
    expected, kept = None, []
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT:
            expected, kept = int(msg.data), []
            continue
        kept.append(msg.data)
        if sum(map(len, kept)) == expected:
            await ws.send_str("ok")
    return ws


async def _hub_sink(request: web.Request, identity: Identity, kx) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=MAX_MSG)
    await ws.prepare(request)

    async def send(_peer: str, frame: bytes) -> None:
        await ws.send_bytes(frame)

    hub = TransferHub(identity, send, TransferLimits())
    consumer = asyncio.create_task(_consume(hub, ws, kx))
    async for msg in ws:
        await hub.handle("sender", frames.parse(msg.data))
    consumer.cancel()
    return ws


async def _consume(hub: TransferHub, ws: web.WebSocketResponse, kx) -> None:
    while True:
        received = await hub.received.get()
        if received.manifest.meta.get("sealed") == "1":  # the listed shape: sealed as one blob, opened here
            e2e.open_sealed(received.data, kx, received.manifest.sender)
        await ws.send_bytes(frames.control(Heartbeat(seq=1)))


async def raw_run(session: aiohttp.ClientSession, url: str, blob: bytes, cart_send: bool = False) -> float:
    """Raw sends of the blob's bytes: aiohttp's own `send_bytes`, or (`cart_send`) the send carts use."""
    async with session.ws_connect(url + "/raw", max_msg_size=MAX_MSG) as ws:
        start = time.perf_counter()
        await ws.send_str(str(len(blob)))
        for offset in range(0, len(blob), CHUNK):
            if cart_send:  # one copy of the chunk, masked in place
                await wsock.send(ws, bytearray(memoryview(blob)[offset : offset + CHUNK]), handed_over=True)
            else:
                await ws.send_bytes(blob[offset : offset + CHUNK])
        await ws.receive()
        return time.perf_counter() - start


async def cartnet_run(
    session: aiohttp.ClientSession, url: str, blob: bytes, recipient_kx: bytes | None, listed: bool = False
) -> float:
    identity = Identity.generate()
    async with session.ws_connect(url + "/hub", max_msg_size=MAX_MSG) as ws:

        async def send(_peer: str, frame: bytes) -> None:
            await wsock.send(ws, frame, handed_over=True)  # as a cart sends (cartnet.client)

        hub = TransferHub(identity, send)
        processed = asyncio.Event()
        reader = asyncio.create_task(_read_replies(ws, hub, processed))
        start = time.perf_counter()
        if listed:
            payload = e2e.seal(blob, recipient_kx, identity.node_id) if recipient_kx else blob
            manifest = await build_manifest(
                identity, payload, "bench", {"sealed": "1" if recipient_kx else "0"}, hub.limits.chunk_size
            )
            await hub.send_manifest("receiver", manifest, payload)
        else:
            await hub.send_blob("receiver", blob, "bench", seal_to=recipient_kx)
        await asyncio.wait_for(processed.wait(), 120)
        elapsed = time.perf_counter() - start
        reader.cancel()
        return elapsed


async def _read_replies(ws, hub: TransferHub, processed: asyncio.Event) -> None:
    async for msg in ws:
        item = frames.parse(msg.data)
        if not await hub.handle("receiver", item):
            processed.set()


async def measure(url: str, size_mb: int, repeat: int, recipient_kx: bytes) -> dict[str, list[float]]:
    blob = os.urandom(size_mb * 1024 * 1024)
    runs = {
        RAW: lambda: raw_run(session, url, blob),
        RAW_CART_SEND: lambda: raw_run(session, url, blob, cart_send=True),
        "cartnet (streamed, signed chunks)": lambda: cartnet_run(session, url, blob, None),
        "cartnet + e2e encryption (streamed, sealed chunks)": lambda: cartnet_run(session, url, blob, recipient_kx),
        "before: cartnet, listed manifest": lambda: cartnet_run(session, url, blob, None, listed=True),
        "before: cartnet + e2e, whole-blob seal": lambda: cartnet_run(session, url, blob, recipient_kx, listed=True),
    }
    results: dict[str, list[float]] = {name: [] for name in runs}
    async with aiohttp.ClientSession() as session:
        for _ in range(repeat):
            for name, run in runs.items():
                results[name].append(await run())
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=receiver_main, args=(child,), daemon=True)
    proc.start()
    try:
        port, receiver_kx = parent.recv()
        results = asyncio.run(measure(f"http://127.0.0.1:{port}", args.mb, args.repeat, receiver_kx))
    finally:
        proc.kill()
    report(results, args.mb, args.repeat)


def report(results: dict[str, list[float]], size_mb: int, repeat: int) -> None:
    console = Console(width=140)
    console.print(f"machine: {describe()}; load average {os.getloadavg()[0]:.2f} (1 min) after the run")
    table = Table(
        title=f"{size_mb} MB transfer over loopback WebSocket, best of {repeat} (receiver in its own process)"
    )
    for column in ("path", "best s", "median s", "MB/s (best)", "vs raw"):
        table.add_column(column, justify="right")
    ceiling = size_mb / min(results[RAW])
    for name, times in results.items():
        rate = size_mb / min(times)
        table.add_row(
            name, f"{min(times):.3f}", f"{statistics.median(times):.3f}", f"{rate:.0f}", f"{rate / ceiling:.0%}"
        )
    console.print(table)


if __name__ == "__main__":
    main()
