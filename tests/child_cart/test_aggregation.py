"""Aggregation rules: shared properties as one table, then what makes each rule itself."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from child_cart.aggregation import AGGREGATORS, AggregationError, Update, make_aggregator
from child_cart.aggregation.krum import Krum

SHAPES = [(3, 4), (4,), (2, 2, 2)]


def make_updates(rng: np.random.Generator, n: int, spread: float = 0.1, samples=None) -> list[Update]:
    centre = [rng.normal(size=s).astype("float32") for s in SHAPES]
    return [
        Update(
            f"{i:040x}",
            [(c + spread * rng.normal(size=c.shape)).astype("float32") for c in centre],
            samples[i] if samples else 10,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("name", AGGREGATORS)
def test_identical_updates_give_that_update(name):
    rng = np.random.default_rng(0)
    one = make_updates(rng, 1)[0]
    out = make_aggregator(name).aggregate([Update(f"{i}", one.weights, 5) for i in range(5)])
    for got, want in zip(out, one.weights):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("name", AGGREGATORS)
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), data=st.data())
def test_order_of_updates_does_not_matter(name, seed, data):
    updates = make_updates(np.random.default_rng(seed), 6)
    shuffled = data.draw(st.permutations(updates))
    rule = make_aggregator(name)
    for a, b in zip(rule.aggregate(updates), rule.aggregate(shuffled)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", AGGREGATORS)
def test_mismatched_layout_refused(name):
    updates = make_updates(np.random.default_rng(1), 5)
    bad = Update("b" * 40, [np.zeros((9, 9), "float32")] + updates[0].weights[1:], 10)
    with pytest.raises(AggregationError, match="tensor 0"):
        make_aggregator(name).aggregate(updates + [bad])


@pytest.mark.parametrize("name", ["median", "trimmed_mean", "krum"])
def test_robust_rules_ignore_one_scaled_attacker(name):
    rng = np.random.default_rng(2)
    honest = make_updates(rng, 6)
    attacker = Update("e" * 40, [w * -100 for w in honest[0].weights], 10)
    clean_mean = make_aggregator("fedavg").aggregate(honest)
    robust = make_aggregator(name).aggregate(honest + [attacker])
    poisoned = make_aggregator("fedavg").aggregate(honest + [attacker])
    robust_err = sum(np.abs(r - c).max() for r, c in zip(robust, clean_mean))
    fedavg_err = sum(np.abs(p - c).max() for p, c in zip(poisoned, clean_mean))
    assert robust_err < 1.0 < fedavg_err


def test_fedavg_weights_by_samples():
    a = Update("a", [np.array([0.0, 0.0], "float32")], 1)
    b = Update("b", [np.array([4.0, 8.0], "float32")], 3)
    np.testing.assert_allclose(make_aggregator("fedavg").aggregate([a, b])[0], [3.0, 6.0])


def test_trimmed_mean_drops_extremes_per_coordinate():
    values = [[1.0], [2.0], [3.0], [4.0], [100.0]]
    updates = [Update(str(i), [np.array(v, "float32")], 1) for i, v in enumerate(values)]
    np.testing.assert_allclose(make_aggregator("trimmed_mean", trim_ratio=0.2).aggregate(updates)[0], [3.0])


def test_krum_scores_use_n_minus_f_minus_2_nearest():
    points = [[0.0], [1.0], [2.0], [10.0], [11.0]]
    updates = [Update(str(i), [np.array(p)], 1) for i, p in enumerate(points)]
    scores = Krum(f=1).scores(updates)
    assert scores[1] == pytest.approx(1 + 1)
    assert Krum(f=1).select(updates) == 1


def test_krum_needs_enough_updates():
    with pytest.raises(AggregationError, match="more than 4 updates"):
        Krum(f=1).aggregate(make_updates(np.random.default_rng(3), 4))


def test_unknown_aggregator_named():
    with pytest.raises(KeyError, match="known: fedavg"):
        make_aggregator("mean")
