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
from child_cart.rounds.roundlog import RoundRecord, recent_rounds
from child_cart.rounds.settings import RoundSettings
from child_cart.shop import Bill, BillLine, Receipt
from child_cart.store import Category, Product, Store
from child_cart.ui.node import NodeView

COUNTED = ("products", "purchases", "rounds", "models")
COUNT_LABELS = {
    "products": "products in the catalogue",
    "purchases": "purchase rows (one per item bought; training and held-out)",
    "rounds": "federated rounds logged",
    "models": "model versions stored (every task)",
}
"""What each "This cart" tile counts, said on the tile."""
SWARM_LOOKBACK = 200
"""Rounds read to find each peer's last answer for the swarm view."""
GAIN_WINDOW = 5
"""The swarm-gain headline averages this many of the latest rounds that measured one."""
GAIN_LOOKBACK = 50
"""Rounds read to find them (a round without held-out rows has no gain)."""
METRIC_NAMES = {
    "accuracy": "top-1 accuracy",
    "top3_accuracy": "top-3 accuracy",
    "recall_at_5": "recall@5",
    "f1": "F1",
    "fpr": "false-positive rate",
    "roc_auc": "ROC AUC",
}
"""How the pages name a metric; the admin pages hand the same map to their scripts (`fedcart.metricName`)."""


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


def cart_json(store: Store, node: NodeView, latest_model: ModelVersion | None, task: str) -> dict[str, Any]:
    """The "this cart" panel: identity, bridge, connection, store, data counts, the task it runs and its newest model."""
    return {
        "node_id": node.node_id,
        "bridge_url": node.bridge_url,
        "connected": node.connected,
        "store": store.backend,
        "counts": counts(store),
        "task": task,
        "model": latest_model.id if latest_model else None,
    }


def known_tasks(store: Store, first: str) -> list[str]:
    """Every task this cart has model versions or rounds of, and `first` (the one it runs now) first, then by name."""
    found = {str(t) for t in store.models.distinct("task")} | {str(t) for t in store.rounds.distinct("task")}
    return [first] + sorted(found - {first})


def task_rounds(store: Store, task: str | None, limit: int) -> list[RoundRecord]:
    """The latest `limit` rounds of `task` (None: of every task), oldest first."""
    if task is None:
        return recent_rounds(store, limit)
    docs = list(store.rounds.find({"task": task}).sort("round", -1).limit(limit))
    return [RoundRecord.model_validate({k: v for k, v in doc.items() if k != "_id"}) for doc in reversed(docs)]


def metric_names(versions: Sequence[ModelVersion], primary: str) -> list[str]:
    """The metrics a task's versions carry, its primary metric first, then by name (the Models page's columns)."""
    names = {name for version in versions for name in version.metrics}
    return ([primary] if primary in names else []) + sorted(names - {primary})


def swarm_json(node: NodeView, records: Sequence[RoundRecord]) -> dict[str, Any]:
    """Every cart the bridge lists now, with its last round and score as this cart saw them (rounds oldest first).

    For a peer: the newest of this cart's rounds it answered (`last_round`, `finished`), its update's
    held-out score in that round's metric on this cart's rows (`score`) and the training rows it claimed
    (`rows`); `note` says why the newest round that asked it got nothing, when that is newer. For this
    cart: its newest round, the kept model's held-out score and its own training rows. A cart the bridge
    no longer lists is left out; one listed but never heard from has nulls.
    """
    listed = node.peers()
    ids = [str(peer.get("node_id", "")) for peer in listed]
    if node.node_id not in ids:
        listed = [{"node_id": node.node_id, "bridge_url": node.bridge_url}, *listed]
    carts = []
    for peer in listed:
        node_id = str(peer.get("node_id", ""))
        entry: dict[str, Any] = {
            "node_id": node_id,
            "bridge_id": peer.get("bridge_id"),
            "bridge_url": peer.get("bridge_url"),
            "this_cart": node_id == node.node_id,
            "last_round": None,
            "finished": None,
            "task": None,
            "metric": None,
            "score": None,
            "rows": None,
            "note": "",
        }
        entry.update(_own_round(records, node_id) if entry["this_cart"] else _peer_round(records, node_id))
        carts.append(entry)
    return {"connected": node.connected, "bridge_url": node.bridge_url, "rounds_read": len(records), "carts": carts}


def _seen(record: RoundRecord, score: float | None, rows: int | None) -> dict[str, Any]:
    return {
        "last_round": record.round,
        "finished": record.finished.isoformat(),
        "task": record.task,
        "metric": record.metric or None,
        "score": score,
        "rows": rows,
    }


def _own_round(records: Sequence[RoundRecord], node_id: str) -> dict[str, Any]:
    if not records:
        return {"note": "no round yet"}
    last = records[-1]
    return _seen(last, last.kept_metrics.get(last.metric) if last.metric else None, last.samples.get(node_id))


def _peer_round(records: Sequence[RoundRecord], node_id: str) -> dict[str, Any]:
    answered = next((r for r in reversed(records) if node_id in r.peers_answered), None)
    asked = next((r for r in reversed(records) if node_id in r.peers_asked), None)
    shown: dict[str, Any] = {}
    if answered is not None:
        received = answered.received.get(node_id, {})
        score = received.get(answered.metric) if answered.metric else None
        shown = _seen(answered, score, answered.samples.get(node_id))
    if asked is not None and (answered is None or asked.round > answered.round):
        why = asked.skipped.get(node_id, "no answer")
        shown["note"] = f"asked in round {asked.round}: {why}"
    elif asked is None and answered is None:
        shown["note"] = f"not asked in the last {len(records)} rounds" if records else "no round yet"
    return shown


def round_json(record: RoundRecord) -> dict[str, Any]:
    """One round as logged (the same shape the round engine publishes on the event bus)."""
    return record.model_dump(mode="json")


def metric_name(metric: str | None) -> str:
    """A metric's name as a store reads it ("top3_accuracy" -> "top-3 accuracy"); unknown ones lose their underscores."""
    return METRIC_NAMES.get(metric or "", (metric or "").replace("_", " "))


def swarm_gain_json(records: Sequence[RoundRecord]) -> dict[str, Any]:
    """The swarm's gain over going alone, from rounds oldest first: the latest one, its standard error and the mean
    of the last five.

    A round's gain is its kept model's score minus that of a local-only model
    trained on the same rows with the same epochs, both on the cart's held-out
    rows, in the task's primary metric (above 0: the swarm helps). Its error is
    one standard error of that difference: on a cart's few held-out rows a gain
    under about twice it is noise. Only rounds of the newest round's task count:
    a gain in accuracy and one in F1 do not average.
    """
    task = records[-1].task if records else None
    measured = [r for r in records if r.task == task and r.swarm_gain is not None]
    gains = [r.swarm_gain for r in measured[-GAIN_WINDOW:] if r.swarm_gain is not None]
    return {
        "task": task,
        "metric": next((r.metric for r in reversed(records) if r.task == task and r.metric), None),
        "latest": gains[-1] if gains else None,
        "latest_error": measured[-1].swarm_gain_error if measured else None,
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
