"""Aggregation rules: shared properties as one table, then what makes each rule itself."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from child_cart.aggregation import AGGREGATORS, AggregationError, Update, make_aggregator
from child_cart.aggregation.base import SAMPLE_CLIP_FACTOR, clipped_samples
from child_cart.aggregation.krum import Krum
from child_cart.aggregation.trimmed_mean import trim_count
from child_cart.rounds.settings import RoundSettings

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


@pytest.mark.parametrize(
    ("configured", "n", "used"),
    [(1, 3, 0), (1, 4, 0), (1, 5, 1), (1, 9, 1), (2, 6, 1), (2, 7, 2), (3, 20, 3), (0, 8, 0)],
)
def test_krum_adapts_f_to_the_updates_it_has(configured, n, used):
    """As Flower's Krum: the largest f with n > 2f + 2, never more than configured."""
    assert Krum(f=configured).effective_f(n) == used


def test_krum_says_when_it_lowered_f_and_only_then():
    """The round log names a Krum weaker than configured (`Aggregator.notes`); a fresh aggregate starts clean."""
    rng = np.random.default_rng(4)
    krum = Krum(f=1)
    krum.aggregate(make_updates(rng, 4))
    assert krum.notes == ["krum: 4 updates bear f=0, not the configured f=1; used f=0"]
    krum.aggregate(make_updates(rng, 5))
    assert krum.notes == [], "five updates bear the configured f=1"
    for name in AGGREGATORS:
        rule = make_aggregator(name, krum_f=0)
        rule.aggregate(make_updates(rng, 4))
        assert rule.notes == [], name


def test_krum_at_four_updates_aggregates_and_below_three_refuses():
    updates = make_updates(np.random.default_rng(3), 4)
    assert len(Krum(f=1).aggregate(updates)) == len(SHAPES)
    with pytest.raises(AggregationError, match="krum needs at least 3 updates .* got 2"):
        Krum(f=1).aggregate(updates[:2])


@pytest.mark.parametrize(
    ("n", "ratio", "cut"),
    [
        (4, 0.2, 1),
        (4, 0.01, 1),
        (5, 0.2, 1),
        (6, 0.2, 2),
        (10, 0.1, 1),
        (10, 0.3, 3),
        (11, 0.45, 5),
        (3, 0.45, 1),
        (4, 0.0, 0),
    ],
)
def test_trim_count_rounds_up_and_keeps_one(n, ratio, cut):
    assert trim_count(n, ratio) == cut


@pytest.mark.parametrize("name", ["median", "trimmed_mean", "krum"])
def test_robust_rules_refuse_two_updates_with_a_reason(name):
    """With two updates each robust rule would be a mean or a coin toss: the round log gets the reason instead."""
    with pytest.raises(AggregationError, match=f"{name} needs at least 3 updates"):
        make_aggregator(name).aggregate(make_updates(np.random.default_rng(4), 2))


def test_clipped_samples_against_the_lower_median_claim():
    def claims(*samples):
        return clipped_samples([Update(str(i), [np.zeros(1, "float32")], s) for i, s in enumerate(samples)])

    np.testing.assert_array_equal(claims(100, 100, 100, 10_000_000), [100, 100, 100, 100 * SAMPLE_CLIP_FACTOR])
    np.testing.assert_array_equal(claims(100, 120, 10_000_000, 10_000_000), [100, 120, 360, 360])
    np.testing.assert_array_equal(
        claims(100, 10_000_000), [100, 300]
    )  # own + one liar: the liar cannot lift the median
    np.testing.assert_array_equal(claims(50, 100, 150), [50, 100, 150])  # honest spreads within the factor untouched


# --- at the default settings (k=3: own update + 3 peers = 4), one attacker among them ------------------------

HONEST_VALUE, HONEST_SAMPLES, K_DEFAULT = 1.0, 100, 3


def _attacked(value: float, samples: int, rng: np.random.Generator) -> tuple[list[Update], list[np.ndarray]]:
    """3 honest updates near HONEST_VALUE plus one attacker; also the honest updates' per-coordinate [min, max]."""
    honest = [
        Update(f"h{i}", [(HONEST_VALUE + 0.05 * rng.normal(size=s)).astype("float32") for s in SHAPES], HONEST_SAMPLES)
        for i in range(K_DEFAULT)
    ]
    attacker = Update("attacker", [np.full(s, value, "float32") for s in SHAPES], samples)
    bounds = [np.stack([u.weights[i] for u in honest]) for i in range(len(SHAPES))]
    return [*honest, attacker], [np.stack([b.min(axis=0), b.max(axis=0)]) for b in bounds]


ATTACKS = {
    # name: (the attacker's value in every coordinate, the sample count it claims)
    "sends 1000s": (1000.0, HONEST_SAMPLES),
    "sends -1000s": (-1000.0, HONEST_SAMPLES),
    "claims 10,000,000 samples": (2.0, 10_000_000),
    "sends 1000s claiming 10,000,000 samples": (1000.0, 10_000_000),
}

# rule, attack -> the largest share of the attacker's value the result may carry (robust rules: none, the
# result stays inside the honest updates' range; FedAvg: the clipped claim's share of the weight)
BOUNDED = [
    *[(rule, attack, 0.0) for rule in ("median", "trimmed_mean", "krum") for attack in ATTACKS],
    ("fedavg", "claims 10,000,000 samples", SAMPLE_CLIP_FACTOR / (SAMPLE_CLIP_FACTOR + K_DEFAULT)),
]


@pytest.mark.parametrize(("rule", "attack", "share"), BOUNDED)
def test_one_attacker_at_default_settings_is_bounded(rule, attack, share):
    defaults = RoundSettings()
    assert defaults.k == K_DEFAULT
    value, samples = ATTACKS[attack]
    updates, honest_range = _attacked(value, samples, np.random.default_rng(5))
    out = make_aggregator(rule, defaults.trim_ratio, defaults.krum_f).aggregate(updates)
    for got, (low, high) in zip(out, honest_range):
        slack = share * np.abs(value - high) + 1e-6
        assert np.all(got >= low - slack) and np.all(got <= high + slack), f"{rule}, attacker {attack}: {got}"


def test_trimmed_mean_at_k3_no_longer_lets_1000_through():
    """The finding: 4 updates at trim ratio 0.2 trimmed nothing and the mean was (1 + 1 + 1 + 1000) / 4 = 250.75."""
    updates = [Update(str(i), [np.array([v], "float32")], 1) for i, v in enumerate([1.0, 1.0, 1.0, 1000.0])]
    assert make_aggregator("trimmed_mean", trim_ratio=RoundSettings().trim_ratio).aggregate(updates)[0][0] == 1.0


def test_fedavg_a_10m_claim_weighs_as_much_as_the_clip_allows_not_everything():
    """Unclipped, 10M rows against 3 x 100 would take 99.997% of the weight (the result ~2.0, the liar's value)."""
    updates, _ = _attacked(2.0, 10_000_000, np.random.default_rng(6))
    share = SAMPLE_CLIP_FACTOR / (SAMPLE_CLIP_FACTOR + K_DEFAULT)
    for layer in make_aggregator("fedavg").aggregate(updates):
        np.testing.assert_allclose(layer, HONEST_VALUE + share * (2.0 - HONEST_VALUE), atol=0.1)


def test_unknown_aggregator_named():
    with pytest.raises(KeyError, match="known: fedavg"):
        make_aggregator("mean")
