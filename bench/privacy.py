"""Privacy costs, each against the plain round measured in the same run.

Secure aggregation (cartnet.secagg): for a cohort of k peers each sending the default task's
update (and a 1M-parameter one, to show how it scales), the time a peer spends masking
(quantize, k - 1 X25519 agreements, k ChaCha20 expansions), the time the requester spends
summing and unmasking with one peer dropped out, and the bytes a peer sends (the encoded
update as `cartnet.weights` ships it, plus commitments, signature and reveal), against the
plain exchange: each peer encodes its float32 update, the requester decodes and averages.
It also prints the measured quantization error of the mean against its bound.

No round uses secure aggregation yet (the protocol messages and the phase are not built),
so these are the costs of the arithmetic and the bytes it adds, not of a round on the wire.

    .venv/bin/python bench/privacy.py [--k 3 5 10] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--k", type=int, nargs="+", default=[3, 5, 10])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    models = {"recommend (default task)": default_task_layers(), "1M parameters": [(1000, 1000)]}
    console = Console()
    console.print(f"machine: {describe()}")
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
