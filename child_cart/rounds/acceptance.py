"""The acceptance rule: which model a round keeps, judged on one set of held-out rows.

The candidates are the aggregate, the freshly trained local model, the current
model (the one the round started from) and the best model kept so far, all
scored by DECIDE on this round's held-out rows, so no score is remembered from
rows that have since changed. Then:

1. `top` is the highest score of any candidate, the best so far included.
2. The aggregate is kept when it scores at most the margin below `top`: the
   `tolerance` and, for a score that is a share of n held-out rows (higher is
   better, between 0 and 1), one standard error of `top`, sqrt(p(1 - p) / n),
   added in quadrature: sqrt(tolerance^2 + se^2). The tolerance is for the
   swarm's model: under non-IID data it scores a little below a cart's own model
   on that cart's rows while generalising better. The standard error is for the
   rows: on 45 of them a score of 0.4 is +-0.07, so the best of four candidates
   beats the aggregate by more than 0.05 by chance alone; the tolerance alone
   refused a third of the aggregates in a 20-cart simulation and cost 4 points
   of pooled top-3 (README, learning). In quadrature, not summed: on the 130 rows
   of the poisoning test (tests/rounds/test_poisoning.py) the sum let one
   poisoned aggregate 7 points below the local model through; 0.05 + 0.07 on
   45 rows would keep a drop no held-out set of that size can tell from noise,
   sqrt keeps 0.087.
3. Otherwise the highest-scoring other candidate is kept (on a tie the fresh
   local model, then the current one, then the best so far).

Since the best so far is a candidate every round and `top` is at least its
score, the kept model never scores more than the margin below it, however
many rounds pass: small losses cannot add up, as they did when the aggregate
was compared only with a local model trained from an already drifted one. A
poisoned aggregate drops far more than the margin (tests/rounds).
"""

from __future__ import annotations

import enum
import math
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
    rows: int = 0,
) -> Verdict:
    """Apply the rule to `candidates` (at most one of each kind), scored on `rows` held-out rows (0: unknown, no
    standard error added); see the module docstring."""
    scores = {c.candidate: s for c in candidates if (s := score(c.metrics, metric, higher_is_better)) is not None}
    shown = {c.candidate: c.metrics.get(metric) for c in candidates}
    fallback = next((c for c in TIE_ORDER if c in shown), Candidate.LOCAL)
    if not scores:
        why = aggregate_error or "no held-out rows to judge the candidates on"
        return Verdict(fallback, False, f"{why}; kept {DESCRIBED[fallback]}")
    top = max(scores, key=lambda c: (scores[c], c == Candidate.AGGREGATE))
    allowed = margin(tolerance, scores[top], rows, higher_is_better)
    lowest = scores[top] - allowed
    aggregate = scores.get(Candidate.AGGREGATE)

    def said(candidate: Candidate) -> str:
        return f"{DESCRIBED[candidate]} ({metric} {shown[candidate]:.4f})"

    if aggregate is not None and aggregate >= lowest:
        within = "the best candidate" if top == Candidate.AGGREGATE else f"within {allowed:.4g} of {said(top)}"
        return Verdict(Candidate.AGGREGATE, True, f"kept {said(Candidate.AGGREGATE)}: {within}")
    others = [c for c in TIE_ORDER if c in scores]
    kept = max(others, key=lambda c: (scores[c], -TIE_ORDER.index(c)))
    if aggregate is None:
        why = aggregate_error or "no aggregate"
    else:
        why = f"{said(Candidate.AGGREGATE)} is more than {allowed:.4g} below {said(top)}"
    return Verdict(kept, False, f"{why}; kept {said(kept)}")


def margin(tolerance: float, top: float, rows: int, higher_is_better: bool) -> float:
    """How far below the top score the aggregate may score and still be kept: tolerance and standard error in
    quadrature (see the module docstring)."""
    return math.hypot(tolerance, standard_error(top, rows, higher_is_better))


def standard_error(value: float, rows: int, higher_is_better: bool) -> float:
    """One standard error of a share `value` measured on `rows` rows; 0 when that does not apply (no rows known,
    a loss, a value outside 0..1)."""
    if rows <= 0 or not higher_is_better or not 0.0 <= value <= 1.0:
        return 0.0
    return math.sqrt(value * (1.0 - value) / rows)
