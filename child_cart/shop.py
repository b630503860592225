"""The cart flow: find, scan or add items to the current bill, remove them, check out, read a receipt.

The bill lives in the `bills` collection (one document per cart), so it
survives restarts. Checkout is three idempotent steps, so a crash between
any two leaves nothing half done:

1. the bill is marked `closing` with its checkout time and profile;
2. one purchase row per item is written under `<checkout_id>:<n>`;
3. the bill is replaced by a fresh, empty one with a new checkout id.

A bill found `closing` (after a crash) is finished before anything else
touches it, writing the same rows under the same ids again.

A receipt is read back from those rows (`receipt`), so it needs no store of its
own and says exactly what was recorded; the order number a person reads is the
start of the checkout id, which stays the key (it is not guessable).
"""

from __future__ import annotations

import logging
import re
import unicodedata
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from child_cart import qr
from child_cart.qr import QRPayload, ScanError
from child_cart.store import Catalogue, Category, Product, Store
from child_cart.store.rows import purchase_row, store_time

log = logging.getLogger(__name__)

MAX_QUANTITY = 99
MAX_QUERY_CHARS = 64
"""Longest search text: product names are short, and a query is matched against every product."""
CHECKOUT_ID = re.compile(r"[0-9a-f]{32}")
"""A checkout id (uuid4 hex), the key of a receipt."""
ORDER_NUMBER_CHARS = 8


class BillError(ValueError):
    """A bill operation that cannot be done: `code` for programs, `message` for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


CartError = (ScanError, BillError)
"""Everything a shopper can cause; the UI catches this tuple and shows `.message`."""


class BillLine(BaseModel):
    """One product on the bill and how many of it."""

    product_id: str
    name: str
    category: str
    price_cents: int
    quantity: int = Field(ge=1, le=MAX_QUANTITY)

    @property
    def subtotal_cents(self) -> int:
        return self.price_cents * self.quantity


class Bill(BaseModel):
    """The cart's current bill, exactly as stored (`_id` is the cart id)."""

    cart_id: str
    checkout_id: str
    version: int = 0
    state: Literal["open", "closing"] = "open"
    profile: str | None = None
    closed_at: datetime | None = None
    lines: list[BillLine] = Field(default_factory=list)

    @property
    def total_cents(self) -> int:
        return sum(line.subtotal_cents for line in self.lines)

    @property
    def item_count(self) -> int:
        return sum(line.quantity for line in self.lines)

    def to_doc(self) -> dict:
        doc = self.model_dump(exclude={"cart_id"})
        doc["_id"] = self.cart_id
        return doc

    @classmethod
    def from_doc(cls, doc: dict) -> Bill:
        return cls.model_validate({**doc, "cart_id": doc["_id"]})

    @model_validator(mode="after")
    def _closing_is_complete(self) -> Bill:
        if self.state == "closing" and (self.closed_at is None or self.profile is None):
            raise ValueError("a closing bill needs its checkout time and profile")
        return self


class Receipt(BaseModel):
    """What a finished checkout wrote: one line per product, as on the bill, and the total."""

    checkout_id: str
    cart_id: str
    profile: str
    time: datetime
    rows: int
    total_cents: int
    lines: list[BillLine] = Field(default_factory=list)

    @property
    def order_number(self) -> str:
        """What a shopper reads and says: the checkout id's first characters, upper case."""
        return self.checkout_id[:ORDER_NUMBER_CHARS].upper()


class Shop:
    """Bill operations for one cart, on its store; safe to share between threads of one process."""

    def __init__(self, store: Store, cart_id: str, catalogue: Catalogue, max_upload_bytes: int = qr.DEFAULT_MAX_BYTES):
        self._store = store
        self._cart_id = cart_id
        self._profiles = catalogue.profile_names
        self._categories = catalogue.categories
        self._max_upload_bytes = max_upload_bytes

    def bill(self) -> Bill:
        """The current bill (finishing an interrupted checkout first)."""
        with self._store.lock:
            return self._open_bill()

    def categories(self) -> list[tuple[Category, int]]:
        """The catalogue's categories that have products in the store, in catalogue order, with how many."""
        counts: dict[str, int] = {}
        for doc in self._store.products.find({}):
            counts[doc["category"]] = counts.get(doc["category"], 0) + 1
        return [(category, counts[category.name]) for category in self._categories if category.name in counts]

    def find(self, query: str = "", category: str | None = None) -> list[Product]:
        """Products whose name holds every word of `query` (case and accents ignored), in `category` if given.

        Names that start with the first word come first, then names with a word that starts
        with it, then the rest; within each, catalogue category order, then name.
        """
        if len(query) > MAX_QUERY_CHARS:
            raise BillError("bad_query", f"Search for at most {MAX_QUERY_CHARS} characters.")
        order = {c.name: n for n, c in enumerate(self._categories)}
        if category is not None and category not in order:
            raise BillError("unknown_category", f"Unknown category {category!r}; choose one of {', '.join(order)}.")
        terms = _folded(query).split()
        docs = self._store.products.find({"category": category} if category else {})
        found = [p for p in map(Product.from_doc, docs) if all(t in _folded(p.name) for t in terms)]
        return sorted(found, key=lambda p: (_rank(_folded(p.name), terms), order.get(p.category, len(order)), p.name))

    def receipt(self, checkout_id: str) -> Receipt:
        """The receipt of one of this cart's checkouts, rebuilt from the purchase rows it wrote."""
        if not CHECKOUT_ID.fullmatch(checkout_id):
            raise BillError("bad_order_number", "That is not an order number of this cart (32 hex digits expected).")
        rows = sorted(
            self._store.purchases.find({"checkout_id": checkout_id, "cart_id": self._cart_id, "source": "checkout"}),
            key=lambda row: row.get("position", 0),
        )
        if not rows:
            raise BillError("unknown_receipt", f"This cart has no receipt for order {checkout_id[:8].upper()}.")
        lines: dict[str, BillLine] = {}
        for row in rows:
            line = lines.get(row["product_id"])
            if line is not None and line.price_cents == row["price_cents"]:
                line.quantity += 1
                continue
            doc = self._store.products.find_one({"_id": row["product_id"]})
            key = row["product_id"] if line is None else f"{row['product_id']}@{row['price_cents']}"
            lines[key] = BillLine(
                product_id=row["product_id"],
                name=doc["name"] if doc else row["product_id"],
                category=row["category"],
                price_cents=row["price_cents"],
                quantity=1,
            )
        return Receipt(
            checkout_id=checkout_id,
            cart_id=self._cart_id,
            profile=rows[0]["profile"],
            time=rows[0]["time"],
            rows=len(rows),
            total_cents=sum(row["price_cents"] for row in rows),
            lines=list(lines.values()),
        )

    def set_profile(self, profile: str) -> Bill:
        """Say who is shopping; checkout records it on every row."""
        self._check_profile(profile)
        return self._change(lambda bill: bill.model_copy(update={"profile": profile}))

    def add(self, product_id: str, quantity: int = 1) -> Bill:
        """Put `quantity` of a catalogue product on the bill."""
        _check_quantity(quantity)
        product = self._product(product_id)
        return self._change(lambda bill: _with_added(bill, product, quantity))

    def add_scanned(self, payload: QRPayload) -> Bill:
        """Add the product a decoded code names; the store's price and name win over the printed ones."""
        product = self._product(payload.id)
        if (payload.name, round(payload.price * 100)) != (product.name, product.price_cents):
            log.info(
                "code for %s is stale (printed %r at %.2f); using the catalogue",
                product.id,
                payload.name,
                payload.price,
            )
        return self.add(product.id)

    def scan_image(self, data: bytes) -> Bill:
        """Decode an uploaded image and add its product."""
        return self.add_scanned(qr.decode_image(data, self._max_upload_bytes))

    def scan_data_url(self, url: str) -> Bill:
        """Decode a browser camera frame (data URL) and add its product."""
        return self.add_scanned(qr.decode_data_url(url, self._max_upload_bytes))

    def scan_camera(self, index: int = 0) -> Bill:
        """Decode a frame from the cart's own camera and add its product."""
        return self.add_scanned(qr.scan_camera(index))

    def remove(self, product_id: str, quantity: int | None = None) -> Bill:
        """Take `quantity` (default: all) of a product off the bill."""
        if quantity is not None:
            _check_quantity(quantity)
        return self._change(lambda bill: _with_removed(bill, product_id, quantity))

    def clear(self) -> Bill:
        """Empty the bill without buying anything."""
        return self._change(lambda bill: bill.model_copy(update={"lines": []}))

    def checkout(self, profile: str | None = None, now: datetime | None = None) -> Receipt:
        """Turn the bill into purchase rows and start a new bill; safe to retry after a crash."""
        with self._store.lock:
            bill = self._load()
            if bill.state == "open":
                bill = self._close(bill, profile or bill.profile, now or datetime.now(UTC))
            return self._finish(bill)

    def recover(self) -> Receipt | None:
        """Finish a checkout a crash interrupted; call once at start-up. None when there was none."""
        with self._store.lock:
            bill = self._load()
            return self._finish(bill) if bill.state == "closing" else None

    def _change(self, edit: Callable[[Bill], Bill]) -> Bill:
        with self._store.lock:
            bill = self._open_bill()
            changed = edit(bill).model_copy(update={"version": bill.version + 1})
            self._write(changed, expected_version=bill.version)
            return changed

    def _open_bill(self) -> Bill:
        bill = self._load()
        if bill.state == "closing":
            log.warning("finishing checkout %s that was interrupted", bill.checkout_id)
            self._finish(bill)
            bill = self._load()
        return bill

    def _load(self) -> Bill:
        """The stored bill; the first call for a cart stores an empty one, so its checkout id is stable."""
        doc = self._store.bills.find_one({"_id": self._cart_id})
        if doc is not None:
            return Bill.from_doc(doc)
        bill = _fresh_bill(self._cart_id, version=0)
        self._store.put("bills", bill.to_doc())
        return bill

    def _write(self, bill: Bill, expected_version: int) -> None:
        """Compare-and-swap on `version`, so a second process editing the same bill cannot be lost silently."""
        result = self._store.bills.replace_one({"_id": bill.cart_id, "version": expected_version}, bill.to_doc())
        if result.matched_count != 1:
            raise BillError("conflict", "The bill changed in the meantime. Reload it and try again.")

    def _close(self, bill: Bill, profile: str | None, now: datetime) -> Bill:
        if not bill.lines:
            raise BillError("empty_bill", "The bill is empty: scan a product first.")
        if profile is None:
            raise BillError("no_profile", "Choose a shopper profile before checking out.")
        self._check_profile(profile)
        closing = bill.model_copy(
            update={"state": "closing", "profile": profile, "closed_at": store_time(now), "version": bill.version + 1}
        )
        self._write(closing, expected_version=bill.version)
        return closing

    def _finish(self, bill: Bill) -> Receipt:
        rows = _purchase_rows(bill)
        self._store.put_many("purchases", rows)
        self._write(_fresh_bill(bill.cart_id, version=bill.version + 1), expected_version=bill.version)
        log.info("checkout %s: %d rows, total %d cents", bill.checkout_id, len(rows), bill.total_cents)
        return Receipt(
            checkout_id=bill.checkout_id,
            cart_id=bill.cart_id,
            profile=bill.profile,
            time=bill.closed_at,
            rows=len(rows),
            total_cents=bill.total_cents,
            lines=bill.lines,
        )

    def _product(self, product_id: str) -> Product:
        doc = self._store.products.find_one({"_id": product_id})
        if doc is None:
            raise ScanError("unknown_product", f"Product {product_id!r} is not in this store's catalogue.")
        return Product.from_doc(doc)

    def _check_profile(self, profile: str) -> None:
        if profile not in self._profiles:
            raise BillError(
                "unknown_profile", f"Unknown shopper profile {profile!r}; choose one of {', '.join(self._profiles)}."
            )


def _folded(text: str) -> str:
    """Text as search compares it: case folded, accents dropped ("Crème" matches "creme")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _rank(name: str, terms: list[str]) -> int:
    """0: the name starts with the first term (or there is none), 1: one of its words does, 2: it only holds it."""
    if not terms or name.startswith(terms[0]):
        return 0
    return 1 if any(word.startswith(terms[0]) for word in name.split()) else 2


def _fresh_bill(cart_id: str, version: int) -> Bill:
    return Bill(cart_id=cart_id, checkout_id=uuid.uuid4().hex, version=version)


def _check_quantity(quantity: int) -> None:
    if not 1 <= quantity <= MAX_QUANTITY:
        raise BillError("bad_quantity", f"Quantity must be between 1 and {MAX_QUANTITY}.")


def _with_added(bill: Bill, product: Product, quantity: int) -> Bill:
    lines = [line.model_copy() for line in bill.lines]
    for line in lines:
        if line.product_id == product.id:
            if line.quantity + quantity > MAX_QUANTITY:
                raise BillError("bad_quantity", f"At most {MAX_QUANTITY} of one product per bill.")
            line.quantity += quantity
            break
    else:
        lines.append(
            BillLine(
                product_id=product.id,
                name=product.name,
                category=product.category,
                price_cents=product.price_cents,
                quantity=quantity,
            )
        )
    return bill.model_copy(update={"lines": lines})


def _with_removed(bill: Bill, product_id: str, quantity: int | None) -> Bill:
    line = next((entry for entry in bill.lines if entry.product_id == product_id), None)
    if line is None:
        raise BillError("not_in_bill", f"Product {product_id!r} is not on the bill.")
    left = 0 if quantity is None else max(0, line.quantity - quantity)
    updated = [entry.model_copy(update={"quantity": left}) if entry is line else entry for entry in bill.lines]
    return bill.model_copy(update={"lines": [entry for entry in updated if entry.quantity > 0]})


def _purchase_rows(bill: Bill) -> list[dict]:
    """One row per item, numbered in bill order: the same bill always gives the same ids."""
    if bill.closed_at is None or bill.profile is None:
        raise ValueError(f"bill {bill.checkout_id} is not closing")
    rows, n = [], 0
    for line in bill.lines:
        product = Product(id=line.product_id, name=line.name, price=line.price_cents / 100, category=line.category)
        for _ in range(line.quantity):
            rows.append(
                purchase_row(
                    f"{bill.checkout_id}:{n}",
                    bill.checkout_id,
                    bill.cart_id,
                    bill.closed_at,
                    bill.profile,
                    product,
                    "checkout",
                    position=n,
                )
            )
            n += 1
    return rows
