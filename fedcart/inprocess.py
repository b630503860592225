"""An in-process swarm: real bridges and real CartNodes on one event loop.

The simulator (`fedcart simulate`), the IoT experiment and the round tests all
need the same thing: a few bridges on 127.0.0.1, carts with their own stores
and keys connected to them, and rounds run on every cart at once. This module
is that one harness, so none of them copies another. Its nodes are enrolled in a
swarm authority kept under the root (`authority/`, created on first use), as
`fedcart swarm` does for its processes.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cartnet.authority import Authority, ensure_enrolled
from child_cart.node import CartNode
from child_cart.rounds import settings as round_settings
from child_cart.rounds.roundlog import RoundRecord
from child_cart.settings import CartSettings
from child_cart.store import Store, open_store
from child_cart.synth import shoppers as synth
from child_cart.tasks import Dataset
from parent_cart.bridge import Bridge
from parent_cart.settings import BridgeSettings


def local_authority(root: Path) -> Authority:
    """The swarm authority of the in-process swarm under `root`, created on first use."""
    return Authority.load_or_create(root / "authority")


async def start_bridges(count: int, root: Path, authority: Authority | None = None, **overrides: Any) -> list[Bridge]:
    """`count` real bridges on 127.0.0.1 (ephemeral ports), each bootstrapping from the ones before,
    enrolled in `authority` (default: the one under `root`); `overrides` are further `BridgeSettings`
    (a thousand simulated carts need longer admission and heartbeat deadlines than the defaults)."""
    authority = authority or local_authority(root)
    bridges: list[Bridge] = []
    for index in range(count):
        bootstrap = ",".join(f"127.0.0.1:{b.dht_port}" for b in bridges)
        data_dir = root / f"bridge-{index}"
        ensure_enrolled(authority, data_dir, "bridge")
        settings = BridgeSettings(
            _env_file=None,
            data_dir=data_dir,
            port=0,
            dht_port=0,
            bridge_bootstrap=bootstrap,
            **({"refresh_interval": 2.0, "dht_timeout": 0.5} | overrides),
        )
        bridge = Bridge(settings)
        await bridge.start()
        bridges.append(bridge)
    return bridges


async def start_carts(
    data: list[list[dict]],
    bridges: list[Bridge],
    root: Path,
    round_options: dict[str, object],
    make_node: Callable[..., CartNode] = CartNode,
    publish: bool = False,
    fill: Callable[[Store, list[dict]], object] = synth.fill_store,
    authority: Authority | None = None,
) -> list[CartNode]:
    """One CartNode per data share, spread over the bridges, connected and listed in every directory.

    `fill` writes a cart's share into its store (purchases by default; the IoT experiment writes telemetry);
    `round_options` are the round settings every cart starts with; every cart is enrolled in `authority`
    (default: the one under `root`, which `start_bridges` uses too).
    """
    urls = [bridge.url for bridge in bridges]
    nodes = await open_carts(data, urls, root, round_options, make_node, publish, fill, authority)
    await wait_listed(bridges, len(nodes))
    return nodes


async def open_carts(
    data: list[list[dict]],
    bridge_urls: list[str],
    root: Path,
    round_options: dict[str, object],
    make_node: Callable[..., CartNode] = CartNode,
    publish: bool = False,
    fill: Callable[[Store, list[dict]], object] = synth.fill_store,
    authority: Authority | None = None,
    first: int = 0,
) -> list[CartNode]:
    """Carts `first`, `first`+1, ... (one per data share), started and connected; the bridges may be elsewhere.

    Cart i is given every bridge, bridge i mod B first (its primary), as `fedcart swarm` does: it fails
    over along the list when its bridge goes away. A Ray actor (`fedcart.raysim`) opens its share of the
    carts with this while the bridges run in the driver.
    """
    authority = authority or local_authority(root)
    nodes = []
    for index, rows in enumerate(data, start=first):
        settings = CartSettings(
            _env_file=None,
            data_dir=root / f"cart-{index}",
            bridge_urls=[bridge_urls[(index + j) % len(bridge_urls)] for j in range(len(bridge_urls))],
        )
        ensure_enrolled(authority, settings.data_dir, "cart")
        store = open_store(settings.data_dir)
        fill(store, rows)
        round_settings.save(store, round_options)
        node = make_node(settings, store=store, publish=publish)
        await node.start(scheduled_rounds=False)
        nodes.append(node)
    await asyncio.gather(*(node.client.wait_connected() for node in nodes))
    return nodes


async def wait_listed(bridges: list[Bridge], count: int, timeout: float = 60.0) -> None:
    """Until every bridge's directory lists `count` carts (its own and the other bridges'); TimeoutError if not."""
    for bridge in bridges:
        if not await bridge.directory.wait_until(functools.partial(_lists_all, bridge, count), timeout):
            raise TimeoutError(f"bridge {bridge.node_id[:8]} never listed all {count} carts within {timeout:g}s")


def _lists_all(bridge: Bridge, count: int) -> bool:
    return len(bridge.directory.members()) >= count


async def run_round(nodes: list[CartNode]) -> list[RoundRecord]:
    """One round on every cart at once, with a barrier after training so all updates are on offer."""
    barrier = asyncio.Barrier(len(nodes))
    return list(await asyncio.gather(*(node.engine.run_round(after_training=barrier.wait) for node in nodes)))


def pooled_accuracy(node: CartNode, pooled: Dataset) -> float:
    """A cart's current model scored on every cart's held-out rows."""
    return node.learner.evaluate_on(node.engine.current, pooled.x_val, pooled.y_val)["accuracy"]
