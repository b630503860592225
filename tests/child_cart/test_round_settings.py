"""Round settings that would switch a protection off are refused, each naming the fields to change.

One table of refusals (aggregator with k, trim ratio or Krum's f), the
neighbouring combinations that are accepted, and what happens to stored
settings an older version saved before the fields were checked together.
"""

from __future__ import annotations

import pydantic
import pytest

from child_cart.aggregation import AGGREGATORS
from child_cart.rounds import settings as round_settings
from child_cart.rounds.settings import RoundSettings
from child_cart.store import open_store
from child_cart.ui.errors import field_errors


@pytest.fixture
def store(tmp_path):
    s = open_store(tmp_path)
    yield s
    s.close()


REFUSED = [
    # (id, changes, fields marked, words the message must hold)
    ("median-of-two", {"aggregator": "median", "k": 1}, {"k"}, ["aggregator=median", "k=1", "at least 2"]),
    (
        "trimmed-mean-trims-nothing",
        {"aggregator": "trimmed_mean", "trim_ratio": 0.0},
        {"trim_ratio"},
        ["aggregator=trimmed_mean", "trim_ratio=0", "trims nothing"],
    ),
    (
        "trimmed-mean-too-few-to-trim",
        {"aggregator": "trimmed_mean", "k": 1},
        {"k"},
        ["aggregator=trimmed_mean", "k=1", "at least 3", "at least 2"],
    ),
    (
        "trimmed-mean-trims-everything",
        {"aggregator": "trimmed_mean", "trim_ratio": 0.45},
        {"k", "trim_ratio"},
        ["trim_ratio=0.45", "k=3", "2 of 4", "leave none", "0.25 or less", "k to at least 10"],
    ),
    (
        "krum-f1-at-default-k",
        {"aggregator": "krum", "krum_f": 1},
        {"k", "krum_f"},
        ["aggregator=krum", "krum_f=1", "more than", "4 updates", "k=3", "k to at least 4", "krum_f to 0"],
    ),
    (
        "krum-f2-at-k5",
        {"aggregator": "krum", "k": 5, "krum_f": 2},
        {"k", "krum_f"},
        ["krum_f=2", "k=5", "6 updates", "k to at least 6", "krum_f to 1"],
    ),
    ("krum-two-updates", {"aggregator": "krum", "k": 1}, {"k", "krum_f"}, ["krum_f=0", "k=1", "k to at least 2"]),
    *(
        (
            f"secure-with-{rule}",
            {"aggregator": rule, "secure_aggregation": True},
            {"aggregator", "secure_aggregation"},
            ["secure_aggregation=true", f"aggregator={rule}", "need the individual updates", "choose fedavg"],
        )
        for rule in ("median", "trimmed_mean", "krum")
    ),
    (
        "secure-cohort-of-two",
        {"secure_aggregation": True, "k": 2},
        {"k", "secure_aggregation"},
        ["secure_aggregation=true", "k=2", "at least 3"],
    ),
]


@pytest.mark.parametrize(("changes", "fields", "words"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_settings_that_switch_a_protection_off_are_refused_naming_the_fields(store, changes, fields, words):
    round_settings.save(store, {"local_epochs": 5})
    before = round_settings.load(store)
    with pytest.raises(pydantic.ValidationError) as refused:
        round_settings.save(store, changes)
    named = field_errors(refused.value)  # what the admin page and PUT /api/settings show, field by field
    assert set(named) == fields
    for message in named.values():
        for word in words:
            assert word in message, f"{word!r} missing from {message!r}"
    assert round_settings.load(store) == before


@pytest.mark.parametrize("aggregator", AGGREGATORS)
def test_defaults_fit_every_aggregator(aggregator):
    settings = RoundSettings(aggregator=aggregator)
    assert settings.k == 3 and settings.trim_ratio > 0


@pytest.mark.parametrize(
    "changes",
    [
        {"aggregator": "krum", "k": 4, "krum_f": 1},
        {"aggregator": "krum", "k": 2},
        {"aggregator": "trimmed_mean", "trim_ratio": 0.25},
        {"aggregator": "trimmed_mean", "k": 10, "trim_ratio": 0.45},
        {"aggregator": "median", "k": 2},
        {"secure_aggregation": True, "k": 3},
        {"secure_aggregation": True, "aggregator": "fedavg", "k": 5},
        # fields of rules not chosen are not judged: switching to those rules later is
        {"aggregator": "fedavg", "k": 1, "trim_ratio": 0.0, "krum_f": 5},
    ],
)
def test_neighbouring_settings_are_accepted(store, changes):
    assert round_settings.save(store, changes).model_dump(include=set(changes)) == changes


def test_switching_rule_checks_the_stored_fields_too(store):
    round_settings.save(store, {"k": 1})
    with pytest.raises(pydantic.ValidationError, match="aggregator=median with k=1"):
        round_settings.save(store, {"aggregator": "median"})


def test_stored_settings_from_before_the_checks_keep_running_with_defaults_for_the_conflict(store, caplog):
    """An older version may have stored Krum with f=1 at k=3 (which then refused every round)."""
    stored = {**RoundSettings().model_dump(), "aggregator": "krum", "krum_f": 1, "local_epochs": 7}
    store.set_setting(round_settings.SETTINGS_KEY, stored)
    loaded = round_settings.load(store)
    assert (loaded.aggregator, loaded.k, loaded.krum_f, loaded.local_epochs) == ("krum", 3, 0, 7)
    assert "krum_f" in caplog.text and "using the defaults" in caplog.text


def test_stored_privacy_settings_that_fail_are_never_repaired_by_switching_privacy_off(store):
    stored = {**RoundSettings().model_dump(), "dp_clip_norm": 1.0, "dp_noise_multiplier": 0.0, "k": 0}
    store.set_setting(round_settings.SETTINGS_KEY, stored)
    with pytest.raises(pydantic.ValidationError, match="dp_"):
        round_settings.load(store)


def test_secure_aggregation_is_off_by_default_and_never_repaired_off(store):
    assert RoundSettings().secure_aggregation is False
    stored = {**RoundSettings().model_dump(), "secure_aggregation": True, "k": 2}
    store.set_setting(round_settings.SETTINGS_KEY, stored)
    with pytest.raises(pydantic.ValidationError, match="secure_aggregation"):
        round_settings.load(store)
