"""The N-BaIoT feature layout: 115 damped-window statistics of a device's traffic.

Kitsune-style incremental statistics over five decay windows (lambda 5, 3, 1,
0.1, 0.01, i.e. horizons of ~0.2 s to ~100 s) for five stream aggregations:

    MI_dir  per source MAC+IP      weight, mean, variance
    H       per source IP          weight, mean, variance
    HH      per source->dest IP    weight, mean, std, magnitude, radius, covariance, pcc
    HH_jit  jitter of HH channels  weight, mean, variance
    HpHp    per source->dest socket, the seven HH statistics

Column names are the data set's own (`MI_dir_L5_weight`, ..., `HpHp_L0.01_pcc`),
stream-major, then window, then statistic: the order of its CSV files, which
the loader matches by name and the synthetic generator writes directly.
"""

from __future__ import annotations

WINDOWS = ("L5", "L3", "L1", "L0.1", "L0.01")
HORIZONS = {"L5": 0.2, "L3": 1 / 3, "L1": 1.0, "L0.1": 10.0, "L0.01": 100.0}
SIMPLE = ("weight", "mean", "variance")
CHANNEL = ("weight", "mean", "std", "magnitude", "radius", "covariance", "pcc")
STREAMS = (("MI_dir", SIMPLE), ("H", SIMPLE), ("HH", CHANNEL), ("HH_jit", SIMPLE), ("HpHp", CHANNEL))

FEATURE_NAMES: tuple[str, ...] = tuple(
    f"{stream}_{window}_{stat}" for stream, stats in STREAMS for window in WINDOWS for stat in stats
)
FEATURES = len(FEATURE_NAMES)

DEVICES = (
    "Danmini_Doorbell",
    "Ecobee_Thermostat",
    "Ennio_Doorbell",
    "Philips_B120N10_Baby_Monitor",
    "Provision_PT_737E_Security_Camera",
    "Provision_PT_838_Security_Camera",
    "Samsung_SNH_1011_N_Webcam",
    "SimpleHome_XCS7_1002_WHT_Security_Camera",
    "SimpleHome_XCS7_1003_WHT_Security_Camera",
)
# The two devices the Mirai botnet did not infect in the original captures.
NO_MIRAI = frozenset({"Ennio_Doorbell", "Samsung_SNH_1011_N_Webcam"})
GAFGYT = ("gafgyt_combo", "gafgyt_junk", "gafgyt_scan", "gafgyt_tcp", "gafgyt_udp")
MIRAI = ("mirai_ack", "mirai_scan", "mirai_syn", "mirai_udp", "mirai_udpplain")


def attacks_of(device: str) -> tuple[str, ...]:
    """Attack families captured for a device."""
    return GAFGYT if device in NO_MIRAI else GAFGYT + MIRAI
