"""Synthetic N-BaIoT-style traffic: nine device types, ten Mirai/BASHLITE attack families, non-IID carts.

The public captures cannot be downloaded here, so rows are drawn from a small
generative model with the data set's layout (`nbaiot.FEATURE_NAMES`). Each row
has a latent traffic state, then its 115 statistics follow from it:

    rate      packets/s (device-typical, log-normal bursts, idle phases)
    size      mean packet size, and spread its standard deviation
    jitter    mean gap between packets of one conversation
    channels  conversations open at once, and rho the in/out size correlation

Window statistics come from the state with noise that shrinks as the window
holds more packets, so short windows are noisy and long ones smooth, as in
the real captures. An attack moves the state towards its family's signature
(floods: many small or large identical packets; scans: many short
conversations) by an intensity drawn per row, so some attack rows look almost
benign. Each cart is one device (cart k: device k mod 9), with its own benign
share and its own mix of the families that device was infected with: carts
differ in feature scale, attack mix and balance (non-IID). Cart k's rows depend
only on (seed, k, its id).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from child_cart.synth.shoppers import checked_cart_ids
from child_cart.tasks.iot.nbaiot import (
    DEVICES,
    FEATURE_NAMES,
    HORIZONS,
    WINDOWS,
    attacks_of,
)
from child_cart.tasks.iot.rows import BENIGN, traffic_row

log = logging.getLogger(__name__)

BENIGN_SHARE = (0.35, 0.65)
FAMILY_CONCENTRATION = 0.8
NOISE = 0.35
OUT_IN_RATIO = 0.6
UPDATE_BURST = 0.01  # benign firmware-update bursts: the benign rows a detector is most tempted to flag


@dataclass(frozen=True)
class DeviceProfile:
    """How a device type talks when nobody attacks it."""

    rate: float
    size: float
    spread: float
    jitter: float
    channels: float
    pcc: float
    burst: float
    idle: float


@dataclass(frozen=True)
class AttackShape:
    """Where a family pushes the traffic state at full intensity (multipliers, except `size`: a target)."""

    rate: float
    size: float
    spread: float
    jitter: float
    channels: float


PROFILES: dict[str, DeviceProfile] = {
    "Danmini_Doorbell": DeviceProfile(8, 180, 90, 0.12, 3, 0.30, 0.5, 0.5),
    "Ecobee_Thermostat": DeviceProfile(2, 120, 40, 0.50, 2, 0.10, 0.4, 0.6),
    "Ennio_Doorbell": DeviceProfile(6, 200, 100, 0.15, 3, 0.25, 0.5, 0.5),
    "Philips_B120N10_Baby_Monitor": DeviceProfile(40, 700, 300, 0.025, 4, 0.60, 0.3, 0.2),
    "Provision_PT_737E_Security_Camera": DeviceProfile(60, 900, 350, 0.016, 5, 0.70, 0.3, 0.1),
    "Provision_PT_838_Security_Camera": DeviceProfile(55, 850, 330, 0.018, 5, 0.65, 0.3, 0.1),
    "Samsung_SNH_1011_N_Webcam": DeviceProfile(30, 600, 250, 0.030, 3, 0.50, 0.35, 0.3),
    "SimpleHome_XCS7_1002_WHT_Security_Camera": DeviceProfile(45, 800, 320, 0.020, 4, 0.60, 0.3, 0.15),
    "SimpleHome_XCS7_1003_WHT_Security_Camera": DeviceProfile(48, 820, 310, 0.020, 4, 0.62, 0.3, 0.15),
}

SHAPES: dict[str, AttackShape] = {
    "mirai_ack": AttackShape(40, 66, 0.10, 0.05, 1),
    "mirai_scan": AttackShape(4, 60, 0.20, 0.50, 30),
    "mirai_syn": AttackShape(50, 60, 0.05, 0.05, 2),
    "mirai_udp": AttackShape(60, 540, 0.05, 0.05, 1),
    "mirai_udpplain": AttackShape(80, 600, 0.02, 0.03, 1),
    "gafgyt_combo": AttackShape(10, 300, 3.0, 0.30, 5),
    "gafgyt_junk": AttackShape(12, 800, 4.0, 0.30, 1),
    "gafgyt_scan": AttackShape(3, 60, 0.30, 0.60, 25),
    "gafgyt_tcp": AttackShape(30, 70, 0.10, 0.10, 2),
    "gafgyt_udp": AttackShape(40, 600, 0.10, 0.10, 1),
}


def cart_device(index: int) -> str:
    """The device type cart `index` is."""
    return DEVICES[index % len(DEVICES)]


def generate(rows: int, carts: int = 1, seed: int = 0, cart_ids: Sequence[str] | None = None) -> list[list[dict]]:
    """`rows` traffic rows for each of `carts` carts, deterministic for `seed`."""
    ids = checked_cart_ids(rows, carts, cart_ids)
    return [_cart_rows(rows, seed, k, cart_id) for k, cart_id in enumerate(ids)]


def _cart_rows(rows: int, seed: int, index: int, cart_id: str) -> list[dict]:
    rng = np.random.default_rng([seed, index, 0x7A])
    device = cart_device(index)
    families = attacks_of(device)
    benign_share = rng.uniform(*BENIGN_SHARE)
    mix = rng.dirichlet(np.full(len(families), FAMILY_CONCENTRATION))
    kind = np.where(rng.random(rows) < benign_share, -1, rng.choice(len(families), size=rows, p=mix))
    state = _benign_state(rng, PROFILES[device], rows)
    _apply_attacks(rng, state, kind, families)
    features = _statistics(rng, state)
    prefix = f"synth-{seed}-{cart_id}"
    attack = [BENIGN if k < 0 else families[k] for k in kind]
    return [traffic_row(f"{prefix}-{n:07d}", device, features[n], attack[n], "synth") for n in range(rows)]


def _benign_state(rng: np.random.Generator, p: DeviceProfile, n: int) -> dict[str, np.ndarray]:
    idle = rng.random(n) < p.idle
    update = rng.random(n) < UPDATE_BURST
    rate = p.rate * np.exp(rng.normal(0, p.burst, n)) * np.where(idle, 0.2, 1.0) * np.where(update, 5.0, 1.0)
    return {
        "rate": rate,
        "size": p.size * np.exp(rng.normal(0, 0.15, n)) * np.where(update, 1.8, 1.0),
        "spread": p.spread * np.exp(rng.normal(0, 0.2, n)),
        "jitter": p.jitter * np.exp(rng.normal(0, 0.3, n)) * np.where(idle, 3.0, 1.0),
        "channels": np.maximum(1.0, rng.poisson(p.channels, n).astype(np.float64)),
        "rho": np.clip(p.pcc + rng.normal(0, 0.1, n), -1.0, 1.0),
    }


def _apply_attacks(
    rng: np.random.Generator, state: dict[str, np.ndarray], kind: np.ndarray, families: Sequence[str]
) -> None:
    """Move attack rows towards their family's signature, each by its own intensity in (0, 1]."""
    intensity = rng.beta(2.0, 1.0, size=len(kind))
    for k, family in enumerate(families):
        rows = kind == k
        t, shape = intensity[rows], SHAPES[family]
        state["rate"][rows] *= shape.rate**t
        state["size"][rows] = np.exp((1 - t) * np.log(state["size"][rows]) + t * np.log(shape.size))
        state["spread"][rows] *= shape.spread**t
        state["jitter"][rows] *= shape.jitter**t
        state["channels"][rows] = np.maximum(1.0, state["channels"][rows] * shape.channels**t)
        state["rho"][rows] *= 1 - t


def _statistics(rng: np.random.Generator, s: dict[str, np.ndarray]) -> np.ndarray:
    """The 115 window statistics of every row, in `FEATURE_NAMES` order."""
    columns: dict[str, np.ndarray] = {}
    for window in WINDOWS:
        packets = s["rate"] * HORIZONS[window]
        sigma = NOISE / np.sqrt(1.0 + packets)
        noisy = functools.partial(_noisy, rng, sigma)
        per_channel, per_socket = packets / s["channels"], packets / (2 * s["channels"])
        columns.update(_simple("MI_dir", window, noisy(packets), noisy(s["size"]), noisy(s["spread"] ** 2)))
        columns.update(_simple("H", window, noisy(packets), noisy(s["size"] * 1.02), noisy(s["spread"] ** 2 * 1.05)))
        columns.update(_channel("HH", window, noisy(per_channel), s, noisy, rng, sigma))
        columns.update(
            _simple("HH_jit", window, noisy(per_channel), noisy(s["jitter"]), noisy((0.5 * s["jitter"]) ** 2))
        )
        columns.update(_channel("HpHp", window, noisy(per_socket), s, noisy, rng, sigma))
    return np.stack([columns[name] for name in FEATURE_NAMES], axis=1)


def _noisy(rng: np.random.Generator, sigma: np.ndarray, value: np.ndarray) -> np.ndarray:
    """`value` with multiplicative log-normal noise of scale `sigma` (per row)."""
    return value * np.exp(rng.normal(0.0, sigma))


def _simple(
    stream: str, window: str, weight: np.ndarray, mean: np.ndarray, variance: np.ndarray
) -> dict[str, np.ndarray]:
    return {
        f"{stream}_{window}_weight": weight,
        f"{stream}_{window}_mean": mean,
        f"{stream}_{window}_variance": variance,
    }


def _channel(
    stream: str,
    window: str,
    weight: np.ndarray,
    s: dict[str, np.ndarray],
    noisy: Callable[[np.ndarray], np.ndarray],
    rng: np.random.Generator,
    sigma: np.ndarray,
) -> dict[str, np.ndarray]:
    """The seven two-way statistics of a channel: its outgoing sizes and, at OUT_IN_RATIO, the replies."""
    span = np.sqrt(1.0 + OUT_IN_RATIO**2)
    pcc = np.clip(s["rho"] + rng.normal(0.0, sigma), -1.0, 1.0)
    return {
        f"{stream}_{window}_weight": weight,
        f"{stream}_{window}_mean": noisy(s["size"]),
        f"{stream}_{window}_std": noisy(s["spread"]),
        f"{stream}_{window}_magnitude": noisy(s["size"] * span),
        f"{stream}_{window}_radius": noisy(s["spread"] * span),
        f"{stream}_{window}_covariance": s["rho"] * noisy(s["spread"] ** 2 * OUT_IN_RATIO),
        f"{stream}_{window}_pcc": pcc,
    }
