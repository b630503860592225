"""What an aggregator is: many weight updates in, one weight list out.

Every rule the round engine can use implements `Aggregator.aggregate`, so a new
rule is one class plus one line in the registry (the shape of Flower's Strategy).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np


@dataclass(frozen=True)
class Update:
    """One model update: whose it is, its weights, and how many rows trained it."""

    source: str
    weights: list[np.ndarray]
    samples: int


class AggregationError(ValueError):
    """The updates cannot be combined by this rule (too few, mismatched layouts...)."""


class Aggregator(ABC):
    name: ClassVar[str]

    def aggregate(self, updates: Sequence[Update]) -> list[np.ndarray]:
        """Combine updates layer by layer; all must share one layout (checked here)."""
        if not updates:
            raise AggregationError("no updates to aggregate")
        _check_layouts(updates)
        return self.combine(updates)

    @abstractmethod
    def combine(self, updates: Sequence[Update]) -> list[np.ndarray]:
        """The rule itself, on updates already known to share a layout."""


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
