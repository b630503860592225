"""fedcart against Flower's FedAvg on the same carts' rows, model, epochs and rounds, side by side.

fedcart's side is `fedcart simulate` (`fedcart.simulation.simulate`, in this
process: real bridges, real carts, the real protocol). Flower's side is
`bench/_flower_fedavg.py`, run by Flower 1.41's simulation runtime (Ray) in
its own virtual environment `.venv-flower`, which this bench creates on its
first run (the project's locked runtime packages, then `flwr[simulation]`
pinned; a few minutes, then seconds) so Flower never enters the product's
dependencies. Both import the same generator and model builder with the same
seed, so both train the same model from the same initial weights on the same
rows and score it on the same pooled held-out rows.

What is compared per round: top-1 and top-3 on the pooled held-out rows
(fedcart: the mean over carts of each cart's kept model; Flower: its global
model; the final table adds each cart's swarm model, the last aggregate it
adopted and trains from, `child_cart.rounds.swarm_model`, Flower's global
model's counterpart), seconds (fedcart: the round, baselines excluded; Flower: between two
centralized evaluations, so its first round includes Ray starting its workers
and TensorFlow importing in them) and bytes (fedcart: every WebSocket frame
the carts sent or received, headers, signatures, peer lookups and sealing
included, so a frame relayed through a bridge counts at both carts; the same
frames each counted once, where they started ("sent", the way Flower counts
each array once); and its weights payload alone; Flower: its own count of the
arrays it carries, `ArrayRecord.count_bytes`, no framing or transport). Flower is the
baseline: the last table gives fedcart / Flower.

    .venv/bin/python bench/flower_compare.py [--carts 10] [--rounds 5] [--epochs 3] [--k 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from _machine import describe
from rich.console import Console
from rich.table import Table

from fedcart.simulate_cmd import quiet_nodes
from fedcart.simulation import SimConfig, SimResult, simulate

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-flower"
FLWR = "1.41.0"
FLOWER_SIDE = ROOT / "bench" / "_flower_fedavg.py"
console = Console(width=None if sys.stdout.isatty() else 160)  # a piped table keeps its columns whole


def flower_python() -> Path:
    """`.venv-flower`'s interpreter, the venv created or repaired first when it lacks Flower `FLWR` (idempotent)."""
    python = VENV / "bin" / "python"
    check = f"import flwr, sys; sys.exit(flwr.__version__ != {FLWR!r})"
    if python.exists() and subprocess.run([python, "-c", check], capture_output=True).returncode == 0:
        return python
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        raise SystemExit("uv is missing: run `make setup` (it installs the dev tools) and try again")
    console.print(f"[bold]setting up {VENV.name}[/] (first run: locked runtime packages + flwr[simulation]=={FLWR})")
    steps = [
        [uv, "venv", "--clear", "--python", sys.executable, str(VENV)],
        [uv, "pip", "install", "--python", str(python), "-r", str(ROOT / "requirements.lock")],
        # after the lock: Flower pins packaging < 26, which the lock (for the dev tools) has newer
        [uv, "pip", "install", "--python", str(python), f"flwr[simulation]=={FLWR}"],
    ]
    for step in steps:
        console.print(f"  $ {' '.join(step[:4])} ...")
        subprocess.run(step, check=True)
    return python


def run_fedcart(args: argparse.Namespace) -> SimResult:
    console.print(f"[bold]fedcart[/]: {args.carts} carts, {args.rounds} rounds, k={args.k}, {args.method}")
    config = SimConfig(
        carts=args.carts,
        rounds=args.rounds,
        skew=args.skew,
        rows_per_cart=args.rows,
        epochs=args.epochs,
        k=args.k,
        seed=args.seed,
        out_dir=args.out / "fedcart",
        method=args.method,
    )
    return asyncio.run(simulate(config))


def run_flower(args: argparse.Namespace) -> dict:
    python = flower_python()
    out = args.out / "flower.json"
    log = args.out / "flower.log"
    console.print(f"[bold]Flower {FLWR}[/] FedAvg: {args.carts} clients, {args.rounds} rounds (its log: {log})")
    command = [str(python), str(FLOWER_SIDE), "--out", str(out)]
    for name in ("carts", "rounds", "rows", "epochs", "seed", "skew", "clients"):
        command += [f"--{name}", str(getattr(args, name))]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    with log.open("w") as stderr:
        subprocess.run(command, check=True, cwd=ROOT, env=env, stderr=stderr)
    return json.loads(out.read_text())


def per_round_table(fed: SimResult, flower: dict, args: argparse.Namespace) -> Table:
    table = Table(title=f"per round, pooled held-out rows ({fed.held_out} rows; Flower: {flower['held_out']})")
    columns = ["round", "top-1 fedcart", "top-1 Flower", "top-3 fedcart", "top-3 Flower", "s fedcart", "s Flower"]
    columns += ["KB wire fedcart", "KB sent fedcart", "KB payload fedcart", "KB payload Flower"]
    for column in columns:
        table.add_column(column, justify="right")
    for row, theirs, seconds, payload in zip(
        fed.rows, flower["rounds"], flower["seconds_per_round"], flower["payload_bytes_per_round"]
    ):
        table.add_row(
            str(row.round + 1),
            f"{row.fed_mean:.3f}",
            f"{theirs['top1']:.3f}",
            f"{row.fed_top3:.3f}",
            f"{theirs['top3']:.3f}",
            f"{row.seconds:.1f}",
            f"{seconds:.1f}",
            f"{row.wire_bytes / 1e3:.0f}",
            f"{row.sent_bytes / 1e3:.0f}",
            f"{row.bytes_moved / 1e3:.0f}",
            f"{payload / 1e3:.0f}",
        )
    return table


def final_table(fed: SimResult, flower: dict) -> Table:
    """Last round's accuracy, mean seconds and bytes per round, as fedcart / Flower."""
    ours_rows, theirs = fed.rows, flower
    last, own = theirs["rounds"][-1], theirs["own_rows"]
    ours_final, swarm = fed.final["federated"], fed.final["swarm"]
    wire = sum(r.wire_bytes for r in ours_rows) / len(ours_rows)
    sent = sum(r.sent_bytes for r in ours_rows) / len(ours_rows)
    payload = sum(r.bytes_moved for r in ours_rows) / len(ours_rows)
    flower_payload = sum(theirs["payload_bytes_per_round"]) / len(theirs["payload_bytes_per_round"])
    lines = [
        ("final top-1, kept models", ours_final["top1"], last["top1"]),
        ("final top-3, kept models", ours_final["top3"], last["top3"]),
        ("final recall@5, kept models", ours_final["recall5"], last["recall5"]),
        ("final top-1, swarm models (trained from)", swarm["top1"], last["top1"]),
        ("final top-3, swarm models", swarm["top3"], last["top3"]),
        ("final recall@5, swarm models", swarm["recall5"], last["recall5"]),
        ("final top-3, each cart's own rows: kept model", fed.own_rows["federated"]["top3"], own["top3"]),
        ("final top-3, own rows: fedcart personal model", fed.own_rows["personalized"]["top3"], own["top3"]),
        (
            "s / round (after the first)",
            _mean([r.seconds for r in ours_rows[1:]]),
            _mean(theirs["seconds_per_round"][1:]),
        ),
        ("KB / round: fedcart wire at the carts vs Flower payload", wire / 1e3, flower_payload / 1e3),
        ("KB / round: fedcart wire, each frame once vs Flower payload", sent / 1e3, flower_payload / 1e3),
        ("KB / round: payload vs payload", payload / 1e3, flower_payload / 1e3),
    ]
    table = Table(title="final: fedcart against Flower's FedAvg (the baseline)")
    for column in ("", "fedcart", "Flower", "fedcart / Flower"):
        table.add_column(column, justify="right")
    for name, ours, flowers in lines:
        table.add_row(name, f"{ours:.3f}", f"{flowers:.3f}", f"{ours / flowers:.2f}" if flowers else "-")
    return table


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--carts", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=600, help="purchases per cart")
    parser.add_argument("--epochs", type=int, default=3, help="local epochs per round, both sides")
    parser.add_argument("--k", type=int, default=4, help="peers each fedcart cart asks per round")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skew", type=float, default=1.0)
    parser.add_argument("--method", default="fedavg", help="fedcart's method (Flower runs FedAvg)")
    parser.add_argument(
        "--clients",
        type=int,
        default=0,
        help="clients Flower trains per round (0 = every one; k + 1 averages as many updates as a fedcart cart)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "flower_compare")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.ERROR)  # dozens of in-process nodes; the tables are the output
    quiet_nodes()
    console.print(f"machine: {describe()}; load average {os.getloadavg()[0]:.2f} at the start")
    flower_python()  # set up first, so neither side's timing includes an install
    fed = run_fedcart(args)
    flower = run_flower(args)
    console.print(per_round_table(fed, flower, args))
    console.print(final_table(fed, flower))
    console.print(
        f"same rows, model, initial weights, epochs ({args.epochs}) and rounds ({args.rounds}); skew {args.skew}, "
        f"{args.carts} carts, fedcart k={args.k} ({args.method}); Flower: "
        f"{f'{args.clients} clients' if args.clients else 'every client'} every round. Load average "
        f"{os.getloadavg()[0]:.2f} at the end (other work on this machine slows both sides)."
    )


if __name__ == "__main__":
    main()
