"""The store: same behaviour on the embedded engine and on MongoDB."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from child_cart.store import (
    COLLECTIONS,
    Store,
    StoreUnavailable,
    load_catalogue,
    monty_threads,
    open_store,
)
from child_cart.store.rows import store_time


def test_products_are_seeded_once_and_edits_survive_a_restart(open_test_store: Callable[[], Store], catalogue) -> None:
    store = open_test_store()
    assert store.products.count_documents({}) == len(catalogue.products)
    store.products.update_one({"_id": "P001"}, {"$set": {"price_cents": 1}})
    reopened = open_test_store()
    assert reopened.products.count_documents({}) == len(catalogue.products)
    assert reopened.products.find_one({"_id": "P001"})["price_cents"] == 1


def test_a_write_is_there_after_a_restart(open_test_store: Callable[[], Store]) -> None:
    when = store_time(datetime(2025, 3, 4, 5, 6, 7, 891234))
    open_test_store().put("purchases", {"_id": "r1", "time": when, "month": 3})
    assert open_test_store().purchases.find_one({"_id": "r1"}) == {"_id": "r1", "time": when, "month": 3}


def test_put_many_rewrites_the_same_ids_instead_of_duplicating(store: Store) -> None:
    store.put_many("purchases", [{"_id": f"c:{i}", "v": 1} for i in range(5)])
    store.put_many("purchases", [{"_id": f"c:{i}", "v": 2} for i in range(3, 8)])
    assert store.purchases.count_documents({}) == 8
    assert {d["_id"]: d["v"] for d in store.purchases.find({})}["c:4"] == 2
    assert store.put_many("purchases", []) == 0


def test_insert_new_claims_an_id_once(store: Store) -> None:
    assert store.insert_new("models", {"_id": "m-1", "owner": "a"})
    assert not store.insert_new("models", {"_id": "m-1", "owner": "b"})
    assert store.models.find_one({"_id": "m-1"})["owner"] == "a"


def test_settings_round_trip(store: Store) -> None:
    assert store.get_setting("admin", "none") == "none"
    store.set_setting("admin", {"user": "ada", "rounds": [1, 2]})
    assert store.get_setting("admin") == {"user": "ada", "rounds": [1, 2]}


def test_queries_sort_and_limit(store: Store) -> None:
    store.put_many("models", [{"_id": f"t-{v}", "task": "t", "version": v} for v in (2, 9, 4)])
    newest = list(store.models.find({"task": "t"}).sort("version", -1).limit(2))
    assert [d["version"] for d in newest] == [9, 4]


def test_unknown_collection_is_refused(store: Store) -> None:
    with pytest.raises(KeyError, match="unknown collection"):
        store.collection("purchase")


def test_a_new_store_accepts_a_read_or_delete_as_its_first_operation(tmp_path: Path) -> None:
    """montydb breaks when the first op on a new SQLite file is a read or delete; the store prevents that."""
    store = open_store(tmp_path)
    for name in COLLECTIONS:
        assert store.collection(name).delete_many({}).deleted_count == 0
        assert store.collection(name).find_one({}) is None
    store.put("purchases", {"_id": "x"})
    assert store.purchases.count_documents({}) == 1
    assert store.backend == "embedded"


def test_threads_can_share_the_embedded_store(tmp_path: Path) -> None:
    """One montydb client used from several threads mixes up its SQLite connections; the store gives each its own."""
    store = open_store(tmp_path)
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(25):
                store.put("purchases", {"_id": f"t{k}-{i}"})
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.purchases.count_documents({}) == 100


def test_stores_of_one_process_encode_one_document_at_a_time(tmp_path: Path) -> None:
    """montydb checks keys with ast.literal_eval, which CPython 3.11 cannot run in two threads at once (a round's
    log write failed with "AST constructor recursion depth mismatch"): a write waits while another encodes."""
    store, other = open_store(tmp_path / "a"), open_store(tmp_path / "b")
    written = threading.Event()
    writer = threading.Thread(target=lambda: (other.put("rounds", {"_id": "r1", "kept": "local"}), written.set()))
    with monty_threads.ENCODING:  # another cart's store encoding right now
        writer.start()
        assert not written.wait(0.3), "a write encoded while another encoding held the lock"
    assert written.wait(30), "the write never finished once the lock was free"
    writer.join()
    store.put("rounds", {"_id": "r2"})
    assert other.rounds.find_one({"_id": "r1"}) == {"_id": "r1", "kept": "local"}


def test_an_unreachable_mongodb_is_a_clear_error_without_the_password(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable) as caught:
        open_store(tmp_path, mongo_url="mongodb://ada:s3cret@127.0.0.1:9/?connectTimeoutMS=200", timeout_ms=300)
    assert "cannot reach MongoDB" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_importing_the_store_and_shop_does_not_import_tensorflow() -> None:
    code = (
        "import sys, child_cart.store, child_cart.shop, child_cart.synth.shoppers, child_cart.tasks, child_cart.models.versions;"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda raw: raw["products"][0].update(category="toys"), "unknown category"),
        (lambda raw: raw["profiles"][0]["likes"].update(toys=1.0), "unknown categories"),
        (lambda raw: raw["products"].append(dict(raw["products"][0])), "duplicate product id"),
        (lambda raw: raw.update(products=[p for p in raw["products"] if p["category"] != "baby"]), "without products"),
    ],
    ids=["product-category", "profile-likes", "duplicate-id", "empty-category"],
)
def test_an_inconsistent_catalogue_is_refused(tmp_path: Path, change, message: str) -> None:
    from child_cart.store.catalogue import PACKAGED_CATALOGUE

    raw = json.loads(PACKAGED_CATALOGUE.read_text())
    change(raw)
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=message):
        load_catalogue(path)


def test_the_packaged_catalogue_has_a_realistic_size(catalogue) -> None:
    assert 40 <= len(catalogue.products) <= 60
    assert 8 <= len(catalogue.categories) <= 10
    assert all(p.price_cents > 0 for p in catalogue.products)
