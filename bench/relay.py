"""Relay cost: throughput and latency through one and two bridges vs a direct WebSocket, and how
many carts one bridge holds.

Bridges are real `fedcart bridge` processes (rate limits off, other settings default);
every receiver runs in a process of its own; the sender runs here. Frames carry opaque
payloads: `S`+size starts a count, `D...` is data, `P...` is echoed, `A` acknowledges
the whole count. Through a bridge they travel as routed frames between admitted carts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import re
import statistics
import struct
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from _machine import describe
from aiohttp import web
from rich.console import Console
from rich.table import Table

from cartnet import frames, presence
from cartnet.authority import Authority, ensure_enrolled
from cartnet.client import BridgeClient
from cartnet.handshake import MAX_FRAME, join, ws_url
from cartnet.identity import Identity
from cartnet.messages import Certificate, Heartbeat
from fedcart.local_swarm import bridge_argv

AUTHORITY_ENV = "FEDCART_BENCH_AUTHORITY"
"""Where `run` keeps the bench swarm's authority; receiver processes inherit it and enrol themselves."""
REPO = Path(__file__).resolve().parents[1]
console = Console(width=160)


def certified(identity: Identity) -> Certificate:
    """A certificate of the bench's swarm for `identity`."""
    return Authority.load(Path(os.environ[AUTHORITY_ENV])).issue(identity.public_key, "cart")


# --- receivers (child processes) --------------------------------------------------------------


def receiver_main(pipe, mode: str, url: str) -> None:
    """Child process entry: `direct` serves a sink, `raw` is a raw cart, `client` a BridgeClient."""
    asyncio.run({"direct": _direct_sink, "raw": _raw_sink, "client": _client_sink}[mode](pipe, url))


class _Counter:
    """The receiver's side of the payload protocol; `reply` is what to send back, if anything."""

    def __init__(self) -> None:
        self.expected = self.received = 0

    def on(self, payload: bytes) -> bytes | None:
        kind = payload[:1]
        if kind == b"P":
            return payload
        if kind == b"S":
            self.expected, self.received = struct.unpack(">Q", payload[1:9])[0], 0
        elif kind == b"D":
            self.received += len(payload)
            if self.received >= self.expected:
                return b"A"
        return None


async def _direct_sink(pipe, _url: str) -> None:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME)
        await ws.prepare(request)
        counter = _Counter()
        async for msg in ws:
            if (reply := counter.on(msg.data)) is not None:
                await ws.send_bytes(reply)
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    pipe.send(f"http://127.0.0.1:{runner.addresses[0][1]}")
    await asyncio.Event().wait()


async def _raw_sink(pipe, url: str) -> None:
    me = Identity.generate()
    async with aiohttp.ClientSession() as session, raw_cart(session, url, me) as ws:
        pipe.send(me.node_id)
        counter = _Counter()
        async for msg in ws:
            if msg.data[:1] == frames.ROUTED:
                route = frames.parse_route(memoryview(msg.data))
                if (reply := counter.on(route.inner)) is not None:
                    await ws.send_bytes(frames.routed(route.sender, me.node_id, reply))


async def _client_sink(pipe, url: str) -> None:
    me = Identity.generate()
    async with BridgeClient(me, url, certified(me)) as client:
        await client.wait_connected()
        pipe.send(client.node_id)
        while True:
            await client.transfers.received.get()


# --- raw admitted carts -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def raw_cart(
    session: aiohttp.ClientSession, url: str, me: Identity, cert: Certificate | None = None
) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """An admitted, heartbeating WebSocket with a published presence: the lightest possible cart."""
    async with session.ws_connect(ws_url(url), max_msg_size=MAX_FRAME) as ws:
        welcome = await join(ws, me, cert or certified(me))
        await ws.send_bytes(frames.control(presence.sign(me, welcome.bridge_id, 600)))
        beat = asyncio.create_task(_heartbeat(ws, welcome.heartbeat_interval))
        try:
            yield ws
        finally:
            beat.cancel()


async def _heartbeat(ws: aiohttp.ClientWebSocketResponse, interval: float) -> None:
    for seq in range(1, 1 << 62):
        await asyncio.sleep(interval)
        await ws.send_bytes(frames.control(Heartbeat(seq=seq)))


@dataclass
class Channel:
    """Payloads to one receiver, directly or routed through bridges."""

    ws: aiohttp.ClientWebSocketResponse
    me: str = ""
    to: str = ""

    async def send(self, payload: bytes) -> None:
        await self.ws.send_bytes(frames.routed(self.to, self.me, payload) if self.to else payload)

    async def recv(self) -> bytes:
        while True:
            msg = await self.ws.receive()
            if msg.type is not aiohttp.WSMsgType.BINARY:
                raise ConnectionError(f"receiver connection ended: {msg.type.name}")
            if not self.to:
                return msg.data
            if msg.data[:1] == frames.ROUTED:
                return frames.parse_route(memoryview(msg.data)).inner
            if isinstance(item := frames.parse(msg.data), frames.Message) and item.type == "undeliverable":
                raise ConnectionError(item.reason)


# --- measurements -------------------------------------------------------------------------------


async def throughput(channel: Channel, total: int, frame_size: int) -> float:
    """MB/s from the first byte sent until the receiver acknowledges the last."""
    payload = b"D" + bytes(frame_size - 1)
    start = time.perf_counter()
    await channel.send(b"S" + struct.pack(">Q", total))
    for _ in range(total // frame_size):
        await channel.send(payload)
    assert await channel.recv() == b"A"
    return total / (time.perf_counter() - start) / 1e6


async def latencies(channel: Channel, count: int) -> list[float]:
    """Round-trip milliseconds of `count` small pings, one at a time."""
    samples = []
    for index in range(count):
        ping = b"P" + struct.pack(">I", index)
        start = time.perf_counter()
        await channel.send(ping)
        assert await channel.recv() == ping
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def p(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100)[int(q) - 1] if len(samples) > 1 else samples[0]


# --- bridges as processes -----------------------------------------------------------------------


@dataclass
class BridgeProc:
    proc: asyncio.subprocess.Process
    url: str
    dht_port: int
    drain: asyncio.Task[None] | None = None


async def start_bridge(root: Path, name: str, bootstrap: str = "") -> BridgeProc:
    env = {
        **os.environ,
        "RATE_FRAMES": "0",
        "RATE_BYTES": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(REPO),
    }
    ensure_enrolled(Authority.load(Path(os.environ[AUTHORITY_ENV])), root / name, "bridge")
    proc = await asyncio.create_subprocess_exec(
        *bridge_argv(root / name, bootstrap=bootstrap),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=root,
    )
    while line := (await asyncio.wait_for(proc.stderr.readline(), 60)).decode():
        if found := re.search(r"relay (http://\S+) dht udp/(\d+)", line):
            return BridgeProc(proc, found.group(1), int(found.group(2)), asyncio.create_task(_drain(proc.stderr)))
    raise RuntimeError(f"bridge {name} exited before announcing itself")


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


async def stop_bridge(bridge: BridgeProc) -> None:
    bridge.proc.terminate()
    await asyncio.wait_for(bridge.proc.wait(), 30)


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024


async def wait_listed(session: aiohttp.ClientSession, bridge_url: str, node_id: str, timeout: float = 30) -> None:
    """Poll a bridge's /peers until it lists `node_id` (the roster travels over the bridge link)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with session.get(f"{bridge_url}/peers") as response:
            if any(peer["node_id"] == node_id for peer in (await response.json())["peers"]):
                return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{bridge_url} never listed {node_id[:8]}")


# --- scenarios ----------------------------------------------------------------------------------


@dataclass
class Row:
    path: str
    mbps: float
    p50: float | None = None
    p99: float | None = None


def spawn_receiver(mode: str, url: str) -> tuple[mp.Process, str]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=receiver_main, args=(child, mode, url), daemon=True)
    proc.start()
    if not parent.poll(60):
        raise RuntimeError(f"{mode} receiver never came up")
    return proc, parent.recv()


async def measure_direct(args: argparse.Namespace, session: aiohttp.ClientSession) -> Row:
    proc, url = spawn_receiver("direct", "")
    try:
        async with session.ws_connect(ws_url(url), max_msg_size=MAX_FRAME) as ws:
            return await _measure("direct loopback WebSocket", Channel(ws), args)
    finally:
        proc.kill()


async def measure_relay(args: argparse.Namespace, session: aiohttp.ClientSession, name: str, src: str, dst: str) -> Row:
    proc, receiver = spawn_receiver("raw", dst)
    me = Identity.generate()
    try:
        await wait_listed(session, src, receiver)
        async with raw_cart(session, src, me) as ws:
            return await _measure(name, Channel(ws, me.node_id, receiver), args)
    finally:
        proc.kill()


async def _measure(name: str, channel: Channel, args: argparse.Namespace) -> Row:
    total, frame = args.mb * 1024 * 1024, args.frame_kib * 1024
    await throughput(channel, frame * 4, frame)
    mbps = max([await throughput(channel, total, frame) for _ in range(args.repeat)])
    samples = await latencies(channel, args.pings)
    return Row(name, mbps, p(samples, 50), p(samples, 99))


async def measure_transfer(args: argparse.Namespace, src: str, dst: str) -> Row:
    proc, receiver = spawn_receiver("client", dst)
    try:
        me = Identity.generate()
        async with BridgeClient(me, src, certified(me)) as client:
            await client.wait_connected()
            async with aiohttp.ClientSession() as session:
                await wait_listed(session, src, receiver)
            blob = os.urandom(args.mb * 1024 * 1024)
            start = time.perf_counter()
            await client.transfers.send_blob(receiver, blob, "bench")
            return Row(
                "cartnet transfer via 2 bridges (signed, sha256-verified)",
                len(blob) / (time.perf_counter() - start) / 1e6,
            )
    finally:
        proc.kill()


@dataclass
class Capacity:
    carts: int
    admit_s: float
    health_ms: float
    ping_ms: float
    rss_mb: float
    listed: int


async def measure_capacity(count: int, bridge: BridgeProc) -> Capacity:
    """`count` raw carts on one bridge at once; is /health still quick, does routing still work?"""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session, contextlib.AsyncExitStack() as stack:
        identities = [Identity.generate() for _ in range(count)]
        certs = {me.node_id: certified(me) for me in identities}
        gate = asyncio.Semaphore(64)

        async def admit(me: Identity) -> aiohttp.ClientWebSocketResponse:
            async with gate:
                return await stack.enter_async_context(raw_cart(session, bridge.url, me, certs[me.node_id]))

        start = time.perf_counter()
        sockets = await asyncio.gather(*(admit(me) for me in identities))
        admit_s = time.perf_counter() - start
        health, listed = await _health_samples(session, bridge.url, 50)
        echo = asyncio.create_task(_echo(sockets[-1], identities[-1].node_id))
        pings = await latencies(Channel(sockets[0], identities[0].node_id, identities[-1].node_id), 200)
        echo.cancel()
        return Capacity(count, admit_s, p(health, 50), p(pings, 50), rss_mb(bridge.proc.pid), listed)


async def _health_samples(session: aiohttp.ClientSession, url: str, count: int) -> tuple[list[float], int]:
    samples, carts = [], 0
    for _ in range(count):
        start = time.perf_counter()
        async with session.get(f"{url}/health") as response:
            carts = (await response.json())["carts"]
        samples.append((time.perf_counter() - start) * 1000)
    return samples, carts


async def _echo(ws: aiohttp.ClientWebSocketResponse, me: str) -> None:
    async for msg in ws:
        if msg.data[:1] == frames.ROUTED:
            route = frames.parse_route(memoryview(msg.data))
            await ws.send_bytes(frames.routed(route.sender, me, route.inner))


# --- main ---------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> tuple[list[Row], Capacity]:
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmp:
        root = Path(tmp)
        os.environ[AUTHORITY_ENV] = str(Authority.create(root / "authority").directory)
        b1 = await start_bridge(root, "b1")
        b2 = await start_bridge(root, "b2", f"127.0.0.1:{b1.dht_port}")
        try:
            async with aiohttp.ClientSession() as session:
                rows = [await measure_direct(args, session)]
                rows.append(await measure_relay(args, session, "through 1 bridge", b1.url, b1.url))
                rows.append(await measure_relay(args, session, "through 2 bridges (link)", b1.url, b2.url))
            rows.append(await measure_transfer(args, b1.url, b2.url))
            capacity = await measure_capacity(args.carts, b2)
        finally:
            await asyncio.gather(stop_bridge(b1), stop_bridge(b2))
    return rows, capacity


def report(args: argparse.Namespace, rows: list[Row], capacity: Capacity) -> None:
    import aiohttp as _aiohttp

    console.print(f"{describe()}, aiohttp {_aiohttp.__version__}; bridges: `fedcart bridge` processes, rate limits off")
    base = rows[0]
    table = Table(
        title=f"relay: {args.mb} MiB as {args.frame_kib} KiB frames (best of {args.repeat}), {args.pings} pings"
    )
    for column in ("path", "MB/s", "vs direct", "ping p50 ms", "ping p99 ms", "p50 vs direct"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for row in rows:
        lat = (
            (f"{row.p50:.3f}", f"{row.p99:.3f}", f"{row.p50 / base.p50:.1f}x")
            if row.p50 is not None
            else ("-", "-", "-")
        )
        table.add_row(row.path, f"{row.mbps:.0f}", f"{row.mbps / base.mbps:.2f}", *lat)
    console.print(table)
    cap = Table(title="one bridge holding many carts (raw admitted carts, one process)")
    for column in (
        "carts admitted",
        "admission s",
        "admissions/s",
        "/health p50 ms",
        "routed ping p50 ms",
        "bridge RSS MB",
    ):
        cap.add_column(column, justify="right")
    cap.add_row(
        f"{capacity.listed}/{capacity.carts}",
        f"{capacity.admit_s:.2f}",
        f"{capacity.carts / capacity.admit_s:.0f}",
        f"{capacity.health_ms:.2f}",
        f"{capacity.ping_ms:.3f}",
        f"{capacity.rss_mb:.0f}",
    )
    console.print(cap)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="MiB per throughput run")
    parser.add_argument("--frame-kib", type=int, default=1024, help="payload per frame (KiB, below 4 MiB)")
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs per path (best is reported)")
    parser.add_argument("--pings", type=int, default=2000, help="sequential pings per path")
    parser.add_argument("--carts", type=int, default=300, help="concurrent carts on one bridge")
    args = parser.parse_args()
    rows, capacity = asyncio.run(run(args))
    report(args, rows, capacity)


if __name__ == "__main__":
    main()
