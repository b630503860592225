"""What `fedcart swarm --task T` gives its carts before they start: rows for T, the task itself, the password hint."""

from __future__ import annotations

import pytest

from child_cart.rounds import settings as round_settings
from child_cart.store import open_store
from child_cart.tasks.registry import get_task
from fedcart.local_swarm import SwarmPlan, children, seed_carts


@pytest.mark.parametrize(
    ("task", "collection", "schema"),
    [
        ("iot-anomaly", "telemetry", "traffic"),
        ("iot-intrusion", "telemetry", "weather"),
        ("iot-intrusion-forest", "telemetry", "weather"),
        ("recommend", "purchases", None),
    ],
)
def test_seeding_fills_every_cart_with_rows_for_the_swarms_task(tmp_path, task, collection, schema):
    plan = SwarmPlan(root=tmp_path / "swarm", carts=2, rows=120, task=task, round_seconds=7.0)
    seed_carts(plan)
    seed_carts(plan)  # a restart: the carts keep their rows, nothing is added twice
    for i in range(plan.carts):
        store = open_store(plan.cart_dir(i))
        try:
            documents = list(store.collection(collection).find({}))
            assert len(documents) == plan.rows, f"cart-{i}: {len(documents)} {collection} rows"
            if schema is not None:
                assert {doc["schema"] for doc in documents} == {schema}
                assert {doc["label"] for doc in documents} == {0, 1}, "attacks and benign traffic both"
            rows = get_task(task).rows(store)
            assert len(rows) == plan.rows, f"cart-{i}: the task reads {len(rows)} of its rows"
            assert round_settings.load(store).schedule_seconds == 7.0
        finally:
            store.close()


def test_the_carts_run_the_swarms_task_and_say_where_the_password_is(tmp_path):
    plan = SwarmPlan(root=tmp_path / "swarm", carts=2, bridges=1, task="iot-anomaly")
    kids = {kid.name: kid for kid in children(plan)}
    assert list(kids)[:2] == ["cart-0", "cart-1"], "carts start first, so their UIs answer first"
    for name in ("cart-0", "cart-1"):
        assert kids[name].env["TASK"] == "iot-anomaly"
        hint = kids[name].env["UI_ADMIN_PASSWORD_HINT"]
        assert str(plan.root / "admin_password") in hint and "fedcart swarm" in hint
    assert (plan.root / "admin_password").read_text().strip()
