"""How `fedcart simulate --backend ray` grows with the number of carts: 20, 100, 500 and 1,000.

Each size runs in a fresh driver process (so its memory high-water mark is its
own): 2 real bridges in the driver on 127.0.0.1, the carts spread over Ray
actors (one per CPU, each one TensorFlow runtime and one asyncio loop under
real CartNodes with their own embedded stores, keys and WebSockets), and 2
rounds of 1 local epoch on 40 purchases per cart, the driver holding every
cart between training and exchange, then letting each actor's carts exchange
WAVE at a time. Printed per size: seconds per round
(round 1 includes each cart's first Keras trace), bytes on the wire per round
(every WebSocket frame the carts sent or received, headers included), the peak
RSS of the driver (bridges) and of each actor, and each figure's ratio to the
20-cart row of the same run.

The bridges run with settings a thousand carts from one host need, passed as
settings (no code path changes): a 60 s admission deadline, heartbeats every
20 s (a busy actor's loop answers late, not never), DHT republication every 30 s
(the simulator's 2 s would republish 500 presences per bridge every 2 s). A
bridge admits up to MAX_CARTS = 5,000 carts and has no per-address cap.

    .venv/bin/python bench/simulate_scale.py                 # 20, 100, 500, 1000
    .venv/bin/python bench/simulate_scale.py --sizes 20 100  # a quicker look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402

if TYPE_CHECKING:
    from fedcart.raysim import RayCarts

log = logging.getLogger("bench.simulate_scale")

SIZES = (20, 100, 500, 1000)
ROWS_PER_CART = 40
ROUNDS = 2
BRIDGE_SETTINGS = {"admission_timeout": 60.0, "heartbeat_interval": 20.0, "refresh_interval": 30.0, "dht_timeout": 2.0}
WAVE = 100
"""Carts of one actor that exchange at once, after every cart has trained (see `LocalCarts`)."""
SECONDS_PER_CART = 3.0
"""Time allowed to one size's run, per cart, beyond a fixed 120 s (Ray start-up, TensorFlow imports)."""


async def one_size(carts: int, actors: int, seed: int) -> dict[str, object]:
    """One driver: bridges here, `carts` carts on Ray actors, ROUNDS rounds; the figures as a dict."""
    from child_cart.store import load_catalogue
    from child_cart.synth import shoppers as synth
    from fedcart.cartgroup import open_group
    from fedcart.inprocess import start_bridges
    from fedcart.raysim import RayCarts
    from fedcart.simulation import SimConfig

    config = SimConfig(carts=carts, rounds=ROUNDS, rows_per_cart=ROWS_PER_CART, epochs=1, k=4, seed=seed)
    data = synth.generate(load_catalogue(), ROWS_PER_CART, carts, seed, config.skew)
    figures: dict[str, object] = {"carts": carts, "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="fedcart-scale-") as scratch:
        bridges = await start_bridges(2, Path(scratch), **BRIDGE_SETTINGS)
        try:
            start = time.perf_counter()
            group = await open_group(
                "ray",
                data,
                bridges,
                Path(scratch),
                config.round_options(),
                actors=actors,
                listed_within=600.0,
                wave=WAVE,
            )
            assert isinstance(group, RayCarts)
            figures["open_s"] = time.perf_counter() - start
            log.warning("%d carts open on %d actors in %.0f s", carts, len(group.actors), figures["open_s"])
            try:
                figures.update(await _rounds(group))
                figures["failed"] = await group.failed_rounds()
                figures["actor_carts"] = group.sizes
                figures["actor_peak"] = await group.peak_rss()
            finally:
                await group.stop()
        finally:
            for bridge in bridges:
                await bridge.stop()
    figures["driver_peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    figures["load_after"] = os.getloadavg()[0]
    return figures


async def _rounds(group: RayCarts) -> dict[str, object]:
    seconds, wire, accepted = [], [], []
    for number in range(ROUNDS):
        start, before = time.perf_counter(), await group.wire_bytes()
        records = await group.run_round()
        seconds.append(time.perf_counter() - start)
        wire.append((await group.wire_bytes() - before).at_carts)
        accepted.append(sum(r.accepted for r in records))
        log.warning("round %d: %.1f s, %.2f MB on the wire", number + 1, seconds[-1], wire[-1] / 1e6)
    return {"seconds": seconds, "wire": wire, "accepted": accepted}


def run_child(carts: int, actors: int, seed: int) -> dict[str, object]:
    """One size in a fresh driver process, bounded in time; its figures, or the reason it has none."""
    command = [sys.executable, __file__, "--one", str(carts), "--actors", str(actors), "--seed", str(seed)]
    limit = 120 + SECONDS_PER_CART * carts
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, timeout=limit, text=True, check=False)
    except subprocess.TimeoutExpired:
        return {"carts": carts, "error": f"not done within {limit:.0f} s"}
    if done.returncode != 0 or not done.stdout.strip():
        return {"carts": carts, "error": f"driver exited {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _mb(value: float) -> str:
    return f"{value / 2**20:,.0f}"


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.1f}x" if base else "-"


def print_table(rows: list[dict], actors: int) -> None:
    console = Console(width=200)
    console.print(describe())
    table = Table(
        title=f"fedcart simulate --backend ray: 2 bridges in the driver, {actors} actors, {ROWS_PER_CART} purchases "
        f"per cart, 1 epoch, k = 4; ratios vs the {rows[0]['carts']}-cart row"
    )
    for column in (
        "carts",
        "open s",
        "round 1 s",
        "round 2 s",
        "MB wire / round",
        "accepted",
        "failed",
        "driver peak MB",
        "actor peak MB (carts)",
        "x carts",
        "x round 2 s",
        "x wire",
        "x driver MB",
        "x actor MB",
        "load",
    ):
        table.add_column(column, justify="right")
    base = next((r for r in rows if "error" not in r), None)
    for row in rows:
        if "error" in row or base is None:
            table.add_row(str(row["carts"]), str(row.get("error", "no baseline")), *[""] * 13)
            continue
        wire = sum(row["wire"]) / len(row["wire"])
        base_wire = sum(base["wire"]) / len(base["wire"])
        table.add_row(
            f"{row['carts']:,}",
            f"{row['open_s']:.0f}",
            *(f"{s:.1f}" for s in row["seconds"]),
            f"{wire / 1e6:.2f}",
            "/".join(str(a) for a in row["accepted"]),
            str(row["failed"]),
            _mb(row["driver_peak"]),
            ", ".join(f"{_mb(p)} ({c})" for p, c in zip(row["actor_peak"], row["actor_carts"])),
            _ratio(row["carts"], base["carts"]),
            _ratio(row["seconds"][-1], base["seconds"][-1]),
            _ratio(wire, base_wire),
            _ratio(row["driver_peak"], base["driver_peak"]),
            _ratio(max(row["actor_peak"]), max(base["actor_peak"])),
            f"{row['load_before']:.1f}-{row['load_after']:.1f}",
        )
    console.print(table)
    console.print(
        "accepted: carts whose round kept the aggregate, per round; failed: cart rounds that raised (left out, "
        "as a cart's own round loop does). Load is the 1-min load average before-after each "
        "size; other work on these 2 cores slows the rounds (seconds), not the bytes or the memory."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--actors", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.one:
        for name in ("parent_cart", "cartnet", "child_cart", "rpcudp", "kademlia"):
            logging.getLogger(name).setLevel(logging.CRITICAL)  # a thousand carts' joins and retries, not the figures
        print(json.dumps(asyncio.run(one_size(args.one, args.actors, args.seed))))
        return
    rows = []
    with Progress(console=Console(stderr=True)) as progress:
        bar = progress.add_task("carts simulated", total=sum(args.sizes))
        for carts in args.sizes:
            progress.console.print(f"{carts} carts...")
            rows.append(run_child(carts, args.actors, args.seed))
            progress.console.print(json.dumps(rows[-1]))
            progress.advance(bar, carts)
    print_table(sorted(rows, key=lambda row: row["carts"]), args.actors)


if __name__ == "__main__":
    main()
