"""Flower's side of `bench/flower_compare.py`: its FedAvg simulation on the carts' rows `fedcart simulate` uses.

Runs inside `.venv-flower` (Flower 1.41 with Ray, kept out of the product's
dependencies), with the repository on `PYTHONPATH`, so it imports the very
generator, task and model builder the product uses: `synth.generate` with the
same catalogue, rows per cart, carts, seed and skew gives the same carts'
rows, `RecommendTask.make_dataset` the same train / held-out split, and
`build_model(seed=0)` the same initial weights as every cart's `Learner`.

Every round each of the N simulated clients (one per cart; `--clients C`: C of
them, drawn by Flower, as many updates as a fedcart cart averages at k = C - 1) trains the global
model for `epochs` epochs (batch 32, as a cart's `Learner`) on its cart's
training rows, with its own Adam state carried from its previous round (in
the client's `context.state`), as a cart keeps its own; FedAvg weights the
results by training rows. (Before 30 Nov 2026 the clients a Ray worker ran
shared one optimizer state; over seeds 0-4 that scored 0.773 pooled top-3
against 0.775 now.) The global model
is scored on the pooled held-out rows of all carts after every round (Flower's
centralized evaluation; no client-side evaluation round), and the last one
also on each cart's own held-out rows (mean over carts). Payload bytes are
Flower's own count of the arrays it carries (`ArrayRecord.count_bytes`: the
float32 data and their keys), server to clients plus clients to server, with
no message framing or transport. Results go to a JSON file, never a pickle.

    PYTHONPATH=. .venv-flower/bin/python bench/_flower_fedavg.py --carts 10 --rounds 5 --out flower.json
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from flwr.simulation import run_simulation

from child_cart.store import load_catalogue
from child_cart.synth import shoppers as synth
from child_cart.tasks import Dataset
from child_cart.tasks.base import fit_keras
from child_cart.tasks.recommend import RecommendTask

BATCH_SIZE = 32  # child_cart.rounds.learner.Learner's default
METRICS = {"top1": "accuracy", "top3": "top3_accuracy", "recall5": "recall_at_5"}


@functools.cache
def carts_data(carts: int, rows: int, seed: int, skew: float) -> tuple[RecommendTask, list[Dataset], Dataset]:
    """The task, each cart's dataset and the pooled one, exactly as `fedcart.simulation.simulate` makes them."""
    catalogue = load_catalogue()
    data = synth.generate(catalogue, rows, carts, seed, skew)
    task = RecommendTask(catalogue)
    pooled = task.make_dataset([row for share in data for row in share])
    return task, [task.make_dataset(share) for share in data], pooled


@functools.cache
def keras_model(carts: int, rows: int, seed: int, skew: float) -> Any:
    """One compiled model per Ray worker, re-used with new weights and each client's own optimizer state
    (`own_optimizer`), as a cart's `Learner` re-uses its own."""
    task, _, _ = carts_data(carts, rows, seed, skew)
    return task.build_model(seed=0)


client = ClientApp()
OPTIMIZER = "optimizer"


def optimizer_state(model: Any) -> list[Any]:
    """The optimizer's variables that belong to one client's training (Adam's step count and moments, not its
    learning rate)."""
    return [v for v in model.optimizer.variables if not v.path.endswith("learning_rate")]


def own_optimizer(model: Any, context: Context) -> None:
    """Give the worker's shared model this client's own optimizer state, as a cart keeps its own: the state it left
    in its previous round (kept in the client's `context.state`), or a fresh one."""
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    variables = optimizer_state(model)
    saved = context.state[OPTIMIZER].to_numpy_ndarrays() if OPTIMIZER in context.state else None
    for i, variable in enumerate(variables):
        variable.assign(saved[i] if saved is not None else np.zeros(variable.shape, variable.dtype))


@client.train()
def train(msg: Message, context: Context) -> Message:
    """Train the global model on this client's cart's rows for the configured epochs."""
    config = msg.content["config"]
    shape = (int(config["carts"]), int(config["rows"]), int(config["seed"]), float(config["skew"]))
    _, datasets, _ = carts_data(*shape)
    dataset = datasets[int(context.node_config["partition-id"])]
    model = keras_model(*shape)
    model.set_weights(msg.content["arrays"].to_numpy_ndarrays())
    own_optimizer(model, context)
    fit_keras(model, dataset.x_train, dataset.y_train, int(config["epochs"]), BATCH_SIZE)
    context.state[OPTIMIZER] = ArrayRecord([np.asarray(v.numpy()) for v in optimizer_state(model)])
    reply = RecordDict(
        {
            "arrays": ArrayRecord(list(model.get_weights())),
            "metrics": MetricRecord({"num-examples": len(dataset.x_train)}),
        }
    )
    return Message(content=reply, reply_to=msg)


class CountingFedAvg(FedAvg):
    """FedAvg that adds up the array payload it sends and receives per round."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.payload: dict[int, int] = {}

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        messages = list(super().configure_train(server_round, arrays, config, grid))
        self.payload[server_round] = len(messages) * arrays.count_bytes()
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        self.payload[server_round] += sum(m.content["arrays"].count_bytes() for m in replies if not m.has_error())
        return super().aggregate_train(server_round, replies)


def server_app(args: argparse.Namespace) -> ServerApp:
    """The ServerApp: FedAvg over all clients (or `clients` of them) every round, the global model scored on the
    pooled held-out rows."""
    app = ServerApp()
    shape = (args.carts, args.rows, args.seed, args.skew)

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        task, datasets, pooled = carts_data(*shape)
        model = task.build_model(seed=0)
        clients = args.clients or args.carts
        strategy = CountingFedAvg(
            fraction_train=clients / args.carts,
            fraction_evaluate=0.0,
            min_train_nodes=clients,
            min_available_nodes=args.carts,
        )
        marks: list[float] = []
        scores: list[dict[str, float]] = []

        def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
            marks.append(time.perf_counter())
            model.set_weights(arrays.to_numpy_ndarrays())
            metrics = task.evaluate(model, pooled.x_val, pooled.y_val)
            if server_round:
                scores.append({name: metrics[key] for name, key in METRICS.items()})
                print(f"  flower round {server_round}/{args.rounds}: top-1 {metrics['accuracy']:.3f}", flush=True)
            return MetricRecord({name: metrics[key] for name, key in METRICS.items()})

        train_config = ConfigRecord({"carts": args.carts, "rows": args.rows, "seed": args.seed, "skew": args.skew})
        train_config["epochs"] = args.epochs
        strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(model.get_weights()),
            num_rounds=args.rounds,
            train_config=train_config,
            evaluate_fn=evaluate,
        )
        own = [task.evaluate(model, d.x_val, d.y_val) for d in datasets]  # the last round's global model
        result = {
            "flwr": _flwr_version(),
            "held_out": len(pooled.y_val),
            "own_rows": {name: sum(m[key] for m in own) / len(own) for name, key in METRICS.items()},
            "rounds": scores,
            "seconds_per_round": [round(b - a, 3) for a, b in zip(marks, marks[1:])],
            "payload_bytes_per_round": [strategy.payload[r] for r in sorted(strategy.payload)],
        }
        Path(args.out).write_text(json.dumps(result, indent=2))

    return app


def _flwr_version() -> str:
    import flwr

    return str(flwr.__version__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--carts", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skew", type=float, default=1.0)
    parser.add_argument("--clients", type=int, default=0, help="clients trained per round (0 = every one)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    run_simulation(
        server_app=server_app(args),
        client_app=client,
        num_supernodes=args.carts,
        backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"num_cpus": 2, "include_dashboard": False, "logging_level": "ERROR"},
        },
    )


if __name__ == "__main__":
    # Ray's workers find the ClientApp's functions by module name, which `__main__` is not over there
    from bench._flower_fedavg import main as imported_main

    imported_main()
