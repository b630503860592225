"""Synthetic IoT data: deterministic, laid out like the real data sets, and non-IID across carts."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from child_cart.synth import traffic as synth_traffic
from child_cart.synth import weather as synth_weather
from child_cart.tasks.iot.nbaiot import DEVICES, FEATURE_NAMES, FEATURES, MIRAI, NO_MIRAI
from child_cart.tasks.iot.partition import by_device
from child_cart.tasks.iot.rows import BENIGN, TRAFFIC, WEATHER, device_code, targets


@pytest.mark.parametrize("generator", [synth_traffic.generate, synth_weather.generate], ids=["traffic", "weather"])
def test_same_seed_same_rows_and_a_cart_does_not_depend_on_the_fleet_size(generator) -> None:
    three = generator(60, carts=3, seed=7)
    assert generator(60, carts=3, seed=7) == three
    assert generator(60, carts=5, seed=7)[:3] == three
    assert generator(60, carts=3, seed=8) != three
    ids = [row["_id"] for rows in three for row in rows]
    assert len(ids) == len(set(ids))


def test_traffic_rows_have_the_nbaiot_layout_and_nine_device_types() -> None:
    assert FEATURES == 115 and len(set(FEATURE_NAMES)) == 115
    assert FEATURE_NAMES[0] == "MI_dir_L5_weight" and FEATURE_NAMES[-1] == "HpHp_L0.01_pcc"
    fleet = synth_traffic.generate(200, carts=9, seed=1)
    assert [rows[0]["device"] for rows in fleet] == list(DEVICES)
    for rows in fleet:
        x = np.array([row["features"] for row in rows])
        assert x.shape == (200, 115) and np.isfinite(x).all()
        assert {row["schema"] for row in rows} == {TRAFFIC}
        assert all(row["label"] == (row["attack"] != BENIGN) for row in rows)


def test_devices_the_mirai_botnet_missed_have_no_mirai_rows() -> None:
    for rows in synth_traffic.generate(400, carts=9, seed=2):
        attacks = {row["attack"] for row in rows}
        if rows[0]["device"] in NO_MIRAI:
            assert not attacks & set(MIRAI)
        assert BENIGN in attacks and len(attacks) > 3


def test_carts_differ_in_balance_attack_mix_and_feature_scale() -> None:
    fleet = synth_traffic.generate(600, carts=4, seed=3)
    balance = [np.mean([r["label"] for r in rows]) for rows in fleet]
    top_attack = [Counter(r["attack"] for r in rows if r["label"]).most_common(1)[0][0] for rows in fleet]
    scale = [np.median([r["features"][0] for r in rows if not r["label"]]) for rows in fleet]
    assert max(balance) - min(balance) > 0.05
    assert len(set(top_attack)) > 1
    assert max(scale) / min(scale) > 3


def test_weather_labels_are_skewed_about_86_to_14_and_stations_differ() -> None:
    fleet = synth_weather.generate(1500, carts=12, seed=4)
    share = np.mean([row["label"] for rows in fleet for row in rows])
    assert 0.09 < share < 0.19
    pressures = [np.median([r["pressure"] for r in rows]) for rows in fleet[:6]]
    assert max(pressures) - min(pressures) > 8
    assert {row["schema"] for rows in fleet for row in rows} == {WEATHER}
    assert all(0 <= row["hour"] < 24 for rows in fleet for row in rows)


def test_targets_carry_label_and_a_stable_device_code() -> None:
    rows = synth_traffic.generate(20, carts=2, seed=0)[1]
    y = targets(rows)
    assert y.shape == (20, 2)
    assert list(y[:, 0]) == [r["label"] for r in rows]
    assert set(y[:, 1]) == {device_code(DEVICES[1])}
    assert device_code("x") == device_code("x") != device_code("y")


def test_rows_are_dealt_to_carts_by_device_whatever_their_order() -> None:
    rows = [row for rows in synth_traffic.generate(30, carts=4, seed=0) for row in rows]
    four = by_device(rows, 4)
    assert [len({r["device"] for r in cart}) for cart in four] == [1, 1, 1, 1]
    assert by_device(list(reversed(rows)), 4) == four
    two = by_device(rows, 2)
    assert sum(len(c) for c in two) == len(rows) and all(len({r["device"] for r in c}) == 2 for c in two)
    eight = by_device(rows, 8)
    assert sorted(r["_id"] for c in eight for r in c) == sorted(r["_id"] for r in rows)
    assert all(len({r["device"] for r in c}) == 1 and c for c in eight)
