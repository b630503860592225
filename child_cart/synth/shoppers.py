"""Synthetic shoppers: seeded, seasonal, profile-dependent purchase rows for demos, tests and simulations.

The generative model is the catalogue's: a shopper of profile p buying in
month m picks category c with probability softmax over c of

    likes[p][c] + season[c] * cos(2*pi*(m - peak_month[c]) / 12)

then a product of that category uniformly. Each cart draws its own mix of
profiles: with skew 0 every cart has the catalogue's shares (IID); with
skew x > 0 a cart's mix is Dirichlet(shares * SKEW_SCALE / x), so small x
stays near IID and large x gives carts dominated by one or two profiles
(label-skewed, non-IID). Cart k's rows depend only on (seed, k, its id),
not on how many carts were asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np

from child_cart.store import Catalogue, Product, Store
from child_cart.store.rows import purchase_row, store_time

log = logging.getLogger(__name__)

MONTHS = 12
SKEW_SCALE = 10.0
MAX_CONCENTRATION = 1e6  # a tiny skew is IID in all but name; keeps the division finite
MEAN_BASKET = 4.0
WRITE_CHUNK = 5000


def category_probabilities(catalogue: Catalogue) -> np.ndarray:
    """P(category | month, profile) as an array [month 0..11, profile, category]; rows sum to 1."""
    months = np.arange(1, MONTHS + 1, dtype=np.float64)[:, None, None]
    peaks = np.array([c.peak_month for c in catalogue.categories], dtype=np.float64)
    season = np.array([c.season for c in catalogue.categories], dtype=np.float64)
    likes = np.array([[p.likes.get(c, 0.0) for c in catalogue.category_names] for p in catalogue.profiles])
    logits = likes[None, :, :] + season * np.cos(2 * np.pi * (months - peaks) / MONTHS)
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True)


def profile_mix(catalogue: Catalogue, skew: float, rng: np.random.Generator) -> np.ndarray:
    """One cart's share of each profile (sums to 1)."""
    if skew < 0:
        raise ValueError("skew must be >= 0")
    shares = np.array([p.share for p in catalogue.profiles], dtype=np.float64)
    shares /= shares.sum()
    if skew == 0:
        return shares
    mix = rng.dirichlet(shares * min(SKEW_SCALE / skew, MAX_CONCENTRATION))
    mix = np.nan_to_num(mix, nan=0.0) + 1e-12
    return mix / mix.sum()


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
    table = category_probabilities(catalogue)
    return [_cart_rows(catalogue, table, rows, seed, k, cart_id, skew, year) for k, cart_id in enumerate(ids)]


def _cart_rows(
    catalogue: Catalogue, table: np.ndarray, rows: int, seed: int, index: int, cart_id: str, skew: float, year: int
) -> list[dict]:
    rng = np.random.default_rng([seed, index])
    mix = profile_mix(catalogue, skew, rng)
    basket_of_row = _basket_index(rng, rows)
    baskets = int(basket_of_row[-1]) + 1 if rows else 0
    basket_profile = rng.choice(len(mix), size=baskets, p=mix)
    basket_time = _basket_times(rng, baskets, year)
    basket_month = np.array([t.month - 1 for t in basket_time], dtype=np.int64)
    profile = basket_profile[basket_of_row]
    month = basket_month[basket_of_row]
    category = _sample_categories(rng, table[month, profile])
    product = _sample_products(rng, catalogue, category)
    prefix = f"synth-{seed}-{cart_id}"
    return [
        purchase_row(
            f"{prefix}-{n:07d}",
            f"{prefix}-b{basket_of_row[n]:06d}",
            cart_id,
            basket_time[basket_of_row[n]],
            catalogue.profiles[profile[n]].name,
            product[n],
            "synth",
        )
        for n in range(rows)
    ]


def _basket_index(rng: np.random.Generator, rows: int) -> np.ndarray:
    """Which basket each row belongs to: baskets of 1 + Poisson(MEAN_BASKET - 1) items."""
    sizes = 1 + rng.poisson(MEAN_BASKET - 1, size=rows + 1)
    return np.repeat(np.arange(sizes.size), sizes)[:rows]


def _basket_times(rng: np.random.Generator, baskets: int, year: int) -> list[datetime]:
    """Shopping times over one year, a little busier in December, during opening hours."""
    start = datetime(year, 1, 1)
    days_in_year = (datetime(year + 1, 1, 1) - start).days
    weights = np.ones(days_in_year)
    weights[-31:] *= 1.5
    days = rng.choice(days_in_year, size=baskets, p=weights / weights.sum())
    seconds = rng.integers(8 * 3600, 21 * 3600, size=baskets)
    return [store_time(start + timedelta(days=int(d), seconds=int(s))) for d, s in zip(days, seconds)]


def _sample_categories(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One category per row from that row's probability vector (inverse CDF, vectorised)."""
    cumulative = probabilities.cumsum(axis=1)
    draws = rng.random(len(probabilities))[:, None]
    return np.minimum((draws > cumulative).sum(axis=1), probabilities.shape[1] - 1)


def _sample_products(rng: np.random.Generator, catalogue: Catalogue, category: np.ndarray) -> list[Product]:
    by_category = [[p for p in catalogue.products if p.category == name] for name in catalogue.category_names]
    picks = rng.random(len(category))
    return [by_category[c][int(u * len(by_category[c]))] for c, u in zip(category, picks)]


def fill_store(store: Store, rows: list[dict]) -> int:
    """Write generated rows into a cart's store; re-running with the same seed rewrites, never duplicates."""
    for start in range(0, len(rows), WRITE_CHUNK):
        store.put_many("purchases", rows[start : start + WRITE_CHUNK])
    log.info("wrote %d synthetic rows to the %s store", len(rows), store.backend)
    return len(rows)
