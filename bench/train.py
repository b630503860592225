"""Training throughput of the recommend task on synthetic rows, against batch size 1 in the same run.

Batch size 1 is the baseline: it is what naive per-row training costs in
the same framework on the same machine, so the ratio shows what batching
buys. Each line also reports held-out accuracy, so a fast setting that
learns less shows it. A second table compares inference: Keras predict
against the exported model in LiteRT (what phones run).

    .venv/bin/python bench/train.py [--rows 20000] [--epochs 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from child_cart.models.export import run_litert, to_tflite
from child_cart.store import load_catalogue
from child_cart.synth import shoppers as synth
from child_cart.tasks import Dataset, get_task, import_keras
from child_cart.tasks.trainer import fit

BASELINE_ROWS = 2000
BATCH_SIZES = (32, 256)


def train_line(task, dataset: Dataset, batch_size: int, epochs: int) -> tuple[int, float, float]:
    """(rows trained on, seconds, held-out accuracy) for one fresh model."""
    model = task.build_model(seed=0)
    started = time.perf_counter()
    fit(model, dataset, epochs, batch_size)
    seconds = time.perf_counter() - started
    accuracy = task.evaluate(model, dataset.x_val, dataset.y_val)["accuracy"]
    return len(dataset.x_train) * epochs, seconds, accuracy


def inference_rates(model, x: np.ndarray) -> dict[str, float]:
    """Rows/s of Keras predict and of LiteRT on the converted model, each after one warm-up call."""
    tflite = to_tflite(model)
    run_litert(tflite, x)
    model.predict(x, batch_size=1024, verbose=0)  # warm-up: traces the predict function for these shapes
    rates = {}
    for name, run in [
        ("Keras predict", lambda: model.predict(x, batch_size=1024, verbose=0)),
        ("LiteRT (exported)", lambda: run_litert(tflite, x)),
    ]:
        started = time.perf_counter()
        run()
        rates[name] = len(x) / (time.perf_counter() - started)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    keras = import_keras()
    import tensorflow as tf

    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # every fresh model retraces; that warning is expected here

    task = get_task("recommend")
    dataset = task.make_dataset(synth.generate(load_catalogue(), args.rows, seed=1)[0])
    small = Dataset(dataset.x_train[:BASELINE_ROWS], dataset.y_train[:BASELINE_ROWS], dataset.x_val, dataset.y_val)
    train_line(task, small, 256, 1)  # warm-up: graph tracing and thread pools, not measured

    lines = {"batch 1 (baseline)": (train_line(task, small, 1, 1), 1)}
    for batch in BATCH_SIZES:
        lines[f"batch {batch}"] = (train_line(task, dataset, batch, args.epochs), args.epochs)

    console = Console(width=110)
    console.print(
        f"machine: {os.cpu_count()} CPUs (load {os.getloadavg()[0]:.1f}), {platform.machine()}, "
        f"Python {platform.python_version()}, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, numpy {np.__version__}"
    )
    base_rate = lines["batch 1 (baseline)"][0][0] / lines["batch 1 (baseline)"][0][1]
    table = Table(title=f"recommend training: {len(dataset.x_train)} training rows, {len(dataset.x_val)} held out")
    for column in ("setting", "epochs", "rows trained", "seconds", "rows/s", "vs batch 1", "held-out acc"):
        table.add_column(column, justify="left" if column == "setting" else "right")
    for name, ((rows, seconds, accuracy), epochs) in lines.items():
        rate = rows / seconds
        table.add_row(
            name,
            str(epochs),
            str(rows),
            f"{seconds:.2f}",
            f"{rate:,.0f}",
            f"{rate / base_rate:.1f}x",
            f"{accuracy:.3f}",
        )
    console.print(table)

    model = task.build_model(seed=0)
    fit(model, dataset, 1, 256)
    rates = inference_rates(model, dataset.x_val)
    inference = Table(title=f"inference on {len(dataset.x_val)} held-out rows")
    for column in ("runtime", "rows/s", "vs Keras"):
        inference.add_column(column, justify="left" if column == "runtime" else "right")
    for name, rate in rates.items():
        inference.add_row(name, f"{rate:,.0f}", f"{rate / rates['Keras predict']:.1f}x")
    console.print(inference)


if __name__ == "__main__":
    main()
