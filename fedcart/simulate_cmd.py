"""`fedcart simulate`: federated vs centralized vs local-only on one machine, with real bridges."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from child_cart.aggregation import AGGREGATORS

if TYPE_CHECKING:
    from fedcart.simulation import RoundRow, SimConfig


def register(app: typer.Typer) -> None:
    @app.command()
    def simulate(
        carts: int = typer.Option(20, min=2, max=200, help="Simulated carts"),
        rounds: int = typer.Option(10, min=1, max=500, help="Federated rounds"),
        aggregator: str = typer.Option("fedavg", help=f"One of: {', '.join(AGGREGATORS)}"),
        skew: float = typer.Option(1.0, min=0.0, help="Non-IID-ness of the carts' shoppers (0 = IID)"),
        bridges: int = typer.Option(2, min=1, max=9, help="Bridges the carts spread over"),
        rows: int = typer.Option(400, min=20, help="Purchases per cart"),
        epochs: int = typer.Option(3, min=1, help="Local epochs per round (the baselines get the same budget)"),
        k: int = typer.Option(4, min=1, help="Peers each cart asks per round"),
        seed: int = typer.Option(0, help="Seed of the synthetic data"),
        out: Path = typer.Option(Path("reports/simulate"), help="Where the CSV and the plot go"),
    ) -> None:
        """Run N carts through R real rounds and print per-round accuracy, bytes and time vs the baselines."""
        from fedcart.simulation import SimConfig
        from fedcart.simulation import simulate as run

        if aggregator not in AGGREGATORS:
            raise typer.BadParameter(f"unknown aggregator {aggregator!r}; choose one of {', '.join(AGGREGATORS)}")
        config = SimConfig(carts, rounds, aggregator, skew, bridges, rows, epochs, k, seed, out)
        quiet_nodes()
        result = asyncio.run(run(config))
        print_table(result.rows, config)
        typer.echo(f"CSV: {result.csv_path}\nplot: {result.plot_path}")


def quiet_nodes() -> None:
    """Dozens of in-process nodes log every join and round; keep the progress bar readable unless --verbose."""
    if logging.getLogger().level > logging.DEBUG:
        for name in ("parent_cart", "cartnet", "child_cart"):
            logging.getLogger(name).setLevel(logging.WARNING)


def print_table(rows: list[RoundRow], config: SimConfig) -> None:
    table = Table(
        title=f"{config.carts} carts, {config.bridges} bridges, {config.aggregator}, skew {config.skew}: pooled held-out accuracy"
    )
    for column in ("round", "fed mean", "fed min", "fed max", "centralized", "local-only", "accepted", "MB moved", "s"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            str(r.round + 1),
            f"{r.fed_mean:.3f}",
            f"{r.fed_min:.3f}",
            f"{r.fed_max:.3f}",
            f"{r.centralized:.3f}",
            f"{r.local_mean:.3f}",
            f"{r.accepted}/{config.carts}",
            f"{r.bytes_moved / 1e6:.2f}",
            f"{r.seconds:.1f}",
        )
    Console().print(table)
