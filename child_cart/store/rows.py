"""The shape of a `purchases` document: one training row per item bought.

Checkout and the synthetic shoppers both build rows here, so training code
sees one schema whichever way a row was made. The rows of one basket share
its `checkout_id` (the basket id) and are numbered by `position` in the order
the items went into the bill. Rows stored before baskets were recorded have
no `position`: each of them is a basket of its own (`basket_of`).
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
    row_id: str,
    checkout_id: str,
    cart_id: str,
    time: datetime,
    profile: str,
    product: Product,
    source: str,
    position: int,
    mission: str | None = None,
) -> dict:
    """A purchases document; `time` must already be a `store_time`; `mission` only for synthetic baskets."""
    row = {
        "_id": row_id,
        "checkout_id": checkout_id,
        "position": position,
        "cart_id": cart_id,
        "time": time,
        "month": time.month,
        "profile": profile,
        "product_id": product.id,
        "category": product.category,
        "price_cents": product.price_cents,
        "source": source,
    }
    if mission is not None:
        row["mission"] = mission
    return row


def basket_of(row: dict) -> tuple[str, int]:
    """(basket id, position in it) of a purchase row; a row without basket fields is a single-item basket."""
    if "position" not in row or not row.get("checkout_id"):
        return str(row["_id"]), 0
    return str(row["checkout_id"]), int(row["position"])
