"""Where a round's bytes go: every frame the carts receive, by kind, in a `fedcart simulate` run.

For a small model the protocol around the weights (peer entries, signed manifests
and requests, receipts) can outweigh them, so a byte figure alone does not say
what to shrink. This bench runs the same in-process simulation as `fedcart
simulate` (real bridges, carts and Keras) and counts, at the receiving cart, each
frame's WebSocket size by what it carries: a control message by its `type`, a
routed frame by the kind of its inner frame, a transfer chunk as `chunk`. Every
frame a cart sends reaches some cart (through the bridges) once, so the total is
close to the run's bytes sent, each frame once; what the bridges themselves send
(peer lists, heartbeat answers) is counted where it arrives. Frames of the first
round (every certificate new) and of the carts' shutdown are included, as in
`summary.json`'s means.

    .venv/bin/python bench/wire_breakdown.py [--carts 10] [--rows 600] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from collections import Counter
from pathlib import Path

from _machine import describe
from rich.console import Console
from rich.table import Table

from cartnet import compact, frames
from cartnet.client import BridgeClient, ws_frame_size
from cartnet.messages import MessageError
from fedcart.simulate_cmd import quiet_nodes
from fedcart.simulation import SimConfig, simulate

console = Console(width=None if sys.stdout.isatty() else 160)


def kind(frame: bytes | memoryview) -> str:
    """What a frame carries: a control message's type, `chunk`, or `routed:` and the inner frame's kind."""
    head = bytes(frame[:1])
    if head == frames.ROUTED:
        return f"routed:{kind(frame[frames.ROUTE_HEAD :])}"
    if head == frames.CHUNK:
        return "chunk"
    if head == frames.CONTROL:
        try:
            return str(compact.decode(frame[1:]).type)
        except MessageError:
            return "control (not valid)"
    return "other"


def count_received(tally: Counter[str], frames_seen: Counter[str]) -> None:
    """Count every frame a cart's client takes from its bridge in `tally` (bytes) and `frames_seen`."""
    handle = BridgeClient._from_bridge

    async def counted(self: BridgeClient, data: memoryview) -> str | None:
        what = kind(data)
        tally[what] += ws_frame_size(len(data), masked=False)
        frames_seen[what] += 1
        return await handle(self, data)

    BridgeClient._from_bridge = counted  # type: ignore[method-assign]


def table(tally: Counter[str], frames_seen: Counter[str], config: SimConfig) -> Table:
    total = sum(tally.values())
    shown = Table(
        title=f"bytes the carts received, by kind: {config.carts} carts x {config.rows_per_cart} purchases, "
        f"{config.rounds} rounds, k={config.k}, {config.precision}"
    )
    for column in ("kind", "KB / round", "share", "frames / round", "bytes / frame"):
        shown.add_column(column, justify="left" if column == "kind" else "right")
    for what, size in tally.most_common():
        shown.add_row(
            what,
            f"{size / config.rounds / 1000:.1f}",
            f"{size / total:.1%}",
            f"{frames_seen[what] / config.rounds:.0f}",
            f"{size / frames_seen[what]:.0f}",
        )
    shown.add_row("total", f"{total / config.rounds / 1000:.1f}", "100%", "", "")
    return shown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--carts", type=int, default=10)
    parser.add_argument("--rows", type=int, default=600, help="purchases per cart")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    quiet_nodes()
    tally: Counter[str] = Counter()
    frames_seen: Counter[str] = Counter()
    count_received(tally, frames_seen)
    console.print(f"machine: {describe()}")
    with tempfile.TemporaryDirectory(prefix="fedcart-wire-") as scratch:
        config = SimConfig(
            carts=args.carts,
            rows_per_cart=args.rows,
            rounds=args.rounds,
            epochs=args.epochs,
            k=args.k,
            seed=args.seed,
            out_dir=Path(scratch),
        )
        result = asyncio.run(simulate(config))
    console.print(table(tally, frames_seen, config))
    sent = sum(row.sent_bytes for row in result.rows) / len(result.rows) / 1000
    console.print(f"the run's own count, each frame once: {sent:.1f} KB / round")


if __name__ == "__main__":
    main()
