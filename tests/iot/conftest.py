"""Fixtures for the IoT tasks: small seeded synthetic fleets and small models, so the suite stays fast."""

from __future__ import annotations

import pytest

from child_cart.synth import traffic as synth_traffic
from child_cart.synth import weather as synth_weather
from child_cart.tasks.iot_anomaly import AnomalyTask

SMALL_LAYERS = (32, 16)


@pytest.fixture(scope="session")
def traffic() -> list[list[dict]]:
    """Three carts (three device types) of synthetic N-BaIoT-style rows."""
    return synth_traffic.generate(500, carts=3, seed=5)


@pytest.fixture(scope="session")
def weather() -> list[list[dict]]:
    """Six carts (six stations) of synthetic TON_IoT-style weather rows."""
    return synth_weather.generate(700, carts=6, seed=5)


@pytest.fixture
def anomaly_task() -> AnomalyTask:
    return AnomalyTask(layers=SMALL_LAYERS, k=3.0, scope="global")
