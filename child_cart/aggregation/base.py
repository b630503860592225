"""What an aggregator is: many weight updates in, one weight list out.

Every rule the round engine can use implements `Aggregator.aggregate`, so a new
rule is one class plus one line in the registry (the shape of Flower's Strategy).

Two protections live here so every rule shares them:

- Robust rules (median, trimmed mean, Krum) need `MIN_ROBUST_UPDATES` updates:
  with two, each of them degenerates into a plain mean or a coin toss, so they
  refuse (`AggregationError`) instead of quietly protecting nothing.
- Sample counts are claims made by the peers themselves. Wherever they weigh
  (FedAvg, tree_vote) they are first clipped to `SAMPLE_CLIP_FACTOR` times the
  round's median claim (`clipped_samples`), so one peer claiming 10 million rows
  weighs at most as much as three typical peers, not as much as everyone else together.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

log = logging.getLogger(__name__)

MIN_ROBUST_UPDATES = 3
"""Fewest updates a robust rule combines: with 3 one bad update is outvoted, with 2 it is half the vote."""

SAMPLE_CLIP_FACTOR = 3.0
"""A claimed sample count weighs at most this many times the round's median claim (the lower median,
so with an even number of claims a liar cannot lift it). Room for honest carts holding a few times more
rows than their peers; one liar among four updates gets at most half the weight instead of all of it.
Holds while fewer than half the claims are inflated."""


@dataclass(frozen=True)
class Update:
    """One model update: whose it is, its weights, and how many rows trained it (as its sender claims)."""

    source: str
    weights: list[np.ndarray]
    samples: int


class AggregationError(ValueError):
    """The updates cannot be combined by this rule (too few, mismatched layouts...)."""


class Aggregator(ABC):
    name: ClassVar[str]
    notes: list[str]
    """What the rule adapted on its last `aggregate` (Krum's f lowered to the updates it had), for the round log: a
    protection weaker than configured is said where the round is recorded, not only in a log line."""

    def __init__(self) -> None:
        self.notes = []

    def aggregate(self, updates: Sequence[Update]) -> list[np.ndarray]:
        """Combine updates layer by layer; all must share one layout (checked here)."""
        self.notes = []
        if not updates:
            raise AggregationError("no updates to aggregate")
        _check_layouts(updates)
        return self.combine(updates)

    @abstractmethod
    def combine(self, updates: Sequence[Update]) -> list[np.ndarray]:
        """The rule itself, on updates already known to share a layout."""


def require_robust_quorum(rule: str, n: int, why: str) -> None:
    """Refuse, with a reason for the round log, when a robust rule has too few updates to protect anything."""
    if n < MIN_ROBUST_UPDATES:
        raise AggregationError(f"{rule} needs at least {MIN_ROBUST_UPDATES} updates {why}, got {n}")


def clipped_samples(updates: Sequence[Update], factor: float = SAMPLE_CLIP_FACTOR) -> np.ndarray:
    """Each update's claimed sample count, clipped to `factor` x the round's lower-median claim (at least 1 row)."""
    counts = np.array([max(u.samples, 0) for u in updates], dtype=np.float64)
    median = max(float(np.sort(counts)[(len(counts) - 1) // 2]), 1.0)
    cap = factor * median
    clipped = np.minimum(counts, cap)
    for update, claimed in zip(updates, counts):
        if claimed > cap:
            log.info(
                "sample count %d claimed by %s clipped to %d (%gx the round's median claim %d)",
                claimed,
                update.source[:8],
                cap,
                factor,
                median,
            )
    return clipped


def stacked(updates: Sequence[Update], layer: int) -> np.ndarray:
    """One layer of every update, stacked on a new first axis."""
    return np.stack([u.weights[layer] for u in updates])


def sorted_stack(updates: Sequence[Update], layer: int) -> np.ndarray:
    """One layer of every update, sorted coordinate-wise along the first axis (order statistics)."""
    values = stacked(updates, layer)
    values.sort(axis=0)
    return values


def _check_layouts(updates: Sequence[Update]) -> None:
    first = updates[0].weights
    for update in updates[1:]:
        if len(update.weights) != len(first):
            raise AggregationError(
                f"update from {update.source[:8]} has {len(update.weights)} tensors, expected {len(first)}"
            )
        for i, (a, b) in enumerate(zip(update.weights, first)):
            if a.shape != b.shape:
                raise AggregationError(f"update from {update.source[:8]}: tensor {i} is {a.shape}, expected {b.shape}")
