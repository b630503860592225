"""What the IoT security tasks share: telemetry rows in, a binary detector out, metrics per sample.

Every IoT task decides per row "attack or not" and gives a score (higher = more
suspicious). `detect` returns those per-sample decisions, so one set of metrics
(`metrics.detection_metrics`) serves every detector, and an experiment can join
many carts' detections into one evaluation set before counting anything.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np

from child_cart.store import Store
from child_cart.tasks.base import Task
from child_cart.tasks.iot.metrics import Detection, detection_metrics
from child_cart.tasks.iot.rows import COLLECTION

log = logging.getLogger(__name__)

LOSS_FLOOR = 1e-7


class DetectionTask(Task):
    """A binary attack detector over one schema of `telemetry` rows; y is (label, device code) per row."""

    collection: ClassVar[str] = COLLECTION
    primary_metric: ClassVar[str] = "f1"
    higher_is_better: ClassVar[bool] = True
    schema: ClassVar[str]

    def rows(self, store: Store) -> list[dict]:
        """This task's telemetry rows (the collection holds other schemas too), in a stable order."""
        found = store.collection(self.collection).find({"schema": self.schema})
        return sorted(found, key=lambda row: str(row["_id"]))

    @abstractmethod
    def detect(self, model: Any, x: np.ndarray, y: np.ndarray) -> Detection:
        """Per-sample decisions and scores of `model` on (x, y)."""

    @abstractmethod
    def loss(self, detection: Detection) -> float:
        """The training objective's value on a detection (what the loss curve plots)."""

    @abstractmethod
    def decision_thresholds(self, model: Any) -> list[float]:
        """The scores above which the model calls a row an attack: one per device where devices have their own."""

    def evaluate(self, model: Any, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        if len(x) == 0:
            raise ValueError("no rows to evaluate on")
        detection = self.detect(model, x, y)
        return {**detection_metrics(detection), "loss": self.loss(detection)}


def cross_entropy(detection: Detection) -> float:
    """Mean binary cross-entropy of attack probabilities against the labels."""
    p = np.clip(detection.score.astype(np.float64), LOSS_FLOOR, 1 - LOSS_FLOOR)
    truth = detection.y_true.astype(np.float64)
    return float(-np.mean(truth * np.log(p) + (1 - truth) * np.log(1 - p)))


def usable(rows: list[dict], schema: str, ok: Any) -> list[dict]:
    """Rows of `schema` that `ok(row)` accepts; the others are skipped with one warning."""
    kept = [row for row in rows if row.get("schema") == schema and ok(row)]
    if len(kept) < len(rows):
        log.warning("skipped %d of %d rows this task cannot read", len(rows) - len(kept), len(rows))
    return kept
