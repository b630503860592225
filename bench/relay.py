"""Relay cost: throughput and latency through one and two bridges vs a direct WebSocket; the WebSocket layer
of the relay path against faster ones; what the default rate limits cost a large transfer and whether they
keep carts fair; and how many carts one bridge holds.

Bridges are real `fedcart bridge` processes (rate limits off for the path table, default settings where a
table says so); every receiver runs in a process of its own; the sender runs here. Frames carry opaque
payloads: `S`+size starts a count, `D...` is data, `P...` is echoed, `A` acknowledges the whole count,
anything else is dropped. Through a bridge they travel as routed frames between admitted carts. The layer
table runs the bridge's routing step alone (bench/_bare_relay.py) on each WebSocket layer, with the same
clients.
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

import _bare_relay
import aiohttp
from _machine import describe
from aiohttp import web
from rich.console import Console
from rich.table import Table

from cartnet import frames, presence, wsock
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
    """Child process entry: `direct` serves a sink, `raw` is a raw cart, `client` a BridgeClient, `bare` a
    connection registered at a bare relay."""
    modes = {"direct": _direct_sink, "raw": _raw_sink, "client": _client_sink, "bare": _bare_sink}
    asyncio.run(modes[mode](pipe, url))


async def _bare_sink(pipe, url: str) -> None:
    me = Identity.generate()
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(url), max_msg_size=MAX_FRAME) as ws:
        await ws.send_bytes(bytes.fromhex(me.node_id))
        pipe.send(me.node_id)
        counter = _Counter()
        async for msg in ws:
            route = frames.parse_route(memoryview(msg.data))
            if (reply := counter.on(route.inner)) is not None:
                await ws.send_bytes(frames.routed(route.sender, me.node_id, reply))


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
        """As a cart sends (cartnet.wsock), on every path alike."""
        await wsock.send(self.ws, payload, prefix=frames.route_header(self.to, self.me) if self.to else b"")

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


async def start_bridge(root: Path, name: str, bootstrap: str = "", limits: bool = False, **extra: str) -> BridgeProc:
    """A `fedcart bridge` process: rate limits off unless `limits` (then the defaults), `extra` settings as env."""
    env = {**os.environ, "LOG_LEVEL": "WARNING", "PYTHONPATH": str(REPO)}
    for setting in ("RATE_FRAMES", "RATE_BYTES"):
        if limits:
            env.pop(setting, None)
        else:
            env[setting] = "0"
    env.update(extra)
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


@contextlib.asynccontextmanager
async def direct_channel(session: aiohttp.ClientSession) -> AsyncIterator[Channel]:
    proc, url = spawn_receiver("direct", "")
    try:
        async with session.ws_connect(ws_url(url), max_msg_size=MAX_FRAME) as ws:
            yield Channel(ws)
    finally:
        proc.kill()


@contextlib.asynccontextmanager
async def relay_channel(session: aiohttp.ClientSession, src: str, dst: str) -> AsyncIterator[Channel]:
    proc, receiver = spawn_receiver("raw", dst)
    me = Identity.generate()
    try:
        await wait_listed(session, src, receiver)
        async with raw_cart(session, src, me) as ws:
            yield Channel(ws, me.node_id, receiver)
    finally:
        proc.kill()


async def measure_paths(args: argparse.Namespace, channels: dict[str, Channel]) -> list[Row]:
    """Throughput of every path, best of `args.repeat` runs taken in turns (a burst of load from elsewhere
    then hits every path alike, not one of them), then each path's pings."""
    total, frame = args.mb * 1024 * 1024, args.frame_kib * 1024
    best = dict.fromkeys(channels, 0.0)
    for channel in channels.values():
        await throughput(channel, frame * 4, frame)
    for _ in range(args.repeat):
        for name, channel in channels.items():
            best[name] = max(best[name], await throughput(channel, total, frame))
    rows = []
    for name, channel in channels.items():
        samples = await latencies(channel, args.pings)
        rows.append(Row(name, best[name], p(samples, 50), p(samples, 99)))
    return rows


async def measure_transfer(
    args: argparse.Namespace, src: str, dst: str, name: str = "", size: int = 0, repeat: int = 1
) -> Row:
    """A cartnet transfer (streamed, each chunk signed and checked) between two BridgeClients: best of `repeat`."""
    async with _transfer_pair(src, dst) as (client, receiver):
        blob = os.urandom(size or args.mb * 1024 * 1024)
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            await client.transfers.send_blob(receiver, blob, "bench")
            best = min(best, time.perf_counter() - start)
        return Row(name or "cartnet transfer via 2 bridges (streamed, chunks signed)", len(blob) / best / 1e6)


# --- the WebSocket layer of the relay path --------------------------------------------------------


async def measure_layers(
    args: argparse.Namespace, session: aiohttp.ClientSession, bridges: dict[str, str]
) -> list[Row | str]:
    """The routing step alone on each WebSocket layer, and the bridges in `bridges` (name -> url), all connected
    at once and measured in turns (each round runs every path once), so a change of load hits all alike; the
    best round of each is reported. A layer that cannot run here is a line saying why."""
    lines: list[Row | str] = []
    ctx = mp.get_context("spawn")
    procs: list[mp.Process] = []
    channels: dict[str, Channel] = {}
    try:
        async with contextlib.AsyncExitStack() as stack:
            for layer in _bare_relay.LAYERS:
                missing = _bare_relay.available(layer)
                if missing:
                    lines.append(f"{layer}: skipped, {missing}")
                    continue
                parent, child = ctx.Pipe()
                relay = ctx.Process(target=_bare_relay.serve, args=(child, layer), daemon=True)
                relay.start()
                procs.append(relay)
                if not parent.poll(60):
                    raise RuntimeError(f"bare relay on {layer} never came up")
                url = parent.recv()
                receiver, them = spawn_receiver("bare", url)
                procs.append(receiver)
                me = Identity.generate()
                ws = await stack.enter_async_context(session.ws_connect(ws_url(url), max_msg_size=MAX_FRAME))
                await ws.send_bytes(bytes.fromhex(me.node_id))
                channels[f"bare relay: {layer}"] = Channel(ws, me.node_id, them)
            for name, url in bridges.items():
                receiver, them = spawn_receiver("raw", url)
                procs.append(receiver)
                await wait_listed(session, url, them)
                me = Identity.generate()
                channels[name] = Channel(await stack.enter_async_context(raw_cart(session, url, me)), me.node_id, them)
            total, frame = args.mb * 1024 * 1024, args.frame_kib * 1024
            best = dict.fromkeys(channels, 0.0)
            for channel in channels.values():
                await throughput(channel, frame * 4, frame)
            for _ in range(args.repeat):
                for name, channel in channels.items():
                    best[name] = max(best[name], await throughput(channel, total, frame))
            for name, channel in channels.items():
                samples = await latencies(channel, args.pings)
                lines.append(Row(name, best[name], p(samples, 50), p(samples, 99)))
    finally:
        for proc in procs:
            proc.kill()
    return lines


# --- rate limits: a large transfer at the defaults, and fairness ------------------------------------


@dataclass
class Limits:
    big: list[Row]
    pair: list[float]
    pair_alone: float
    honest_alone: float
    honest_flooded: float
    flood_fps: float
    settings: str


async def measure_limits(args: argparse.Namespace, free: BridgeProc, default: BridgeProc, old: BridgeProc) -> Limits:
    """A `--big-mb` transfer through one bridge with limits off and at the defaults; two carts sending at once
    through the default bridge; an honest cart's throughput alone and beside a cart flooding small frames.
    Each pair of figures to be compared is measured in turns, `--repeat` times, best kept."""
    size = args.big_mb * 1_000_000
    async with contextlib.AsyncExitStack() as stack:
        pairs = {
            "off": await stack.enter_async_context(_transfer_pair(free.url)),
            "on": await stack.enter_async_context(_transfer_pair(default.url)),
            "old": await stack.enter_async_context(_transfer_pair(old.url)),
        }
        blob = os.urandom(size)
        best = dict.fromkeys(pairs, float("inf"))
        for _ in range(args.repeat):
            for name, (client, receiver) in pairs.items():
                start = time.perf_counter()
                await client.transfers.send_blob(receiver, blob, "bench")
                best[name] = min(best[name], time.perf_counter() - start)
        del blob
    big = [
        Row(f"{args.big_mb} MB transfer, 1 bridge, limits off", size / best["off"] / 1e6),
        Row(f"{args.big_mb} MB transfer, 1 bridge, defaults", size / best["on"] / 1e6),
        Row(f"{args.big_mb} MB transfer, 1 bridge, before: RATE_BYTES 64 MiB/s", size / best["old"] / 1e6),
    ]
    async with aiohttp.ClientSession() as session:
        pair = await _senders(session, default.url, 2, args)
        flooding = asyncio.Event()
        ready = asyncio.Event()
        flooder = asyncio.create_task(_flood(session, default.url, ready, flooding))
        try:
            await asyncio.wait_for(ready.wait(), 60)
            async with _channels(session, default.url, 1) as (honest,):
                total, frame = args.mb * 1024 * 1024, args.frame_kib * 1024
                alone = flooded = flood_fps = 0.0
                for _ in range(args.repeat):
                    alone = max(alone, await throughput(honest, total, frame))
                    flooding.set()
                    before, start = await _relayed_frames(session, default.url), time.perf_counter()
                    flooded = max(flooded, await throughput(honest, total, frame))
                    relayed = await _relayed_frames(session, default.url) - before
                    flood_fps = max(flood_fps, relayed / (time.perf_counter() - start))
                    flooding.clear()
        finally:
            flooder.cancel()
            await asyncio.gather(flooder, return_exceptions=True)
    from parent_cart.settings import BridgeSettings

    defaults = BridgeSettings(_env_file=None)
    settings = f"rate_bytes {defaults.rate_bytes / 2**20:g} MiB/s, rate_frames {defaults.rate_frames:g}/s"
    return Limits(big, pair, alone, alone, flooded, flood_fps, settings)


@contextlib.asynccontextmanager
async def _transfer_pair(url: str, receiver_url: str = "") -> AsyncIterator[tuple[BridgeClient, str]]:
    """A BridgeClient on `url` and the id of a receiving BridgeClient (own process) on `receiver_url` (default:
    the same bridge), once `url`'s bridge lists it."""
    proc, receiver = spawn_receiver("client", receiver_url or url)
    try:
        me = Identity.generate()
        async with BridgeClient(me, url, certified(me)) as client:
            await client.wait_connected()
            async with aiohttp.ClientSession() as session:
                await wait_listed(session, url, receiver)
            yield client, receiver
    finally:
        proc.kill()


@contextlib.asynccontextmanager
async def _channels(session: aiohttp.ClientSession, url: str, count: int) -> AsyncIterator[list[Channel]]:
    """`count` raw carts on `url`, each with a receiver of its own (own process) on the same bridge."""
    receivers = [spawn_receiver("raw", url) for _ in range(count)]
    try:
        async with contextlib.AsyncExitStack() as stack:
            channels = []
            for _, receiver in receivers:
                await wait_listed(session, url, receiver)
                me = Identity.generate()
                ws = await stack.enter_async_context(raw_cart(session, url, me))
                channels.append(Channel(ws, me.node_id, receiver))
            yield channels
    finally:
        for proc, _ in receivers:
            proc.kill()


async def _senders(session: aiohttp.ClientSession, url: str, count: int, args: argparse.Namespace) -> list[float]:
    """`count` raw carts, each in a process of its own, each sending `--mb` MiB to a receiver of its own through
    `url`, all started at once: MB/s each."""
    receivers = [spawn_receiver("raw", url) for _ in range(count)]
    ctx = mp.get_context("spawn")
    senders = []
    try:
        for _, receiver in receivers:
            await wait_listed(session, url, receiver)
            parent, child = ctx.Pipe()
            total, frame = args.mb * 1024 * 1024, args.frame_kib * 1024
            proc = ctx.Process(target=sender_main, args=(child, url, receiver, total, frame), daemon=True)
            proc.start()
            senders.append((proc, parent))
        for _, pipe in senders:
            await asyncio.to_thread(pipe.recv)  # admitted and warmed up
        for _, pipe in senders:
            pipe.send("go")
        return [await asyncio.to_thread(pipe.recv) for _, pipe in senders]
    finally:
        for proc, _ in [*receivers, *senders]:
            proc.kill()


def sender_main(pipe, url: str, to: str, total: int, frame: int) -> None:
    """Child process: a raw cart that, told to go, sends `total` bytes to `to` and reports its MB/s."""

    async def send() -> None:
        me = Identity.generate()
        async with aiohttp.ClientSession() as session, raw_cart(session, url, me) as ws:
            channel = Channel(ws, me.node_id, to)
            await throughput(channel, frame * 4, frame)
            pipe.send("ready")
            await asyncio.to_thread(pipe.recv)
            pipe.send(await throughput(channel, total, frame))

    asyncio.run(send())


async def _flood(session: aiohttp.ClientSession, url: str, ready: asyncio.Event, flooding: asyncio.Event) -> None:
    """A cart sending 64-byte frames to a receiver as fast as its socket takes them (the bridge paces it), while
    `flooding` is set."""
    proc, receiver = spawn_receiver("raw", url)
    me = Identity.generate()
    try:
        await wait_listed(session, url, receiver)
        async with raw_cart(session, url, me) as ws:
            junk = frames.routed(receiver, me.node_id, b"X" * 64)
            ready.set()
            while True:
                await flooding.wait()
                await ws.send_bytes(junk)
    finally:
        proc.kill()


async def _relayed_frames(session: aiohttp.ClientSession, url: str) -> float:
    """Frames the bridge has relayed so far (its /metrics), so a flooder is counted by what got through."""
    async with session.get(f"{url}/metrics") as response:
        text = await response.text()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("fedcart_bridge_frames_relayed_total{")
    )


@dataclass
class Capacity:
    carts: int
    workers: int
    admit_s: float
    idle_health: list[float]
    health: list[float]
    ping_ms: float
    rss_mb: float
    listed: int
    interval: float


def cart_worker(pipe, url: str, count: int, concurrency: int) -> None:
    """Child process: `count` raw carts admitted to `url` (`concurrency` handshakes at a time), then held,
    heartbeating, until the parent says stop. Reports (admitted, seconds) once all are in."""
    asyncio.run(_cart_worker(pipe, url, count, concurrency))


async def _cart_worker(pipe, url: str, count: int, concurrency: int) -> None:
    identities = [Identity.generate() for _ in range(count)]
    authority = Authority.load(Path(os.environ[AUTHORITY_ENV]))
    certs = {me.node_id: authority.issue(me.public_key, "cart") for me in identities}
    pipe.send("ready")
    pipe.recv()  # go
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=0)
    patient = aiohttp.ClientTimeout(total=None, sock_connect=300)  # a loaded bridge accepts late; count it, do not fail
    async with (
        aiohttp.ClientSession(connector=connector, timeout=patient) as session,
        contextlib.AsyncExitStack() as stack,
    ):

        async def admit(me: Identity) -> None:
            async with gate:
                await stack.enter_async_context(raw_cart(session, url, me, certs[me.node_id]))

        start = time.perf_counter()
        await asyncio.gather(*(admit(me) for me in identities))
        pipe.send((count, time.perf_counter() - start))
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # stop


async def measure_capacity(count: int, bridge: BridgeProc, workers: int = 4, concurrency: int = 16) -> Capacity:
    """`count` raw heartbeating carts on one bridge, spread over `workers` processes, admitted all at once:
    the admission rate, /health latency before (idle bridge, the baseline) and while they all heartbeat,
    and a routed ping between two more carts."""
    ctx = mp.get_context("spawn")
    share = [count // workers + (index < count % workers) for index in range(workers)]
    pipes, procs = [], []
    for size in share:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=cart_worker, args=(child, bridge.url, size, concurrency), daemon=True)
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    connector = aiohttp.TCPConnector(limit=0)
    try:
        async with aiohttp.ClientSession(connector=connector) as session, contextlib.AsyncExitStack() as stack:
            idle, _ = await _health_samples(session, bridge.url, 200)
            for pipe in pipes:
                await asyncio.to_thread(pipe.recv)  # identities and certificates made
            start = time.perf_counter()
            for pipe in pipes:
                pipe.send("go")
            for pipe in pipes:
                await asyncio.to_thread(pipe.recv)
            admit_s = time.perf_counter() - start
            a, b = Identity.generate(), Identity.generate()
            ws_a = await stack.enter_async_context(raw_cart(session, bridge.url, a))
            ws_b = await stack.enter_async_context(raw_cart(session, bridge.url, b))
            async with session.get(f"{bridge.url}/health") as response:
                interval = float((await response.json()).get("heartbeat_interval", 5.0))
            health, listed = await _health_samples(session, bridge.url, 500)
            echo = asyncio.create_task(_echo(ws_b, b.node_id))
            pings = await latencies(Channel(ws_a, a.node_id, b.node_id), 200)
            echo.cancel()
            rss = rss_mb(bridge.proc.pid)
    finally:
        for pipe in pipes:
            with contextlib.suppress(OSError):
                pipe.send("stop")
        for proc in procs:
            proc.join(30)
            proc.kill()
    return Capacity(count, workers, admit_s, idle, health, p(pings, 50), rss, listed, interval)


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


@dataclass
class Results:
    rows: list[Row]
    layers: list[Row | str]
    limits: Limits | None
    capacity: Capacity | None


async def run(args: argparse.Namespace) -> Results:
    only = set(args.only.split(",")) if args.only else {"paths", "layers", "limits", "carts"}
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmp:
        root = Path(tmp)
        os.environ[AUTHORITY_ENV] = str(Authority.create(root / "authority").directory)
        b1 = await start_bridge(root, "b1")
        b2 = await start_bridge(root, "b2", f"127.0.0.1:{b1.dht_port}")
        b3 = await start_bridge(root, "b3", limits=True)
        b4 = await start_bridge(root, "b4", EVENT_LOOP="asyncio") if "layers" in only else None
        b5 = (
            await start_bridge(root, "b5", f"127.0.0.1:{b1.dht_port}", MAX_CARTS=str(args.carts + 16))
            if "carts" in only
            else None
        )
        results = Results([], [], None, None)
        try:
            async with aiohttp.ClientSession() as session, contextlib.AsyncExitStack() as stack:
                channels = {
                    "direct loopback WebSocket": await stack.enter_async_context(direct_channel(session)),
                    "through 1 bridge": await stack.enter_async_context(relay_channel(session, b1.url, b1.url)),
                }
                if "paths" in only:
                    for name, src, dst in (("b1 to b2", b1, b2), ("b2 to b1", b2, b1)):
                        channel = relay_channel(session, src.url, dst.url)
                        channels[f"through 2 bridges (link, {name})"] = await stack.enter_async_context(channel)
                results.rows += await measure_paths(args, channels)
                if b4 is not None:
                    bridges = {f"the bridge on {_loop()}": b1.url, "the bridge on asyncio's own loop": b4.url}
                    results.layers = await measure_layers(args, session, bridges)
            if "paths" in only:
                results.rows.append(await measure_transfer(args, b1.url, b2.url, repeat=args.repeat))
            if "limits" in only:
                old = await start_bridge(root, "b6", limits=True, RATE_BYTES=str(64 * 1024 * 1024))
                try:
                    results.limits = await measure_limits(args, b1, b3, old)
                finally:
                    await stop_bridge(old)
            if b5 is not None:
                results.capacity = await measure_capacity(args.carts, b5, args.workers)
        finally:
            await asyncio.gather(*(stop_bridge(bridge) for bridge in (b1, b2, b3, b4, b5) if bridge is not None))
    return results


def report(args: argparse.Namespace, results: Results) -> None:
    import aiohttp as _aiohttp

    rows = results.rows
    console.print(
        f"{describe()}, aiohttp {_aiohttp.__version__}; load average {os.getloadavg()[0]:.2f} (1 min) after the run;"
        " bridges: `fedcart bridge` processes, rate limits off unless said"
    )
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
    if results.layers:
        _report_layers(results.layers, rows)
    if results.limits is not None:
        _report_limits(args, results.limits)
    if results.capacity is not None:
        _report_capacity(results.capacity)


def _report_layers(layers: list[Row | str], rows: list[Row]) -> None:
    measured = [row for row in layers if isinstance(row, Row)]
    if not measured:
        return
    base = measured[0]
    table = Table(
        title="the relay path's WebSocket layer: the routing step alone, and the bridge, on each loop "
        "(same clients, measured in turns)"
    )
    for column in ("relay", "MB/s", "vs aiohttp", "vs direct", "ping p50 ms", "ping p99 ms"):
        table.add_column(column, justify="left" if column == "relay" else "right")
    for row in measured:
        table.add_row(
            row.path,
            f"{row.mbps:.0f}",
            f"{row.mbps / base.mbps:.2f}",
            f"{row.mbps / rows[0].mbps:.2f}",
            f"{row.p50:.3f}" if row.p50 is not None else "-",
            f"{row.p99:.3f}" if row.p99 is not None else "-",
        )
    console.print(table)
    for line in layers:
        if isinstance(line, str):
            console.print(f"  {line}")


def _loop() -> str:
    from parent_cart.server import loop_factory
    from parent_cart.settings import BridgeSettings

    return "uvloop" if loop_factory(BridgeSettings(_env_file=None).event_loop) else "asyncio's own loop"


def _report_limits(args: argparse.Namespace, limits: Limits) -> None:
    table = Table(title=f"rate limits at the defaults ({limits.settings})")
    for column in ("case", "figure", "vs baseline"):
        table.add_column(column, justify="left" if column == "case" else "right")
    off, on, old = limits.big
    size = args.big_mb * 1_000_000
    table.add_row(off.path, f"{size / off.mbps / 1e6:.2f} s ({off.mbps:.0f} MB/s)", "baseline")
    table.add_row(on.path, f"{size / on.mbps / 1e6:.2f} s ({on.mbps:.0f} MB/s)", f"{on.mbps / off.mbps:.2f}x")
    table.add_row(old.path, f"{size / old.mbps / 1e6:.2f} s ({old.mbps:.0f} MB/s)", f"{old.mbps / off.mbps:.2f}x")
    pair = limits.pair
    table.add_row(
        f"2 carts (own processes) sending {args.mb} MiB at once (defaults)",
        " + ".join(f"{mbps:.0f}" for mbps in pair) + " MB/s",
        f"fairness {min(pair) / max(pair):.2f} (slower/faster); sum {sum(pair) / limits.pair_alone:.2f}x one alone",
    )
    table.add_row(f"1 cart sending {args.mb} MiB alone (defaults)", f"{limits.honest_alone:.0f} MB/s", "baseline")
    table.add_row(
        "the same beside a cart flooding 64-byte frames",
        f"{limits.honest_flooded:.0f} MB/s; {limits.flood_fps:.0f} frames/s relayed in all",
        f"{limits.honest_flooded / limits.honest_alone:.2f}x alone",
    )
    console.print(table)


def _report_capacity(capacity: Capacity) -> None:
    cap = Table(
        title=f"one bridge holding {capacity.carts} idle carts that heartbeat (raw admitted carts over "
        f"{capacity.workers} processes, admitted at once; /health: 500 requests one after another)"
    )
    for column in ("figure", "value", "vs baseline"):
        cap.add_column(column, justify="left" if column == "figure" else "right")
    idle50, idle99 = p(capacity.idle_health, 50), p(capacity.idle_health, 99)
    cap.add_row("carts listed by /health", f"{capacity.listed}", f"of {capacity.carts + 2}")
    cap.add_row("admission", f"{capacity.admit_s:.1f} s, {capacity.carts / capacity.admit_s:.0f} carts/s", "")
    cap.add_row("/health p50 on the idle bridge (baseline)", f"{idle50:.2f} ms", "baseline")
    cap.add_row("/health p99 on the idle bridge (baseline)", f"{idle99:.2f} ms", "baseline")
    cap.add_row(
        "/health p50 holding them", f"{p(capacity.health, 50):.2f} ms", f"{p(capacity.health, 50) / idle50:.1f}x"
    )
    cap.add_row(
        "/health p99 holding them", f"{p(capacity.health, 99):.2f} ms", f"{p(capacity.health, 99) / idle99:.1f}x"
    )
    cap.add_row("heartbeats the bridge answers", f"{capacity.carts / capacity.interval:.0f}/s", "")
    cap.add_row("routed ping p50 between two more carts", f"{capacity.ping_ms:.3f} ms", "")
    cap.add_row("bridge RSS", f"{capacity.rss_mb:.0f} MB", f"{capacity.rss_mb * 1024 / capacity.carts:.0f} KB a cart")
    console.print(cap)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="MiB per throughput run")
    parser.add_argument("--frame-kib", type=int, default=1024, help="payload per frame (KiB, below 4 MiB)")
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs per path (best is reported)")
    parser.add_argument("--pings", type=int, default=2000, help="sequential pings per path")
    parser.add_argument("--carts", type=int, default=10_000, help="idle heartbeating carts on one bridge")
    parser.add_argument("--workers", type=int, default=4, help="processes the carts are spread over")
    parser.add_argument("--big-mb", type=int, default=206, help="MB of the large transfer in the limits table")
    parser.add_argument("--only", default="", help="comma-separated subset of: paths,layers,limits,carts")
    args = parser.parse_args()
    report(args, asyncio.run(run(args)))


if __name__ == "__main__":
    main()
