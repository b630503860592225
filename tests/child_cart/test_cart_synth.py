"""Synthetic shoppers: deterministic, seasonal, profile-dependent baskets that follow missions; IID at skew 0
and non-IID as skew grows; the Bayes ceiling computed from the definition matches what a large sample gives."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from child_cart.store import Store
from child_cart.store.rows import basket_of
from child_cart.synth import shoppers as synth
from child_cart.tasks.recommend import RecommendTask, basket_steps
from child_cart.tasks.split import is_validation

ROW_KEYS = {
    "_id",
    "checkout_id",
    "position",
    "mission",
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
    for basket, size in baskets.items():
        items = [r for r in rows if r["checkout_id"] == basket]
        assert [r["position"] for r in items] == list(range(size))
        assert len({(r["time"], r["profile"], r["mission"]) for r in items}) == 1
        categories = [r["category"] for r in items]
        assert categories == sorted(categories, key=categories.index), "a category's items follow one another"


def share(rows: list[dict], value: str, key: str = "category", **where: object) -> float:
    chosen = [r for r in rows if all(r[k] in v if isinstance(v, tuple) else r[k] == v for k, v in where.items())]
    return sum(r[key] == value for r in chosen) / len(chosen)


def test_purchases_follow_the_seasons_and_the_profiles(catalogue) -> None:
    rows = synth.generate(catalogue, 20000, seed=5)[0]
    assert share(rows, "frozen", month=(6, 7, 8, 9)) > 1.3 * share(rows, "frozen", month=(12, 1, 2, 3))
    assert share(rows, "bakery", month=(11, 12, 1)) > 1.5 * share(rows, "bakery", month=(5, 6, 7))
    assert share(rows, "meat_fish", profile="vegan") < 0.2 * share(rows, "meat_fish", profile="athlete")
    assert share(rows, "baby", profile="family") > 5 * share(rows, "baby", profile="student")


def baskets_by_mission(rows: list[dict]) -> dict[str, list[list[str]]]:
    """Mission -> the category sequences of its baskets."""
    found: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        found.setdefault(row["mission"], {}).setdefault(row["checkout_id"], []).append(row["category"])
    return {mission: list(baskets.values()) for mission, baskets in found.items()}


def test_missions_make_baskets(catalogue) -> None:
    rows = synth.generate(catalogue, 30000, seed=6)[0]
    by_mission = baskets_by_mission(rows)
    assert set(by_mission) == set(catalogue.mission_names)
    for mission in catalogue.missions:
        first = [basket[0] for basket in by_mission[mission.name]]
        listed = sum(c in mission.categories for c in first) / len(first)
        assert listed > 0.85, f"{mission.name}: only {listed:.2f} of its baskets start in its categories"
    baby = [sum("baby" in b for b in baskets) / len(baskets) for baskets in by_mission.values()]
    assert max(baby) == sum("baby" in b for b in by_mission["baby_care"]) / len(by_mission["baby_care"]) > 0.6
    assert sorted(baby)[-2] < 0.25
    # the missions differ by profile and season
    assert share(rows, "baby_care", key="mission", profile="family") > 5 * share(
        rows, "baby_care", key="mission", profile="student"
    )
    assert share(rows, "barbecue", key="mission", month=(6, 7, 8)) > 3 * share(
        rows, "barbecue", key="mission", month=(12, 1, 2)
    )
    # a basket holds each category at most once as a step, and never more steps than the cap
    steps = Counter(step.basket for step in basket_steps(rows))
    assert max(steps.values()) <= synth.MAX_BASKET_CATEGORIES


def mission_shares(rows: list[dict], names: list[str]) -> np.ndarray:
    counts = Counter(r["mission"] for r in rows)
    return np.array([counts[n] for n in names]) / len(rows)


def test_each_store_has_its_own_mission_mix(catalogue) -> None:
    names = catalogue.mission_names
    average = np.array([m.share for m in catalogue.missions])
    average /= average.sum()
    iid = [mission_shares(rows, names) for rows in synth.generate(catalogue, 4000, carts=4, seed=2, skew=0.0)]
    skewed = [mission_shares(rows, names) for rows in synth.generate(catalogue, 4000, carts=4, seed=2, skew=1.0)]
    spread = [0.5 * np.abs(a - b).sum() for a, b in zip(iid, iid[1:])]
    apart = [0.5 * np.abs(a - b).sum() for a, b in zip(skewed, skewed[1:])]
    assert max(spread) < 0.1
    assert min(apart) > 0.2
    mixes = [synth.cart_mix(catalogue, 2, k, 1.0).missions for k in range(4)]
    assert all(not np.allclose(a, b) for a, b in zip(mixes, mixes[1:]))
    assert all(np.allclose(synth.cart_mix(catalogue, 2, k, 0.0).missions, average) for k in range(4))


def cluster_standard_error(hits: np.ndarray, baskets: list[str]) -> float:
    """Standard error of a mean over rows that come in correlated groups (the rows of one basket)."""
    centred: Counter[str] = Counter()
    for basket, hit in zip(baskets, hits - hits.mean()):
        centred[basket] += hit
    return float(np.sqrt(sum(v * v for v in centred.values())) / len(hits))


@pytest.mark.parametrize(("carts", "skew", "rows"), [(1, 0.0, 60000), (3, 2.0, 20000)])
def test_the_bayes_ceiling_matches_a_large_sample(catalogue, carts: int, skew: float, rows: int) -> None:
    """The Bayes-optimal rule, applied to freshly generated rows, scores what the exact ceiling says."""
    model = synth.ShopperModel(catalogue, carts, seed=8, skew=skew)
    ceiling = synth.bayes_ceiling(catalogue, carts, seed=8, skew=skew)
    assert ceiling == model.ceiling()
    names = catalogue.category_names
    ranks, baskets = [], []
    for cart_rows in synth.generate(catalogue, rows, carts, seed=8, skew=skew):
        for step in basket_steps(cart_rows):
            order = list(np.argsort(-model.probabilities(step.month, step.profile, step.before), kind="stable"))
            ranks.append(order.index(names.index(step.category)))
            baskets.append(step.basket)
    ranks_ = np.array(ranks)
    assert len(ranks_) / len(set(baskets)) == pytest.approx(ceiling.rows_per_basket, rel=0.03)
    for k, expected in ((1, ceiling.top1), (3, ceiling.top3), (5, ceiling.recall5)):
        hits = (ranks_ < k).astype(np.float64)
        error = cluster_standard_error(hits, baskets)
        assert abs(hits.mean() - expected) < 3.5 * error, f"top-{k}: sample {hits.mean():.4f}, ceiling {expected:.4f}"
    assert 0.3 < ceiling.top1 < ceiling.top3 < ceiling.recall5 < 1.0


def test_the_basket_carries_signal_the_month_and_profile_do_not(catalogue) -> None:
    """Knowing the basket raises the ceiling: the best basket-blind rule (it still skips what is in it) scores less."""
    model = synth.ShopperModel(catalogue)
    joint = model.joint
    blind_scores = joint.sum(axis=2)
    blind = 0.0
    for i, prefix in enumerate(model.subsets):
        scores = blind_scores.copy()
        scores[..., sorted(prefix)] = -1.0
        best = scores.argmax(axis=-1)
        blind += float(np.take_along_axis(joint[:, :, i, :], best[..., None], -1).sum())
    assert model.ceiling().top1 > blind / joint.sum() + 0.08


def test_a_catalogue_without_missions_still_makes_baskets(catalogue) -> None:
    plain = catalogue.model_copy(update={"missions": ()})
    rows = synth.generate(plain, 2000, seed=1)[0]
    assert {r["mission"] for r in rows} == {"any"}
    assert 0.2 < synth.bayes_ceiling(plain).top1 < synth.bayes_ceiling(catalogue).top1


def test_rows_stored_before_baskets_load_as_single_item_baskets(store: Store, catalogue) -> None:
    """Old rows (no position) are baskets of one, on the held-out side their row id always gave them."""
    new = synth.generate(catalogue, 200, seed=4)[0]
    old = [
        {k: v for k, v in row.items() if k not in ("position", "mission")} | {"_id": f"old-{n}"}
        for n, row in enumerate(synth.generate(catalogue, 200, seed=5)[0])
    ]
    synth.fill_store(store, new + old)
    task = RecommendTask(catalogue, val_fraction=0.3)
    rows = task.rows(store)
    assert [basket_of(r) for r in rows if r["_id"].startswith("old-")] == [
        (r["_id"], 0) for r in rows if r["_id"].startswith("old-")
    ]
    steps = basket_steps(rows)
    old_steps = [s for s in steps if s.basket.startswith("old-")]
    assert len(old_steps) == len(old) and all(s.before == () for s in old_steps)
    held_out = {s.basket for s in old_steps if is_validation(s.basket, 0.3)}
    assert held_out == {r["_id"] for r in old if is_validation(r["_id"], 0.3)}
    dataset = task.make_dataset(rows)
    assert len(dataset.x_train) + len(dataset.x_val) == len(steps) > len(old)


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
