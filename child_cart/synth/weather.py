"""Synthetic TON_IoT-style weather telemetry: stations in different climates, seven attack families, ~14% attacks.

Benign readings follow a station's climate: a daily temperature cycle peaking
mid-afternoon, humidity falling as it warms, pressure around the station's
altitude-dependent mean. Attack rows are what the attacks do to the telemetry
in the TON_IoT captures' spirit: injected out-of-range values, frozen or
replayed readings, offsets from tampered firmware, and floods or scans at
their own hours of the day with readings that look normal. A share of attack
rows is stealthy (benign-looking readings at benign hours), so no detector is
perfect. Each cart is one station (cart k: station k mod 6), with its own
attack share around 14% and its own mix of families (non-IID in climate,
balance and attack mix). Cart k's rows depend only on (seed, k, its id).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from child_cart.synth.shoppers import checked_cart_ids
from child_cart.tasks.iot.rows import BENIGN, weather_row

log = logging.getLogger(__name__)

ATTACK_SHARE = (4.0, 24.6)  # Beta parameters: mean 0.14, sd ~0.06
FAMILY_CONCENTRATION = 0.6
STEALTHY = 0.12
FAMILIES = ("backdoor", "ddos", "injection", "password", "ransomware", "scanning", "xss")


@dataclass(frozen=True)
class Station:
    """A weather station's climate."""

    temperature: float
    amplitude: float
    humidity: float
    pressure: float


STATIONS: dict[str, Station] = {
    "weather-coastal": Station(16.0, 4.0, 75.0, 1016.0),
    "weather-inland": Station(20.0, 8.0, 50.0, 1012.0),
    "weather-hills": Station(9.0, 6.0, 65.0, 1006.0),
    "weather-harbour": Station(18.0, 3.0, 80.0, 1018.0),
    "weather-plain": Station(12.0, 7.0, 58.0, 1014.0),
    "weather-valley": Station(14.0, 5.0, 70.0, 1010.0),
}


def cart_station(index: int) -> str:
    """The station cart `index` is."""
    names = list(STATIONS)
    return names[index % len(names)]


def generate(rows: int, carts: int = 1, seed: int = 0, cart_ids: Sequence[str] | None = None) -> list[list[dict]]:
    """`rows` weather rows for each of `carts` carts, deterministic for `seed`."""
    ids = checked_cart_ids(rows, carts, cart_ids)
    return [_cart_rows(rows, seed, k, cart_id) for k, cart_id in enumerate(ids)]


def _cart_rows(rows: int, seed: int, index: int, cart_id: str) -> list[dict]:
    rng = np.random.default_rng([seed, index, 0x3E])
    name = cart_station(index)
    share = rng.beta(*ATTACK_SHARE)
    mix = rng.dirichlet(np.full(len(FAMILIES), FAMILY_CONCENTRATION))
    kind = np.where(rng.random(rows) < share, rng.choice(len(FAMILIES), size=rows, p=mix), -1)
    reading = _benign(rng, STATIONS[name], rows)
    stealthy = rng.random(rows) < STEALTHY
    for k, family in enumerate(FAMILIES):
        _ATTACKS[family](rng, STATIONS[name], reading, (kind == k) & ~stealthy)
    prefix = f"synth-{seed}-{cart_id}"
    return [
        weather_row(
            f"{prefix}-{n:07d}",
            name,
            reading["temperature"][n],
            reading["pressure"][n],
            reading["humidity"][n],
            reading["hour"][n],
            BENIGN if kind[n] < 0 else FAMILIES[kind[n]],
            "synth",
        )
        for n in range(rows)
    ]


def _benign(rng: np.random.Generator, station: Station, n: int) -> dict[str, np.ndarray]:
    hour = rng.uniform(0.0, 24.0, n)
    temperature = (
        station.temperature + station.amplitude * np.sin(2 * np.pi * (hour - 9.0) / 24.0) + rng.normal(0, 1.2, n)
    )
    humidity = np.clip(station.humidity - 1.5 * (temperature - station.temperature) + rng.normal(0, 5.0, n), 2.0, 100.0)
    return {
        "hour": hour,
        "temperature": temperature,
        "humidity": humidity,
        "pressure": station.pressure + rng.normal(0, 2.5, n),
    }


def _injection(rng: np.random.Generator, station: Station, r: dict[str, np.ndarray], rows: np.ndarray) -> None:
    """Forged readings anywhere in the sensor's range."""
    count = int(rows.sum())
    r["temperature"][rows] = rng.uniform(-40.0, 80.0, count)
    r["humidity"][rows] = rng.uniform(0.0, 100.0, count)
    r["pressure"][rows] = rng.uniform(800.0, 1100.0, count)


def _xss(rng: np.random.Generator, station: Station, r: dict[str, np.ndarray], rows: np.ndarray) -> None:
    """Scripts in the dashboard rewrite one reading by a factor."""
    count = int(rows.sum())
    column = rng.choice(["temperature", "humidity", "pressure"], size=count)
    factor = rng.uniform(0.4, 1.6, count)
    for name in ("temperature", "humidity", "pressure"):
        picked = np.flatnonzero(rows)[column == name]
        r[name][picked] *= factor[column == name]


def _password(rng: np.random.Generator, station: Station, r: dict[str, np.ndarray], rows: np.ndarray) -> None:
    """A hijacked sensor reports warmer and drier than it is."""
    count = int(rows.sum())
    r["temperature"][rows] += rng.uniform(8.0, 20.0, count)
    r["humidity"][rows] -= rng.uniform(10.0, 25.0, count)


def _backdoor(rng: np.random.Generator, station: Station, r: dict[str, np.ndarray], rows: np.ndarray) -> None:
    """Tampered firmware shifts the pressure calibration."""
    count = int(rows.sum())
    r["pressure"][rows] += rng.choice([-1.0, 1.0], count) * rng.uniform(12.0, 40.0, count)


def _ransomware(rng: np.random.Generator, station: Station, r: dict[str, np.ndarray], rows: np.ndarray) -> None:
    """A locked sensor keeps replaying its last afternoon reading."""
    r["temperature"][rows] = station.temperature + station.amplitude
    r["humidity"][rows] = station.humidity - 1.5 * station.amplitude
    r["pressure"][rows] = station.pressure


def _ddos(rng: np.random.Generator, station: Station, r: dict[str, np.ndarray], rows: np.ndarray) -> None:
    """Floods come at night and starve the sensor, which keeps sending a stale midday reading."""
    count = int(rows.sum())
    r["hour"][rows] = np.mod(rng.normal(2.0, 1.5, count), 24.0)
    r["temperature"][rows] = station.temperature + station.amplitude * rng.uniform(0.5, 1.0, count)


def _scanning(rng: np.random.Generator, station: Station, r: dict[str, np.ndarray], rows: np.ndarray) -> None:
    """Scans in the early evening, answered with a frozen morning reading."""
    r["hour"][rows] = np.mod(rng.normal(19.0, 1.0, int(rows.sum())), 24.0)
    r["temperature"][rows] = station.temperature
    r["humidity"][rows] = station.humidity


_ATTACKS = {
    "backdoor": _backdoor,
    "ddos": _ddos,
    "injection": _injection,
    "password": _password,
    "ransomware": _ransomware,
    "scanning": _scanning,
    "xss": _xss,
}
