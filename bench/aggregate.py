"""Aggregation throughput: 10 updates of 10M parameters through each rule vs a plain numpy mean.

Throughput is the parameter bytes read (updates x parameters x 4 bytes) per
second of aggregation; the baseline is `np.mean` over the same stacked arrays.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _machine import describe
from rich.console import Console
from rich.table import Table

from child_cart.aggregation import AGGREGATORS, Update, make_aggregator

LAYERS = [(2000, 2000), (2000, 2000), (2000,), (1000, 1998)]


def make_updates(n: int, rng: np.random.Generator) -> list[Update]:
    return [Update(f"{i:040x}", [rng.standard_normal(s, dtype=np.float32) for s in LAYERS], 100 + i) for i in range(n)]


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    updates = make_updates(args.updates, np.random.default_rng(0))
    params = sum(int(np.prod(s)) for s in LAYERS)
    gigabytes = args.updates * params * 4 / 1e9
    rows = {
        "numpy mean (baseline)": timed(
            lambda: [np.mean(np.stack([u.weights[i] for u in updates]), axis=0) for i in range(len(LAYERS))],
            args.repeat,
        )
    }
    for name in AGGREGATORS:
        rule = make_aggregator(name, krum_f=2)
        rows[name] = timed(lambda rule=rule: rule.aggregate(updates), args.repeat)
    console = Console()
    console.print(f"machine: {describe()}")
    table = Table(title=f"{args.updates} updates x {params / 1e6:.1f}M float32 parameters, best of {args.repeat}")
    for column in ("rule", "seconds", "GB/s", "vs numpy mean"):
        table.add_column(column, justify="right")
    base = rows["numpy mean (baseline)"]
    for name, seconds in rows.items():
        table.add_row(name, f"{seconds:.3f}", f"{gigabytes / seconds:.2f}", f"{base / seconds:.2f}x")
    console.print(table)


if __name__ == "__main__":
    main()
