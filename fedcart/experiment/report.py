"""The experiment's report folder: per-round JSON and CSV, per-cart round logs, the summary table, plots.

<out>/<task>-<UTC time>/
    config.json        what ran (task settings included)
    rounds.json/.csv   every scenario after every round: metrics on the whole held-out set, time, CPU, RSS, bytes
    nodes.json/.csv    every federated cart in every round: phase times, bytes, decision, codec stages and sizes
    summary.json/.csv  one row per scenario after its last round (the table the CLI prints)
    summary.md         the table, the compression ratio per stage, mean time per phase, how it was measured
    *.png              confusion matrices, ROC, loss and F1 per round, score/threshold histograms, resources
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from fedcart.experiment import plots as experiment_plots
from fedcart.experiment.harness import ExperimentConfig, Fleet, NodeRound, ScenarioResult

log = logging.getLogger(__name__)

METRICS = ("accuracy", "precision", "recall", "f1", "fpr", "roc_auc")
CODEC_STAGES = ("serialize", "compress", "encrypt", "decrypt", "decompress", "deserialize")
MB = 1e6


@dataclass
class Report:
    """Where the report went and its summary rows (one per scenario)."""

    path: Path
    summary: list[dict[str, Any]]
    compression: list[dict[str, Any]]
    phases: dict[str, float]


def write_report(config: ExperimentConfig, fleet: Fleet, results: dict[str, ScenarioResult]) -> Report:
    """Write every file of the report; returns its folder and the summary rows."""
    folder = config.out_dir / f"{config.task}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    folder.mkdir(parents=True, exist_ok=False)
    report = Report(folder, summary_rows(results), compression_rows(results), phase_means(results))
    _json(folder / "config.json", _config(config, fleet))
    rounds = [_round_row(r) for result in results.values() for r in result.rounds]
    _json(folder / "rounds.json", rounds)
    _csv(folder / "rounds.csv", rounds)
    nodes = [_node_row(n) for result in results.values() for n in result.nodes]
    _json(folder / "nodes.json", nodes)
    if nodes:
        _csv(folder / "nodes.csv", nodes)
    _json(
        folder / "summary.json", {"summary": report.summary, "compression": report.compression, "phases": report.phases}
    )
    _csv(folder / "summary.csv", report.summary)
    (folder / "summary.md").write_text(_markdown(config, fleet, report), encoding="utf-8")
    experiment_plots.write_all(folder, fleet.task, results)
    log.debug("experiment report written to %s", folder)
    return report


def summary_rows(results: dict[str, ScenarioResult]) -> list[dict[str, Any]]:
    """Each scenario after its last round: metrics, bytes, time, CPU, peak RSS, energy."""
    rows = []
    for name, result in results.items():
        metrics = result.final.metrics
        rows.append(
            {
                "scenario": name,
                **{m: round(metrics[m], 4) if m in metrics else None for m in METRICS},
                "mb_sent": round(result.bytes_sent / MB, 3),
                "mb_received": round(result.bytes_received / MB, 3),
                "seconds": result.usage.seconds,
                "cpu_seconds": result.usage.cpu_seconds,
                "peak_rss_mb": result.usage.peak_rss_mb,
                "energy_kwh": result.usage.energy_kwh,
            }
        )
    return rows


def compression_rows(results: dict[str, ScenarioResult]) -> list[dict[str, Any]]:
    """Mean bytes after each stage of an update's trip, and each stage's ratio to the one before."""
    nodes = [n for result in results.values() for n in result.nodes]
    if not nodes:
        return []
    stages = [
        ("arrays in memory", [n.codec.raw_bytes for n in nodes]),
        ("serialized (safetensors)", [n.codec.serialized_bytes for n in nodes]),
        ("compressed (zstd)", [n.codec.compressed_bytes for n in nodes]),
        ("encrypted (X25519 + AES-GCM)", [n.codec.sealed_bytes for n in nodes]),
    ]
    rows, previous, first = [], None, float(np.mean(stages[0][1]))
    for stage, sizes in stages:
        size = float(np.mean(sizes))
        rows.append(
            {
                "stage": stage,
                "bytes": round(size),
                "ratio_to_previous": round(previous / size, 3) if previous else 1.0,
                "ratio_to_arrays": round(first / size, 3),
            }
        )
        previous = size
    return rows


def phase_means(results: dict[str, ScenarioResult]) -> dict[str, float]:
    """Mean seconds per cart per round of every phase: the engine's own timings and the codec stages."""
    nodes = [n for result in results.values() for n in result.nodes]
    if not nodes:
        return {}
    phases: dict[str, list[float]] = {}
    for node in nodes:
        for phase, seconds in node.record.timings.items():
            phases.setdefault(phase, []).append(seconds)
        for stage in CODEC_STAGES:
            phases.setdefault(stage, []).append(node.codec.seconds[stage])
    return {phase: round(float(np.mean(values)), 5) for phase, values in phases.items()}


def _config(config: ExperimentConfig, fleet: Fleet) -> dict[str, Any]:
    task_settings = {
        k: v for k, v in fleet.settings.model_dump(mode="json").items() if k.startswith(("iot_", "val_", "train_"))
    }
    return {
        **{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
        "settings": task_settings,
        "rows": [len(rows) for rows in fleet.data],
        "held_out_rows": int(sum(len(d.x_val) for d in fleet.datasets)),
        "devices": [sorted({str(r["device"]) for r in rows}) for rows in fleet.data],
    }


def _round_row(r: Any) -> dict[str, Any]:
    return {
        "scenario": r.scenario,
        "round": r.round,
        **{k: round(v, 6) for k, v in r.metrics.items()},
        "threshold": round(r.threshold, 6),
        "seconds": r.usage.seconds,
        "cpu_seconds": r.usage.cpu_seconds,
        "peak_rss_mb": r.usage.peak_rss_mb,
        "bytes_sent": r.bytes_sent,
        "bytes_received": r.bytes_received,
        "accepted": r.accepted,
    }


def _node_row(n: NodeRound) -> dict[str, Any]:
    record = n.record
    return {
        "round": n.round + 1,
        "cart": n.cart,
        "node_id": record.node_id,
        "aggregator": record.aggregator,
        "peers_answered": len(record.peers_answered),
        "accepted": record.accepted,
        "reason": record.reason,
        "bytes_in": record.bytes_in,
        "bytes_out": record.bytes_out,
        **{f"time_{phase}": seconds for phase, seconds in record.timings.items()},
        **{f"time_{stage}": round(n.codec.seconds[stage], 6) for stage in CODEC_STAGES},
        "raw_bytes": n.codec.raw_bytes,
        "serialized_bytes": n.codec.serialized_bytes,
        "compressed_bytes": n.codec.compressed_bytes,
        "sealed_bytes": n.codec.sealed_bytes,
        "local_f1": record.local.get("f1"),
        "aggregated_f1": record.aggregated.get("f1"),
        "process_cpu_seconds": record.resources.get("cpu_seconds"),
        "process_peak_rss_mb": record.resources.get("peak_rss_mb"),
    }


def _markdown(config: ExperimentConfig, fleet: Fleet, report: Report) -> str:
    lines = [
        f"# {config.task}: federated vs centralized vs local-only",
        "",
        f"{config.carts} carts, {config.rounds} rounds x {config.epochs} local epochs (every scenario the same budget), "
        f"{'synthetic data, seed ' + str(config.seed) if config.data is None else f'{config.data_format} files from {config.data}'}, "
        f"federated: {fleet.task.aggregator or config.aggregator}, k={config.k}, {config.bridges} bridges. "
        f"Held-out rows: {sum(len(d.x_val) for d in fleet.datasets)}.",
        "",
        "## Summary (after the last round)",
        "",
        *_table(report.summary),
        "",
        "Metrics are counted per sample over the union of all carts' held-out rows; each row is scored by the model "
        "that would score it in the field (its own cart's model and threshold for federated and local-only, the one "
        "central model for centralized). Time and CPU are summed over the rounds (training, exchange and aggregation; "
        "not start-up or scoring); CPU and peak RSS are the whole process's, which hosts every simulated cart. "
        "Centralized bytes are the rows every cart would upload once (float32). Loss (rounds.csv, loss.png) is "
        "measured in each model's own feature scale (for the autoencoder: scaled by the statistics of the rows it "
        "was fitted on), so compare it across rounds, not across scenarios.",
    ]
    if report.compression:
        lines += ["", "## An update's size at each stage (mean over carts and rounds)", "", *_table(report.compression)]
    if report.phases:
        phases = [{"phase": k, "mean_seconds_per_cart_round": v} for k, v in report.phases.items()]
        lines += [
            "",
            "## Time per phase (federated, mean per cart per round)",
            "",
            *_table(phases),
            "",
            "`train` includes waiting for the TensorFlow runtime the simulated carts share (they take turns); "
            "`exchange` is asking k peers and receiving their updates (send and receive, including waiting for the "
            "slowest peer); the codec stages were timed on each cart's model after the round with the same "
            "`cartnet.weights` / `cartnet.e2e` calls the exchange makes.",
        ]
    return "\n".join(lines) + "\n"


def _table(rows: list[dict[str, Any]]) -> list[str]:
    header = list(rows[0])
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join("" if row[h] is None else str(row[h]) for h in header) + " |" for row in rows]
    return out


def _json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")


def _csv(path: Path, rows: list[dict[str, Any]]) -> None:
    fields = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
