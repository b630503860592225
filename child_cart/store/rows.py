"""The shape of a `purchases` document: one training row per item bought.

Checkout and the synthetic shoppers both build rows here, so training code
sees one schema whichever way a row was made.
"""

from __future__ import annotations

from datetime import UTC, datetime

from child_cart.store.catalogue import Product


def store_time(moment: datetime) -> datetime:
    """UTC, naive, millisecond precision: what both back-ends give back, so a rewrite is byte-identical."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def purchase_row(
    row_id: str, checkout_id: str, cart_id: str, time: datetime, profile: str, product: Product, source: str
) -> dict:
    """A purchases document; `time` must already be a `store_time`."""
    return {
        "_id": row_id,
        "checkout_id": checkout_id,
        "cart_id": cart_id,
        "time": time,
        "month": time.month,
        "profile": profile,
        "product_id": product.id,
        "category": product.category,
        "price_cents": product.price_cents,
        "source": source,
    }
