"""Purchases throughput of the cart's store, against plain sqlite3 doing the same work in the same run.

Embedded store = montydb on SQLite (what `make run` uses); MongoDB too when
MONGO_URL is set. The baseline stores the same rows as JSON text in one
SQLite table with the same durability (WAL, synchronous=FULL): it is the
floor montydb's document layer is built on, so the ratio is that layer's
cost.

    .venv/bin/python bench/store.py [--rows 5000] [--single 300]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import montydb
import pymongo
from rich.console import Console
from rich.table import Table

from child_cart.store import Store, load_catalogue, open_store
from child_cart.synth import shoppers as synth

log = logging.getLogger(__name__)


def timed(work: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    count = work()
    return count, time.perf_counter() - started


def store_figures(store: Store, rows: list[dict], single: list[dict]) -> dict[str, tuple[int, float]]:
    """Bulk insert, one-by-one durable insert, full read, filtered read.

    Single inserts use insert_one: montydb answers replace/update filters
    with a collection scan, so upserts would measure the scan, not the write.
    """
    return {
        "bulk insert (put_many)": timed(lambda: store.put_many("purchases", rows)),
        "single insert (durable each)": timed(lambda: sum(store.insert_new("purchases", doc) for doc in single)),
        "read all (find)": timed(lambda: len(list(store.purchases.find({})))),
        "filter month=7 (rows examined)": timed(
            lambda: _examined(list(store.purchases.find({"month": 7})), len(rows) + len(single))
        ),
    }


def _examined(matched: list[dict], stored: int) -> int:
    """A filtered find decodes the whole collection (montydb scans; so does the baseline): count those rows."""
    log.debug("filter matched %d of %d", len(matched), stored)
    return stored


def sqlite_figures(path: Path, rows: list[dict], single: list[dict]) -> dict[str, tuple[int, float]]:
    """The same four operations on one plain SQLite table of JSON documents."""
    db = sqlite3.connect(path)
    db.executescript(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE docs (k TEXT PRIMARY KEY, v TEXT NOT NULL);"
    )

    def encode(doc: dict) -> tuple[str, str]:
        return doc["_id"], json.dumps(doc, default=str)

    def bulk() -> int:
        with db:
            db.executemany("INSERT INTO docs VALUES (?, ?)", [encode(d) for d in rows])
        return len(rows)

    def one_by_one() -> int:
        for doc in single:
            with db:
                db.execute("INSERT INTO docs VALUES (?, ?)", encode(doc))
        return len(single)

    def read_all() -> int:
        return len([json.loads(v) for (v,) in db.execute("SELECT v FROM docs")])

    def read_month() -> int:
        examined = [json.loads(v) for (v,) in db.execute("SELECT v FROM docs")]
        log.debug("baseline filter matched %d", sum(doc["month"] == 7 for doc in examined))
        return len(examined)

    figures = {
        "bulk insert (put_many)": timed(bulk),
        "single insert (durable each)": timed(one_by_one),
        "read all (find)": timed(read_all),
        "filter month=7 (rows examined)": timed(read_month),
    }
    db.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5000, help="rows for bulk insert and reads")
    parser.add_argument("--single", type=int, default=300, help="rows inserted one durable write at a time")
    args = parser.parse_args()
    catalogue = load_catalogue()
    rows = synth.generate(catalogue, args.rows + args.single, seed=1)[0]
    bulk, single = rows[: args.rows], rows[args.rows :]
    with tempfile.TemporaryDirectory() as tmp:
        results = {"sqlite3 (baseline)": sqlite_figures(Path(tmp) / "baseline.sqlite", bulk, single)}
        results["embedded (montydb/SQLite)"] = store_figures(open_store(Path(tmp) / "cart"), bulk, single)
        mongo_url = os.environ.get("MONGO_URL", "")
        if mongo_url:
            results["mongo"] = mongo_figures(mongo_url, Path(tmp), bulk, single)
    print_table(results, args)


def mongo_figures(url: str, tmp: Path, bulk: list[dict], single: list[dict]) -> dict[str, tuple[int, float]]:
    db_name = f"fedcart_bench_{uuid.uuid4().hex[:8]}"
    store = open_store(tmp / "mongo", mongo_url=url, mongo_db=db_name)
    try:
        return store_figures(store, bulk, single)
    finally:
        with pymongo.MongoClient(url) as client:
            client.drop_database(db_name)
        store.close()


def print_table(results: dict[str, dict[str, tuple[int, float]]], args: argparse.Namespace) -> None:
    console = Console(width=110)
    console.print(
        f"machine: {os.cpu_count()} CPUs (load {os.getloadavg()[0]:.1f}), {platform.machine()}, "
        f"Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, montydb {montydb.__version__}, pymongo {pymongo.version}"
    )
    baseline = results["sqlite3 (baseline)"]
    table = Table(title=f"purchases: {args.rows} rows bulk, {args.single} single durable writes")
    for column, justify in [
        ("back-end", "left"),
        ("operation", "left"),
        ("rows", "right"),
        ("seconds", "right"),
        ("rows/s", "right"),
        ("vs sqlite3", "right"),
    ]:
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for backend, figures in results.items():
        for operation, (count, seconds) in figures.items():
            rate = count / seconds
            base_rate = baseline[operation][0] / baseline[operation][1]
            table.add_row(backend, operation, str(count), f"{seconds:.3f}", f"{rate:,.0f}", f"{rate / base_rate:.2f}x")
    console.print(table)


if __name__ == "__main__":
    main()
