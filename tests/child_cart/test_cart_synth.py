"""Synthetic shoppers: deterministic, seasonal, profile-dependent, IID at skew 0 and non-IID as skew grows."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from child_cart.store import Store
from child_cart.synth import shoppers as synth

ROW_KEYS = {
    "_id",
    "checkout_id",
    "cart_id",
    "time",
    "month",
    "profile",
    "product_id",
    "category",
    "price_cents",
    "source",
}


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), skew=st.floats(0, 20), carts=st.integers(1, 4), rows=st.integers(0, 60))
def test_same_seed_same_rows(catalogue, seed: int, skew: float, carts: int, rows: int) -> None:
    first = synth.generate(catalogue, rows, carts, seed, skew)
    assert first == synth.generate(catalogue, rows, carts, seed, skew)
    assert [len(cart) for cart in first] == [rows] * carts
    assert synth.generate(catalogue, rows, carts + 1, seed, skew)[:carts] == first


def test_different_seeds_give_different_rows(catalogue) -> None:
    assert synth.generate(catalogue, 50, seed=1) != synth.generate(catalogue, 50, seed=2)


def test_rows_have_the_purchase_schema(catalogue) -> None:
    rows = synth.generate(catalogue, 400, carts=2, seed=3, cart_ids=["north", "south"])[1]
    products = {p.id: p for p in catalogue.products}
    assert len({r["_id"] for r in rows}) == len(rows)
    for row in rows:
        assert set(row) == ROW_KEYS
        assert row["cart_id"] == "south" and row["source"] == "synth"
        assert row["month"] == row["time"].month and row["time"].year == 2025
        assert products[row["product_id"]].category == row["category"]
        assert row["price_cents"] == products[row["product_id"]].price_cents
    baskets = Counter(r["checkout_id"] for r in rows)
    assert 2.5 < np.mean(list(baskets.values())) < 5.5


def share(rows: list[dict], category: str, **where: object) -> float:
    chosen = [r for r in rows if all(r[k] in v if isinstance(v, tuple) else r[k] == v for k, v in where.items())]
    return sum(r["category"] == category for r in chosen) / len(chosen)


def test_purchases_follow_the_seasons_and_the_profiles(catalogue) -> None:
    rows = synth.generate(catalogue, 20000, seed=5)[0]
    assert share(rows, "frozen", month=(6, 7, 8, 9)) > 2 * share(rows, "frozen", month=(12, 1, 2, 3))
    assert share(rows, "bakery", month=(11, 12, 1)) > 1.5 * share(rows, "bakery", month=(5, 6, 7))
    assert share(rows, "meat_fish", profile="vegan") < 0.2 * share(rows, "meat_fish", profile="athlete")
    assert share(rows, "baby", profile="family") > 5 * share(rows, "baby", profile="student")


def mean_distance_from_global_mix(catalogue, skew: float) -> float:
    """Mean total-variation distance between each cart's profile shares and the catalogue's."""
    shares = np.array([p.share for p in catalogue.profiles])
    shares /= shares.sum()
    carts = synth.generate(catalogue, 1500, carts=6, seed=9, skew=skew)
    names = catalogue.profile_names
    distances = []
    for rows in carts:
        counts = Counter(r["profile"] for r in rows)
        mix = np.array([counts[n] for n in names]) / len(rows)
        distances.append(0.5 * np.abs(mix - shares).sum())
    return float(np.mean(distances))


def test_skew_zero_is_iid_and_larger_skew_is_more_non_iid(catalogue) -> None:
    iid, mild, strong = (mean_distance_from_global_mix(catalogue, s) for s in (0.0, 0.5, 8.0))
    assert iid < 0.06
    assert iid < mild < strong
    assert strong > 0.35


def test_negative_skew_and_mismatched_ids_are_refused(catalogue) -> None:
    with pytest.raises(ValueError, match="skew"):
        synth.generate(catalogue, 10, skew=-1)
    with pytest.raises(ValueError, match="cart ids"):
        synth.generate(catalogue, 10, carts=2, cart_ids=["a"])


def test_filling_a_store_twice_with_the_same_seed_does_not_duplicate(store: Store, catalogue) -> None:
    rows = synth.generate(catalogue, 300, seed=4)[0]
    synth.fill_store(store, rows)
    synth.fill_store(store, rows)
    assert store.purchases.count_documents({}) == 300
    assert store.purchases.count_documents({"source": "synth", "cart_id": "cart-0"}) == 300
