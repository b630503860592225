"""`fedcart simulate`: federated vs centralized vs local-only on one machine, with real bridges."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from cartnet.quantize import PRECISIONS
from child_cart.aggregation import AGGREGATORS

if TYPE_CHECKING:
    from fedcart.simulation import RoundRow, SimConfig, SimResult


def register(app: typer.Typer) -> None:
    @app.command()
    def simulate(
        carts: int = typer.Option(
            20, min=2, max=MAX_CARTS["ray"], help=f"Simulated carts (in process: at most {MAX_CARTS['inprocess']})"
        ),
        rounds: int = typer.Option(10, min=1, max=500, help="Federated rounds"),
        aggregator: str = typer.Option("fedavg", help=f"One of: {', '.join(AGGREGATORS)}"),
        skew: float = typer.Option(1.0, min=0.0, help="Non-IID-ness of the carts' shoppers (0 = IID)"),
        bridges: int = typer.Option(2, min=1, max=9, help="Bridges the carts spread over"),
        rows: int = typer.Option(
            600, min=20, help="Purchases per cart (600 x 10 carts: pooled held-out standard error under 2 points)"
        ),
        epochs: int = typer.Option(3, min=1, help="Local epochs per round (the baselines get the same budget)"),
        k: int = typer.Option(4, min=1, help="Peers each cart asks per round"),
        seed: int = typer.Option(0, help="Seed of the synthetic data"),
        out: Path = typer.Option(Path("reports/simulate"), help="Where the CSV and the plot go"),
        dp_noise: float = typer.Option(
            0.0, min=0.0, help="Differential privacy: noise multiplier (Gaussian std = dp-noise x dp-clip; 0 = off)"
        ),
        dp_clip: float = typer.Option(0.0, min=0.0, help="Differential privacy: L2 clip norm of each update"),
        dp_delta: float = typer.Option(1e-5, help="Differential privacy: the δ ε is reported at"),
        dp_budget: float = typer.Option(10.0, help="Differential privacy: the ε each cart may spend before it stops"),
        method: str = typer.Option(
            "fedavg",
            help="fedavg, fedprox (proximal term --mu), personalized (--personalize-epochs and --personalize-head after each aggregate) or "
            "local_head (peers share the body, each cart keeps its own output layer)",
        ),
        mu: float = typer.Option(
            0.01,
            min=0.0,
            max=10.0,
            help="FedProx: the proximal term's mu (with --method fedprox; 0.01 scored best of 0.01, 0.1 and 1)",
        ),
        personalize_epochs: int = typer.Option(
            1, min=0, max=20, help="Personalization: local epochs on each aggregate (with --method personalized)"
        ),
        personalize_head: bool = typer.Option(
            True,
            help="Personalization: then refit the output layer on the cart's rows, pulled toward the swarm's "
            "(cross-validated ridge)",
        ),
        backend: str = typer.Option(
            "inprocess", help="inprocess (every cart on one loop) or ray (carts spread over Ray actors: the ray extra)"
        ),
        address: str = typer.Option(
            "", help="--backend ray: address of an existing Ray cluster (default: a local one)"
        ),
        actors: int = typer.Option(0, min=0, help="--backend ray: actors (groups of carts), 0 = one per CPU"),
        secure_aggregation: bool = typer.Option(
            False, help="Secure aggregation: peers answer with masked updates, each cart learns only their sum (fedavg)"
        ),
        precision: str = typer.Option(
            "int8", help="How carts pack the weights they send: int8 (the round settings' default), float16, float32"
        ),
    ) -> None:
        """Run N carts through R real rounds and print per-round accuracy, bytes and time vs the baselines."""
        from fedcart.simulation import METHODS, SimConfig
        from fedcart.simulation import simulate as run

        if aggregator not in AGGREGATORS:
            raise typer.BadParameter(f"unknown aggregator {aggregator!r}; choose one of {', '.join(AGGREGATORS)}")
        if method not in METHODS:
            raise typer.BadParameter(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        if precision not in PRECISIONS:
            raise typer.BadParameter(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        refuse_bad_backend(backend, carts)
        config = SimConfig(
            carts,
            rounds,
            aggregator,
            skew,
            bridges,
            rows,
            epochs,
            k,
            seed,
            out,
            dp_noise,
            dp_clip,
            dp_delta,
            dp_budget,
            method=method,
            mu=mu,
            personalize_epochs=personalize_epochs,
            personalize_head=personalize_head,
            backend=backend,
            address=address or None,
            actors=actors,
            secure_aggregation=secure_aggregation,
            precision=precision,
        )
        refuse_bad_privacy(config)
        quiet_nodes()
        result = asyncio.run(run(config))
        print_table(result.rows, config)
        print_final(result)
        print_privacy(result.rows, config)
        typer.echo(f"CSV: {result.csv_path}\nplot: {result.plot_path}\nsummary: {result.summary_path}")


MAX_CARTS = {"inprocess": 200, "ray": 1000}
"""Carts a simulation takes per backend: one process holds 200 (~10 MB a cart: its Keras model and traces). On Ray
the carts' memory is the actors'; the baselines (one local-only model per cart) still train in the driver."""


def refuse_bad_backend(backend: str, carts: int) -> None:
    """An unknown backend, too many carts for it, or Ray asked for but not installed: refused before anything starts."""
    if backend not in MAX_CARTS:
        raise typer.BadParameter(f"unknown backend {backend!r}; choose one of {', '.join(MAX_CARTS)}")
    if carts > MAX_CARTS[backend]:
        raise typer.BadParameter(f"--backend {backend} runs at most {MAX_CARTS[backend]} carts (asked: {carts})")
    if backend == "ray" and importlib.util.find_spec("ray") is None:
        raise typer.BadParameter("--backend ray needs Ray: pip install 'fedcart[ray]'")


NODE_LOGGERS = ("parent_cart", "cartnet", "child_cart")
DHT_LOGGERS = ("rpcudp", "kademlia")


def quiet_nodes() -> None:
    """Dozens of in-process nodes log every join and round, and the DHT under them every RPC that timed out while
    the bridges were starting (it copes); keep the tables and bars readable unless --verbose."""
    if logging.getLogger().level > logging.DEBUG:
        for name in NODE_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        for name in DHT_LOGGERS:
            logging.getLogger(name).setLevel(logging.CRITICAL)


def print_final(result: SimResult) -> None:
    """The last round's top-1, top-3 and recall@5 per method, beside the generator's Bayes ceiling for these rows."""
    if result.ceiling is None or not result.final:
        return
    error = 50.0 / max(result.held_out, 1) ** 0.5
    table = Table(
        title=f"after the last round, on {result.held_out} pooled held-out rows (standard error <= {error:.1f} points)"
    )
    for column in ("", "top-1", "top-3", "recall@5"):
        table.add_column(column, justify="right")
    ceiling = result.ceiling.as_dict()
    table.add_row("Bayes ceiling", *(f"{ceiling[k]:.3f}" for k in ("top1", "top3", "recall5")))
    for method, scores in result.final.items():
        if method != "personalized":
            table.add_row(_label(method), *(f"{scores[k]:.3f}" for k in ("top1", "top3", "recall5")))
    Console().print(table)
    own = Table(title="after the last round, each cart on its own held-out rows (mean over carts)")
    for column in ("", "top-1", "top-3", "recall@5"):
        own.add_column(column, justify="right")
    for method, scores in result.own_rows.items():
        own.add_row(_label(method), *(f"{scores[k]:.3f}" for k in ("top1", "top3", "recall5")))
    Console().print(own)


def _label(method: str) -> str:
    """A method's row name: the two federated rows say which of a cart's models they score."""
    named = {"federated": "federated, kept models", "swarm": "federated, swarm models (trained from)"}
    return named.get(method, method.replace("_", "-"))


def refuse_bad_privacy(config: SimConfig) -> None:
    """The --dp-* and --secure-aggregation options checked as the carts' round settings will check them, before
    anything starts (secure aggregation with a robust rule or too small a cohort is refused with the reason)."""
    from pydantic import ValidationError

    from cartnet.secagg import MIN_COHORT
    from child_cart.rounds.settings import RoundSettings

    try:
        RoundSettings.model_validate(config.round_options())
    except ValidationError as exc:
        raise typer.BadParameter("; ".join(dict.fromkeys(str(error["msg"]) for error in exc.errors()))) from None
    if config.secure_aggregation and config.carts <= MIN_COHORT:
        raise typer.BadParameter(
            f"--secure-aggregation with {config.carts} carts leaves each cart {config.carts - 1} peers: a masked "
            f"cohort needs at least {MIN_COHORT}, so run at least {MIN_COHORT + 1} carts"
        )


def print_privacy(rows: list[RoundRow], config: SimConfig) -> None:
    """Final federated accuracy next to the ε the carts spent for it."""
    final = rows[-1] if rows else None
    if final is not None and final.epsilon is not None:
        typer.echo(
            f"differential privacy (client level, noise {config.dp_noise:g}, clip {config.dp_clip:g}): final federated "
            f"accuracy {final.fed_mean:.3f} at ε = {final.epsilon:.3f} (δ = {config.dp_delta:g}); "
            f"{final.sharing}/{config.carts} carts still sharing"
        )


def print_table(rows: list[RoundRow], config: SimConfig) -> None:
    dp = f", DP noise {config.dp_noise:g} clip {config.dp_clip:g}" if config.dp else ""
    dp = f", {config.method}{dp}" if config.method != "fedavg" else dp
    dp += ", secure aggregation" if config.secure_aggregation else ""
    table = Table(
        title=f"{config.carts} carts, {config.bridges} bridges, {config.aggregator}, skew {config.skew}{dp}: pooled held-out accuracy"
    )
    columns = [
        "round",
        "fed mean",
        "fed min",
        "fed max",
        "centralized",
        "local-only",
        "accepted",
        "KB payload",
        "KB wire",
        "KB sent",
        "s",
    ]
    if config.dp:
        columns += ["sharing", f"ε (δ={config.dp_delta:g})"]
    for column in columns:
        table.add_column(column, justify="right")
    for r in rows:
        privacy = [f"{r.sharing}/{config.carts}", f"{r.epsilon:.3f}"] if r.epsilon is not None else []
        table.add_row(
            str(r.round + 1),
            f"{r.fed_mean:.3f}",
            f"{r.fed_min:.3f}",
            f"{r.fed_max:.3f}",
            f"{r.centralized:.3f}",
            f"{r.local_mean:.3f}",
            f"{r.accepted}/{config.carts}",
            f"{r.bytes_moved / 1e3:.0f}",
            f"{r.wire_bytes / 1e3:.0f}",
            f"{r.sent_bytes / 1e3:.0f}",
            f"{r.seconds:.1f}",
            *privacy,
        )
    Console().print(table)
