"""Soak: lightweight carts doing rounds through two bridges for a bounded time, with and without a hostile mix.

Two real `fedcart bridge` processes (default settings, logging at WARNING) share one DHT. The honest
carts (--carts, 50) run in this process, each a real BridgeClient given both bridges (its primary
first) with a real UpdateExchange, learning a tiny numpy "model" (no Keras, so 50 fit on two cores).
A round offers the cart's update (its weights plus noise), asks the bridge for k + over_ask peers (k,
over_ask and the peer timeout are the round defaults), collects their sealed updates, checked as a
cart checks them, and averages them; it completes when k updates arrived. Rounds follow each other
--pause apart, ±50% (default: the round schedule's default), each cart drawing its pauses from its own
seeded generator, so a cart attempts the same schedule in both runs and the ratio compares like with
like. Nothing here retries or bends a rule.

The soak runs twice on fresh bridges, --minutes each: the honest carts alone, then with the hostile
mix running beside them in a process of its own, every attacker an enrolled, admitted cart:

* malformed: frames that once ended sessions or escaped handlers (arrays nested 120,000 deep, a `type`
  that is a list, unknown frame kinds, garbage), sent to its bridge and routed to honest carts, plus
  malformed and foreign-swarm admission answers on fresh connections;
* flooders: signed update requests to random honest carts (--flood-rate a second each) and 64 KiB
  junk chunks routed to them;
* silent: announced as ready with an update for the task, never answering anything;
* squatters: signed manifests declaring a receiver's whole per-sender share of its transfer buffer,
  never followed by a chunk, sent to every honest cart and re-sent as the old ones go idle.

It prints, for both runs, the rounds honest carts completed and their ratio, round time p50/p99, each
bridge's RSS (/proc/<pid>/status) at the start and the end of the window, what the bridges refused by
reason (their /metrics) and why honest carts skipped peers. Goal (issue 14): honest carts complete at
least 95% of the rounds they complete without attackers, and no bridge's RSS grows by 10% or more.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing as mp
import os
import random
import re
import resource
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from _machine import describe
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from cartnet import admission, compact, frames, presence
from cartnet.authority import Authority, ensure_enrolled
from cartnet.certificates import Certificate, SwarmKey
from cartnet.client import BridgeClient
from cartnet.handshake import MAX_FRAME, join, receive_control, ws_url
from cartnet.identity import Identity
from cartnet.messages import Heartbeat, PeerList, PeersRequest
from cartnet.peers import PeerVerifier, sign_request
from cartnet.transfer import TransferLimits, stream_manifest
from child_cart.rounds.exchange import UPDATE_PURPOSE, UpdateExchange
from child_cart.rounds.settings import RoundSettings
from fedcart.local_swarm import bridge_argv

REPO = Path(__file__).resolve().parents[1]
TASK = "soak"
DEADLINE = 90.0
"""Longest any setup step (a bridge starting, carts being admitted and listed) may take."""
console = Console(width=170)
log = logging.getLogger("soak")


# --- honest carts ------------------------------------------------------------------------------


@dataclass
class Honest:
    """What the honest carts did in one run."""

    completed: int = 0
    short: int = 0
    times: list[float] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    """Why peers' updates were not used (every round), by reason with ids and numbers blanked."""
    refused: Counter[str] = field(default_factory=Counter)
    """Frames the honest carts' clients refused, and update requests their exchanges declined, by reason."""


_IDS = re.compile(r"\b(?=[0-9]*[a-f])[0-9a-f]{8,}\b")
"""Node ids, transfer ids: hex with at least one letter (a long number is blanked as a number)."""
_NUMBERS = re.compile(r"\d+(\.\d+)?")


def reason_kind(text: str) -> str:
    """A reason with node ids and numbers blanked, so equal causes count together."""
    return _NUMBERS.sub("N", _IDS.sub("<id>", text))[:110]


class Cart:
    """One honest cart: a BridgeClient over both bridges and an UpdateExchange of a small numpy model."""

    def __init__(
        self,
        identity: Identity,
        urls: list[str],
        cert: Certificate,
        swarm: SwarmKey,
        session: aiohttp.ClientSession,
        index: int,
    ) -> None:
        self.client = BridgeClient(identity, urls, cert, task=TASK, session=session)
        self.verifier = PeerVerifier(swarm)
        self.client.verifier = self.verifier
        self.exchange = UpdateExchange(self.client, TASK, self.verifier)
        self.rng = np.random.default_rng(int(identity.node_id[:8], 16))
        self.weights: list[np.ndarray] = []
        self.samples = int(self.rng.integers(100, 1000))
        self.schedule = random.Random(index)
        """The pauses between this cart's rounds: the same in both runs."""
        self._pumps: list[asyncio.Task[None]] = []

    async def start(self, shapes: list[tuple[int, ...]]) -> None:
        self.weights = [self.rng.normal(0.0, 0.1, shape).astype(np.float32) for shape in shapes]
        await self.client.start()
        self._pumps = [asyncio.create_task(pump()) for pump in (self._messages, self._transfers, self._undeliverable)]

    async def stop(self) -> None:
        for pump in self._pumps:
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        await self.exchange.close()
        await self.client.close()

    async def _messages(self) -> None:
        async for incoming in self.client:
            self.exchange.on_message(incoming.peer, incoming.message)

    async def _transfers(self) -> None:
        while True:
            self.exchange.on_transfer(await self.client.transfers.received.get())

    async def _undeliverable(self) -> None:
        while True:
            notice = await self.client.undeliverable.get()
            self.exchange.fail_peer(notice.to, notice.reason)

    async def rounds(self, settings: RoundSettings, until: float, pause: float, stats: Honest) -> None:
        """Rounds one after another, a jittered `pause` apart, while the next one can start before `until`."""
        loop, number = asyncio.get_running_loop(), 0
        while loop.time() + (wait := pause * self.schedule.uniform(0.5, 1.5)) < until:
            await asyncio.sleep(wait)  # the round schedule, not a wait for something to happen
            number += 1
            await self.round(number, settings, stats)

    async def round(self, number: int, settings: RoundSettings, stats: Honest) -> None:
        if not self.client.connected.is_set():
            stats.short += 1
            stats.skipped["(round) not connected to a bridge"] += 1
            return
        started = time.perf_counter()
        local = [w + self.rng.normal(0.0, 0.01, w.shape).astype(np.float32) for w in self.weights]
        self.exchange.offer(local, self.samples, number)
        try:
            wanted = settings.k + settings.over_ask  # drawn and ordered as the EXCHANGE phase does
            sample = wanted + self.exchange.extra_draw(number, wanted)
            drawn = await self.client.peers(sample=sample, task=TASK)
            others = [peer for peer in drawn if peer.node_id != self.client.node_id]
            asked = self.exchange.prefer_responsive(others, number, wanted)
            got = await self.exchange.collect(asked, number, settings.peer_timeout, enough=settings.k)
        except (ConnectionError, TimeoutError) as exc:
            stats.short += 1
            stats.skipped[f"(round) {reason_kind(str(exc) or type(exc).__name__)}"] += 1
            return
        for reason in got.skipped.values():
            stats.skipped[reason_kind(reason)] += 1
        if len(got.updates) < settings.k:
            stats.short += 1
            return
        self.weights = [np.mean([mine, *(u.weights[i] for u in got.updates)], axis=0) for i, mine in enumerate(local)]
        stats.completed += 1
        stats.times.append(time.perf_counter() - started)

    def refusals(self) -> Counter[str]:
        counts = Counter({f"client refused: {code}": n for code, n in self.client.refused.items()})
        counts.update({f"exchange declined: {why}": n for why, n in self.exchange.declined.items()})
        if self.exchange.dropped:
            counts["exchange dropped (declines all busy)"] += self.exchange.dropped
        if self.exchange.untold:
            counts["exchange declines not sent (that reason told to the requester within 1 s)"] += self.exchange.untold
        return counts


# --- bridges as processes -----------------------------------------------------------------------


@dataclass
class BridgeProc:
    name: str
    proc: asyncio.subprocess.Process
    node_id: str
    url: str
    dht_port: int
    drain: asyncio.Task[None]


async def start_bridge(root: Path, authority: Authority, name: str, bootstrap: str = "") -> BridgeProc:
    """A `fedcart bridge` process at its default settings (logging at WARNING), enrolled in `authority`."""
    ensure_enrolled(authority, root / name, "bridge")
    env = {**os.environ, "LOG_LEVEL": "WARNING", "SWARM_TOKEN": "", "COLUMNS": "300", "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        *bridge_argv(root / name, bootstrap=bootstrap),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=root,
    )
    assert proc.stderr is not None
    while line := (await asyncio.wait_for(proc.stderr.readline(), DEADLINE)).decode():
        if found := re.search(r"bridge ([0-9a-f]{40}) relay (http://\S+) dht udp/(\d+)", line):
            drain = asyncio.create_task(_drain(proc.stderr))
            return BridgeProc(name, proc, found[1], found[2], int(found[3]), drain)
    raise RuntimeError(f"bridge {name} exited before announcing itself")


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


async def stop_bridge(bridge: BridgeProc) -> None:
    if bridge.proc.returncode is None:
        bridge.proc.terminate()
        try:
            await asyncio.wait_for(bridge.proc.wait(), 30)
        except TimeoutError:
            bridge.proc.kill()
            await bridge.proc.wait()
    bridge.drain.cancel()


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+)", status)
    return int(found.group(1)) / 1024 if found else float("nan")


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def health(session: aiohttp.ClientSession, bridge: BridgeProc) -> dict[str, Any]:
    async with session.get(f"{bridge.url}/health") as response:
        return dict(await response.json())


async def until_true(check: Any, what: str, timeout: float = DEADLINE) -> None:
    """Poll an async predicate (bridges are other processes: nothing here can await their events) until it holds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:.0f}s")
        await asyncio.sleep(0.2)


NOT_REFUSALS = ("frames_relayed", "bytes_relayed", "models_published")
"""Counters of work done, not of anything refused."""


async def counters(session: aiohttp.ClientSession, bridge: BridgeProc) -> dict[str, float]:
    """Every labelled counter of a bridge's /metrics, as "family{label}" -> value."""
    async with session.get(f"{bridge.url}/metrics") as response:
        text = await response.text()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.type != "counter":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                labels = ",".join(f"{value}" for value in sample.labels.values())
                key = f"{family.name.removeprefix('fedcart_bridge_')}{{{labels}}}"
                found[key] = found.get(key, 0.0) + sample.value
    return found


# --- the hostile mix (a process of its own) -------------------------------------------------------

DEEP_NESTING = b"\x91" * 120_000 + b"\x90"
TYPE_LIST = compact.dumps({"type": ["heartbeat"], "seq": 1})
TO_BRIDGE = [frames.CONTROL + DEEP_NESTING, frames.CONTROL + TYPE_LIST, b"Xnonsense", b"\x07hello", b"C{not msgpack"]
TO_CART = [
    frames.CONTROL + DEEP_NESTING,
    frames.CONTROL + TYPE_LIST,
    b"Zzz",
    frames.CONTROL + compact.dumps({"type": "teleport"}),
]
JUNK_CHUNK = 64 * 1024
DRAW = 20
"""Carts an attacker asks its bridge for at a time, to learn whom to attack."""


class RawCart:
    """An admitted, heartbeating, announced WebSocket that reads everything and heeds nothing."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, me: Identity, bridge_id: str) -> None:
        self.ws, self.me, self.bridge_id = ws, me, bridge_id
        self.peer_list: asyncio.Future[PeerList] | None = None
        self.tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def join(
        cls, session: aiohttp.ClientSession, url: str, me: Identity, cert: Certificate, ready: bool, ttl: float
    ) -> RawCart:
        ws = await session.ws_connect(ws_url(url), max_msg_size=MAX_FRAME)
        welcome = await join(ws, me, cert)
        await ws.send_bytes(frames.control(presence.sign(me, welcome.bridge_id, ttl, task=TASK, ready=ready)))
        cart = cls(ws, me, welcome.bridge_id)
        cart.tasks = [asyncio.create_task(cart._read()), asyncio.create_task(cart._beat(welcome.heartbeat_interval))]
        return cart

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type is aiohttp.WSMsgType.BINARY and msg.data[:1] == frames.CONTROL:
                with contextlib.suppress(Exception):
                    item = frames.parse(msg.data)
                    if isinstance(item, PeerList) and self.peer_list is not None and not self.peer_list.done():
                        self.peer_list.set_result(item)

    async def _beat(self, interval: float) -> None:
        for seq in range(1, 1 << 62):
            await asyncio.sleep(interval)
            await self.ws.send_bytes(frames.control(Heartbeat(seq=seq)))

    async def directory(self, draws: int = 8) -> set[str]:
        """Announced carts, gathered from a few random draws (a whole directory does not fit one message)."""
        found: set[str] = set()
        for _draw in range(draws):
            self.peer_list = asyncio.get_running_loop().create_future()
            await self.ws.send_bytes(frames.control(PeersRequest(sample=DRAW)))
            found.update(peer.node_id for peer in (await asyncio.wait_for(self.peer_list, 30)).peers)
        return found

    async def send(self, frame: bytes) -> None:
        await self.ws.send_bytes(frame)

    async def route(self, to: str, inner: bytes) -> None:
        await self.ws.send_bytes(frames.routed(to, self.me.node_id, inner))

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await self.ws.close()


@dataclass
class Mix:
    malformed: int = 4
    flooders: int = 4
    silent: int = 4
    squatters: int = 4
    rate: float = 20.0
    flood_rate: float = 200.0

    @property
    def total(self) -> int:
        return self.malformed + self.flooders + self.silent + self.squatters


def hostile_main(pipe: Any, authority_dir: str, urls: list[str], mix: Mix, ttl: float, honest: int) -> None:
    """Child process entry: admit the hostile mix, say "ready", attack until told "stop", answer what it sent."""
    logging.basicConfig(level=logging.CRITICAL)
    asyncio.run(_hostile(pipe, Path(authority_dir), urls, mix, ttl, honest))


async def _hostile(pipe: Any, authority_dir: Path, urls: list[str], mix: Mix, ttl: float, honest: int) -> None:
    authority = Authority.load(authority_dir)
    with tempfile.TemporaryDirectory(prefix="bench-soak-foreign-") as foreign_dir:
        foreign = Authority.create(Path(foreign_dir) / "authority")
        sent: Counter[str] = Counter()
        roles = (["malformed"] * mix.malformed + ["flooder"] * mix.flooders + ["silent"] * mix.silent) + [
            "squatter"
        ] * mix.squatters
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            carts: list[RawCart] = []
            for index, role in enumerate(roles):
                me = Identity.generate()
                cert = authority.issue(me.public_key, "cart")
                carts.append(await RawCart.join(session, urls[index % len(urls)], me, cert, role == "silent", ttl))
            ours = {cart.me.node_id for cart in carts}
            targets: list[str] = []
            deadline = time.monotonic() + DEADLINE
            while len(targets) < honest and time.monotonic() < deadline:  # the directory fills as presences spread
                targets[:] = sorted({*targets, *(await carts[0].directory())} - ours)
                await asyncio.sleep(0.5)
            attacks = {"malformed": _malformed, "flooder": _flooder, "silent": None, "squatter": _squatter}
            jobs = [
                asyncio.create_task(attack(cart, targets, mix, sent, session, urls, foreign))
                for cart, role in zip(carts, roles, strict=True)
                if (attack := attacks[role]) is not None
            ]
            jobs.append(asyncio.create_task(_refresh(carts[0], targets, ours)))
            pipe.send(("ready", len(targets)))
            await asyncio.to_thread(pipe.recv)  # "stop"
            for job in jobs:
                job.cancel()
            results = await asyncio.gather(*jobs, return_exceptions=True)
            failures = Counter(type(r).__name__ for r in results if isinstance(r, Exception))
            for cart in carts:
                with contextlib.suppress(Exception):
                    await cart.close()
        pipe.send((dict(sent), dict(failures)))


async def _refresh(cart: RawCart, targets: list[str], ours: set[str]) -> None:
    while True:
        await asyncio.sleep(15.0)  # the attacker's own pace
        with contextlib.suppress(Exception):
            found = await cart.directory()
            targets[:] = [node for node in found if node not in ours]


async def _malformed(
    cart: RawCart, targets: list[str], mix: Mix, sent: Counter[str], session: aiohttp.ClientSession, urls: list[str],
    foreign: Authority,
) -> None:  # fmt: skip
    tick, last_admission = 0, 0.0
    while True:
        await asyncio.sleep(1.0 / mix.rate)  # the attack's pace
        tick += 1
        if tick % 2:
            await cart.send(TO_BRIDGE[tick % len(TO_BRIDGE)])
            sent["malformed frame to a bridge"] += 1
        elif targets:
            await cart.route(random.choice(targets), TO_CART[tick % len(TO_CART)])
            sent["malformed frame routed to a cart"] += 1
        if time.monotonic() - last_admission >= 1.0:
            last_admission = time.monotonic()
            await _bad_admission(session, random.choice(urls), foreign, tick)
            sent["bad admission answer"] += 1


async def _bad_admission(session: aiohttp.ClientSession, url: str, foreign: Authority, tick: int) -> None:
    """A fresh connection that answers the challenge with deep nesting, or with another swarm's certificate."""
    with contextlib.suppress(Exception):
        async with session.ws_connect(ws_url(url), max_msg_size=MAX_FRAME) as ws:
            challenge = await receive_control(ws, 10)
            if tick % 4 < 2:
                await ws.send_bytes(frames.CONTROL + DEEP_NESTING)
            else:
                stranger = Identity.generate()
                cert = foreign.issue(stranger.public_key, "cart")
                await ws.send_bytes(frames.control(admission.answer(challenge, stranger, cert)))  # type: ignore[arg-type]
            await ws.receive(timeout=10)


async def _flooder(cart: RawCart, targets: list[str], mix: Mix, sent: Counter[str], *_: object) -> None:
    per_tick = max(1, round(mix.flood_rate / mix.rate))
    junk = bytes(JUNK_CHUNK)
    while True:
        await asyncio.sleep(1.0 / mix.rate)  # the attack's pace
        if not targets:
            continue
        for _request in range(per_tick):
            target = random.choice(targets)
            await cart.route(target, frames.control(sign_request(cart.me, target, TASK, 0)))
        sent["signed update request"] += per_tick
        await cart.route(random.choice(targets), frames.chunk(os.urandom(16).hex(), 0, junk))
        sent["64 KiB junk chunk"] += 1


async def _squatter(cart: RawCart, targets: list[str], mix: Mix, sent: Counter[str], *_: object) -> None:
    limits = TransferLimits()
    share = min(limits.sender_share, limits.max_size)
    while True:
        for target in list(targets):
            manifest = stream_manifest(cart.me, share, UPDATE_PURPOSE, {}, limits.chunk_size)
            await cart.route(target, frames.control(manifest))
            sent[f"{share >> 20} MiB manifest, no chunk"] += 1
        await asyncio.sleep(limits.idle_timeout * 0.9)  # re-sent as the old ones go idle


# --- one run -----------------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    hostile: int
    honest: Honest
    rss: dict[str, tuple[float, float]]
    cpu: dict[str, float]
    refused: dict[str, float]
    relayed: float
    sent: dict[str, int] = field(default_factory=dict)
    attack_failures: dict[str, int] = field(default_factory=dict)
    load: tuple[float, float] = (0.0, 0.0)


async def soak(args: argparse.Namespace, mix: Mix | None) -> Run:
    """One run on fresh bridges: the honest carts alone (`mix` None) or with the hostile mix beside them."""
    with tempfile.TemporaryDirectory(prefix=f"bench-soak-{'hostile' if mix else 'clean'}-") as tmp:
        root = Path(tmp)
        authority = Authority.create(root / "authority")
        bridges: list[BridgeProc] = []
        try:
            bridges.append(await start_bridge(root, authority, "bridge-0"))
            bridges.append(await start_bridge(root, authority, "bridge-1", f"127.0.0.1:{bridges[0].dht_port}"))
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
                return await _soak(args, mix, authority, bridges, session)
        finally:
            for bridge in bridges:
                await stop_bridge(bridge)


async def _soak(
    args: argparse.Namespace, mix: Mix | None, authority: Authority, bridges: list[BridgeProc], session: aiohttp.ClientSession
) -> Run:  # fmt: skip
    settings = RoundSettings()
    urls = [b.url for b in bridges]

    async def linked() -> bool:
        return all([(await health(session, b))["bridges_linked"] >= 1 for b in bridges])

    async def listed() -> bool:
        everyone = args.carts + (mix.total if mix else 0)
        return all([(await health(session, b))["swarm_carts"] >= everyone for b in bridges])

    await until_true(linked, "the two bridges never linked")
    carts: list[Cart] = []
    hostile: mp.process.BaseProcess | None = None
    pipe: Any = None
    try:
        for index in range(args.carts):
            me = Identity.generate()
            mine = [urls[index % 2], urls[(index + 1) % 2]]  # its primary first
            carts.append(Cart(me, mine, authority.issue(me.public_key, "cart"), authority.swarm, session, index))
            await carts[-1].start([(args.params // 16, 16), (16,)])
        await asyncio.wait_for(asyncio.gather(*(c.client.wait_connected(DEADLINE) for c in carts)), DEADLINE)
        for cart in carts:  # the update every cart starts with, on offer before the first round
            cart.exchange.offer(cart.weights, cart.samples, 0)
        if mix is not None:
            ctx = mp.get_context("spawn")
            pipe, child = ctx.Pipe()
            ttl = args.minutes * 60 + 300
            hostile = ctx.Process(
                target=hostile_main, args=(child, str(authority.directory), urls, mix, ttl, args.carts), daemon=True
            )
            hostile.start()
            if not await asyncio.to_thread(pipe.poll, 2 * DEADLINE):
                raise RuntimeError("the hostile mix never got admitted")
            _, seen = pipe.recv()
            console.print(f"hostile mix admitted: {mix.total} attackers, seeing {seen} of {args.carts} honest carts")
        await until_true(listed, "the bridges never listed every cart")
        before = [await counters(session, b) for b in bridges]
        rss_start = {b.name: rss_mb(b.proc.pid) for b in bridges}
        cpu_start = {b.name: cpu_seconds(b.proc.pid) for b in bridges}
        load_start = os.getloadavg()[0]
        own_start = _own_cpu()
        attackers_start = cpu_seconds(hostile.pid) if hostile is not None and hostile.pid else 0.0
        until = asyncio.get_running_loop().time() + args.minutes * 60
        stats = Honest()
        await asyncio.gather(*(cart.rounds(settings, until, args.pause, stats) for cart in carts))
        rss = {b.name: (rss_start[b.name], rss_mb(b.proc.pid)) for b in bridges}
        cpu = {b.name: cpu_seconds(b.proc.pid) - cpu_start[b.name] for b in bridges}
        cpu["honest carts"] = _own_cpu() - own_start
        if hostile is not None and hostile.pid:
            cpu["attackers"] = cpu_seconds(hostile.pid) - attackers_start
        after = [await counters(session, b) for b in bridges]
        load = (load_start, os.getloadavg()[0])
        refused: dict[str, float] = {}
        relayed = 0.0
        for start, end in zip(before, after, strict=True):
            for key, value in end.items():
                delta = value - start.get(key, 0.0)
                if key.startswith("frames_relayed"):
                    relayed += delta
                elif delta and not key.startswith(NOT_REFUSALS):
                    refused[f"bridges: {key}"] = refused.get(f"bridges: {key}", 0.0) + delta
        for cart in carts:
            stats.refused.update(cart.refusals())
        sent: dict[str, int] = {}
        failures: dict[str, int] = {}
        if pipe is not None:
            pipe.send("stop")
            if await asyncio.to_thread(pipe.poll, 60):
                sent, failures = pipe.recv()
        run = Run("hostile" if mix else "clean", mix.total if mix else 0, stats, rss, cpu, refused, relayed)
        run.sent, run.attack_failures, run.load = sent, failures, load
        console.print(
            f"{run.name} run: {stats.completed} rounds completed, {stats.short} short; bridges' RSS "
            + ", ".join(f"{a:.0f} -> {b:.0f} MB" for a, b in rss.values())
        )
        return run
    finally:
        if hostile is not None:
            if pipe is not None and hostile.is_alive():
                with contextlib.suppress(OSError):
                    pipe.send("stop")
            await asyncio.to_thread(hostile.join, 30)
            if hostile.is_alive():
                hostile.kill()
        await asyncio.gather(*(cart.stop() for cart in carts), return_exceptions=True)


# --- the report ------------------------------------------------------------------------------------


def pct(samples: list[float], q: int) -> float:
    if len(samples) < 2:
        return samples[0] if samples else float("nan")
    return statistics.quantiles(samples, n=100)[q - 1]


def report(args: argparse.Namespace, mix: Mix, runs: list[Run]) -> bool:
    clean, hostile = runs
    ratio = hostile.honest.completed / clean.honest.completed if clean.honest.completed else float("nan")
    growth = max((end - start) / start for start, end in hostile.rss.values())
    settings = RoundSettings()
    console.print(
        f"{describe()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
        f"load average (1 min) {clean.load[0]:.2f} at the start, {hostile.load[1]:.2f} at the end"
    )
    table = Table(
        title=f"soak: {args.carts} honest carts, 2 bridges (`fedcart bridge` processes, default settings), "
        f"{args.minutes:g} min a run; k={settings.k} (+{settings.over_ask} asked), peer timeout "
        f"{settings.peer_timeout:g}s, {args.params} float32 params, rounds {args.pause:g}s ±50% apart"
    )
    columns = ["run", "hostile carts", "rounds completed", "rounds short", "vs clean", "round p50 s", "round p99 s"]
    columns += [f"{b} RSS MB start → end" for b in clean.rss]
    columns += ["CPU s: bridges / honest carts / attackers", "frames relayed"]
    for column in columns:
        table.add_column(column, justify="left" if column == "run" else "right")
    for run in runs:
        times = run.honest.times
        table.add_row(
            run.name,
            str(run.hostile),
            str(run.honest.completed),
            str(run.honest.short),
            f"{run.honest.completed / clean.honest.completed:.3f}" if clean.honest.completed else "-",
            f"{pct(times, 50):.2f}",
            f"{pct(times, 99):.2f}",
            *(f"{a:.0f} → {b:.0f} ({(b - a) / a:+.1%})" for a, b in run.rss.values()),
            f"{sum(v for k, v in run.cpu.items() if k in run.rss):.0f} / {run.cpu['honest carts']:.0f} / "
            + (f"{run.cpu['attackers']:.0f}" if "attackers" in run.cpu else "-"),
            f"{run.relayed:.0f}",
        )
    console.print(table)
    console.print(
        f"hostile mix: {mix.malformed} malformed ({mix.rate:g} frames/s each, 1 bad admission/s), "
        f"{mix.flooders} flooders ({mix.flood_rate:g} signed requests/s + {mix.rate:g} junk chunks/s each), "
        f"{mix.silent} silent, {mix.squatters} squatters; sent: "
        + ", ".join(f"{n} {what}" for what, n in sorted(hostile.sent.items()))
        + (f"; attacker tasks that died: {hostile.attack_failures}" if hostile.attack_failures else "")
    )
    refusals = Table(title="refused, by reason (both bridges' /metrics, and the honest carts)")
    for column in ("counter", "clean", "hostile"):
        refusals.add_column(column, justify="left" if column == "counter" else "right")
    for key in sorted(
        set(clean.refused) | set(hostile.refused) | set(clean.honest.refused) | set(hostile.honest.refused)
    ):
        a = clean.refused.get(key, 0) + clean.honest.refused.get(key, 0)
        b = hostile.refused.get(key, 0) + hostile.honest.refused.get(key, 0)
        refusals.add_row(key if key.startswith("bridges") else f"honest carts: {key}", f"{a:.0f}", f"{b:.0f}")
    console.print(refusals)
    skips = Table(title="why honest carts did not use a peer's update (every round; top 12)")
    for column in ("reason", "clean", "hostile"):
        skips.add_column(column, justify="left" if column == "reason" else "right")
    both = clean.honest.skipped + hostile.honest.skipped
    for reason, _ in both.most_common(12):
        skips.add_row(reason, str(clean.honest.skipped.get(reason, 0)), str(hostile.honest.skipped.get(reason, 0)))
    console.print(skips)
    ok_rounds, ok_memory = ratio >= 0.95, growth < 0.10
    console.print(
        f"goal: honest rounds with attackers / without = {ratio:.3f} (>= 0.95: {'met' if ok_rounds else 'NOT met'}); "
        f"largest bridge RSS growth in the hostile run {growth:+.1%} (< 10%: {'met' if ok_memory else 'NOT met'})"
    )
    return ok_rounds and ok_memory


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--carts", type=int, default=50, help="honest carts")
    parser.add_argument("--minutes", type=float, default=3.0, help="length of each run (two runs)")
    parser.add_argument(
        "--pause", type=float, default=None, help="seconds between a cart's rounds, ±50%% (default: the round schedule)"
    )
    parser.add_argument("--params", type=int, default=4096, help="float32 parameters of the model (>= 32)")
    parser.add_argument("--malformed", type=int, default=4, help="attackers sending malformed frames")
    parser.add_argument("--flooders", type=int, default=4, help="attackers flooding honest carts")
    parser.add_argument("--silent", type=int, default=4, help="announced-ready carts that never answer")
    parser.add_argument("--squatters", type=int, default=4, help="attackers squatting honest carts' buffers")
    parser.add_argument("--rate", type=float, default=20.0, help="malformed frames (and junk chunks) per second")
    parser.add_argument("--flood-rate", type=float, default=200.0, help="signed update requests/s per flooder")
    args = parser.parse_args()
    args.pause = RoundSettings().schedule_seconds if args.pause is None else args.pause
    if args.carts < 8 or args.params < 32 or args.minutes <= 0:
        parser.error("--carts must be at least 8, --params at least 32 and --minutes positive")
    mix = Mix(args.malformed, args.flooders, args.silent, args.squatters, args.rate, args.flood_rate)
    if mix.total < 1:
        parser.error("the hostile run needs at least one attacker")
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    runs = [asyncio.run(soak(args, None)), asyncio.run(soak(args, mix))]
    report(args, mix, runs)


if __name__ == "__main__":
    main()
