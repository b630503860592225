"""The JSON shapes of what the pages show: one function per thing, shared by the API and the templates.

Money leaves the server in integer cents (`*_cents`), as the store keeps it,
except a product's `price`, which the Android app reads as a number with
two decimals; bills, receipts and product lists name their `currency`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from child_cart.models.versions import ModelVersion
from child_cart.rounds import accountant
from child_cart.rounds.roundlog import RoundRecord
from child_cart.rounds.settings import RoundSettings
from child_cart.shop import Bill, BillLine, Receipt
from child_cart.store import Category, Product, Store
from child_cart.ui.node import NodeView

COUNTED = ("products", "purchases", "rounds", "models")
GAIN_WINDOW = 5
"""The swarm-gain headline averages this many of the latest rounds that measured one."""
GAIN_LOOKBACK = 50
"""Rounds read to find them (a round without held-out rows has no gain)."""


def product_json(product: Product) -> dict[str, Any]:
    """A product as the API (and the Android app) sees it."""
    return {"id": product.id, "name": product.name, "price": product.price, "category": product.category}


def products_json(store: Store) -> list[dict[str, Any]]:
    """Every product in the store, by category then name."""
    products = [Product.from_doc(doc) for doc in store.products.find({})]
    return [product_json(p) for p in sorted(products, key=lambda p: (p.category, p.name, p.id))]


def category_json(category: Category, products: int) -> dict[str, Any]:
    """A category to browse: its name (what the API filters on), what shoppers read, how many products it has."""
    return {"name": category.name, "label": category.title, "products": products}


def line_json(line: BillLine) -> dict[str, Any]:
    """One product on a bill or a receipt, with its quantity and subtotal."""
    return {
        "product_id": line.product_id,
        "name": line.name,
        "category": line.category,
        "price_cents": line.price_cents,
        "quantity": line.quantity,
        "subtotal_cents": line.subtotal_cents,
    }


def bill_json(bill: Bill, currency: str) -> dict[str, Any]:
    """The current bill: lines with quantities and subtotals, item count and total."""
    return {
        "checkout_id": bill.checkout_id,
        "profile": bill.profile,
        "lines": [line_json(line) for line in bill.lines],
        "item_count": bill.item_count,
        "total_cents": bill.total_cents,
        "currency": currency,
    }


def receipt_json(receipt: Receipt, currency: str) -> dict[str, Any]:
    """What a checkout recorded: order number, time, lines, total, and where its printable page is."""
    return {
        **receipt.model_dump(mode="json", exclude={"lines"}),
        "order_number": receipt.order_number,
        "lines": [line_json(line) for line in receipt.lines],
        "item_count": sum(line.quantity for line in receipt.lines),
        "currency": currency,
        "url": f"/receipt/{receipt.checkout_id}",
    }


def counts(store: Store) -> dict[str, int]:
    """Documents per collection an admin cares about."""
    return {name: store.collection(name).count_documents({}) for name in COUNTED}


def cart_json(store: Store, node: NodeView, latest_model: ModelVersion | None) -> dict[str, Any]:
    """The "this cart" panel: identity, bridge, connection, store and data counts."""
    return {
        "node_id": node.node_id,
        "bridge_url": node.bridge_url,
        "connected": node.connected,
        "store": store.backend,
        "counts": counts(store),
        "model": latest_model.id if latest_model else None,
    }


def round_json(record: RoundRecord) -> dict[str, Any]:
    """One round as logged (the same shape the round engine publishes on the event bus)."""
    return record.model_dump(mode="json")


def swarm_gain_json(records: Sequence[RoundRecord]) -> dict[str, Any]:
    """The swarm's gain over going alone, from rounds oldest first: the latest one and the mean of the last five.

    A round's gain is its kept model's score minus that of a local-only model
    trained on the same rows with the same epochs, both on the cart's held-out
    rows, in the task's primary metric (above 0: the swarm helps). Only rounds of
    the newest round's task count: a gain in accuracy and one in F1 do not average.
    """
    task = records[-1].task if records else None
    measured = [r for r in records if r.task == task and r.swarm_gain is not None]
    gains = [r.swarm_gain for r in measured[-GAIN_WINDOW:] if r.swarm_gain is not None]
    return {
        "task": task,
        "metric": next((r.metric for r in reversed(records) if r.task == task and r.metric), None),
        "latest": gains[-1] if gains else None,
        "latest_round": measured[-1].round if measured else None,
        "mean": round(sum(gains) / len(gains), 6) if gains else None,
        "rounds": len(gains),
    }


def privacy_json(store: Store, settings: RoundSettings) -> dict[str, Any]:
    """Differential privacy on this cart: on or off, ε spent at the configured δ, what is left, whether it still shares.

    ε is worked out from the ledger of shared rounds (`rounds.accountant`) at the δ set now.
    `sharing` is False once one more round at the current noise would go over the budget.
    """
    enabled = accountant.dp_enabled(settings)
    shown: dict[str, Any] = {
        "enabled": enabled,
        "noise_multiplier": settings.dp_noise_multiplier,
        "clip_norm": settings.dp_clip_norm,
        "delta": settings.dp_delta,
        "epsilon_budget": settings.dp_epsilon_budget,
        "epsilon_spent": 0.0,
        "epsilon_left": settings.dp_epsilon_budget,
        "rounds_shared": 0,
        "sharing": enabled,
        "error": None,
    }
    try:
        spends = accountant.load_ledger(store)
    except accountant.LedgerUnreadable as exc:
        return {**shown, "epsilon_spent": None, "epsilon_left": None, "sharing": False, "error": str(exc)}
    noises = [spend.noise_multiplier for spend in spends]
    spent = accountant.epsilon(noises, settings.dp_delta)
    shown.update(
        epsilon_spent=round(spent, 4),
        epsilon_left=round(max(0.0, settings.dp_epsilon_budget - spent), 4),
        rounds_shared=len(spends),
    )
    if enabled:
        next_round = accountant.epsilon([*noises, settings.dp_noise_multiplier], settings.dp_delta)
        shown["sharing"] = next_round <= settings.dp_epsilon_budget
    return shown


def model_json(version: ModelVersion) -> dict[str, Any]:
    """One model version with its metrics and, once exported, where to download its .tflite."""
    exported = version.tflite_path is not None
    return {
        "id": version.id,
        "task": version.task,
        "version": version.version,
        "created": version.created.isoformat(),
        "samples": version.samples,
        "metrics": version.metrics,
        "source": version.source,
        "parent": version.parent,
        "tflite_sha256": version.tflite_sha256,
        "tflite_url": f"/api/models/{version.id}/tflite" if exported else None,
    }
