"""Helpers for bridge tests: real bridges on 127.0.0.1 (ephemeral TCP and UDP ports, real Kademlia) and real carts.

Every wait here has a deadline and fails saying what never happened; nothing sleeps
to let something happen. Every bridge and cart made here is enrolled in one test swarm
authority (`authority()`, one per test process, in a temporary directory).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from cartnet.authority import Authority, ensure_enrolled
from cartnet.certificates import Certificate, Role
from cartnet.client import Backoff, BridgeClient
from cartnet.handshake import join, ws_url
from cartnet.identity import Identity
from cartnet.transfer import TransferLimits
from parent_cart.bridge import Bridge
from parent_cart.settings import BridgeSettings

DEADLINE = 20.0
"""Longest any single expected event may take before the test fails (never asserted as a time)."""
FAST_BACKOFF = Backoff(initial=0.05, maximum=0.5)

_authority: list[Authority] = []


def authority() -> Authority:
    """The swarm authority of this test process (created on first use, removed at exit)."""
    if not _authority:
        folder = Path(tempfile.mkdtemp(prefix="fedcart-test-authority-"))
        atexit.register(shutil.rmtree, folder, True)
        _authority.append(Authority.create(folder / "authority"))
    return _authority[0]


def certificate(identity: Identity, role: Role = "cart", **issue: object) -> Certificate:
    """A certificate of the test swarm for `identity` (`days=`, `now=` to make odd ones)."""
    return authority().issue(identity.public_key, role, **issue)


def enrol(data_dir: Path, role: Role = "bridge") -> Path:
    """Enrol the node kept in `data_dir` (a bridge process, a cart process) in the test swarm."""
    ensure_enrolled(authority(), data_dir, role)
    return data_dir


def new_client(
    bridge: Bridge | str | list[Bridge | str], identity: Identity | None = None, **options: object
) -> BridgeClient:
    """A BridgeClient (not started) of a freshly enrolled cart; given a list of bridges, it fails over along it."""
    identity = identity or Identity.generate()
    urls = [url_of(b) for b in bridge] if isinstance(bridge, list) else url_of(bridge)
    return BridgeClient(identity, urls, certificate(identity), **options)


def bridge_settings(data_dir: Path, bootstrap: str = "", **overrides: object) -> BridgeSettings:
    """Settings sized for tests: short heartbeats and DHT timeouts, small queues, ephemeral ports."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "port": 0,
        "dht_port": 0,
        "bridge_bootstrap": bootstrap,
        "heartbeat_interval": 1.0,
        "send_timeout": 1.0,
        "dht_timeout": 0.5,
        "refresh_interval": 1.0,
        "link_timeout": 3.0,
        "queue_frames": 64,
        "queue_bytes": 4 * 1024 * 1024,
        "shutdown_grace": 1.0,
        "rate_bytes": 32 * 1024 * 1024,
    }
    values.update(overrides)
    return BridgeSettings(_env_file=None, **values)


class Swarm:
    """Bridges of one test; the first is everyone's DHT bootstrap."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bridges: list[Bridge] = []

    async def add_bridge(self, name: str | None = None, **overrides: object) -> Bridge:
        name = name or f"b{len(self.bridges) + 1}"
        bootstrap = ",".join(f"127.0.0.1:{b.dht_port}" for b in self.bridges if b.dht_port)
        bridge = Bridge(bridge_settings(enrol(self.root / name), bootstrap, **overrides))
        await bridge.start()
        self.bridges.append(bridge)
        return bridge

    async def restart(self, bridge: Bridge) -> Bridge:
        """Stop `bridge` and start it again on the same ports and data dir (same identity)."""
        await bridge.stop("restarting")
        others = ",".join(f"127.0.0.1:{b.dht_port}" for b in self.bridges if b is not bridge)
        settings = bridge.settings.model_copy(
            update={"port": bridge.port, "dht_port": bridge.dht_port, "bridge_bootstrap": others}
        )
        again = Bridge(settings)
        await again.start()
        self.bridges[self.bridges.index(bridge)] = again
        return again

    async def close(self) -> None:
        for bridge in reversed(self.bridges):
            await bridge.stop()


async def until(predicate: Callable[[], bool], what: str, *bridges: Bridge, timeout: float = DEADLINE) -> None:
    """Wait for `predicate`, re-checked whenever one of `bridges` reports a change; fail with `what`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"{what} (within {timeout}s)")
        waiters = [asyncio.ensure_future(b.directory.changed()) for b in bridges]
        _, pending = await asyncio.wait(waiters, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        for waiter in pending:
            waiter.cancel()


def listed(bridge: Bridge, node_id: str) -> bool:
    return any(member.info.node_id == node_id for member in bridge.directory.members())


async def seen_everywhere(node_id: str, *bridges: Bridge) -> None:
    await until(
        lambda: all(listed(b, node_id) for b in bridges),
        f"cart {node_id[:8]} never appeared in every directory",
        *bridges,
    )


async def gone_everywhere(node_id: str, *bridges: Bridge) -> None:
    await until(
        lambda: not any(listed(b, node_id) for b in bridges), f"cart {node_id[:8]} never left every directory", *bridges
    )


async def within(awaitable: Awaitable, what: str, timeout: float = DEADLINE):
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except TimeoutError:
        pytest.fail(f"{what} never happened within {timeout}s")


def url_of(bridge: Bridge | str) -> str:
    """An in-process bridge's URL, or the URL of one running elsewhere (a process)."""
    return bridge if isinstance(bridge, str) else bridge.url


@contextlib.asynccontextmanager
async def cart(
    bridge: Bridge | str | list[Bridge | str], identity: Identity | None = None, **options: object
) -> AsyncIterator[BridgeClient]:
    """A connected BridgeClient; closed (with Bye) at the end."""
    options.setdefault("backoff", FAST_BACKOFF)
    options.setdefault("limits", TransferLimits(reply_timeout=60.0))
    connection = new_client(bridge, identity, **options)
    await connection.start()
    try:
        await connection.wait_connected(DEADLINE)
        yield connection
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def raw_cart(
    bridge: Bridge | str, identity: Identity | None = None
) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """An admitted WebSocket with no client logic at all: the test speaks frames itself."""
    identity = identity or Identity.generate()
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(ws_url(url_of(bridge)), max_msg_size=8 * 1024 * 1024) as ws,
    ):
        await join(ws, identity, certificate(identity))
        yield ws


async def get_json(url: str) -> tuple[int, object]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


async def http_peers(bridge: Bridge) -> list[dict]:
    status, body = await get_json(f"{bridge.url}/peers")
    assert status == 200
    return body["peers"]
