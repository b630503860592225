"""The cart's document store: MongoDB through pymongo, or montydb on SQLite in the data dir.

Every other part of the cart reaches its data through `Store`, which hands
out pymongo-style collections. Code written against them sticks to the
operations both back-ends support (insert/find/replace/update/delete,
count_documents, distinct, sort/limit) and gets uniqueness from
deterministic `_id`s, because montydb accepts unique indexes without
enforcing them.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import montydb
import montydb.errors
import pymongo
import pymongo.errors

from child_cart.settings import CartSettings
from child_cart.store import monty_threads
from child_cart.store.catalogue import Catalogue, load_catalogue

log = logging.getLogger(__name__)

COLLECTIONS = ("products", "purchases", "bills", "rounds", "models", "settings", "telemetry")

# Only indexes that a query in child_cart actually filters or sorts on.
INDEXES: dict[str, list[list[tuple[str, int]]]] = {
    "purchases": [[("checkout_id", 1)], [("time", 1)]],
    "models": [[("task", 1), ("version", -1)]],
    "rounds": [[("round", -1)]],
}

EMBEDDED_DIR = "store"
DUPLICATE_KEY = 11000


class StoreUnavailable(RuntimeError):
    """The configured MongoDB server could not be reached."""


class Store:
    """One cart's collections, on whichever back-end the settings chose.

    `lock` serialises read-modify-write sequences inside this process (the
    embedded engine has no atomic find-and-modify across threads).
    """

    def __init__(self, backend: _MongoBackend | _EmbeddedBackend) -> None:
        self._backend = backend
        self.lock = threading.RLock()

    @property
    def backend(self) -> str:
        """Which engine: "mongo" or "embedded" (tests and benches report it)."""
        return self._backend.name

    def collection(self, name: str) -> Any:
        """A pymongo-style collection of this cart's database."""
        if name not in COLLECTIONS:
            raise KeyError(f"unknown collection {name!r}; the store has {', '.join(COLLECTIONS)}")
        return self._backend.database()[name]

    @property
    def products(self) -> Any:
        return self.collection("products")

    @property
    def purchases(self) -> Any:
        return self.collection("purchases")

    @property
    def bills(self) -> Any:
        return self.collection("bills")

    @property
    def rounds(self) -> Any:
        return self.collection("rounds")

    @property
    def models(self) -> Any:
        return self.collection("models")

    @property
    def settings(self) -> Any:
        return self.collection("settings")

    def put(self, name: str, doc: dict) -> None:
        """Store `doc` under its `_id`, replacing any earlier version: the idempotent write."""
        self.collection(name).replace_one({"_id": doc["_id"]}, doc, upsert=True)

    def insert_new(self, name: str, doc: dict) -> bool:
        """Insert `doc` unless its `_id` is taken (False then): how code claims a name on both back-ends."""
        try:
            self.collection(name).insert_one(doc)
        except _DUPLICATE_ERRORS as exc:
            _reraise_unless_duplicate(exc)
            return False
        return True

    def put_many(self, name: str, docs: Iterable[dict]) -> int:
        """Store many documents by `_id`; a retry with the same ids rewrites them, never duplicates."""
        batch = list(docs)
        if not batch:
            return 0
        collection = self.collection(name)
        try:
            collection.insert_many(batch, ordered=True)
        except _DUPLICATE_ERRORS as exc:
            _reraise_unless_duplicate(exc)
            self._rewrite(name, batch)
        return len(batch)

    def _rewrite(self, name: str, batch: list[dict]) -> None:
        """The retry path: insert what is missing, replace only what differs.

        One lookup for the whole batch, because montydb answers every
        filtered query (even by `_id`) with a scan of the collection; a
        retried checkout finds identical rows and writes only the missing ones.
        """
        collection = self.collection(name)
        stored = {doc["_id"]: doc for doc in collection.find({"_id": {"$in": [d["_id"] for d in batch]}})}
        missing = [doc for doc in batch if doc["_id"] not in stored]
        changed = [doc for doc in batch if doc["_id"] in stored and stored[doc["_id"]] != doc]
        log.debug("put_many(%s): %d stored, %d missing, %d changed", name, len(stored), len(missing), len(changed))
        if missing:
            collection.insert_many(missing, ordered=True)
        for doc in changed:
            self.put(name, doc)

    def get_setting(self, key: str, default: Any = None) -> Any:
        """A value from the `settings` collection (one document per key)."""
        doc = self.settings.find_one({"_id": key})
        return default if doc is None else doc["value"]

    def set_setting(self, key: str, value: Any) -> None:
        """Persist one setting; returns once stored."""
        self.put("settings", {"_id": key, "value": value})

    def seed_products(self, catalogue: Catalogue) -> int:
        """Fill `products` from the catalogue the first time a store starts; later starts keep edits."""
        if self.products.count_documents({}) > 0:
            return 0
        count = self.put_many("products", (p.to_doc() for p in catalogue.products))
        log.info("seeded %d products into the %s store", count, self.backend)
        return count

    def close(self) -> None:
        """Release the client (MongoDB connections; nothing to do for the embedded engine)."""
        self._backend.close()


class _MongoBackend:
    """A real MongoDB: acknowledged, journaled writes (w=1, j=true)."""

    name = "mongo"

    def __init__(self, client: Any, db_name: str, owns_client: bool) -> None:
        self._client = client
        self._owns_client = owns_client
        self._db = client[db_name]

    @classmethod
    def connect(cls, url: str, db_name: str, timeout_ms: int, password: str | None = None) -> _MongoBackend:
        """Connect and ping, so a wrong URL fails here with a clear message, not at the first write.

        `password` (from MONGO_PASSWORD_FILE) goes with the user the URL names, so the URL itself
        can sit in plain configuration while the password stays in a secret file.
        """
        options: dict[str, Any] = {"w": 1, "journal": True, "serverSelectionTimeoutMS": timeout_ms}
        if password is not None:
            options["password"] = password
        try:
            client: pymongo.MongoClient = pymongo.MongoClient(url, **options)
        except (pymongo.errors.ConfigurationError, pymongo.errors.InvalidURI, ValueError) as exc:
            raise StoreUnavailable(f"bad MongoDB URL {_redact(url)}: {exc}") from exc
        try:
            client.admin.command("ping")
        except pymongo.errors.PyMongoError as exc:
            client.close()
            raise StoreUnavailable(f"cannot reach MongoDB at {_redact(url)}: {exc}") from exc
        return cls(client, db_name, owns_client=True)

    def database(self) -> Any:
        return self._db

    def prepare(self) -> None:
        for name, specs in INDEXES.items():
            for keys in specs:
                self._db[name].create_index(keys)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()


class _EmbeddedBackend:
    """montydb with its SQLite engine, one client per thread.

    montydb's SQLite engine keeps its current connection on a shared
    object, so one client used from two threads mixes their connections
    up; a client per thread avoids that. synchronous=FULL makes a write
    return only after SQLite has synced it.
    """

    name = "embedded"

    def __init__(self, repository: Path, db_name: str) -> None:
        monty_threads.serialise()
        self._repository = str(repository)
        self._db_name = db_name
        self._local = threading.local()
        repository.mkdir(parents=True, exist_ok=True)
        if not (repository / ".monty.storage").exists():
            montydb.set_storage(self._repository, storage="sqlite")

    def database(self) -> Any:
        db = getattr(self._local, "db", None)
        if db is None:
            client = montydb.MontyClient(self._repository, synchronous="FULL")
            db = self._local.db = client[self._db_name]
        return db

    def prepare(self) -> None:
        """Create every collection with a write first: a read or delete on a missing SQLite file breaks it."""
        db = self.database()
        existing = set(db.list_collection_names())
        for name in COLLECTIONS:
            if name not in existing:
                _create_collection(db, name)

    def close(self) -> None:
        self._local = threading.local()


def _create_collection(db: Any, name: str) -> None:
    try:
        db.create_collection(name)
    except (montydb.errors.CollectionInvalid, sqlite3.OperationalError):
        log.debug("collection %s was created concurrently", name)


_DUPLICATE_ERRORS = (
    pymongo.errors.BulkWriteError,
    pymongo.errors.DuplicateKeyError,
    montydb.errors.DuplicateKeyError,
    montydb.errors.BulkWriteError,
    sqlite3.IntegrityError,
)


def _reraise_unless_duplicate(exc: Exception) -> None:
    if isinstance(exc, pymongo.errors.BulkWriteError):
        codes = {e.get("code") for e in exc.details.get("writeErrors", [])}
        if codes - {DUPLICATE_KEY}:
            raise exc


def _redact(url: str) -> str:
    """Hide a password in a MongoDB URL before it reaches a log or an error message."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    return f"{scheme}{sep}***@{rest.rsplit('@', 1)[1]}"


def open_store(
    data_dir: Path,
    mongo_url: str = "",
    mongo_db: str = "fedcart",
    catalogue: Catalogue | None = None,
    timeout_ms: int = 5000,
    client: Any = None,
    mongo_password: str | None = None,
) -> Store:
    """Open the cart's store: MongoDB when `mongo_url` is set, else the embedded one in `data_dir/store`.

    `client` is an already connected pymongo-compatible client to use
    instead of `mongo_url` (many carts in one process share one; closing
    the store leaves it open). `mongo_password` is the password of the
    user `mongo_url` names. Collections and indexes are created, and
    the products collection is seeded from `catalogue` on first start.
    """
    if client is not None:
        backend: _MongoBackend | _EmbeddedBackend = _MongoBackend(client, mongo_db, owns_client=False)
    elif mongo_url:
        backend = _MongoBackend.connect(mongo_url, mongo_db, timeout_ms, mongo_password)
    else:
        backend = _EmbeddedBackend(Path(data_dir) / EMBEDDED_DIR, mongo_db)
    backend.prepare()
    store = Store(backend)
    if catalogue is not None:
        store.seed_products(catalogue)
    log.debug("opened %s store (data dir %s)", store.backend, data_dir)
    return store


def read_password_file(path: str) -> str:
    """The password kept in a secret file (one line; a trailing newline is not part of it)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreUnavailable(f"cannot read MONGO_PASSWORD_FILE {path}: {exc}") from exc
    password = text.rstrip("\r\n")
    if not password:
        raise StoreUnavailable(f"MONGO_PASSWORD_FILE {path} is empty")
    return password


def open_cart_store(settings: CartSettings) -> Store:
    """Open the store a cart's settings describe (data dir, MONGO_URL and its password file, database, catalogue)."""
    password = None
    if settings.mongo_url and settings.mongo_password_file:
        password = read_password_file(settings.mongo_password_file)
    return open_store(
        settings.data_dir,
        mongo_url=settings.mongo_url,
        mongo_db=settings.mongo_db,
        catalogue=load_catalogue(settings.catalogue_path),
        mongo_password=password,
    )
