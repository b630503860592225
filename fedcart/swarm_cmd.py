"""`fedcart swarm`: a local swarm of bridges and carts on one machine, with their URLs and a live status table."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from pydantic import ValidationError
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from cartnet.settings import describe_error
from fedcart.local_swarm import Child, Stopped, SwarmPlan, admin_password, enrol_nodes, run_swarm, seed_carts

if TYPE_CHECKING:
    from fedcart.swarm_status import NodeStatus


def register(app: typer.Typer) -> None:
    @app.command()
    def swarm(
        bridges: int = typer.Option(2, min=1, max=9, help="Bridges in the DHT"),
        carts: int = typer.Option(3, min=1, max=50, help="Carts, spread over the bridges"),
        root: Path = typer.Option(Path("data/swarm"), help="Data dirs and logs of every node"),
        rows: int = typer.Option(600, min=10, help="Synthetic rows per cart (first start only)"),
        skew: float = typer.Option(1.0, min=0.0, help="Non-IID-ness of the carts' shoppers (0 = IID)"),
        round_seconds: float = typer.Option(20.0, min=1.0, help="Time between a cart's rounds"),
        bridge_port: int = typer.Option(8470, help="Relay port of bridge 0 (bridge i gets +i)"),
        dht_port: int = typer.Option(8460, help="Kademlia UDP port of bridge 0 (bridge i gets +i)"),
        ui_port: int = typer.Option(5000, help="UI port of cart 0 (cart i gets +i)"),
        task: str = typer.Option(
            "recommend",
            help="What the carts learn: recommend (seeded with shoppers' purchases) or an IoT task "
            "(iot-anomaly, iot-intrusion, iot-intrusion-forest: seeded with device telemetry)",
        ),
        secure_aggregation: bool = typer.Option(
            False,
            help="Switch secure aggregation on in every cart's round settings (masked updates, fedavg only; "
            "needs at least 4 carts; stays on until switched off on a cart's admin page)",
        ),
    ) -> None:
        """Start bridges and carts locally, print their URLs and a live status, run rounds until Ctrl-C."""
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
            task=task,
            secure_aggregation=secure_aggregation,
        )
        problem = settings_problem(plan)
        if problem:
            typer.echo(f"error: {problem}", err=True)
            raise typer.Exit(2)
        enrol_nodes(plan)
        try:
            seed_carts(plan)
        except ValidationError as exc:  # a cart's stored settings refuse --secure-aggregation (a robust rule)
            typer.echo(f"error: a cart's round settings refuse the change: {describe_error(exc)}", err=True)
            raise typer.Exit(2) from None
        stopped = asyncio.run(_run(plan))
        typer.echo(stopped.line(plan.root))


def settings_problem(plan: SwarmPlan) -> str:
    """What is wrong with the settings the children will read (the same .env and environment), as one line;
    empty when nothing is. A published SWARM_TOKEN, a bad LOG_LEVEL or UI_PORT... stop the swarm here, not
    in a restart loop of every child."""
    from cartnet.secagg import MIN_COHORT
    from child_cart.settings import CartSettings
    from child_cart.tasks.registry import task_names
    from parent_cart.settings import BridgeSettings

    if plan.task not in task_names():
        return f"unknown task {plan.task!r}; known tasks: {', '.join(task_names())}"
    if plan.secure_aggregation and plan.carts <= MIN_COHORT:
        return (
            f"--secure-aggregation with {plan.carts} carts leaves each cart {plan.carts - 1} peers: a masked cohort "
            f"needs at least {MIN_COHORT}, so start at least {MIN_COHORT + 1} carts"
        )
    for kind, settings_class in (("cart", CartSettings), ("bridge", BridgeSettings)):
        try:
            settings_class.model_validate({})
        except ValidationError as exc:
            return f"invalid {kind} settings: {describe_error(exc)}"
    return ""


async def _run(plan: SwarmPlan) -> Stopped:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    view = StatusView(plan)
    watching: list[asyncio.Task[None]] = []

    def started(kids: list[Child]) -> None:
        from fedcart.swarm_status import SwarmStatus  # aiohttp: not for every `fedcart` command to import

        print_urls(plan)
        status = SwarmStatus(plan, admin_password(plan), kids)
        watching.append(asyncio.create_task(status.run(stop, view.show)))
        view.start()

    try:
        return await run_swarm(plan, stop, started)
    finally:
        view.stop()
        await asyncio.gather(*watching, return_exceptions=True)


class StatusView:
    """The status table, redrawn in place on a terminal; elsewhere (a pipe, a log file) one line per change."""

    def __init__(self, plan: SwarmPlan, console: Console | None = None) -> None:
        from rich import get_console

        self.plan = plan
        self.console = console or get_console()  # the log handler's console: log lines print above the table
        self._live: Live | None = None
        self._shown: dict[str, str] = {}

    def start(self) -> None:
        if self.console.is_terminal:
            self._live = Live(console=self.console, refresh_per_second=2, transient=False)
            self._live.start()

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def show(self, statuses: list[NodeStatus]) -> None:
        if self._live is not None:
            self._live.update(Group(status_table(self.plan, statuses)))
            return
        for status in statuses:
            line = status.line()
            if self._shown.get(status.name) != line:
                self._shown[status.name] = line
                self.console.print(line, soft_wrap=True, highlight=False)


def status_table(plan: SwarmPlan, statuses: list[NodeStatus]) -> Table:
    table = Table(title=f"swarm status ({plan.task}), every 2 s - Ctrl-C stops every node")
    for column in ("node", "state", "rounds accepted", "last held-out", "peers", "restarts"):
        table.add_column(column)
    for status in statuses:
        colour = {"up": "green", "starting": "yellow"}.get(status.state, "red")
        table.add_row(
            status.name,
            f"[{colour}]{status.state}[/{colour}]" + (f" ({status.detail})" if status.detail else ""),
            f"{status.accepted}/{status.rounds}" if status.accepted is not None else "",
            f"{status.metric} {status.score:.3f}" if status.score is not None else "",
            status.peers,
            str(status.restarts or ""),
        )
    return table


def print_urls(plan: SwarmPlan) -> None:
    table = Table(
        title=f"fedcart local swarm ({plan.bridges} bridges, {plan.carts} carts, {plan.task}) - Ctrl-C stops it",
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
