"""Detection metrics counted per sample over a whole evaluation set, never averaged over batches.

Batch-averaged precision or F1 is not the precision or F1 of the set (a batch
with one attack row weighs as much as one with a hundred), so every metric here
is computed once from the per-sample labels, decisions and scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score


@dataclass(frozen=True)
class Detection:
    """Per-sample outcome of a detector: truth, decision, score (higher = more suspicious), device code."""

    y_true: np.ndarray
    y_pred: np.ndarray
    score: np.ndarray
    device: np.ndarray

    def __post_init__(self) -> None:
        sizes = {len(self.y_true), len(self.y_pred), len(self.score), len(self.device)}
        if len(sizes) != 1:
            raise ValueError(f"per-sample arrays differ in length: {sorted(sizes)}")

    @classmethod
    def concat(cls, parts: list[Detection]) -> Detection:
        """Many carts' detections as one evaluation set (each row still scored by its own cart's model)."""
        if not parts:
            raise ValueError("no detections to join")
        return cls(
            *(np.concatenate([getattr(p, name) for p in parts]) for name in ("y_true", "y_pred", "score", "device"))
        )


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[int, int, int, int]:
    """(tn, fp, fn, tp) counted over samples; 1 = attack is the positive class."""
    truth, guess = np.asarray(y_true).astype(bool), np.asarray(y_pred).astype(bool)
    return (
        int(np.sum(~truth & ~guess)),
        int(np.sum(~truth & guess)),
        int(np.sum(truth & ~guess)),
        int(np.sum(truth & guess)),
    )


def detection_metrics(detection: Detection) -> dict[str, float]:
    """Accuracy, precision, recall, F1, false-positive rate, ROC AUC and the confusion counts.

    A ratio with an empty denominator is 0 (no predicted attacks: precision 0).
    ROC AUC needs both classes among the samples; it is left out otherwise.
    """
    tn, fp, fn, tp = confusion(detection.y_true, detection.y_pred)
    total = tn + fp + fn + tp
    if total == 0:
        raise ValueError("no samples to score")
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    metrics = {
        "accuracy": (tp + tn) / total,
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall),
        "fpr": _ratio(fp, fp + tn),
        "tn": float(tn),
        "fp": float(fp),
        "fn": float(fn),
        "tp": float(tp),
    }
    if 0 < tp + fn < total:
        metrics["roc_auc"] = float(roc_auc_score(detection.y_true, detection.score))
    return {name: float(value) for name, value in metrics.items()}


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / denominator if denominator else 0.0
