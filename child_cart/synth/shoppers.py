"""Synthetic shoppers: seeded baskets that follow shopping missions, for demos, tests and simulations.

The generative model is the catalogue's. One basket of cart k:

1. a profile p from the cart's profile mix, and a shopping time (so a month m);
2. a mission (breakfast, barbecue, ...) with probability proportional to

       mission_mix_k[mission] * exp(profiles[mission][p] + season[mission] * cos(2*pi*(m - peak[mission]) / 12))

3. how many distinct categories it holds: L = min(1 + Poisson(BASKET_EXTRA_CATEGORIES),
   MAX_BASKET_CATEGORIES, number of categories);
4. those L categories, in order, drawn one after the other *without
   replacement* with weights

       w[c] = exp(mission.categories[c] (or mission.other) + likes[p][c]
                  + SEASON * season[c] * cos(2*pi*(m - peak_month[c]) / 12))

   (successive sampling, drawn as a Plackett-Luce order with Gumbel keys);
5. for each category 1 + Poisson(EXTRA_ITEMS) items, each a product of that
   category picked uniformly; the items of a category follow one another.

A catalogue without missions behaves as if it had one mission that buys
every category alike, so baskets follow the profiles' tastes alone.

Each cart draws its own profile mix and mission mix: with skew 0 they are
the catalogue's shares (IID); with skew x > 0 each is Dirichlet(shares *
SKEW_SCALE / x), so small x stays near IID and large x gives stores
dominated by a few profiles and a few missions (non-IID: a store rarely sees
some missions and can learn them only from the swarm). Cart k's rows depend
only on (seed, k, its id), not on how many carts were asked for.

Every item is one purchase row; the rows of a basket share its checkout id
and carry their position in it (and, for inspection, the mission; the
recommend task never reads it).

`bayes_ceiling` computes from this definition, exactly, the best top-1,
top-3 and recall@5 any model can reach on the recommend task's rows (month,
profile, categories already in the basket -> the next new category), for the
pooled rows of a set of carts.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

import numpy as np

from child_cart.store import Catalogue, Product, Store
from child_cart.store.rows import purchase_row, store_time

log = logging.getLogger(__name__)

MONTHS = 12
SKEW_SCALE = 10.0
MAX_CONCENTRATION = 1e6  # a tiny skew is IID in all but name; keeps the division finite
BASKET_EXTRA_CATEGORIES = 2.0
MAX_BASKET_CATEGORIES = 6
EXTRA_ITEMS = 0.35
SEASON = 0.5
DECEMBER_RUSH = 1.5
WRITE_CHUNK = 5000
CEILING_KS = (1, 3, 5)


def month_cosines(peaks: np.ndarray) -> np.ndarray:
    """cos(2*pi*(month - peak)/12) as [month 0..11, len(peaks)]."""
    months = np.arange(1, MONTHS + 1, dtype=np.float64)[:, None]
    return np.cos(2 * np.pi * (months - np.asarray(peaks, dtype=np.float64)[None, :]) / MONTHS)


def category_weights(catalogue: Catalogue) -> np.ndarray:
    """Unnormalised within-mission category weights w as [mission, month 0..11, profile, category]."""
    names = catalogue.category_names
    peaks = np.array([c.peak_month for c in catalogue.categories], dtype=np.float64)
    season = np.array([c.season for c in catalogue.categories], dtype=np.float64)
    likes = np.array([[p.likes.get(c, 0.0) for c in names] for p in catalogue.profiles])
    if catalogue.missions:
        base = np.array([[m.categories.get(c, m.other) for c in names] for m in catalogue.missions])
    else:
        base = np.zeros((1, len(names)))
    seasonal = season[None, :] * month_cosines(peaks)  # [month, category]
    logits = base[:, None, None, :] + likes[None, None, :, :] + SEASON * seasonal[None, :, None, :]
    return np.exp(logits - logits.max(axis=-1, keepdims=True))


def mission_weights(catalogue: Catalogue) -> np.ndarray:
    """Unnormalised P(mission | month, profile) before a store's mix, as [month 0..11, profile, mission]."""
    if not catalogue.missions:
        return np.ones((MONTHS, len(catalogue.profiles), 1))
    affinity = np.array([[m.profiles.get(p, 0.0) for m in catalogue.missions] for p in catalogue.profile_names])
    peaks = np.array([m.peak_month for m in catalogue.missions], dtype=np.float64)
    season = np.array([m.season for m in catalogue.missions], dtype=np.float64)
    logits = affinity[None, :, :] + (season[None, :] * month_cosines(peaks))[:, None, :]
    return np.exp(logits - logits.max(axis=-1, keepdims=True))


def _shares(values: Sequence[float]) -> np.ndarray:
    shares = np.array(values, dtype=np.float64)
    return shares / shares.sum()


def _store_mix(shares: np.ndarray, skew: float, rng: np.random.Generator) -> np.ndarray:
    if skew < 0:
        raise ValueError("skew must be >= 0")
    if skew == 0:
        return shares
    mix = rng.dirichlet(shares * min(SKEW_SCALE / skew, MAX_CONCENTRATION))
    mix = np.nan_to_num(mix, nan=0.0) + 1e-12
    return mix / mix.sum()


def profile_mix(catalogue: Catalogue, skew: float, rng: np.random.Generator) -> np.ndarray:
    """One cart's share of each profile (sums to 1)."""
    return _store_mix(_shares([p.share for p in catalogue.profiles]), skew, rng)


def mission_mix(catalogue: Catalogue, skew: float, rng: np.random.Generator) -> np.ndarray:
    """One cart's weight of each mission (sums to 1); a catalogue without missions has one."""
    if not catalogue.missions:
        return np.ones(1)
    return _store_mix(_shares([m.share for m in catalogue.missions]), skew, rng)


@dataclass(frozen=True)
class CartMix:
    """What makes one store's shoppers its own: its profile mix and its mission mix."""

    profiles: np.ndarray
    missions: np.ndarray


def cart_mix(catalogue: Catalogue, seed: int, index: int, skew: float) -> CartMix:
    """Cart `index`'s mixes, exactly as `generate` draws them (the first draws of the cart's own stream)."""
    return _draw_mix(catalogue, skew, _cart_rng(seed, index))


def _cart_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, index])


def _draw_mix(catalogue: Catalogue, skew: float, rng: np.random.Generator) -> CartMix:
    profiles = profile_mix(catalogue, skew, rng)
    return CartMix(profiles, mission_mix(catalogue, skew, rng))


def basket_length_probabilities(categories: int) -> np.ndarray:
    """P(a basket holds L distinct categories) for L = 0..cap (entry 0 is 0)."""
    cap = min(MAX_BASKET_CATEGORIES, categories)
    extra = np.arange(cap, dtype=np.float64)
    poisson = np.exp(-BASKET_EXTRA_CATEGORIES + extra * np.log(BASKET_EXTRA_CATEGORIES) - _log_factorial(extra))
    lengths = np.zeros(cap + 1)
    lengths[1:cap] = poisson[: cap - 1]
    lengths[cap] = 1.0 - poisson[: cap - 1].sum()
    return lengths


def _log_factorial(n: np.ndarray) -> np.ndarray:
    return np.array([float(np.sum(np.log(np.arange(1, int(k) + 1)))) for k in n])


def month_probabilities(year: int) -> np.ndarray:
    """P(a basket is bought in month m) for m = 1..12: days of the month, December busier (as `_basket_times`)."""
    days = np.array([(datetime(year + m // 12, m % 12 + 1, 1) - datetime(year, m, 1)).days for m in range(1, 13)])
    weights = days.astype(np.float64)
    weights[-1] *= DECEMBER_RUSH
    return weights / weights.sum()


def cart_names(carts: int) -> list[str]:
    """Default cart ids and data-dir names: cart-0, cart-1, ..."""
    return [f"cart-{k}" for k in range(carts)]


def checked_cart_ids(rows: int, carts: int, cart_ids: Sequence[str] | None) -> list[str]:
    """The ids of the carts a generator fills (cart-0, cart-1, ... by default), after checking the counts."""
    ids = list(cart_ids) if cart_ids is not None else cart_names(carts)
    if len(ids) != carts:
        raise ValueError(f"{carts} carts but {len(ids)} cart ids")
    if rows < 0:
        raise ValueError("rows must be >= 0")
    return ids


def generate(
    catalogue: Catalogue,
    rows: int,
    carts: int = 1,
    seed: int = 0,
    skew: float = 0.0,
    cart_ids: Sequence[str] | None = None,
    year: int = 2025,
) -> list[list[dict]]:
    """`rows` purchase rows for each of `carts` carts, deterministic for `seed`; no store needed."""
    ids = checked_cart_ids(rows, carts, cart_ids)
    if skew < 0:
        raise ValueError("skew must be >= 0")
    tables = (category_weights(catalogue), mission_weights(catalogue))
    return [_cart_rows(catalogue, tables, rows, seed, k, cart_id, skew, year) for k, cart_id in enumerate(ids)]


def _cart_rows(
    catalogue: Catalogue,
    tables: tuple[np.ndarray, np.ndarray],
    rows: int,
    seed: int,
    index: int,
    cart_id: str,
    skew: float,
    year: int,
) -> list[dict]:
    weights, missions = tables
    rng = _cart_rng(seed, index)
    mix = _draw_mix(catalogue, skew, rng)
    lengths, items = _basket_shapes(rng, rows, len(catalogue.categories))
    baskets = len(lengths)
    profile = rng.choice(len(mix.profiles), size=baskets, p=mix.profiles)
    times = _basket_times(rng, baskets, year)
    month = np.array([t.month - 1 for t in times], dtype=np.int64)
    mission_p = missions[month, profile] * mix.missions[None, :]
    mission = _sample_rows(rng, mission_p / mission_p.sum(axis=1, keepdims=True))
    order = _successive_draws(rng, weights[mission, month, profile])
    products = _by_category(catalogue)
    picks = rng.random(int(items.sum()))
    prefix = f"synth-{seed}-{cart_id}"
    out: list[dict] = []
    n = 0
    for b in range(baskets):
        position = 0
        for slot in range(lengths[b]):
            choices = products[order[b, slot]]
            for _ in range(items[b, slot]):
                if n == rows:
                    return out
                product = choices[int(picks[n] * len(choices))]
                out.append(
                    purchase_row(
                        f"{prefix}-{n:07d}",
                        f"{prefix}-b{b:06d}",
                        cart_id,
                        times[b],
                        catalogue.profiles[profile[b]].name,
                        product,
                        "synth",
                        position=position,
                        mission=_mission_name(catalogue, int(mission[b])),
                    )
                )
                position += 1
                n += 1
    return out


def _mission_name(catalogue: Catalogue, index: int) -> str:
    return catalogue.missions[index].name if catalogue.missions else "any"


def _basket_shapes(rng: np.random.Generator, rows: int, categories: int) -> tuple[np.ndarray, np.ndarray]:
    """(distinct categories per basket, items per category slot) for just enough baskets to hold `rows` items."""
    cap = min(MAX_BASKET_CATEGORIES, categories)
    lengths = np.minimum(1 + rng.poisson(BASKET_EXTRA_CATEGORIES, size=rows + 1), cap)
    items = 1 + rng.poisson(EXTRA_ITEMS, size=(rows + 1, cap))
    items[np.arange(cap)[None, :] >= lengths[:, None]] = 0
    enough = int(np.searchsorted(np.cumsum(items.sum(axis=1)), rows)) + 1
    return lengths[:enough], items[:enough]


def _successive_draws(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """Each row's categories in the order successive sampling without replacement draws them.

    Sorting log-weights plus Gumbel noise gives exactly that order (the Plackett-Luce / Gumbel-top-k identity).
    """
    keys = np.log(weights) + rng.gumbel(size=weights.shape)
    return np.argsort(-keys, axis=1, kind="stable")


def _basket_times(rng: np.random.Generator, baskets: int, year: int) -> list[datetime]:
    """Shopping times over one year, a little busier in December, during opening hours."""
    start = datetime(year, 1, 1)
    days_in_year = (datetime(year + 1, 1, 1) - start).days
    weights = np.ones(days_in_year)
    weights[-31:] *= DECEMBER_RUSH
    days = rng.choice(days_in_year, size=baskets, p=weights / weights.sum())
    seconds = rng.integers(8 * 3600, 21 * 3600, size=baskets)
    return [store_time(start + timedelta(days=int(d), seconds=int(s))) for d, s in zip(days, seconds)]


def _sample_rows(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One index per row from that row's probability vector (inverse CDF, vectorised)."""
    cumulative = probabilities.cumsum(axis=1)
    draws = rng.random(len(probabilities))[:, None]
    return np.minimum((draws > cumulative).sum(axis=1), probabilities.shape[1] - 1)


def _by_category(catalogue: Catalogue) -> list[list[Product]]:
    return [[p for p in catalogue.products if p.category == name] for name in catalogue.category_names]


def fill_store(store: Store, rows: list[dict]) -> int:
    """Write generated rows into a cart's store; re-running with the same seed rewrites, never duplicates."""
    for start in range(0, len(rows), WRITE_CHUNK):
        store.put_many("purchases", rows[start : start + WRITE_CHUNK])
    log.info("wrote %d synthetic rows to the %s store", len(rows), store.backend)
    return len(rows)


# --- the Bayes ceiling ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ceiling:
    """The best expected scores any recommender can reach on the recommend task's rows of these carts.

    Exact (no sampling error): computed from the generator's definition by
    enumerating every basket prefix. `rows_per_basket` is the expected number
    of task rows (distinct categories) per basket.
    """

    top1: float
    top3: float
    recall5: float
    rows_per_basket: float

    def as_dict(self) -> dict[str, float]:
        return {"top1": self.top1, "top3": self.top3, "recall5": self.recall5}


class ShopperModel:
    """The generator's joint distribution of the recommend task's rows, pooled over a set of carts.

    A task row is (month, profile, set S of categories already in the basket)
    -> the next new category c. For one mission the probability that the
    first |S| categories drawn are exactly S (in any order) follows from
    successive sampling by dynamic programming over subsets:

        f(S) = sum over c in S of f(S - c) * w[c] / (W - w(S - c)),    f({}) = 1

    and the next category is c with probability w[c] / (W - w(S)). A row with
    prefix S exists when the basket holds more than |S| categories. Summing
    over missions (weighted by each cart's P(mission | month, profile)),
    carts (equal numbers of baskets), profiles and months gives
    `joint[month, profile, S, c]`, the share of all task rows that look like
    that; the Bayes-optimal recommender ranks the c of each (month, profile, S)
    by it.
    """

    def __init__(
        self, catalogue: Catalogue, carts: int = 1, seed: int = 0, skew: float = 0.0, year: int = 2025
    ) -> None:
        if carts < 1:
            raise ValueError("carts must be >= 1")
        self.catalogue = catalogue
        self.categories = len(catalogue.categories)
        self.mixes = [cart_mix(catalogue, seed, k, skew) for k in range(carts)]
        self.months = month_probabilities(year)
        self.lengths = basket_length_probabilities(self.categories)
        longest_prefix = len(self.lengths) - 2
        self.subsets = [
            frozenset(s)
            for size in range(longest_prefix + 1)
            for s in itertools.combinations(range(self.categories), size)
        ]
        self.index = {s: i for i, s in enumerate(self.subsets)}

    @cached_property
    def joint(self) -> np.ndarray:
        """P(a task row has this month, profile, prefix S and next category c) as [month, profile, S, c]."""
        weights = category_weights(self.catalogue)  # [mission, month, profile, c]
        total = weights.sum(axis=-1)
        first = self._first_draws(weights, total)  # [S, mission, month, profile]
        used = np.stack([weights[..., sorted(s)].sum(axis=-1) for s in self.subsets])  # [S, mission, month, profile]
        remaining = total[None] - used
        pick = weights[None] / remaining[..., None]  # [S, mission, month, profile, c]
        for i, s in enumerate(self.subsets):
            pick[i][..., sorted(s)] = 0.0
        sizes = np.array([len(s) for s in self.subsets])
        survive = np.array([self.lengths[size + 1 :].sum() for size in sizes])  # P(L > |S|)
        missions = self._mission_given()  # [month, profile, mission], pooled over carts and with P(profile)
        mixture = np.einsum("smtp,tpm->stpm", first, missions) * (
            survive[:, None, None, None] * self.months[None, :, None, None]
        )
        return np.einsum("stpm,smtpc->tpsc", mixture, pick)

    def _first_draws(self, weights: np.ndarray, total: np.ndarray) -> np.ndarray:
        first = np.zeros((len(self.subsets), *total.shape))
        first[0] = 1.0
        for i, s in enumerate(self.subsets[1:], start=1):
            for c in s:
                before = s - {c}
                j = self.index[before]
                first[i] += first[j] * weights[..., c] / (total - weights[..., sorted(before)].sum(axis=-1))
        return first

    def _mission_given(self) -> np.ndarray:
        """sum over carts of (1/carts) * P_k(profile) * P_k(mission | month, profile), as [month, profile, mission]."""
        base = mission_weights(self.catalogue)
        pooled = np.zeros_like(base)
        for mix in self.mixes:
            p_mission = base * mix.missions[None, None, :]
            p_mission /= p_mission.sum(axis=-1, keepdims=True)
            pooled += p_mission * mix.profiles[None, :, None] / len(self.mixes)
        return pooled

    def ceiling(self) -> Ceiling:
        joint = self.joint
        ranked = -np.sort(-joint, axis=-1)
        total = joint.sum()
        top = {k: float(ranked[..., :k].sum() / total) for k in CEILING_KS}
        return Ceiling(top[1], top[3], top[5], float(total))

    def probabilities(self, month: int, profile: str, basket: Sequence[str]) -> np.ndarray:
        """P(next new category | month 1..12, profile, categories in the basket): the Bayes-optimal scores."""
        names = self.catalogue.category_names
        s = frozenset(names.index(c) for c in basket)
        if s not in self.index:
            raise ValueError(f"no basket of this generator starts with {len(s)} categories")
        row = self.joint[month - 1, self.catalogue.profile_names.index(profile), self.index[s]]
        return row / row.sum()


def bayes_ceiling(catalogue: Catalogue, carts: int = 1, seed: int = 0, skew: float = 0.0, year: int = 2025) -> Ceiling:
    """The generator's Bayes ceiling for the pooled task rows of `carts` carts made by `generate(..., seed, skew)`.

    Exact, from the definition: no model that sees month, profile and the
    basket so far (and not which store it is in) can expect to score more on
    those rows. A model that also knows its store (a personalised one, on its
    own store's rows) can.
    """
    return ShopperModel(catalogue, carts, seed, skew, year).ceiling()
