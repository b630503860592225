"""Paired seeds: is fedcart's gap to Flower's FedAvg real, or one run's noise?

One run of `bench/flower_compare.py` compares one seed, and one run of one seed
moves a side's final top-3 by up to a point, while the gaps in question are a
few tenths. So this bench runs `flower_compare.py` once per seed, each in its
own process and folder (`--out`/sN), and pairs the two sides seed by seed:
the same rows, model and initial weights on both, so what differs is the
method and the run. It prints each seed's difference (fedcart's swarm models,
the mean over carts, minus Flower's global model, in points of top-1, top-3 and
recall@5, pooled held-out rows) and the mean difference with its standard
error over the seeds (sample standard deviation / sqrt(seeds)). A gap larger
than about two standard errors is not noise.

`--reuse` reads a seed's folder without running it again when both sides'
results are there (`fedcart/summary.json`, `flower.json`); `--clients` is
Flower's clients a round (0: every one; k + 1 averages as many updates as a
fedcart cart). Flower trains every client every round deterministically, so
its side repeats exactly; with `--clients` it draws clients afresh each run.

    .venv/bin/python bench/flower_seeds.py --seeds 10 [--k 4] [--clients 5] [--reuse] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

from _machine import describe
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
METRICS = ("top1", "top3", "recall5")
console = Console()


class Pair(NamedTuple):
    """One seed's final scores on both sides, and the bytes a round fedcart sent against Flower's payload."""

    seed: int
    fedcart: dict[str, float]
    flower: dict[str, float]
    sent_kb: float
    flower_kb: float

    def difference(self, metric: str) -> float:
        """fedcart minus Flower, in points."""
        return 100.0 * (self.fedcart[metric] - self.flower[metric])


def read_pair(seed: int, folder: Path) -> Pair | None:
    """Both sides' results in `folder` (as `flower_compare.py --out folder` writes them), or None if one is missing."""
    ours, theirs = folder / "fedcart" / "summary.json", folder / "flower.json"
    if not (ours.is_file() and theirs.is_file()):
        return None
    fed, flower = json.loads(ours.read_text()), json.loads(theirs.read_text())
    sent, payload = fed["sent_bytes_per_round"], flower["payload_bytes_per_round"]
    return Pair(
        seed,
        {m: fed["swarm"][m] for m in METRICS},
        {m: flower["rounds"][-1][m] for m in METRICS},
        sum(sent) / len(sent) / 1e3,
        sum(payload) / len(payload) / 1e3,
    )


def mean_and_error(values: list[float]) -> tuple[float, float]:
    """The mean and its standard error (NaN with fewer than two values)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, math.nan
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(variance / len(values))


def run_seed(seed: int, folder: Path, args: argparse.Namespace) -> None:
    command = [sys.executable, str(ROOT / "bench" / "flower_compare.py"), "--seed", str(seed), "--out", str(folder)]
    for name in ("carts", "rounds", "k", "clients"):
        command += [f"--{name}", str(getattr(args, name))]
    console.print(f"seed {seed}: {' '.join(command[1:])}")
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def table(pairs: list[Pair], args: argparse.Namespace) -> Table:
    flower = f"{args.clients} clients a round" if args.clients else "every client every round"
    title = f"fedcart (k = {args.k}) minus Flower's FedAvg ({flower}), points, pooled held-out rows; "
    result = Table(title=title + f"fedcart's bytes sent a round (x Flower's payload, {pairs[0].flower_kb:.1f} KB)")
    for column in ("seed", "top-1", "top-3", "recall@5", "fedcart top-3", "Flower top-3", "KB sent (x payload)"):
        result.add_column(column, justify="right")
    for pair in pairs:
        result.add_row(
            str(pair.seed),
            *(f"{pair.difference(m):+.2f}" for m in METRICS),
            f"{pair.fedcart['top3']:.3f}",
            f"{pair.flower['top3']:.3f}",
            f"{pair.sent_kb:.1f} ({pair.sent_kb / pair.flower_kb:.2f}x)",
        )
    summary = [mean_and_error([p.difference(m) for p in pairs]) for m in METRICS]
    result.add_row(f"mean of {len(pairs)}", *(f"{mean:+.2f} ± {error:.2f}" for mean, error in summary), "", "", "")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1")
    parser.add_argument("--carts", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--k", type=int, default=4, help="peers each fedcart cart asks per round")
    parser.add_argument("--clients", type=int, default=0, help="Flower's clients a round (0 = every one)")
    parser.add_argument("--reuse", action="store_true", help="read a seed's folder instead of running it again")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "flower_seeds")
    args = parser.parse_args()
    console.print(f"machine: {describe()}")
    pairs = []
    for seed in range(args.seeds):
        folder = args.out / f"s{seed}"
        pair = read_pair(seed, folder) if args.reuse else None
        if pair is None:
            run_seed(seed, folder, args)
            pair = read_pair(seed, folder)
        if pair is None:
            raise SystemExit(f"seed {seed}: flower_compare.py left no results in {folder}")
        pairs.append(pair)
    console.print(table(pairs, args))
    console.print("± is the standard error of the mean over the seeds: a gap beyond about two is not noise.")


if __name__ == "__main__":
    main()
