"""A DHT of many bridges on this machine: store and lookup latency and success of certified presence records.

`--bridges` Kademlia nodes as the bridges run them (parent_cart.dht.Dht: verified storage, a routing table
closed to strangers, the configured RPC timeout), all on 127.0.0.1 in this one process. Each node bootstraps
from a few earlier ones and trusts every other bridge id from 127.0.0.1 (what parent_cart.announce does once
a bridge's certified entry verified). Each stored value is what a bridge publishes for one of its carts: the
cart's own signed presence record with the cart's swarm certificate (records.cart_entry), stored from the
node of its bridge and looked up from another, random, node, as a bridge finding a cart held elsewhere does
(`Dht.believed`: the k closest nodes' answers, signature and certificate checked).

Baseline, same run, same sizes: the `kademlia` package's own `Server` (no verification, `set` and `get`,
its own 5 s RPC timeout), with the same values. Anchor: hivemind's DHT benchmark reports 14.9 ms store and 6.6 ms get (100 %
success) for 1,024 peers on one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from _machine import describe
from kademlia.network import Server
from rich.console import Console
from rich.table import Table

from cartnet import presence
from cartnet.authority import Authority
from cartnet.identity import Identity
from parent_cart import records
from parent_cart.dht import Dht

console = Console(width=140)


@dataclass
class Figures:
    name: str
    store_ms: list[float]
    stored: int
    get_ms: list[float]
    found: int
    setup_s: float


def pct(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100)[q - 1] if len(samples) > 1 else samples[0]


async def _timed(call: Awaitable[object], into: list[float]) -> bool:
    start = time.perf_counter()
    ok = bool(await call)
    into.append((time.perf_counter() - start) * 1000)
    return ok


def certified_values(authority: Authority, bridge_ids: list[str], count: int) -> list[tuple[str, str, int]]:
    """(cart id, DHT value, index of its bridge) for `count` carts, each behind a random bridge."""
    values = []
    for _ in range(count):
        cart = Identity.generate()
        home = random.randrange(len(bridge_ids))
        record = presence.sign(cart, bridge_ids[home], 600).record
        entry = records.cart_entry(record, authority.issue(cart.public_key, "cart"))
        values.append((cart.node_id, records.encode(entry), home))
    return values


async def fedcart_dht(args: argparse.Namespace, authority: Authority, ids: list[str], values) -> Figures:
    start = time.perf_counter()
    nodes = [Dht(node_id, records.Verifier(authority.swarm), timeout=args.timeout) for node_id in ids]
    for node in nodes:
        await node.start("127.0.0.1", 0)
    for index, node in enumerate(nodes):
        for other in ids[:index] + ids[index + 1 :]:
            node.trust(other, {"127.0.0.1"})
    await _bootstrap([(node, node.port) for node in nodes], lambda node, peers: node.bootstrap(peers))
    setup = time.perf_counter() - start
    try:
        store_ms: list[float] = []
        stored = 0
        for cart_id, value, home in values:
            stored += await _timed(nodes[home].put(records.cart_key(cart_id), value), store_ms)
        get_ms: list[float] = []
        found = 0
        for cart_id, _, home in values:
            asker = random.choice([node for index, node in enumerate(nodes) if index != home])
            found += await _timed(_believed(asker, cart_id), get_ms)
        return Figures("fedcart bridges (verified, closed to strangers)", store_ms, stored, get_ms, found, setup)
    finally:
        for node in nodes:
            node.stop()


async def plain_kademlia(args: argparse.Namespace, ids: list[str], values) -> Figures:
    start = time.perf_counter()
    nodes = [Server(ksize=20, alpha=3, node_id=bytes.fromhex(node_id)) for node_id in ids]
    for node in nodes:
        await node.listen(0, "127.0.0.1")
    ports = [node.transport.get_extra_info("sockname")[1] for node in nodes]
    await _bootstrap(list(zip(nodes, ports, strict=True)), lambda node, peers: node.bootstrap(peers))
    setup = time.perf_counter() - start
    try:
        store_ms: list[float] = []
        stored = 0
        for cart_id, value, home in values:
            stored += await _timed(nodes[home].set(records.cart_key(cart_id), value), store_ms)
        get_ms: list[float] = []
        found = 0
        for cart_id, value, home in values:
            asker = random.choice([node for index, node in enumerate(nodes) if index != home])
            found += await _timed(_got(asker, cart_id, value), get_ms)
        return Figures("baseline: plain kademlia Server (no checks)", store_ms, stored, get_ms, found, setup)
    finally:
        for node in nodes:
            node.stop()


async def _believed(node: Dht, cart_id: str) -> bool:
    believed = await node.believed(records.cart_key(cart_id))
    return believed is not None and believed.owner == cart_id


async def _got(node: Server, cart_id: str, value: str) -> bool:
    return bool(await node.get(records.cart_key(cart_id)) == value)


async def _bootstrap(nodes: list, join: Callable[..., Awaitable[object]]) -> None:
    """Each node joins through up to 3 earlier ones, a few at a time."""
    for index, (node, _port) in enumerate(nodes[1:], start=1):
        peers = [("127.0.0.1", port) for _, port in random.sample(nodes[:index], min(3, index))]
        await join(node, peers)


async def run(args: argparse.Namespace) -> list[Figures]:
    random.seed(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-dht-") as tmp:
        authority = Authority.create(Path(tmp) / "authority")
        ids = [Identity.generate().node_id for _ in range(args.bridges)]
        values = certified_values(authority, ids, args.records)
        return [await plain_kademlia(args, ids, values), await fedcart_dht(args, authority, ids, values)]


def report(args: argparse.Namespace, results: list[Figures]) -> None:
    console.print(f"{describe()}; load average {os.getloadavg()[0]:.2f} (1 min) after the run")
    table = Table(
        title=f"{args.bridges}-node DHT on 127.0.0.1, one process; {args.records} certified presence records, "
        f"each stored from its bridge's node and looked up from another (RPC timeout {args.timeout:g} s)"
    )
    for column in (
        "DHT",
        "store p50 ms",
        "store p99 ms",
        "stored",
        "lookup p50 ms",
        "lookup p99 ms",
        "found",
        "join s",
    ):
        table.add_column(column, justify="left" if column == "DHT" else "right")
    for fig in results:
        table.add_row(
            fig.name,
            f"{pct(fig.store_ms, 50):.1f}",
            f"{pct(fig.store_ms, 99):.1f}",
            f"{fig.stored / len(fig.store_ms):.0%}",
            f"{pct(fig.get_ms, 50):.1f}",
            f"{pct(fig.get_ms, 99):.1f}",
            f"{fig.found / len(fig.get_ms):.0%}",
            f"{fig.setup_s:.1f}",
        )
    base, ours = results
    table.add_row(
        "fedcart vs baseline",
        f"{pct(ours.store_ms, 50) / pct(base.store_ms, 50):.2f}x",
        "",
        "",
        f"{pct(ours.get_ms, 50) / pct(base.get_ms, 50):.2f}x",
        "",
        "",
        "",
    )
    console.print(table)
    console.print("anchor: hivemind, 1,024 peers on one machine: store 14.9 ms, get 6.6 ms, 100 % success")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bridges", type=int, default=100)
    parser.add_argument("--records", type=int, default=300, help="presence records stored, then looked up")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds per Kademlia RPC (the bridge default)")
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    report(args, asyncio.run(run(args)))


if __name__ == "__main__":
    main()
