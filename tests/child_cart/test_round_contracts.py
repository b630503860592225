"""Round settings, round log and event bus: the contracts between the engine and the UI."""

from __future__ import annotations

from datetime import UTC, datetime

import pydantic
import pytest

from child_cart.events import SUBSCRIBER_QUEUE, EventBus
from child_cart.rounds import settings as round_settings
from child_cart.rounds.roundlog import RoundRecord, log_round, next_round_number, recent_rounds
from child_cart.store import open_store


@pytest.fixture
def store(tmp_path):
    s = open_store(tmp_path)
    yield s
    s.close()


def test_settings_default_then_persisted(store):
    assert round_settings.load(store).aggregator == "fedavg"
    round_settings.save(store, {"aggregator": "krum", "k": 5})
    again = round_settings.load(store)
    assert (again.aggregator, again.k, again.tolerance) == ("krum", 5, 0.05)


@pytest.mark.parametrize("bad", [{"aggregator": "mean"}, {"k": 0}, {"tolerance": "x"}, {"unknown": 1}])
def test_bad_settings_refused_and_nothing_changes(store, bad):
    with pytest.raises(pydantic.ValidationError):
        round_settings.save(store, bad)
    assert round_settings.load(store) == round_settings.RoundSettings()


def _record(n: int) -> RoundRecord:
    now = datetime.now(UTC)
    return RoundRecord(
        node_id="a" * 40,
        round=n,
        task="recommend",
        aggregator="fedavg",
        started=now,
        finished=now,
        local={"accuracy": 0.5},
        aggregated={"accuracy": 0.6},
        accepted=True,
    )


def test_round_log_orders_and_numbers(store):
    assert next_round_number(store) == 0
    for n in (0, 1, 2):
        log_round(store, _record(n))
    log_round(store, _record(2))
    rounds = recent_rounds(store)
    assert [r.round for r in rounds] == [0, 1, 2]
    assert rounds[-1].aggregated == {"accuracy": 0.6}
    assert next_round_number(store) == 3


def test_event_bus_drops_oldest_for_slow_subscriber():
    bus = EventBus()
    q = bus.subscribe()
    for i in range(SUBSCRIBER_QUEUE + 5):
        bus.publish("round", {"n": i})
    assert q.qsize() == SUBSCRIBER_QUEUE
    assert q.get_nowait()["data"] == {"n": 5}
    bus.unsubscribe(q)
    bus.publish("round", {})
    assert q.qsize() == SUBSCRIBER_QUEUE - 1
