"""Privacy costs, each against the plain round measured in the same run.

Rounds (`fedcart.simulation`, the default task `recommend`): the same small swarm (real bridge,
real carts, real rounds) runs once plain and once per privacy option: client-level differential
privacy at a few noise multipliers (clip norm `--clip`, printed next to the median norm of one
local round's update on this data), secure aggregation, and both together. Each row gives the
final federated accuracy on the pooled held-out rows and ε (δ = 1e-5, the RDP accountant's figure
for the rounds shared), seconds and wire bytes per round, as ratios against the plain run. The
budget is set out of reach, so every cart shares every round and ε is what the rounds cost.

Arithmetic (cartnet.secagg): for a cohort of k peers each sending the default task's
update (and a 1M-parameter one, to show how it scales), the time a peer spends masking
(quantize, k - 1 X25519 agreements, k ChaCha20 expansions), the time the requester spends
summing and unmasking with one peer dropped out, and the bytes a peer sends (the encoded
update as `cartnet.weights` ships it, plus commitments, signature and reveal), against the
plain exchange: each peer encodes its float32 update, the requester decodes and averages.
It also prints the measured quantization error of the mean against its bound.

Other processes on the machine (other benches, tests) slow the round timings; the load average
is printed with the machine.

    .venv/bin/python bench/privacy.py [--noise 0.5 1 2] [--clip 1] [--carts 6] [--rounds 4] [--k 3 5 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _machine import describe
from rich.console import Console
from rich.table import Table

from cartnet import weights
from cartnet.identity import Identity
from cartnet.secagg import SEED, Cohort, Masker, Quantizer, Unmasker

CLIP = 4.0
SCALE = 2.0**16
SIGNATURE = 64


def timed(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def default_task_layers() -> list[tuple[int, ...]]:
    from child_cart.tasks import get_task

    return [w.shape for w in get_task("recommend").build_model(seed=0).get_weights()]


def measure(layers: list[tuple[int, ...]], k: int, repeat: int, rng: np.random.Generator) -> dict[str, float]:
    identities = [Identity.generate() for _ in range(k)]
    cohort = Cohort("f" * 40, "bench", "recommend", 1, {i.node_id: i.kx_public_key for i in identities})
    quantizer = Quantizer(CLIP, SCALE, k)
    updates = {i.node_id: [rng.normal(0, 0.05, shape).astype(np.float32) for shape in layers] for i in identities}
    flat = {node: np.concatenate([w.ravel() for w in ws]) for node, ws in updates.items()}
    members = cohort.members
    one = members[0]
    by_id = {i.node_id: i for i in identities}

    plain_send = timed(lambda: weights.encode(updates[one]), repeat)
    blobs = [weights.encode(updates[m]) for m in members[1:]]  # the same k - 1 the masked sum gets
    plain_sum = timed(
        lambda: np.mean([np.concatenate([w.ravel() for w in weights.decode(b)]) for b in blobs], 0), repeat
    )

    def mask_one() -> None:
        masked = Masker(cohort, one, by_id[one].kx_key, quantizer).mask(flat[one])
        weights.encode([masked.values])

    masked_send = timed(mask_one, repeat)

    def round_with_one_dropped() -> np.ndarray:
        maskers = {m: Masker(cohort, m, by_id[m].kx_key, quantizer) for m in members}
        masked = {m: maskers[m].mask(flat[m]) for m in members[1:]}
        blobs = {m: weights.encode([u.values]) for m, u in masked.items()}
        started = time.perf_counter()
        unmasker = Unmasker(cohort, quantizer)
        for m, update in masked.items():
            weights.decode(blobs[m])
            unmasker.add(update)
        reveals = {m: maskers[m].reveal(unmasker.survivors) for m in masked}
        total, _ = unmasker.unmask(reveals)
        round_with_one_dropped.requester = time.perf_counter() - started  # type: ignore[attr-defined]
        return total / len(masked)

    best_requester = float("inf")
    for _ in range(repeat):
        mean = round_with_one_dropped()
        best_requester = min(best_requester, round_with_one_dropped.requester)  # type: ignore[attr-defined]
    exact = np.mean([flat[m] for m in members[1:]], axis=0)
    error = float(np.max(np.abs(mean - exact)))

    masked_update = Masker(cohort, one, by_id[one].kx_key, quantizer).mask(flat[one])
    masked_bytes = len(weights.encode([masked_update.values])) + SEED * k + SIGNATURE + SEED * 2 + SIGNATURE
    return {
        "params": float(flat[one].size),
        "plain_send": plain_send,
        "masked_send": masked_send,
        "plain_sum": plain_sum,
        "masked_sum": best_requester,
        "plain_bytes": float(len(blobs[0])),
        "masked_bytes": float(masked_bytes),
        "error": error,
        "bound": quantizer.error_bound(k - 1) / (k - 1),
    }


@dataclass(frozen=True)
class Run:
    """One simulation of the bench: a label and its privacy options."""

    label: str
    noise: float = 0.0
    secure: bool = False


def median_update_norm(carts: int, rows: int, epochs: int) -> float:
    """The median L2 norm of one local round's update (from the initial model) over the bench's carts."""
    from child_cart.rounds.learner import Learner
    from child_cart.rounds.privacy import update_norm
    from child_cart.store import load_catalogue
    from child_cart.synth import shoppers
    from child_cart.tasks.recommend import RecommendTask

    catalogue = load_catalogue()
    task = RecommendTask(catalogue)
    norms = []
    for share in shoppers.generate(catalogue, rows, carts, 0, 1.0):
        learner = Learner(task)
        learner.load_rows(share)
        start = learner.initial_weights
        norms.append(update_norm(start, learner.train(start, epochs)))
    return float(np.median(norms))


def simulate(run: Run, args: argparse.Namespace, out: Path) -> dict[str, float]:
    """Final federated top-1/top-3, ε, mean seconds and wire bytes per round of one run."""
    from fedcart.simulation import SimConfig
    from fedcart.simulation import simulate as run_simulation

    dp = {"dp_noise": run.noise, "dp_clip": args.clip, "dp_budget": 1e6} if run.noise > 0 else {}
    config = SimConfig(
        carts=args.carts,
        rounds=args.rounds,
        bridges=1,
        rows_per_cart=args.rows,
        epochs=args.epochs,
        k=3,
        out_dir=out,
        secure_aggregation=run.secure,
        **dp,  # type: ignore[arg-type]
    )
    result = asyncio.run(run_simulation(config))
    federated = result.final["federated"]
    return {
        "top1": federated["top1"],
        "top3": federated["top3"],
        "local": result.final["local_only"]["top1"],
        "epsilon": result.rows[-1].epsilon or 0.0,
        "seconds": float(np.mean([r.seconds for r in result.rows])),
        "wire": float(np.mean([r.wire_bytes for r in result.rows])),
        "accepted": float(np.mean([r.accepted for r in result.rows])),
    }


def rounds_table(args: argparse.Namespace, console: Console) -> Table:
    """Plain, differentially private, masked and both: the same swarm, the figures as ratios against plain."""
    from fedcart.simulate_cmd import quiet_nodes

    quiet_nodes()
    norm = median_update_norm(args.carts, args.rows, args.epochs)
    runs = [Run("plain")]
    runs += [Run(f"DP z={z:g}", noise=z) for z in args.noise]
    runs += [
        Run("SecAgg", secure=True),
        Run(f"SecAgg + DP z={args.noise[-1]:g}", args.noise[-1], True),
    ]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-privacy-") as scratch:
        for index, run in enumerate(runs):
            console.print(f"[{index + 1}/{len(runs)}] {run.label}: {args.carts} carts, {args.rounds} rounds")
            results.append(simulate(run, args, Path(scratch) / str(index)))
    plain = results[0]
    table = Table(
        title=f"recommend, {args.carts} carts x {args.rows} rows, {args.rounds} rounds of {args.epochs} epoch(s), k=3, "
        f"fedavg: DP clip norm {args.clip:g} (median update norm {norm:.2f}), ε at δ=1e-5; local-only top-1 "
        f"{plain['local']:.3f}"
    )
    columns = ("run", "top-1", "x", "top-3", "ε", "accepted/round", "s/round", "x", "wire KB/round", "x")
    for column in columns:
        table.add_column(column, justify="right")
    for run, r in zip(runs, results):
        table.add_row(
            run.label,
            f"{r['top1']:.3f}",
            f"{r['top1'] / plain['top1']:.2f}",
            f"{r['top3']:.3f}",
            f"{r['epsilon']:.1f}" if run.noise > 0 else "-",
            f"{r['accepted']:.1f}/{args.carts}",
            f"{r['seconds']:.2f}",
            f"{r['seconds'] / plain['seconds']:.2f}",
            f"{r['wire'] / 1e3:.0f}",
            f"{r['wire'] / plain['wire']:.2f}",
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--k", type=int, nargs="+", default=[3, 5, 10])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--noise", type=float, nargs="+", default=[0.5, 1.0, 2.0], help="DP noise multipliers")
    parser.add_argument("--clip", type=float, default=1.0, help="DP clip norm")
    parser.add_argument("--carts", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    models = {"recommend (default task)": default_task_layers(), "1M parameters": [(1000, 1000)]}
    console = Console(width=170)
    console.print(f"machine: {describe()}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    console.print(rounds_table(args, console))
    console.print(f"load average after the rounds: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    table = Table(
        title=f"Secure aggregation vs plain exchange, best of {args.repeat} (one of k peers dropped for the sum; "
        f"clip ±{CLIP:g}, scale 2^{int(np.log2(SCALE))})"
    )
    columns = (
        "model",
        "k",
        "peer ms plain",
        "peer ms masked",
        "x",
        "requester ms plain",
        "requester ms masked",
        "x",
        "bytes plain",
        "bytes masked",
        "x",
        "mean error (bound)",
    )
    for column in columns:
        table.add_column(column, justify="right")
    for name, layers in models.items():
        for k in args.k:
            r = measure(layers, k, args.repeat, rng)
            table.add_row(
                f"{name}, {int(r['params'])}",
                str(k),
                f"{r['plain_send'] * 1e3:.2f}",
                f"{r['masked_send'] * 1e3:.2f}",
                f"{r['masked_send'] / r['plain_send']:.1f}",
                f"{r['plain_sum'] * 1e3:.2f}",
                f"{r['masked_sum'] * 1e3:.2f}",
                f"{r['masked_sum'] / r['plain_sum']:.1f}",
                f"{int(r['plain_bytes'])}",
                f"{int(r['masked_bytes'])}",
                f"{r['masked_bytes'] / r['plain_bytes']:.2f}",
                f"{r['error']:.1e} ({r['bound']:.1e})",
            )
    console.print(table)


if __name__ == "__main__":
    main()
