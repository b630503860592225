"""Privacy costs, each against the plain round measured in the same run.

Rounds (`fedcart.simulation`, the default task `recommend`): the same small swarm (real bridge,
real carts, real rounds) runs once plain and once per privacy option: client-level differential
privacy at a few noise multipliers (clip norm `--clip`, printed next to the median norm of one
local round's update on this data), secure aggregation, and both together. Each row gives the
final federated accuracy on the pooled held-out rows and ε (δ = 1e-5, the RDP accountant's figure
for the rounds shared), seconds and wire bytes per round, as ratios against the plain run. The
budget is set out of reach, so every cart shares every round and ε is what the rounds cost. One
seed per run: the title gives the accuracy's standard error on the pooled held-out rows.

Arithmetic (cartnet.secagg): for a cohort of k peers each sending the default task's
update (and a 1M-parameter one, to show how it scales), the time a peer spends masking
(quantize, k - 1 X25519 agreements, k ChaCha20 expansions, Shamir shares of its k seeds for
k - 1 holders, sealed), the time the requester spends summing and unmasking with one peer dropped
out, and with all k sent and one silent at unmasking (its seeds rebuilt from shares), and the
bytes a peer sends (its masked answer as the round packs it, signature and reveal), against the
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

from cartnet import compact, messages, weights
from cartnet.identity import Identity
from cartnet.secagg import Cohort, Masker, Quantizer, Reveal, Unmasker
from child_cart.rounds.secure import pack, unpack

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

    masked_send = timed(lambda: pack(Masker(cohort, one, by_id[one].kx_key, quantizer).mask(flat[one])), repeat)

    def unmasked(submitting: list[str], silent: str | None) -> tuple[float, np.ndarray, dict[str, Reveal]]:
        """(requester seconds, the mean, the reveals): `submitting` mask and send, all but `silent` reveal."""
        maskers = {m: Masker(cohort, m, by_id[m].kx_key, quantizer) for m in members}
        blobs = {m: pack(maskers[m].mask(flat[m])) for m in submitting}
        started = time.perf_counter()
        unmasker = Unmasker(cohort, quantizer)
        for m, blob in blobs.items():
            unmasker.add(unpack(blob, m, cohort.digest(), cohort.members, flat[m].size))
        reveals = {m: maskers[m].reveal(unmasker.survivors, unmasker.sealed_for(m)) for m in submitting if m != silent}
        total, _ = unmasker.unmask(reveals)
        return time.perf_counter() - started, total / len(submitting), reveals

    runs = [unmasked(list(members[1:]), None) for _ in range(repeat)]
    mean, reveals = runs[-1][1], runs[-1][2]
    exact = np.mean([flat[m] for m in members[1:]], axis=0)
    rebuilt = min(unmasked(list(members), members[0])[0] for _ in range(repeat))
    masked_bytes = len(pack(Masker(cohort, one, by_id[one].kx_key, quantizer).mask(flat[one]))) + SIGNATURE
    return {
        "params": float(flat[one].size),
        "plain_send": plain_send,
        "masked_send": masked_send,
        "plain_sum": plain_sum,
        "masked_sum": min(r[0] for r in runs),
        "rebuilt_sum": rebuilt,
        "plain_bytes": float(len(blobs[0])),
        "masked_bytes": float(masked_bytes + reveal_bytes(reveals[members[1]])),
        "error": float(np.max(np.abs(mean - exact))),
        "bound": quantizer.error_bound(k - 1) / (k - 1),
    }


def reveal_bytes(reveal: Reveal) -> int:
    """The encoded `SeedReveal` control message a survivor sends for `reveal`."""
    message = messages.SeedReveal(
        cohort_id="0" * 32,
        sender=reveal.sender,
        survivors=sorted(reveal.survivors),
        self_seed=reveal.self_seed,
        pairwise=[messages.RevealedSeed(peer=p, seed=seed) for p, seed in reveal.pairwise.items()],
        shares=[messages.RevealedShare(dealer=d, of=of, value=v) for (d, of), v in reveal.shares.items()],
        signature=bytes(SIGNATURE),
    )
    return len(compact.encode(message))


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

    config = SimConfig(
        carts=args.carts,
        rounds=args.rounds,
        bridges=1,
        rows_per_cart=args.rows,
        epochs=args.epochs,
        k=3,
        out_dir=out,
        secure_aggregation=run.secure,
        dp_noise=run.noise,
        dp_clip=args.clip if run.noise > 0 else 0.0,
        dp_budget=1e6,
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
        "held_out": float(result.held_out),
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
        f"{plain['local']:.3f}; top-1 standard error <= {50 / max(plain['held_out'], 1) ** 0.5:.1f} points"
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
        title=f"Secure aggregation arithmetic vs plain exchange, best of {args.repeat}: one of k peers dropped before "
        "sending; 'silent': all k sent, one never revealed, its seeds rebuilt from Shamir shares (requester ms include the members' reveals); bytes masked: the "
        f"answer (masked vector, commitments, sealed shares), its signature and one reveal (clip ±{CLIP:g}, scale "
        f"2^{int(np.log2(SCALE))})"
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
        "requester ms silent",
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
                f"{r['rebuilt_sum'] * 1e3:.2f}",
                f"{r['rebuilt_sum'] / r['plain_sum']:.1f}",
                f"{int(r['plain_bytes'])}",
                f"{int(r['masked_bytes'])}",
                f"{r['masked_bytes'] / r['plain_bytes']:.2f}",
                f"{r['error']:.1e} ({r['bound']:.1e})",
            )
    console.print(table)


if __name__ == "__main__":
    main()
