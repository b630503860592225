"""What `make run`'s swarm brings each cart over 30 rounds: its swarm gain and whether its accuracy ever falls.

`make run` starts 2 bridges and 3 carts with 600 purchases each (seed 0, skew 1,
the default round settings). This bench builds the same swarm in one process
(real bridges, real carts, real Keras: `fedcart.inprocess`) and runs the rounds
back to back instead of every 20 s. Per cart it prints the kept model's
held-out accuracy in the first and last round and at best, the deepest dip below
the best so far (the acceptance rule allows up to its margin), the first round
whose swarm gain (kept model minus the local-only model trained on the same
rows) was positive, and the last gain. The goals (issue 15): a positive gain
within 5 rounds on every cart; no cart ending below its first round.

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

from _machine import describe
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from child_cart.store import load_catalogue
from child_cart.synth import shoppers
from fedcart.inprocess import run_round, start_bridges, start_carts
from fedcart.local_swarm import SwarmPlan
from fedcart.simulate_cmd import quiet_nodes

GAIN_WITHIN = 5
console = Console(width=None if sys.stdout.isatty() else 160)  # a piped table keeps its columns whole


@dataclass
class History:
    accuracy: list[float] = field(default_factory=list)
    gain: list[float] = field(default_factory=list)

    def worst_dip(self) -> float:
        """The deepest fall of a round's accuracy below the best of the rounds before it."""
        return max((max(self.accuracy[:n]) - self.accuracy[n] for n in range(1, len(self.accuracy))), default=0.0)

    def first_gain(self) -> int | None:
        return next((n + 1 for n, gain in enumerate(self.gain) if gain > 0), None)


async def run(rounds: int) -> list[History]:
    plan = SwarmPlan(Path("."))
    data = shoppers.generate(load_catalogue(), plan.rows, plan.carts, plan.seed, plan.skew)
    histories = [History() for _ in data]
    with tempfile.TemporaryDirectory(prefix="fedcart-gain-") as scratch:
        bridges = await start_bridges(plan.bridges, Path(scratch))
        nodes = []
        try:
            nodes = await start_carts(data, bridges, Path(scratch), {})
            with Progress(console=console) as progress:
                bar = progress.add_task("rounds", total=rounds)
                for _ in range(rounds):
                    for history, record in zip(histories, await run_round(nodes)):
                        history.accuracy.append(float(record.kept_metrics.get("accuracy", 0.0)))
                        history.gain.append(record.swarm_gain if record.swarm_gain is not None else 0.0)
                    progress.advance(bar)
        finally:
            for node in nodes:
                await node.stop()
            for bridge in bridges:
                await bridge.stop()
    return histories


def table(histories: list[History]) -> Table:
    out = Table(title="make run's swarm, in one process: each cart's kept model on its held-out rows")
    for column in ("cart", "first", "last", "best", "worst dip", "first gain > 0", "last gain"):
        out.add_column(column, justify="right")
    for index, h in enumerate(histories):
        first_gain = h.first_gain()
        out.add_row(
            f"cart-{index}",
            f"{h.accuracy[0]:.3f}",
            f"{h.accuracy[-1]:.3f}",
            f"{max(h.accuracy):.3f}",
            f"{h.worst_dip():.3f}",
            f"round {first_gain}" if first_gain else "never",
            f"{h.gain[-1]:+.3f}",
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    quiet_nodes()
    console.print(f"machine: {describe()}; load average {os.getloadavg()[0]:.2f} at the start")
    histories = asyncio.run(run(args.rounds))
    console.print(table(histories))
    gained = all((h.first_gain() or args.rounds + 1) <= GAIN_WITHIN for h in histories)
    held = all(h.accuracy[-1] >= h.accuracy[0] for h in histories)
    console.print(
        f"goals: a positive swarm gain within {GAIN_WITHIN} rounds on every cart: {'met' if gained else 'NOT met'}; "
        f"no cart ends below its first round: {'met' if held else 'NOT met'}; load average "
        f"{os.getloadavg()[0]:.2f} at the end"
    )


if __name__ == "__main__":
    main()
