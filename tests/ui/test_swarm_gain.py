"""The swarm's gain over a local-only model, in the rounds API and on the admin rounds page."""

from __future__ import annotations

import json
import re

import pytest

from child_cart.rounds.roundlog import log_round
from child_cart.store import Store

from .conftest import NODE_ID, Api, round_record

GAINS = [0.01, -0.02, 0.03, 0.04, None, 0.05, 0.06]  # round 4 measured none (no held-out rows)
ERRORS = [0.03, 0.03, 0.025, 0.025, None, 0.02, 0.018]
MEAN_LAST_5 = (-0.02 + 0.03 + 0.04 + 0.05 + 0.06) / 5


def _log_gains(store: Store, gains: list[float | None] = GAINS, task: str = "recommend", first: int = 0) -> None:
    for n, (gain, error) in enumerate(zip(gains, ERRORS), start=first):
        log_round(
            store, round_record(n).model_copy(update={"swarm_gain": gain, "swarm_gain_error": error, "task": task})
        )


def test_rounds_api_carries_the_gain_of_each_round_and_the_headline(admin_api: Api, store: Store):
    _log_gains(store)
    body = admin_api.call("GET", "/api/rounds?limit=2").get_json()
    assert [(r["round"], r["swarm_gain"]) for r in body["rounds"]] == [(5, 0.05), (6, 0.06)]
    latest = body["rounds"][-1]
    assert latest["local_only"]["accuracy"] == pytest.approx(0.35)
    assert (latest["kept"], latest["metric"]) == ("aggregate", "accuracy")
    assert latest["kept_metrics"]["accuracy"] == pytest.approx(0.48)
    headline = body["swarm_gain"]
    assert headline == {
        "task": "recommend",
        "metric": "accuracy",
        "latest": 0.06,
        "latest_error": 0.018,
        "latest_round": 6,
        "mean": pytest.approx(MEAN_LAST_5),
        "rounds": 5,
    }, "the headline covers the last five measured rounds, whatever the limit"


def test_headline_is_empty_before_any_gain_and_old_rounds_still_read(admin_api: Api, store: Store):
    assert admin_api.call("GET", "/api/rounds").get_json() == {
        "rounds": [],
        "swarm_gain": {
            "task": None,
            "metric": None,
            "latest": None,
            "latest_error": None,
            "latest_round": None,
            "mean": None,
            "rounds": 0,
        },
    }
    old = round_record(0).model_dump(
        mode="json", exclude={"metric", "kept", "kept_metrics", "local_only", "swarm_gain", "swarm_gain_error"}
    )
    store.put("rounds", {"_id": f"{NODE_ID}:000000", **old})
    body = admin_api.call("GET", "/api/rounds").get_json()
    assert body["rounds"][0]["swarm_gain"] is None and body["rounds"][0]["local_only"] == {}
    assert (body["swarm_gain"]["latest"], body["swarm_gain"]["latest_error"], body["swarm_gain"]["rounds"]) == (
        None,
        None,
        0,
    )


def test_headline_counts_only_the_newest_task(admin_api: Api, store: Store):
    _log_gains(store, [0.2, 0.2], task="iot-anomaly")
    _log_gains(store, [0.01, 0.03], first=2)
    headline = admin_api.call("GET", "/api/rounds").get_json()["swarm_gain"]
    assert (headline["task"], headline["latest"], headline["rounds"]) == ("recommend", 0.03, 2)
    assert headline["mean"] == pytest.approx(0.02)


def test_rounds_page_shows_the_gain_as_numbers_and_hands_the_chart_its_line(admin_api: Api, store: Store):
    _log_gains(store)
    page = admin_api.client.get("/admin/rounds").get_data(as_text=True)
    assert re.search(r'id="gain-latest">\+0\.060<', page)
    assert re.search(r'id="gain-latest-round"> \(6\)<', page)
    assert re.search(r'id="gain-latest-error">, ± 0\.018<', page)
    assert re.search(rf'id="gain-mean">\+{MEAN_LAST_5:.3f}<', page)
    assert re.search(r'id="gain-rounds">5<', page) and 'id="gain-metric">top-1 accuracy<' in page
    assert '<th class="num">Gain<span class="unit">kept − local-only</span></th>' in page
    assert '<th class="num">Local-only<span class="unit">held-out top-1 accuracy</span></th>' in page
    data = json.loads(re.search(r'<script type="application/json" id="rounds-data">(.*?)</script>', page, re.S)[1])
    assert [r["swarm_gain"] for r in data] == GAINS, "the chart's gain line reads these"


def test_rounds_page_without_rounds_shows_dashes(admin_api: Api):
    page = admin_api.client.get("/admin/rounds").get_data(as_text=True)
    assert 'id="gain-latest">–<' in page and 'id="gain-mean">–<' in page and 'id="gain-rounds">0<' in page
