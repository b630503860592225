"""The shape of a `telemetry` document: one observation of one IoT device, benign or attack.

Synthetic generators and CSV loaders both build rows here, so the tasks see one
schema whichever way a row was made. Two schemas share the collection and are
told apart by `schema`: `traffic` rows carry a vector of numeric flow statistics
(N-BaIoT, Edge-IIoTset), `weather` rows carry sensor readings (TON_IoT weather).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from child_cart.store import Store

COLLECTION = "telemetry"
TRAFFIC = "traffic"
WEATHER = "weather"
BENIGN = "benign"
WRITE_CHUNK = 2000


def device_code(device: str) -> int:
    """A stable 31-bit number for a device name: the same on every cart, with no shared registry."""
    return int.from_bytes(hashlib.sha256(device.encode("utf-8")).digest()[:4], "big") >> 1


def traffic_row(row_id: str, device: str, features: Sequence[float], attack: str, source: str) -> dict:
    """A traffic document; `attack` is `benign` or the attack family."""
    return {
        "_id": row_id,
        "schema": TRAFFIC,
        "device": device,
        "features": [float(v) for v in features],
        "label": int(attack != BENIGN),
        "attack": attack,
        "source": source,
    }


def weather_row(
    row_id: str,
    device: str,
    temperature: float,
    pressure: float,
    humidity: float,
    hour: float,
    attack: str,
    source: str,
) -> dict:
    """A weather-sensor document; `hour` is the time of day in hours (0 <= hour < 24)."""
    return {
        "_id": row_id,
        "schema": WEATHER,
        "device": device,
        "temperature": float(temperature),
        "pressure": float(pressure),
        "humidity": float(humidity),
        "hour": float(hour) % 24.0,
        "label": int(attack != BENIGN),
        "attack": attack,
        "source": source,
    }


def targets(rows: Sequence[dict]) -> np.ndarray:
    """The y tensor every IoT task uses: column 0 the label (1 = attack), column 1 the device code."""
    y = np.array([[int(r["label"]), device_code(str(r["device"]))] for r in rows], dtype=np.int64)
    return y.reshape(len(rows), 2)


def fill_store(store: Store, rows: Sequence[dict]) -> int:
    """Write telemetry rows into a cart's store; writing the same rows again rewrites, never duplicates."""
    for start in range(0, len(rows), WRITE_CHUNK):
        store.put_many(COLLECTION, rows[start : start + WRITE_CHUNK])
    return len(rows)
