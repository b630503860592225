"""Seeded synthetic data for demos, tests, simulations and experiments.

shoppers.py   purchase rows: seasonal, profile-dependent, IID or label-skewed per cart
traffic.py    N-BaIoT-style device traffic with Mirai/BASHLITE attacks (iot-anomaly)
weather.py    TON_IoT-style weather telemetry with attacks (iot-intrusion)
"""
