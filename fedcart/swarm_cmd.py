"""`fedcart swarm`: a local swarm of bridges and carts on one machine, with their URLs printed."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from cartnet.settings import NodeSettings
from fedcart.local_swarm import SwarmPlan, admin_password, enrol_nodes, run_swarm, seed_carts


def register(app: typer.Typer) -> None:
    @app.command()
    def swarm(
        bridges: int = typer.Option(2, min=1, max=9, help="Bridges in the DHT"),
        carts: int = typer.Option(3, min=1, max=50, help="Carts, spread over the bridges"),
        root: Path = typer.Option(Path("data/swarm"), help="Data dirs and logs of every node"),
        rows: int = typer.Option(600, min=10, help="Synthetic purchases per cart (first start only)"),
        skew: float = typer.Option(1.0, min=0.0, help="Non-IID-ness of the carts' shoppers (0 = IID)"),
        round_seconds: float = typer.Option(20.0, min=1.0, help="Time between a cart's rounds"),
        bridge_port: int = typer.Option(8470, help="Relay port of bridge 0 (bridge i gets +i)"),
        dht_port: int = typer.Option(8460, help="Kademlia UDP port of bridge 0 (bridge i gets +i)"),
        ui_port: int = typer.Option(5000, help="UI port of cart 0 (cart i gets +i)"),
    ) -> None:
        """Start bridges and carts locally, print their URLs, run rounds until Ctrl-C."""
        plan = SwarmPlan(
            root=root,
            bridges=bridges,
            carts=carts,
            rows=rows,
            skew=skew,
            round_seconds=round_seconds,
            bridge_port=bridge_port,
            dht_port=dht_port,
            ui_port=ui_port,
        )
        try:
            NodeSettings.model_validate({})  # the children read the same .env: refuse a published SWARM_TOKEN here
        except ValidationError as exc:
            typer.echo(f"error: invalid settings: {exc}", err=True)
            raise typer.Exit(2) from None
        enrol_nodes(plan)
        seed_carts(plan)
        print_urls(plan)
        asyncio.run(_run(plan))


async def _run(plan: SwarmPlan) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_swarm(plan, stop)


def print_urls(plan: SwarmPlan) -> None:
    table = Table(
        title=f"fedcart local swarm ({plan.bridges} bridges, {plan.carts} carts) - Ctrl-C stops it",
        caption=f"admin password of every cart: {admin_password(plan)}   (kept in {plan.root / 'admin_password'})",
    )
    for column in ("node", "dashboard", "admin / peers", "log"):
        table.add_column(column)
    for i in range(plan.bridges):
        url = plan.bridge_url(i)
        table.add_row(f"bridge-{i}", f"{url}/health", f"{url}/peers", str(plan.root / "logs" / f"bridge-{i}.log"))
    for i in range(plan.carts):
        url = plan.cart_url(i)
        table.add_row(f"cart-{i}", f"{url}/", f"{url}/admin", str(plan.root / "logs" / f"cart-{i}.log"))
    Console(width=160).print(table)
