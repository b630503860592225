"""Fixtures for the cart's data and model tests.

Store tests run on every back-end: the embedded store always, MongoDB when
MONGO_URL points at a server (each test gets its own database, dropped
afterwards). Training and export share one session-scoped trained model.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymongo
import pytest
from typer.testing import CliRunner

from child_cart.store import Catalogue, Store, load_catalogue, open_store
from child_cart.synth import shoppers as synth
from fedcart.cli import app

MONGO_URL = os.environ.get("MONGO_URL", "")
HAVE_MONGOMOCK = importlib.util.find_spec("mongomock") is not None
BACKENDS = [
    pytest.param("embedded", id="embedded"),
    pytest.param(
        "mongomock",
        id="mongomock",
        marks=pytest.mark.skipif(
            not HAVE_MONGOMOCK, reason="mongomock not installed: pymongo code paths not tested without a server"
        ),
    ),
    pytest.param(
        "mongo",
        id="mongo",
        marks=pytest.mark.skipif(
            not MONGO_URL, reason="MONGO_URL not set (no mongod on this machine): MongoDB back-end not tested"
        ),
    ),
]

TRAIN_ROWS = 3000
TRAIN_EPOCHS = 8


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture(params=BACKENDS)
def open_test_store(
    request: pytest.FixtureRequest, tmp_path: Path, catalogue: Catalogue
) -> Iterator[Callable[[], Store]]:
    """Opens (and re-opens, as after a restart) one test store on the parametrized back-end.

    mongomock is an in-memory pymongo double: it runs the store's pymongo
    code paths (its errors are pymongo's) where no server exists, while the
    "mongo" back-end runs them against a real server.
    """
    db_name = f"fedcart_test_{uuid.uuid4().hex[:12]}"
    url = MONGO_URL if request.param == "mongo" else ""
    client = _mongomock_client() if request.param == "mongomock" else None
    opened: list[Store] = []

    def opener() -> Store:
        store = open_store(tmp_path / "cart", mongo_url=url, mongo_db=db_name, catalogue=catalogue, client=client)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        store.close()
    if url:
        with pymongo.MongoClient(url) as client:
            client.drop_database(db_name)


def _mongomock_client() -> Any:
    import mongomock

    return mongomock.MongoClient()


@pytest.fixture
def store(open_test_store: Callable[[], Store]) -> Store:
    return open_test_store()


@dataclass
class Trained:
    """One cart with synthetic rows, a trained recommend model and its export."""

    data_dir: Path
    store: Store
    task: Any
    result: Any
    version: Any
    export: Any
    rows: list[dict]


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, catalogue: Catalogue) -> Trained:
    from child_cart.models.export import export_tflite
    from child_cart.models.versions import ModelVersions
    from child_cart.tasks import get_task
    from child_cart.tasks.trainer import train

    data_dir = tmp_path_factory.mktemp("trained-cart")
    store = open_store(data_dir, catalogue=catalogue)
    synth.fill_store(store, synth.generate(catalogue, TRAIN_ROWS, seed=11)[0])
    task = get_task("recommend")
    rows = task.rows(store)
    result = train(task, rows, epochs=TRAIN_EPOCHS, batch_size=32, seed=0)
    version = ModelVersions(store, data_dir).save(task.name, result.weights, result.train_samples, result.metrics)
    exported = export_tflite(store, data_dir, task)
    return Trained(data_dir, store, task, result, version, exported, rows)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Runs the real CLI in an empty folder, on the embedded store."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MONGO_URL", "")
    runner = CliRunner()

    def run(*args: str, code: int = 0):
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result

    return run
