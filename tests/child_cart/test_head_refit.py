"""The head refit: a convex fit of a softmax layer pulled toward the swarm's, its strength chosen on the rows alone."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from child_cart.tasks.head_refit import FOLDS, Head, Rows, fit, log_loss, pick_strength, refit_head

FEATURES, CLASSES = 8, 5


def _head(rng: np.random.Generator, scale: float = 1.0) -> Head:
    return Head(
        (scale * rng.normal(size=(FEATURES, CLASSES))).astype(np.float32),
        (scale * rng.normal(size=CLASSES)).astype(np.float32),
    )


def _rows(rng: np.random.Generator, truth: Head, count: int, blocked: int | None = None) -> Rows:
    """`count` rows whose labels are drawn from `truth`'s softmax; `blocked`: a class every row's offset rules out."""
    features = np.maximum(rng.normal(size=(count, FEATURES)), 0.0).astype(np.float32)
    offsets = np.zeros((count, CLASSES))
    if blocked is not None:
        offsets[:, blocked] = -1e4
    logits = features @ truth.kernel + truth.bias + offsets
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(CLASSES, p=row) for row in p])
    return Rows(features, offsets, labels)


def test_rows_from_another_head_move_the_refit_toward_it() -> None:
    """A store whose shoppers follow another head: the refit predicts fresh rows of that store far better."""
    rng = np.random.default_rng(0)
    swarm, store = _head(rng), _head(rng, scale=2.0)
    refit = refit_head(_rows(rng, store, 400), swarm)
    fresh = _rows(rng, store, 2000)
    assert log_loss(refit, fresh) < 0.8 * log_loss(swarm, fresh), (log_loss(refit, fresh), log_loss(swarm, fresh))


def test_rows_like_the_swarms_keep_the_refit_near_it() -> None:
    """A store like the swarm: cross-validation picks a strong pull and the refit loses nothing on fresh rows."""
    rng = np.random.default_rng(1)
    swarm = _head(rng, scale=2.0)
    rows = _rows(rng, swarm, 150)
    assert pick_strength(rows, swarm, (0.001, 1.0, 10.0)) >= 1.0
    fresh = _rows(rng, swarm, 2000)
    assert log_loss(refit_head(rows, swarm), fresh) <= 1.01 * log_loss(swarm, fresh)


def test_the_pull_decides_how_far_the_head_moves() -> None:
    rng = np.random.default_rng(2)
    swarm = _head(rng)
    rows = _rows(rng, _head(rng, scale=2.0), 300)

    def moved(strength: float) -> float:
        head = fit(rows, swarm, strength)
        return float(np.linalg.norm(head.kernel - swarm.kernel) + np.linalg.norm(head.bias - swarm.bias))

    assert moved(1e4) < 1e-3 < moved(10.0) < moved(0.1) < moved(0.001)


def test_an_offset_that_rules_a_class_out_is_respected() -> None:
    """The recommender's in-basket penalty: the fit sees the rows as the model scores them, and stays finite."""
    rng = np.random.default_rng(3)
    swarm = _head(rng)
    rows = _rows(rng, _head(rng, scale=2.0), 300, blocked=0)
    refit = refit_head(rows, swarm)
    assert np.isfinite(refit.kernel).all() and np.isfinite(refit.bias).all()
    assert not (rows.labels == 0).any()
    assert log_loss(refit, rows) < log_loss(swarm, rows)


def test_too_few_rows_to_cross_validate_keep_the_prior() -> None:
    rng = np.random.default_rng(4)
    swarm = _head(rng)
    assert refit_head(_rows(rng, swarm, FOLDS - 1), swarm) is swarm


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), count=st.integers(FOLDS, 60), strength=st.sampled_from([0.01, 1.0, 100.0]))
def test_the_fit_never_scores_its_rows_worse_than_the_prior(seed: int, count: int, strength: float) -> None:
    """The objective is the rows' loss plus a pull that is 0 at the prior, so the optimum's loss is at most the prior's."""
    rng = np.random.default_rng(seed)
    swarm = _head(rng)
    rows = _rows(rng, _head(rng, scale=3.0), count)
    head = fit(rows, swarm, strength)
    assert head.kernel.dtype == swarm.kernel.dtype and head.kernel.shape == swarm.kernel.shape
    assert log_loss(head, rows) <= log_loss(swarm, rows) + 1e-6 * count


@pytest.mark.parametrize("count", [FOLDS, 37])
def test_a_refit_is_deterministic(count: int) -> None:
    rng = np.random.default_rng(5)
    swarm = _head(rng)
    rows = _rows(rng, _head(rng), count)
    first, second = refit_head(rows, swarm), refit_head(rows, swarm)
    assert np.array_equal(first.kernel, second.kernel) and np.array_equal(first.bias, second.bias)
