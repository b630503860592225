"""`fedcart simulate`: N carts, real bridges and the real protocol, in one process.

Everything runs on one asyncio loop that shares one TensorFlow runtime (N
processes would each pay ~0.5 GB for TensorFlow). Bridges are real aiohttp +
Kademlia servers on 127.0.0.1, carts are real `CartNode`s with their own
embedded stores, keys and bridge connections; only the round schedule is driven
from here, with a barrier after training so each round's updates are on offer
before anyone asks. The same synthetic data then trains the two baselines:
centralized (all rows pooled, same epoch budget) and local-only (no exchange).
Every model is scored on the pooled held-out rows of all carts, next to the
generator's Bayes ceiling for those rows (`bayes_ceiling`, exact).

`method` picks how the carts learn under skew: `fedavg`, `fedprox` (the
proximal term, `mu`), `personalized` (PERSONALIZE fits each round's aggregate
to the cart's own rows: `personalize_epochs`, then `personalize_head`) or `local_head` (carts
share the model's body, each keeps its own output layer). Whatever the method,
`summary.json` in the output folder holds the final top-1/top-3/recall@5 of
every method: "federated" scores each cart's kept model (the one it serves),
"swarm" its swarm model (the last aggregate it adopted, which it trains from:
`child_cart.rounds.swarm_model`; the counterpart of Flower's global model),
the "personalized" one (each cart's swarm model fine-tuned on its own rows for
`personalize_epochs`, then its output layer refitted there, `personalize_head`,
on its own held-out rows, as PERSONALIZE personalizes the aggregate; in a
`personalized` or `local_head` run the kept model itself), the same methods on each cart's own held-out rows
(`own_rows`), and per round the bytes on the wire (`wire_bytes_per_round`: every
WebSocket frame the carts sent or received, headers included, so a frame relayed
from cart to cart counts at both; `sent_bytes_per_round`: each frame once, where
it started; `payload_bytes_per_round`: the weights alone) and the seconds.

Rows per cart: 600 purchase rows make ~150 baskets and ~440 task rows (one per
new category of a basket), ~90 of them held out. Pooled over 10 carts that is
~880 held-out rows, so a top-1/top-3/recall@5 has a standard error of at most
0.5/sqrt(880) = 1.7 points (2 points needs >= 625); fewer carts need more rows.
"""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.progress import Progress

from cartnet.files import write_atomic
from child_cart.rounds.learner import Learner
from child_cart.store import load_catalogue
from child_cart.synth import shoppers as synth
from child_cart.synth.shoppers import Ceiling
from child_cart.tasks import Dataset
from child_cart.tasks.recommend import RecommendTask
from fedcart.cartgroup import CartGroup, open_group
from fedcart.inprocess import start_bridges

log = logging.getLogger(__name__)

METHODS = ("fedavg", "fedprox", "personalized", "local_head")
PERSONAL_METHODS = ("personalized", "local_head")
"""Methods whose kept model is the cart's personal one already (the others are fine-tuned after the last round)."""


@dataclass(frozen=True)
class SimConfig:
    carts: int = 20
    rounds: int = 10
    aggregator: str = "fedavg"
    skew: float = 1.0
    bridges: int = 2
    rows_per_cart: int = 600
    epochs: int = 3
    k: int = 4
    seed: int = 0
    out_dir: Path = Path("reports/simulate")
    dp_noise: float = 0.0
    dp_clip: float = 0.0
    dp_delta: float = 1e-5
    dp_budget: float = 10.0
    method: str = "fedavg"
    secure_aggregation: bool = False
    mu: float = 0.01  # the best of 0.01, 0.1 and 1 at 10 carts, skew 1 (README, non-IID methods)
    personalize_epochs: int = 1
    personalize_head: bool = True  # then refit the output layer on the cart's rows (`child_cart.tasks.head_refit`)
    backend: str = "inprocess"  # or "ray": the carts spread over Ray actors (`fedcart.raysim`, the `ray` extra)
    address: str | None = None  # backend ray: an existing cluster; None starts a local Ray instance
    actors: int = 0  # backend ray: groups of carts, one actor (one TensorFlow runtime) each; 0 = one per CPU
    precision: str = "int8"  # how carts pack the weights they send (`cartnet.quantize`, round setting update_precision)

    @property
    def dp(self) -> bool:
        """Whether the carts run with client-level differential privacy (`child_cart.rounds.privacy`)."""
        return self.dp_noise > 0 or self.dp_clip > 0

    def round_options(self) -> dict[str, object]:
        """The round settings every cart starts with (validated by `RoundSettings` when saved)."""
        options: dict[str, object] = {
            "aggregator": self.aggregator,
            "k": self.k,
            "local_epochs": self.epochs,
            "update_precision": self.precision,
        }
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.method == "fedprox":
            options["prox_mu"] = self.mu
        if self.method == "personalized":
            options["personalize_epochs"] = self.personalize_epochs
            options["personalize_head"] = self.personalize_head
        if self.method == "local_head":
            options["local_head"] = True
        if self.dp:
            options.update(
                dp_noise_multiplier=self.dp_noise,
                dp_clip_norm=self.dp_clip,
                dp_delta=self.dp_delta,
                dp_epsilon_budget=self.dp_budget,
            )
        if self.secure_aggregation:
            options["secure_aggregation"] = True
        return options


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
    wire_bytes: int
    accepted: int
    epsilon: float | None = None  # differential privacy: the most any cart has spent so far, at dp_delta
    sharing: int | None = None  # differential privacy: carts that offered an update this round
    fed_top3: float = 0.0  # top-3 of the carts' kept models on the pooled held-out rows, mean over carts
    sent_bytes: int = 0  # each frame once, at whoever sent it (`fedcart.cartgroup.Wire.sent`)


FINAL_METRICS = {"top1": "accuracy", "top3": "top3_accuracy", "recall5": "recall_at_5"}


@dataclass
class SimResult:
    rows: list[RoundRow] = field(default_factory=list)
    csv_path: Path | None = None
    plot_path: Path | None = None
    ceiling: Ceiling | None = None
    held_out: int = 0
    final: dict[str, dict[str, float]] = field(default_factory=dict)
    """After the last round, per method (federated and local-only: mean over carts): top1, top3, recall5."""
    own_rows: dict[str, dict[str, float]] = field(default_factory=dict)
    """The same on each cart's own held-out rows (mean over carts), personalized included."""
    summary_path: Path | None = None


async def simulate(config: SimConfig) -> SimResult:
    """Run the federated simulation and both baselines; write the CSV and the plot."""
    catalogue = load_catalogue()
    data = synth.generate(catalogue, config.rows_per_cart, config.carts, config.seed, config.skew)
    task = RecommendTask(catalogue)
    pooled = task.make_dataset([row for rows in data for row in rows])
    ceiling = synth.bayes_ceiling(catalogue, config.carts, config.seed, config.skew)
    with tempfile.TemporaryDirectory(prefix="fedcart-sim-") as scratch:
        bridges = await start_bridges(config.bridges, Path(scratch))
        carts: CartGroup | None = None
        try:
            carts = await open_group(
                config.backend, data, bridges, Path(scratch), config.round_options(), config.address, config.actors
            )
            result = await _run_rounds(config, carts, pooled, data, task)
            result.ceiling, result.held_out = ceiling, len(pooled.y_val)
        finally:
            if carts is not None:
                await carts.stop()
            for bridge in bridges:
                await bridge.stop()
    config.out_dir.mkdir(parents=True, exist_ok=True)
    result.csv_path = _write_csv(result.rows, config.out_dir / "simulate.csv")
    result.plot_path = _plot(result.rows, config, config.out_dir / "simulate.png")
    result.summary_path = _write_summary(result, config, task.name, config.out_dir / "summary.json")
    return result


def summary(result: SimResult, config: SimConfig, task: str) -> dict[str, object]:
    """What `summary.json` holds: the run's shape, the ceiling, each method's final scores, bytes and seconds per round."""
    doc: dict[str, object] = {
        "task": task,
        "method": config.method,
        "carts": config.carts,
        "rounds": config.rounds,
        "skew": config.skew,
        "epochs": config.epochs,
        "k": config.k,
        "secure_aggregation": config.secure_aggregation,
        "precision": config.precision,
        "held_out": result.held_out,
        "bayes_ceiling": result.ceiling.as_dict() if result.ceiling is not None else None,
        **{
            method: result.final.get(method)
            for method in ("federated", "swarm", "centralized", "local_only", "personalized")
        },
        "own_rows": result.own_rows,
        "wire_bytes_per_round": [r.wire_bytes for r in result.rows],
        "sent_bytes_per_round": [r.sent_bytes for r in result.rows],
        "payload_bytes_per_round": [r.bytes_moved for r in result.rows],
        "seconds_per_round": [round(r.seconds, 3) for r in result.rows],
    }
    if config.dp:
        doc["epsilon"] = result.rows[-1].epsilon if result.rows else None
    return doc


def _write_summary(result: SimResult, config: SimConfig, task: str, path: Path) -> Path:
    write_atomic(path, json.dumps(summary(result, config, task), indent=2).encode())
    return path


async def _run_rounds(
    config: SimConfig, carts: CartGroup, pooled: Dataset, data: list[list[dict]], task: RecommendTask
) -> SimResult:
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
            start, wire_before = time.perf_counter(), await carts.wire_bytes()
            records = await carts.run_round()
            seconds = time.perf_counter() - start
            wire = await carts.wire_bytes() - wire_before
            pooled_scores = await carts.scores_on(pooled.x_val, pooled.y_val)
            fed = [score["accuracy"] for score in pooled_scores]
            central_w = await asyncio.to_thread(central.train, central_w, config.epochs)
            local_ws = [await asyncio.to_thread(lr.train, w, config.epochs) for lr, w in zip(locals_, local_ws)]
            local_acc = [lr.evaluate_on(w, pooled.x_val, pooled.y_val)["accuracy"] for lr, w in zip(locals_, local_ws)]
            privacy = [r.privacy for r in records if r.privacy is not None]
            result.rows.append(
                RoundRow(
                    round=number,
                    fed_mean=float(np.mean(fed)),
                    fed_min=float(np.min(fed)),
                    fed_max=float(np.max(fed)),
                    centralized=central.evaluate_on(central_w, pooled.x_val, pooled.y_val)["accuracy"],
                    local_mean=float(np.mean(local_acc)),
                    bytes_moved=sum(r.bytes_in for r in records),
                    seconds=seconds,
                    wire_bytes=wire.at_carts,
                    sent_bytes=wire.sent,
                    accepted=sum(r.accepted for r in records),
                    epsilon=max(p.epsilon for p in privacy) if privacy else None,
                    sharing=sum(p.shared for p in privacy) if privacy else None,
                    fed_top3=float(np.mean([score["top3_accuracy"] for score in pooled_scores])),
                )
            )
            progress.advance(bar)
    scores = {
        "federated": await carts.scores_on(pooled.x_val, pooled.y_val),
        "swarm": await carts.scores_on(pooled.x_val, pooled.y_val, swarm=True),
        "centralized": [central.evaluate_on(central_w, pooled.x_val, pooled.y_val)],
        "local_only": [lr.evaluate_on(w, pooled.x_val, pooled.y_val) for lr, w in zip(locals_, local_ws)],
    }
    own = {
        "federated": await carts.own_scores(),
        "centralized": [central.evaluate_on(central_w, *xy) for xy in await carts.own_val()],
        "local_only": [lr.evaluate(w) for lr, w in zip(locals_, local_ws)],
        # a personalized run's kept model is personal already; otherwise the swarm model fine-tuned on the cart's rows
        "personalized": await carts.personal_scores(
            config.method in PERSONAL_METHODS, config.personalize_epochs, config.personalize_head
        ),
    }
    result.final, result.own_rows = _means(scores), _means(own)
    result.final["personalized"] = result.own_rows["personalized"]  # a personal model is judged on its own cart's rows
    return result


def _means(scores: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {
        method: {
            name: float(np.mean([m[metric] for m in metrics if metric in m])) for name, metric in FINAL_METRICS.items()
        }
        for method, metrics in scores.items()
    }


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
    ax.set(
        xlabel="round",
        ylabel="pooled held-out accuracy",
        title=f"{config.carts} carts, skew {config.skew}, {config.epochs} epochs/round",
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
