"""Throughput of a cartnet transfer vs raw aiohttp WebSocket sends of the same bytes.

The receiver runs in its own process (as on a real peer), on 127.0.0.1. Each
figure is the best of `--repeat` runs, from the first byte sent until the
receiver confirms it holds every chunk (verified, for cartnet; decrypted, when
sealed). Both receivers keep the frames as they arrive, without joining them.
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

from cartnet import e2e, frames
from cartnet.identity import Identity
from cartnet.messages import Heartbeat
from cartnet.transfer import TransferHub, TransferLimits

log = logging.getLogger("bench.transfer")
MAX_MSG = 4 * 1024 * 1024
CHUNK = 1024 * 1024


def receiver_main(port_pipe, kx_private: bytes) -> None:
    """Child process: raw sink on /raw, cartnet TransferHub on /hub."""
    asyncio.run(_serve(port_pipe, kx_private))


async def _serve(port_pipe, kx_private: bytes) -> None:
    identity = Identity.generate()
    kx = _kx_from(kx_private)
    app = web.Application()
    app.router.add_get("/raw", _raw_sink)
    app.router.add_get("/hub", lambda request: _hub_sink(request, identity, kx))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port_pipe.send(site._server.sockets[0].getsockname()[1])
    await asyncio.Event().wait()


def _kx_from(raw: bytes):
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    return X25519PrivateKey.from_private_bytes(raw)


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
        if received.manifest.meta.get("sealed") == "1":
            e2e.open_sealed(received.data, kx, received.manifest.sender)
        await ws.send_bytes(frames.control(Heartbeat(seq=1)))


async def raw_run(session: aiohttp.ClientSession, url: str, blob: bytes) -> float:
    async with session.ws_connect(url + "/raw", max_msg_size=MAX_MSG) as ws:
        start = time.perf_counter()
        await ws.send_str(str(len(blob)))
        for offset in range(0, len(blob), CHUNK):
            await ws.send_bytes(blob[offset : offset + CHUNK])
        await ws.receive()
        return time.perf_counter() - start


async def cartnet_run(session: aiohttp.ClientSession, url: str, blob: bytes, recipient_kx: bytes | None) -> float:
    identity = Identity.generate()
    async with session.ws_connect(url + "/hub", max_msg_size=MAX_MSG) as ws:

        async def send(_peer: str, frame: bytes) -> None:
            await ws.send_bytes(frame)

        hub = TransferHub(identity, send)
        processed = asyncio.Event()
        reader = asyncio.create_task(_read_replies(ws, hub, processed))
        start = time.perf_counter()
        payload = e2e.seal(blob, recipient_kx, identity.node_id) if recipient_kx else blob
        await hub.send_blob("receiver", payload, "bench", {"sealed": "1" if recipient_kx else "0"})
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
    results: dict[str, list[float]] = {"raw aiohttp WebSocket": [], "cartnet": [], "cartnet + e2e encryption": []}
    async with aiohttp.ClientSession() as session:
        for _ in range(repeat):
            results["raw aiohttp WebSocket"].append(await raw_run(session, url, blob))
            results["cartnet"].append(await cartnet_run(session, url, blob, None))
            results["cartnet + e2e encryption"].append(await cartnet_run(session, url, blob, recipient_kx))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    receiver_identity = Identity.generate()
    kx_raw = receiver_identity.kx_key.private_bytes_raw()
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=receiver_main, args=(child, kx_raw), daemon=True)
    proc.start()
    try:
        port = parent.recv()
        results = asyncio.run(
            measure(f"http://127.0.0.1:{port}", args.mb, args.repeat, receiver_identity.kx_public_key)
        )
    finally:
        proc.kill()
    report(results, args.mb, args.repeat)


def report(results: dict[str, list[float]], size_mb: int, repeat: int) -> None:
    console = Console()
    console.print(f"machine: {describe()}")
    table = Table(
        title=f"{size_mb} MB transfer over loopback WebSocket, best of {repeat} (receiver in its own process)"
    )
    for column in ("path", "best s", "median s", "MB/s (best)", "vs raw"):
        table.add_column(column, justify="right")
    ceiling = size_mb / min(results["raw aiohttp WebSocket"])
    for name, times in results.items():
        rate = size_mb / min(times)
        table.add_row(
            name, f"{min(times):.3f}", f"{statistics.median(times):.3f}", f"{rate:.0f}", f"{rate / ceiling:.0%}"
        )
    console.print(table)


if __name__ == "__main__":
    main()
