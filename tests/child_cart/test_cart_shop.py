"""The cart flow: bill edits, totals, persistence, checkout rows, and checkout after a crash."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from child_cart.shop import BillError, CartError, Shop
from child_cart.store import Store

WHEN = datetime(2025, 7, 14, 15, 9, 26, 535000, tzinfo=UTC)


def lines(bill) -> list[tuple[str, int]]:
    return [(line.product_id, line.quantity) for line in bill.lines]


def test_add_remove_and_totals(store: Store, catalogue) -> None:
    shop = Shop(store, "cart-a", catalogue)
    shop.add("P001", 2)
    shop.add("P006")
    bill = shop.add("P001")
    assert lines(bill) == [("P001", 3), ("P006", 1)]
    assert bill.total_cents == 3 * 169 + 115 and bill.item_count == 4
    assert lines(shop.remove("P001", 1)) == [("P001", 2), ("P006", 1)]
    assert lines(shop.remove("P001")) == [("P006", 1)]
    assert lines(shop.remove("P006", 5)) == []


def test_the_bill_survives_a_restart(open_test_store: Callable[[], Store], catalogue) -> None:
    first = Shop(open_test_store(), "cart-r", catalogue)
    first.add("P010", 2)
    first.set_profile("senior")
    bill = Shop(open_test_store(), "cart-r", catalogue).bill()
    assert lines(bill) == [("P010", 2)] and bill.profile == "senior"
    assert bill.checkout_id == first.bill().checkout_id


def test_checkout_writes_one_row_per_item_and_starts_a_new_bill(store: Store, catalogue) -> None:
    shop = Shop(store, "cart-c", catalogue)
    shop.add("P001", 2)
    shop.add("P031")
    checkout_id = shop.bill().checkout_id
    receipt = shop.checkout(profile="student", now=WHEN)
    assert (receipt.rows, receipt.total_cents, receipt.checkout_id) == (3, 2 * 169 + 399, checkout_id)
    rows = sorted(store.purchases.find({"checkout_id": checkout_id}), key=lambda r: r["_id"])
    assert [r["_id"] for r in rows] == [f"{checkout_id}:{n}" for n in range(3)]
    assert [r["product_id"] for r in rows] == ["P001", "P001", "P031"]
    assert [r["category"] for r in rows] == ["produce", "produce", "frozen"]
    assert {(r["profile"], r["month"], r["cart_id"], r["time"]) for r in rows} == {
        ("student", 7, "cart-c", WHEN.replace(tzinfo=None))
    }
    fresh = shop.bill()
    assert fresh.lines == [] and fresh.profile is None and fresh.checkout_id != checkout_id


@pytest.mark.parametrize(
    ("action", "code"),
    [
        (lambda shop: shop.checkout(profile="student"), "empty_bill"),
        (lambda shop: (shop.add("P001"), shop.checkout()), "no_profile"),
        (lambda shop: (shop.add("P001"), shop.checkout(profile="pirate")), "unknown_profile"),
        (lambda shop: shop.set_profile("pirate"), "unknown_profile"),
        (lambda shop: shop.add("P001", 0), "bad_quantity"),
        (lambda shop: shop.add("P001", 100), "bad_quantity"),
        (lambda shop: (shop.add("P001", 60), shop.add("P001", 60)), "bad_quantity"),
        (lambda shop: shop.remove("P002"), "not_in_bill"),
        (lambda shop: shop.remove("P001", -1), "bad_quantity"),
    ],
    ids=[
        "empty",
        "no-profile",
        "unknown-profile",
        "set-unknown-profile",
        "zero",
        "too-many",
        "line-over-max",
        "not-on-bill",
        "negative-remove",
    ],
)
def test_bad_bill_operations_are_refused_and_write_no_rows(store: Store, catalogue, action, code: str) -> None:
    shop = Shop(store, "cart-e", catalogue)
    with pytest.raises(BillError) as caught:
        action(shop)
    assert caught.value.code == code and caught.value.message
    assert store.purchases.count_documents({}) == 0


class Crash(Exception):
    """Stands in for the process dying between two writes."""


def crash_after_closing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "put_many", lambda name, docs: (_ for _ in ()).throw(Crash()))


def crash_after_some_rows(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    def partial(name: str, docs) -> int:
        for doc in list(docs)[:2]:
            store.put(name, doc)
        raise Crash()

    monkeypatch.setattr(store, "put_many", partial)


def crash_after_all_rows(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    writes = store.put_many

    def then_die(name: str, docs) -> int:
        writes(name, docs)
        raise Crash()

    monkeypatch.setattr(store, "put_many", then_die)


CRASHES = {
    "after-closing": crash_after_closing,
    "after-2-rows": crash_after_some_rows,
    "after-all-rows": crash_after_all_rows,
}
RESUMES: dict[str, Callable[[Shop], object]] = {
    "retry-checkout": lambda shop: shop.checkout(),
    "recover": lambda shop: shop.recover(),
    "next-scan": lambda shop: shop.add("P002"),
}


@pytest.mark.parametrize("resume", list(RESUMES))
@pytest.mark.parametrize("crash", list(CRASHES))
def test_a_crash_mid_checkout_leaves_no_half_done_checkout(
    open_test_store: Callable[[], Store], catalogue, monkeypatch: pytest.MonkeyPatch, crash: str, resume: str
) -> None:
    dying = open_test_store()
    shop = Shop(dying, "cart-k", catalogue)
    shop.add("P001", 3)
    shop.add("P020", 2)
    checkout_id = shop.bill().checkout_id
    CRASHES[crash](dying, monkeypatch)
    with pytest.raises(Crash):
        shop.checkout(profile="family", now=WHEN)

    restarted = open_test_store()
    RESUMES[resume](Shop(restarted, "cart-k", catalogue))
    rows = list(restarted.purchases.find({}))
    assert sorted(r["_id"] for r in rows) == [f"{checkout_id}:{n}" for n in range(5)]
    assert {r["profile"] for r in rows} == {"family"}
    bill = Shop(restarted, "cart-k", catalogue).bill()
    assert bill.state == "open" and bill.checkout_id != checkout_id
    assert lines(bill) == ([("P002", 1)] if resume == "next-scan" else [])


def test_recover_without_an_interrupted_checkout_does_nothing(store: Store, catalogue) -> None:
    shop = Shop(store, "cart-n", catalogue)
    shop.add("P001")
    assert shop.recover() is None
    assert lines(shop.bill()) == [("P001", 1)]


def test_concurrent_adds_from_ui_threads_all_count(store: Store, catalogue) -> None:
    shop = Shop(store, "cart-t", catalogue)
    failures: list[BaseException] = []

    def adder() -> None:
        try:
            for _ in range(5):
                shop.add("P004")
        except BaseException as exc:  # collected and asserted on below
            failures.append(exc)

    threads = [threading.Thread(target=adder) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert lines(shop.bill()) == [("P004", 20)]


def test_a_second_process_editing_the_same_bill_gets_a_conflict_not_a_lost_update(
    open_test_store: Callable[[], Store], catalogue
) -> None:
    first, second = Shop(open_test_store(), "cart-x", catalogue), Shop(open_test_store(), "cart-x", catalogue)
    stale = first.bill()
    second.add("P001")
    with pytest.raises(BillError) as caught:
        first._write(stale.model_copy(update={"version": stale.version + 1}), expected_version=stale.version)
    assert caught.value.code == "conflict"
    assert lines(first.bill()) == [("P001", 1)]


PRODUCT_IDS = [f"P{i:03d}" for i in range(1, 9)]
OPERATIONS = st.lists(
    st.tuples(st.sampled_from(["add", "remove", "remove_all"]), st.sampled_from(PRODUCT_IDS), st.integers(1, 7)),
    max_size=12,
)
_cart_numbers = itertools.count()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS)
def test_bill_totals_match_a_plain_model(store: Store, catalogue, operations) -> None:
    shop = Shop(store, f"cart-h{next(_cart_numbers)}", catalogue)
    prices = {p.id: p.price_cents for p in catalogue.products}
    expected: dict[str, int] = {}
    for op, product_id, quantity in operations:
        try:
            if op == "add":
                shop.add(product_id, quantity)
                expected[product_id] = expected.get(product_id, 0) + quantity
            else:
                shop.remove(product_id, quantity if op == "remove" else None)
                left = expected[product_id] - quantity if op == "remove" else 0
                expected = {k: v for k, v in {**expected, product_id: left}.items() if v > 0}
        except CartError as exc:
            refusal = (exc.code, product_id in expected)
            assert refusal == ("not_in_bill", False)
    bill = shop.bill()
    assert dict(lines(bill)) == expected
    assert bill.total_cents == sum(prices[p] * q for p, q in expected.items())
    assert bill.item_count == sum(expected.values())
