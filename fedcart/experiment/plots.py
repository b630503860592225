"""The experiment's figures (PNG, matplotlib's Agg back-end, no display needed).

confusion.png   one confusion matrix per scenario, after the last round
roc.png         ROC curve per scenario, after the last round
loss.png        held-out loss and F1 per round, per scenario
threshold.png   per scenario: scores of benign and attack rows, and the decision threshold(s)
resources.png   per scenario: seconds and CPU per round, peak RSS, megabytes on the wire;
                for federated, the mean time per phase per cart in each round and an update's size per stage
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_curve

from child_cart.tasks.iot.detector import DetectionTask
from child_cart.tasks.iot_anomaly import AnomalyTask
from fedcart.experiment.harness import ScenarioResult

log = logging.getLogger(__name__)

DPI = 110
COLOURS = {"federated": "tab:blue", "centralized": "tab:orange", "local": "tab:green"}
PHASES = ("train", "exchange", "aggregate", "evaluate", "local_only", "decide", "publish")


def write_all(folder: Path, task: DetectionTask, results: dict[str, ScenarioResult]) -> list[Path]:
    """Every figure of the report, written into `folder`."""
    plt = _pyplot()
    return [
        _save(plt, _confusion(plt, results), folder / "confusion.png"),
        _save(plt, _roc(plt, results), folder / "roc.png"),
        _save(plt, _curves(plt, results), folder / "loss.png"),
        _save(plt, _thresholds(plt, task, results), folder / "threshold.png"),
        _save(plt, _resources(plt, results), folder / "resources.png"),
    ]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _confusion(plt: Any, results: dict[str, ScenarioResult]) -> Any:
    fig, axes = plt.subplots(1, len(results), figsize=(3.6 * len(results), 3.4), squeeze=False)
    for ax, (name, result) in zip(axes[0], results.items()):
        m = result.final.metrics
        matrix = np.array([[m["tn"], m["fp"]], [m["fn"], m["tp"]]])
        ax.imshow(matrix, cmap="Blues")
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(
                j, i, f"{int(value)}", ha="center", va="center", color="white" if value > matrix.max() / 2 else "black"
            )
        ax.set(
            xticks=[0, 1],
            yticks=[0, 1],
            xticklabels=["benign", "attack"],
            yticklabels=["benign", "attack"],
            xlabel="predicted",
            ylabel="true",
            title=f"{name}\nF1 {m['f1']:.3f}, FPR {m['fpr']:.3f}",
        )
    return fig


def _roc(plt: Any, results: dict[str, ScenarioResult]) -> Any:
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for name, result in results.items():
        d = result.detection
        if d is None or len(set(d.y_true.tolist())) < 2:
            continue
        fpr, tpr, _ = roc_curve(d.y_true, d.score)
        ax.plot(
            fpr,
            tpr,
            color=COLOURS.get(name),
            label=f"{name} (AUC {result.final.metrics.get('roc_auc', float('nan')):.3f})",
        )
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="false-positive rate", ylabel="true-positive rate (recall)", title="ROC after the last round")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return fig


def _curves(plt: Any, results: dict[str, ScenarioResult]) -> Any:
    fig, (loss, f1) = plt.subplots(1, 2, figsize=(10, 4))
    for name, result in results.items():
        x = [r.round for r in result.rounds]
        loss.plot(
            x, [r.metrics.get("loss", np.nan) for r in result.rounds], marker="o", color=COLOURS.get(name), label=name
        )
        f1.plot(x, [r.metrics["f1"] for r in result.rounds], marker="o", color=COLOURS.get(name), label=name)
    loss.set(xlabel="round", ylabel="held-out loss", title="loss per round (each model's own feature scale)")
    f1.set(xlabel="round", ylabel="F1 (per sample, all held-out rows)", title="F1 per round", ylim=(0, 1.02))
    for ax in (loss, f1):
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


def _thresholds(plt: Any, task: DetectionTask, results: dict[str, ScenarioResult]) -> Any:
    log_scale = isinstance(task, AnomalyTask)
    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.6), squeeze=False)
    for ax, (name, result) in zip(axes[0], results.items()):
        d = result.detection
        if d is None:  # a scenario that finished no round has no scores (its panel stays empty, as in _roc)
            continue
        scores = np.log10(np.maximum(d.score, 1e-12)) if log_scale else d.score
        bins = np.linspace(scores.min(), scores.max(), 50)
        ax.hist(scores[d.y_true == 0], bins=bins, alpha=0.6, label="benign", color="tab:green")
        ax.hist(scores[d.y_true == 1], bins=bins, alpha=0.6, label="attack", color="tab:red")
        for threshold in result.thresholds:
            ax.axvline(np.log10(threshold) if log_scale else threshold, color="black", linewidth=0.8, alpha=0.6)
        label = "log10 reconstruction error" if log_scale else "P(attack)"
        ax.set(xlabel=label, ylabel="rows", title=f"{name}: {len(result.thresholds)} threshold(s)")
        ax.legend()
    return fig


def _resources(plt: Any, results: dict[str, ScenarioResult]) -> Any:
    fig, axes = plt.subplots(2, 3, figsize=(15, 7.5))
    seconds, cpu, phases = axes[0]
    rss, wire, sizes = axes[1]
    for name, result in results.items():
        x = [r.round for r in result.rounds]
        seconds.plot(x, [r.usage.seconds for r in result.rounds], marker="o", color=COLOURS.get(name), label=name)
        cpu.plot(x, [r.usage.cpu_seconds for r in result.rounds], marker="o", color=COLOURS.get(name), label=name)
    seconds.set(xlabel="round", ylabel="wall seconds", title="time per round")
    cpu.set(xlabel="round", ylabel="process CPU seconds", title="CPU per round")
    for ax in (seconds, cpu):
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend()
    names = list(results)
    _bars(rss, names, [results[n].usage.peak_rss_mb for n in names], "peak RSS (MB)")
    _bars(wire, names, [(results[n].bytes_sent + results[n].bytes_received) / 1e6 for n in names], "MB sent + received")
    _phase_bars(phases, results.get("federated"))
    _stage_sizes(sizes, results.get("federated"))
    return fig


def _bars(ax: Any, names: list[str], values: list[float], title: str) -> None:
    ax.bar(names, values, color=[COLOURS.get(n, "tab:grey") for n in names])
    for i, value in enumerate(values):
        ax.text(i, value, f"{value:.1f}", ha="center", va="bottom")
    ax.margins(y=0.15)
    ax.set(title=title)


def _stage_sizes(ax: Any, federated: ScenarioResult | None) -> None:
    """Mean size of an update after each stage of its trip to a peer."""
    if federated is None or not federated.nodes:
        ax.axis("off")
        return
    stages = {
        "arrays": [n.codec.raw_bytes for n in federated.nodes],
        "serialized": [n.codec.serialized_bytes for n in federated.nodes],
        "zstd": [n.codec.compressed_bytes for n in federated.nodes],
        "sealed": [n.codec.sealed_bytes for n in federated.nodes],
    }
    _bars(ax, list(stages), [float(np.mean(v)) / 1e3 for v in stages.values()], "update size per stage (kB)")


def _phase_bars(ax: Any, federated: ScenarioResult | None) -> None:
    if federated is None or not federated.nodes:
        ax.set(title="time per phase (no federated scenario)")
        ax.axis("off")
        return
    rounds = sorted({n.round for n in federated.nodes})
    bottom = np.zeros(len(rounds))
    for phase in PHASES:
        means = np.array(
            [np.mean([n.record.timings.get(phase, 0.0) for n in federated.nodes if n.round == r]) for r in rounds]
        )
        ax.bar([r + 1 for r in rounds], means, bottom=bottom, label=phase)
        bottom += means
    codec = np.array(
        [np.mean([sum(n.codec.seconds.values()) for n in federated.nodes if n.round == r]) for r in rounds]
    )
    ax.bar([r + 1 for r in rounds], codec, bottom=bottom, label="codec stages", color="black")
    ax.set(
        xlabel="round",
        ylabel="seconds per cart",
        title="federated: mean time per phase (train includes\nwaiting for the carts' shared TensorFlow)",
    )
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8)
