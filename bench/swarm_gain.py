"""What `make run`'s swarm brings each cart over 30 rounds: its swarm gain and whether its held-out score ever falls.

`make run` starts 2 bridges and 3 carts with 600 purchases each (seed 0, skew 1,
the default round settings). This bench builds the same swarm in one process
(real bridges, real carts, real Keras: `fedcart.inprocess`) and runs the rounds
back to back instead of every 20 s. Per cart it prints the kept model's
held-out score (the task's primary metric) in the first and last round and at
best, the deepest dip below the best so far (the acceptance rule allows up to
its margin), the first round whose swarm gain (kept model minus the local-only
model trained on the same rows) was positive, and the last gain. The goals
(issue 15): a positive gain within 5 rounds on every cart; no cart ending below
its first round.

A cart measures its gain on its own held-out rows, 54 to 108 here: one row is
1 to 2 points, more than the gain itself in the first rounds. The data is
synthetic, so this bench also knows the truth: it scores the same two models on
40,000 fresh purchases from each cart's own shoppers (the same store and
profile mixes, other baskets) and prints that gain beside the page's.

    .venv/bin/python bench/swarm_gain.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from _machine import describe
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from child_cart.models.versions import read_weights_file
from child_cart.node import CartNode
from child_cart.rounds.phases import local_only_path
from child_cart.store import load_catalogue
from child_cart.synth import shoppers
from child_cart.tasks.base import Dataset
from child_cart.tasks.recommend import RecommendTask
from fedcart.inprocess import run_round, start_bridges, start_carts
from fedcart.local_swarm import SwarmPlan
from fedcart.simulate_cmd import quiet_nodes

GAIN_WITHIN = 5
FRESH_PURCHASES = 40_000
PAGE_COLUMNS = ("cart", "first", "last", "best", "worst dip", "first gain > 0", "last gain")
TRUE_COLUMNS = ("true: first > 0", "true: last")
console = Console(width=None if sys.stdout.isatty() else 160)  # a piped table keeps its columns whole


@dataclass
class History:
    score: list[float] = field(default_factory=list)
    gain: list[float] = field(default_factory=list)
    true_gain: list[float] = field(default_factory=list)
    """The same two models' difference on fresh purchases from the cart's own shoppers."""

    def worst_dip(self) -> float:
        """The deepest fall of a round's score below the best of the rounds before it."""
        return max((max(self.score[:n]) - self.score[n] for n in range(1, len(self.score))), default=0.0)

    def first_gain(self, gains: list[float] | None = None) -> int | None:
        """The first round (from 1) whose gain in `gains` (the page's, by default) was positive."""
        return next((n + 1 for n, gain in enumerate(self.gain if gains is None else gains) if gain > 0), None)


@dataclass
class FreshRows:
    """Every step of a large fresh sample of one cart's shoppers, as its task encodes them."""

    x: np.ndarray
    y: np.ndarray

    @classmethod
    def of(cls, dataset: Dataset) -> FreshRows:
        return cls(np.concatenate([dataset.x_train, dataset.x_val]), np.concatenate([dataset.y_train, dataset.y_val]))

    def gain(self, node: CartNode) -> float:
        """The cart's kept model minus its local-only shadow on these rows, in the task's primary metric."""
        learner, task = node.learner, node.engine.task
        shadow = read_weights_file(local_only_path(node.engine.models, task.name), "local-only weights")
        if shadow is None:
            return 0.0
        kept = learner.evaluate_on(node.engine.current, self.x, self.y)[task.primary_metric]
        return float(kept - learner.evaluate_on(shadow, self.x, self.y)[task.primary_metric])


async def run(rounds: int) -> list[History]:
    plan = SwarmPlan(Path("."))
    catalogue = load_catalogue()
    data = shoppers.generate(catalogue, plan.rows, plan.carts, plan.seed, plan.skew)
    fresh = shoppers.generate(catalogue, FRESH_PURCHASES, plan.carts, plan.seed, plan.skew)
    histories = [History() for _ in data]
    with tempfile.TemporaryDirectory(prefix="fedcart-gain-") as scratch:
        bridges = await start_bridges(plan.bridges, Path(scratch))
        nodes = []
        try:
            nodes = await start_carts(data, bridges, Path(scratch), {})
            truths = [FreshRows.of(node.engine.task.make_dataset(rows)) for node, rows in zip(nodes, fresh)]
            with Progress(console=console) as progress:
                bar = progress.add_task("rounds", total=rounds)
                for _ in range(rounds):
                    for history, record, node, truth in zip(histories, await run_round(nodes), nodes, truths):
                        history.score.append(float(record.kept_metrics.get(record.metric or "accuracy", 0.0)))
                        history.gain.append(record.swarm_gain if record.swarm_gain is not None else 0.0)
                        history.true_gain.append(await asyncio.to_thread(truth.gain, node))
                    progress.advance(bar)
        finally:
            for node in nodes:
                await node.stop()
            for bridge in bridges:
                await bridge.stop()
    return histories


def table(histories: list[History], metric: str) -> Table:
    out = Table(title=f"make run's swarm, in one process: each cart's kept model on its held-out rows ({metric})")
    for column in PAGE_COLUMNS + TRUE_COLUMNS:
        out.add_column(column, justify="right")
    for index, h in enumerate(histories):
        out.add_row(
            f"cart-{index}",
            f"{h.score[0]:.3f}",
            f"{h.score[-1]:.3f}",
            f"{max(h.score):.3f}",
            f"{h.worst_dip():.3f}",
            _round_named(h.first_gain()),
            f"{h.gain[-1]:+.3f}",
            _round_named(h.first_gain(h.true_gain)),
            f"{h.true_gain[-1]:+.3f}",
        )
    return out


def _round_named(number: int | None) -> str:
    return f"round {number}" if number else "never"


def _within(histories: list[History], rounds: int, true: bool) -> bool:
    """Every cart's first positive gain (the page's, or the true one) came within GAIN_WITHIN rounds."""
    return all((h.first_gain(h.true_gain if true else None) or rounds + 1) <= GAIN_WITHIN for h in histories)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    quiet_nodes()
    console.print(f"machine: {describe()}; load average {os.getloadavg()[0]:.2f} at the start")
    histories = asyncio.run(run(args.rounds))
    console.print(table(histories, RecommendTask.primary_metric))
    gained, truly = _within(histories, args.rounds, False), _within(histories, args.rounds, True)
    held = all(h.score[-1] >= h.score[0] for h in histories)
    console.print(
        f"goal: a positive swarm gain within {GAIN_WITHIN} rounds on every cart: on the pages "
        f"{_met(gained)}, on fresh purchases {_met(truly)}"
    )
    console.print(f"goal: no cart ends below its first round: {_met(held)}")
    console.print(f"load average {os.getloadavg()[0]:.2f} at the end")


def _met(goal: bool) -> str:
    return "met" if goal else "NOT met"


if __name__ == "__main__":
    main()
