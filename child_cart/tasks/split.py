"""The held-out validation split: decided by a hash of each row's `_id`.

A row lands on the same side on every cart, in every process and in every
round, so a model is never scored on rows it trained on, and adding rows
never moves old ones across the line.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def is_validation(row_id: str, fraction: float) -> bool:
    """True when the row belongs to the held-out set (about `fraction` of all rows)."""
    digest = hashlib.sha256(row_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") < fraction * 2**64


def split_rows(rows: Iterable[dict], fraction: float) -> tuple[list[dict], list[dict]]:
    """(training rows, validation rows), in their original order."""
    train: list[dict] = []
    val: list[dict] = []
    for row in rows:
        (val if is_validation(str(row["_id"]), fraction) else train).append(row)
    return train, val
