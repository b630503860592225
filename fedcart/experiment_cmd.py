"""`fedcart experiment`: federated vs centralized vs local-only for an IoT detection task, with a report folder."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

if TYPE_CHECKING:
    from fedcart.experiment.harness import ExperimentConfig, Fleet, ScenarioResult

log = logging.getLogger(__name__)
console = Console()

IOT_TASKS = ("iot-anomaly", "iot-intrusion", "iot-intrusion-forest")
QUALITY = (
    ("scenario", "scenario"),
    ("accuracy", "accuracy"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("f1", "F1"),
    ("fpr", "FPR"),
    ("roc_auc", "ROC AUC"),
)
COST = (
    ("scenario", "scenario"),
    ("mb_sent", "MB sent"),
    ("mb_received", "MB received"),
    ("seconds", "time s"),
    ("cpu_seconds", "CPU s"),
    ("peak_rss_mb", "peak RSS MB"),
    ("energy_kwh", "energy kWh"),
)


def register(app: typer.Typer) -> None:
    """Add the `experiment` command to the CLI."""
    app.command("experiment")(experiment)


def experiment(
    task: str = typer.Option("iot-anomaly", "--task", help=f"One of: {', '.join(IOT_TASKS)}"),
    carts: int = typer.Option(9, "--carts", min=2, max=100, help="Carts (each one device type or station)"),
    rounds: int = typer.Option(5, "--rounds", min=1, max=200, help="Rounds; every scenario trains rounds x epochs"),
    epochs: int = typer.Option(2, "--epochs", min=1, max=100, help="Local epochs per round"),
    scenario: str = typer.Option(
        "all", "--scenario", help="all, or a comma-separated subset of federated,centralized,local"
    ),
    rows: int = typer.Option(600, "--rows", min=20, help="Synthetic rows per cart"),
    aggregator: str = typer.Option(
        "fedavg", "--aggregator", help="Federated rule for Keras tasks (forests always join trees)"
    ),
    k: int = typer.Option(3, "--k", min=1, help="Peers each cart asks per round"),
    bridges: int = typer.Option(2, "--bridges", min=1, max=9, help="Bridges the carts spread over"),
    seed: int = typer.Option(0, "--seed", help="Seed of the synthetic data"),
    data: Path | None = typer.Option(
        None, "--data", exists=True, help="A real data set's CSV file or folder instead of synthetic rows"
    ),
    data_format: str | None = typer.Option(None, "--format", help="With --data: nbaiot, edge-iiotset or ton-iot"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="With --data: rows read per CSV file"),
    energy: bool = typer.Option(
        True, "--energy/--no-energy", help="Measure energy per scenario when codecarbon is installed"
    ),
    out: Path = typer.Option(Path("reports/experiment"), "--out", help="Parent folder of the report folder"),
) -> None:
    """Train one IoT task federated, centralized and local-only on the same rows and budget; print and write the report.

    The task is configured by the IOT_* environment variables (see .env.example).
    """
    from child_cart.aggregation import AGGREGATORS
    from fedcart.experiment.harness import SCENARIOS, ExperimentConfig, load_fleet
    from fedcart.experiment.report import write_report
    from fedcart.simulate_cmd import quiet_nodes

    if task not in IOT_TASKS:
        raise typer.BadParameter(f"unknown task {task!r}; choose one of {', '.join(IOT_TASKS)}", param_hint="--task")
    if aggregator not in AGGREGATORS:
        raise typer.BadParameter(
            f"unknown aggregator {aggregator!r}; choose one of {', '.join(AGGREGATORS)}", param_hint="--aggregator"
        )
    scenarios = SCENARIOS if scenario == "all" else tuple(s.strip() for s in scenario.split(",") if s.strip())
    config = ExperimentConfig(
        task=task,
        carts=carts,
        rounds=rounds,
        epochs=epochs,
        rows_per_cart=rows,
        scenarios=scenarios,
        aggregator=aggregator,
        k=k,
        bridges=bridges,
        seed=seed,
        data=data,
        data_format=data_format,
        limit=limit,
        energy=energy,
        out_dir=out,
    )
    quiet_nodes()
    try:
        fleet = load_fleet(config)
        results = _run(config, fleet)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    report = write_report(config, fleet, results)
    _print(report.summary, f"{task}: {carts} carts, {rounds} rounds x {epochs} epochs")
    typer.echo(f"report: {report.path}")


def _run(config: ExperimentConfig, fleet: Fleet) -> dict[str, ScenarioResult]:
    """All scenarios, with a progress bar each that advances per round."""
    from fedcart.experiment.harness import run_experiment

    with Progress(console=console) as progress:
        bars = {name: progress.add_task(f"{name:<11}", total=config.rounds) for name in config.scenarios}
        return run_experiment(config, fleet, lambda name: progress.advance(bars[name]))


def _print(rows: list[dict], title: str) -> None:
    """The summary as two tables (quality, cost), each narrow enough for an 80-column terminal."""
    for columns, caption in (
        (QUALITY, "detection on all held-out rows, after the last round"),
        (COST, "cost over all rounds"),
    ):
        table = Table(title=f"{title}: {caption}")
        for _, header in columns:
            table.add_column(header, justify="left" if header == "scenario" else "right")
        for row in rows:
            table.add_row(*(_cell(row[key]) for key, _ in columns))
        console.print(table)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if 0 < abs(value) < 0.001:
            return f"{value:.2e}"
        if abs(value) < 0.01:
            return f"{value:.4f}"
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)
