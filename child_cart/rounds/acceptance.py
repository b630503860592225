"""The acceptance rule: which model a round keeps, judged on one set of held-out rows.

The candidates are the aggregate, the freshly trained local model, the current
model (the one the round started from) and the best model kept so far, all
scored by DECIDE on this round's held-out rows, so no score is remembered from
rows that have since changed. Then:

1. `top` is the highest score of any candidate, the best so far included.
2. The aggregate is kept when it scores at most `tolerance` below `top`. The
   slack is for the swarm's model: under non-IID data it scores a little below
   a cart's own model on that cart's rows while generalising better.
3. Otherwise the highest-scoring other candidate is kept (on a tie the fresh
   local model, then the current one, then the best so far).

Since the best so far is a candidate every round and `top` is at least its
score, the kept model never scores more than the tolerance below it, however
many rounds pass: small losses cannot add up, as they did when the aggregate
was compared only with a local model trained from an already drifted one.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from child_cart.rounds.roundlog import Metrics


class Candidate(enum.StrEnum):
    """What a round can keep; the value is what the round log's `kept` and a model version's `source` say."""

    AGGREGATE = "aggregate"
    LOCAL = "local"
    CURRENT = "current"
    BEST = "best"


DESCRIBED = {
    Candidate.AGGREGATE: "the aggregate",
    Candidate.LOCAL: "the fresh local model",
    Candidate.CURRENT: "the current model",
    Candidate.BEST: "the best model so far",
}
TIE_ORDER = (Candidate.LOCAL, Candidate.CURRENT, Candidate.BEST)


@dataclass(frozen=True)
class Scored:
    """One candidate and its held-out metrics."""

    candidate: Candidate
    metrics: Metrics


@dataclass(frozen=True)
class Verdict:
    """What to keep and why, in words for the round log."""

    kept: Candidate
    accepted: bool
    reason: str


def score(metrics: Metrics, metric: str, higher_is_better: bool) -> float | None:
    """`metric` oriented so that higher is better, or None when these metrics lack it (no held-out rows)."""
    if metric not in metrics:
        return None
    value = float(metrics[metric])
    return value if higher_is_better else -value


def choose(
    candidates: Sequence[Scored],
    metric: str,
    higher_is_better: bool,
    tolerance: float,
    aggregate_error: str = "",
) -> Verdict:
    """Apply the rule to `candidates` (at most one of each kind); see the module docstring."""
    scores = {c.candidate: s for c in candidates if (s := score(c.metrics, metric, higher_is_better)) is not None}
    shown = {c.candidate: c.metrics.get(metric) for c in candidates}
    fallback = next((c for c in TIE_ORDER if c in shown), Candidate.LOCAL)
    if not scores:
        why = aggregate_error or "no held-out rows to judge the candidates on"
        return Verdict(fallback, False, f"{why}; kept {DESCRIBED[fallback]}")
    top = max(scores, key=lambda c: (scores[c], c == Candidate.AGGREGATE))
    lowest = scores[top] - tolerance
    aggregate = scores.get(Candidate.AGGREGATE)

    def said(candidate: Candidate) -> str:
        return f"{DESCRIBED[candidate]} ({metric} {shown[candidate]:.4f})"

    if aggregate is not None and aggregate >= lowest:
        margin = "the best candidate" if top == Candidate.AGGREGATE else f"within {tolerance:g} of {said(top)}"
        return Verdict(Candidate.AGGREGATE, True, f"kept {said(Candidate.AGGREGATE)}: {margin}")
    others = [c for c in TIE_ORDER if c in scores]
    kept = max(others, key=lambda c: (scores[c], -TIE_ORDER.index(c)))
    if aggregate is None:
        why = aggregate_error or "no aggregate"
    else:
        why = f"{said(Candidate.AGGREGATE)} is more than {tolerance:g} below {said(top)}"
    return Verdict(kept, False, f"{why}; kept {said(kept)}")
