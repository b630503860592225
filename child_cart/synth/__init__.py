"""Seeded synthetic data for demos, tests, simulations and experiments.

shoppers.py   purchase rows: baskets that follow shopping missions, seasonal, profile-dependent,
              IID or non-IID per cart (profile and mission mixes); the exact Bayes ceiling
traffic.py    N-BaIoT-style device traffic with Mirai/BASHLITE attacks (iot-anomaly)
weather.py    TON_IoT-style weather telemetry with attacks (iot-intrusion)
"""
