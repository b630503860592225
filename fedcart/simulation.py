"""`fedcart simulate`: N carts, real bridges and the real protocol, in one process.

Everything runs on one asyncio loop that shares one TensorFlow runtime (N
processes would each pay ~0.5 GB for TensorFlow). Bridges are real aiohttp +
Kademlia servers on 127.0.0.1, carts are real `CartNode`s with their own
embedded stores, keys and bridge connections; only the round schedule is driven
from here, with a barrier after training so each round's updates are on offer
before anyone asks. The same synthetic data then trains the two baselines:
centralized (all rows pooled, same epoch budget) and local-only (no exchange).
Every model is scored on the pooled held-out rows of all carts.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.progress import Progress

from child_cart import round_settings, synth
from child_cart.node import CartNode
from child_cart.roundlog import RoundRecord
from child_cart.rounds.learner import Learner
from child_cart.settings import CartSettings
from child_cart.store import Store, load_catalogue, open_store
from child_cart.tasks.recommend import RecommendTask
from parent_cart.bridge import Bridge
from parent_cart.settings import BridgeSettings

log = logging.getLogger(__name__)
TOKEN = "simulation-swarm-token"


@dataclass(frozen=True)
class SimConfig:
    carts: int = 20
    rounds: int = 10
    aggregator: str = "fedavg"
    skew: float = 1.0
    bridges: int = 2
    rows_per_cart: int = 400
    epochs: int = 3
    k: int = 4
    seed: int = 0
    out_dir: Path = Path("reports/simulate")


@dataclass
class RoundRow:
    round: int
    fed_mean: float
    fed_min: float
    fed_max: float
    centralized: float
    local_mean: float
    bytes_moved: int
    seconds: float
    accepted: int


@dataclass
class SimResult:
    rows: list[RoundRow] = field(default_factory=list)
    csv_path: Path | None = None
    plot_path: Path | None = None


async def simulate(config: SimConfig) -> SimResult:
    """Run the federated simulation and both baselines; write the CSV and the plot."""
    catalogue = load_catalogue()
    data = synth.generate(catalogue, config.rows_per_cart, config.carts, config.seed, config.skew)
    task = RecommendTask(catalogue)
    pooled = task.make_dataset([row for rows in data for row in rows])
    with tempfile.TemporaryDirectory(prefix="fedcart-sim-") as scratch:
        bridges = await start_bridges(config.bridges, Path(scratch), TOKEN)
        nodes: list[CartNode] = []
        try:
            nodes = await start_carts(config, data, bridges, Path(scratch))
            result = await _run_rounds(config, nodes, pooled, data, task)
        finally:
            for node in nodes:
                await node.stop()
            for bridge in bridges:
                await bridge.stop()
    config.out_dir.mkdir(parents=True, exist_ok=True)
    result.csv_path = _write_csv(result.rows, config.out_dir / "simulate.csv")
    result.plot_path = _plot(result.rows, config, config.out_dir / "simulate.png")
    return result


async def start_bridges(count: int, root: Path, token: str) -> list[Bridge]:
    """`count` real bridges on 127.0.0.1 (ephemeral ports), each bootstrapping from the ones before."""
    bridges: list[Bridge] = []
    for index in range(count):
        bootstrap = ",".join(f"127.0.0.1:{b.dht_port}" for b in bridges)
        settings = BridgeSettings(
            _env_file=None, data_dir=root / f"bridge-{index}", port=0, dht_port=0, swarm_token=token,
            bridge_bootstrap=bootstrap, refresh_interval=2.0, dht_timeout=0.5,
        )
        bridge = Bridge(settings)
        await bridge.start()
        bridges.append(bridge)
    return bridges


async def start_carts(
    config: SimConfig, data: list[list[dict]], bridges: list[Bridge], root: Path, make_node=CartNode, publish: bool = False,
    fill: Callable[[Store, list[dict]], object] = synth.fill_store,
) -> list[CartNode]:
    """One CartNode per data share, spread over the bridges, connected and listed in every directory.

    `fill` writes a cart's share into its store (purchases by default; the IoT experiment writes telemetry).
    """
    nodes = []
    for index, rows in enumerate(data):
        settings = CartSettings(
            _env_file=None, data_dir=root / f"cart-{index}", bridge_url=bridges[index % len(bridges)].url, swarm_token=TOKEN
        )
        store = open_store(settings.data_dir)
        fill(store, rows)
        round_settings.save(store, {"aggregator": config.aggregator, "k": config.k, "local_epochs": config.epochs})
        node = make_node(settings, store=store, publish=publish)
        await node.start(scheduled_rounds=False)
        nodes.append(node)
    await asyncio.gather(*(node.client.wait_connected() for node in nodes))
    for bridge in bridges:
        if not await bridge.directory.wait_until(lambda: len(bridge.directory.members()) >= len(nodes), 60.0):
            raise TimeoutError(f"bridge {bridge.node_id[:8]} never listed all {len(nodes)} carts within 60s")
    return nodes


async def _run_rounds(config: SimConfig, nodes: list[CartNode], pooled, data: list[list[dict]], task: RecommendTask) -> SimResult:
    central = Learner(task)
    central.load_rows([row for rows in data for row in rows])
    central_w = central.initial_weights
    locals_ = [Learner(task) for _ in data]
    local_ws = []
    for learner, rows in zip(locals_, data):
        learner.load_rows(rows)
        local_ws.append(learner.initial_weights)
    result = SimResult()
    with Progress() as progress:
        bar = progress.add_task("simulating rounds", total=config.rounds)
        for number in range(config.rounds):
            start = time.perf_counter()
            records = await run_round(nodes)
            seconds = time.perf_counter() - start
            fed = [pooled_accuracy(n, pooled) for n in nodes]
            central_w = await asyncio.to_thread(central.train, central_w, config.epochs)
            local_ws = [await asyncio.to_thread(l.train, w, config.epochs) for l, w in zip(locals_, local_ws)]
            local_acc = [l.evaluate_on(w, pooled.x_val, pooled.y_val)["accuracy"] for l, w in zip(locals_, local_ws)]
            result.rows.append(RoundRow(
                round=number, fed_mean=float(np.mean(fed)), fed_min=float(np.min(fed)), fed_max=float(np.max(fed)),
                centralized=central.evaluate_on(central_w, pooled.x_val, pooled.y_val)["accuracy"],
                local_mean=float(np.mean(local_acc)), bytes_moved=sum(r.bytes_in for r in records),
                seconds=seconds, accepted=sum(r.accepted for r in records),
            ))
            progress.advance(bar)
    return result


async def run_round(nodes: list[CartNode]) -> list[RoundRecord]:
    """One round on every cart at once, with a barrier after training so all updates are on offer."""
    barrier = asyncio.Barrier(len(nodes))
    return list(await asyncio.gather(*(node.engine.run_round(after_training=barrier.wait) for node in nodes)))


def pooled_accuracy(node: CartNode, pooled) -> float:
    """A cart's current model scored on every cart's held-out rows."""
    return node.learner.evaluate_on(node.engine.current, pooled.x_val, pooled.y_val)["accuracy"]


def _write_csv(rows: list[RoundRow], path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(RoundRow.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(row.__dict__ for row in rows)
    return path


def _plot(rows: list[RoundRow], config: SimConfig, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r.round + 1 for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.fill_between(x, [r.fed_min for r in rows], [r.fed_max for r in rows], alpha=0.2, label="federated min-max")
    ax.plot(x, [r.fed_mean for r in rows], marker="o", label=f"federated mean ({config.aggregator})")
    ax.plot(x, [r.centralized for r in rows], linestyle="--", label="centralized")
    ax.plot(x, [r.local_mean for r in rows], linestyle=":", label="local-only mean")
    ax.set(xlabel="round", ylabel="pooled held-out accuracy",
           title=f"{config.carts} carts, skew {config.skew}, {config.epochs} epochs/round")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
