"""CSV loaders: small files in each real data set's own format, written here, read back as telemetry rows."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from child_cart.tasks.iot.loaders import (
    EDGE_CATEGORICAL,
    EDGE_DROPPED,
    DataFormatError,
    load_edge_iiotset,
    load_nbaiot,
    load_ton_iot_weather,
)
from child_cart.tasks.iot.nbaiot import DEVICES, FEATURE_NAMES
from child_cart.tasks.iot.rows import BENIGN, TRAFFIC, WEATHER
from child_cart.tasks.iot_anomaly import AnomalyTask
from child_cart.tasks.iot_intrusion import IntrusionTask

EDGE_HEADER = [
    "frame.time",
    "ip.src_host",
    "ip.dst_host",
    "arp.dst.proto_ipv4",
    "arp.opcode",
    "arp.hw.size",
    "arp.src.proto_ipv4",
    "icmp.checksum",
    "icmp.seq_le",
    "icmp.transmit_timestamp",
    "icmp.unused",
    "http.file_data",
    "http.content_length",
    "http.request.uri.query",
    "http.request.method",
    "http.referer",
    "http.request.full_uri",
    "http.request.version",
    "http.response",
    "http.tls_port",
    "tcp.ack",
    "tcp.ack_raw",
    "tcp.checksum",
    "tcp.connection.fin",
    "tcp.connection.rst",
    "tcp.connection.syn",
    "tcp.connection.synack",
    "tcp.dstport",
    "tcp.flags",
    "tcp.flags.ack",
    "tcp.len",
    "tcp.options",
    "tcp.payload",
    "tcp.seq",
    "tcp.srcport",
    "udp.port",
    "udp.stream",
    "udp.time_delta",
    "dns.qry.name",
    "dns.qry.name.len",
    "dns.qry.qu",
    "dns.qry.type",
    "dns.retransmission",
    "dns.retransmit_request",
    "dns.retransmit_request_in",
    "mqtt.conack.flags",
    "mqtt.conflag.cleansess",
    "mqtt.conflags",
    "mqtt.hdrflags",
    "mqtt.len",
    "mqtt.msg_decoded_as",
    "mqtt.msg",
    "mqtt.msgtype",
    "mqtt.proto_len",
    "mqtt.protoname",
    "mqtt.topic",
    "mqtt.topic_len",
    "mqtt.ver",
    "mbtcp.len",
    "mbtcp.trans_id",
    "mbtcp.unit_id",
    "Attack_label",
    "Attack_type",
]


def _write(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _stats(rng: np.random.Generator, n: int, shift: float = 0.0) -> np.ndarray:
    return rng.gamma(2.0, 10.0, size=(n, len(FEATURE_NAMES))) + shift


def test_nbaiot_both_layouts_columns_by_name_labels_from_file_names(tmp_path) -> None:
    rng = np.random.default_rng(0)
    order = list(reversed(FEATURE_NAMES)) + ["extra"]
    benign = _stats(rng, 4)

    def table(values: np.ndarray) -> list[list]:
        return [[*row[::-1], "ignored"] for row in values]

    _write(tmp_path / "Danmini_Doorbell" / "benign_traffic.csv", order, table(benign))
    _write(tmp_path / "Danmini_Doorbell" / "mirai_attacks" / "ack.csv", order, table(_stats(rng, 3, 500)))
    _write(tmp_path / "Danmini_Doorbell" / "gafgyt_attacks" / "combo.csv", order, table(_stats(rng, 2, 300)))
    _write(tmp_path / "flat" / "3.benign.csv", list(FEATURE_NAMES), [list(r) for r in _stats(rng, 2)])
    _write(
        tmp_path / "flat" / "3.gafgyt.junk.csv", list(FEATURE_NAMES), [list(r) for r in _stats(rng, 2)] + [["x"] * 115]
    )
    rows = load_nbaiot(tmp_path)
    assert len(rows) == 4 + 3 + 2 + 2 + 2
    by_file = {}
    for row in rows:
        by_file.setdefault(row["_id"].rsplit(":", 1)[0], []).append(row)
    assert {r["attack"] for r in by_file["nbaiot:Danmini_Doorbell/mirai_attacks/ack.csv"]} == {"mirai_ack"}
    assert {r["attack"] for r in by_file["nbaiot:Danmini_Doorbell/gafgyt_attacks/combo.csv"]} == {"gafgyt_combo"}
    assert {(r["device"], r["attack"]) for r in by_file["nbaiot:flat/3.gafgyt.junk.csv"]} == {
        (DEVICES[2], "gafgyt_junk")
    }
    first = by_file["nbaiot:Danmini_Doorbell/benign_traffic.csv"]
    np.testing.assert_allclose([r["features"] for r in first], benign)
    assert all(r["label"] == 0 and r["attack"] == BENIGN and r["schema"] == TRAFFIC for r in first)
    assert load_nbaiot(tmp_path) == rows
    dataset = AnomalyTask(layers=(8,)).make_dataset(rows)
    assert len(dataset.x_train) + len(dataset.x_val) + len(dataset.x_calib) > 0


def test_nbaiot_refuses_unknown_files_and_missing_columns(tmp_path) -> None:
    _write(tmp_path / "a" / "notes.csv", list(FEATURE_NAMES), [])
    with pytest.raises(DataFormatError, match="not an N-BaIoT file name"):
        load_nbaiot(tmp_path / "a")
    _write(tmp_path / "b" / "1.benign.csv", list(FEATURE_NAMES[:-1]), [])
    with pytest.raises(DataFormatError, match="missing column"):
        load_nbaiot(tmp_path / "b")
    with pytest.raises(DataFormatError, match="no CSV files"):
        load_nbaiot(tmp_path / "empty-folder-that-is-not-there")


def test_edge_iiotset_keeps_numeric_columns_and_drops_identifiers_and_text(tmp_path) -> None:
    def record(label: int, kind: str, flags: str = "0x00000018", length: str = "0") -> list[str]:
        values = dict.fromkeys(EDGE_HEADER, "0")
        values.update(
            {
                "frame.time": "2021 11:44:10.081753000",
                "ip.src_host": "192.168.0.128",
                "ip.dst_host": "192.168.0.101",
                "http.request.method": "GET",
                "mqtt.topic": "Temperature_and_Humidity",
                "tcp.payload": "0a:1b",
                "tcp.flags": flags,
                "tcp.len": length,
                "mqtt.msg": "",
                "Attack_label": str(label),
                "Attack_type": kind,
            }
        )
        return [values[name] for name in EDGE_HEADER]

    _write(
        tmp_path / "DNN-EdgeIIoT-dataset.csv",
        EDGE_HEADER,
        [
            record(0, "Normal", length="12"),
            record(1, "DDoS_UDP"),
            record(1, "Backdoor", length=""),
            record(1, "SQL_injection", length="lots"),
        ],
    )
    rows, names = load_edge_iiotset(tmp_path)
    assert not set(names) & (EDGE_DROPPED | EDGE_CATEGORICAL | {"Attack_label", "Attack_type"})
    assert names == [n for n in EDGE_HEADER if n in names] and "tcp.flags" in names and "mqtt.len" in names
    assert len(rows) == 3, "the row with a non-number is skipped"
    assert [r["attack"] for r in rows] == [BENIGN, "DDoS_UDP", "Backdoor"]
    assert [r["label"] for r in rows] == [0, 1, 1]
    assert all(len(r["features"]) == len(names) and r["device"] == "DNN-EdgeIIoT-dataset" for r in rows)
    assert rows[0]["features"][names.index("tcp.flags")] == 24.0
    assert rows[0]["features"][names.index("tcp.len")] == 12.0 and rows[2]["features"][names.index("tcp.len")] == 0.0
    dataset = AnomalyTask(features=len(names), layers=(8,)).make_dataset(rows)
    assert dataset.x_val.shape[1] == len(names)


def test_ton_iot_weather_with_a_time_column_or_unix_seconds(tmp_path) -> None:
    _write(
        tmp_path / "Train_Test_IoT_Weather.csv",
        ["date", "time", "temperature", "pressure", "humidity", "label", "type"],
        [
            ["31-Mar-19", "  12:36:52 ", "31.788", "1.035", "32.572", "0", "normal"],
            ["31-Mar-19", " 23:30:00 ", "40.1", "1.035", "10.0", "1", "injection"],
            ["31-Mar-19", "25:00:00", "1", "1", "1", "0", "normal"],
        ],
    )
    _write(
        tmp_path / "raw" / "IoT_Weather.csv",
        ["ts", "date", "time2", "temperature", "pressure", "humidity", "label", "type"],
        [
            ["1554198358", "2-Apr-19", "x", "20.0", "1.0", "55.0", "1", "ddos"],
        ],
    )
    rows = load_ton_iot_weather(tmp_path)
    assert len(rows) == 3
    first, second, raw = rows
    assert (first["hour"], first["label"], first["attack"]) == (pytest.approx(12 + 36 / 60 + 52 / 3600), 0, BENIGN)
    assert (second["attack"], second["temperature"]) == ("injection", 40.1)
    assert (raw["hour"], raw["attack"], raw["device"], raw["schema"]) == (9.0, "ddos", "IoT_Weather", WEATHER)
    dataset = IntrusionTask().make_dataset(rows)
    assert np.concatenate([dataset.x_train, dataset.x_val]).shape == (3, 5)
    _write(tmp_path / "bad" / "w.csv", ["date", "temperature", "pressure", "humidity", "label", "type"], [])
    with pytest.raises(DataFormatError, match="hour of day"):
        load_ton_iot_weather(tmp_path / "bad")


def test_limit_caps_rows_per_file(tmp_path) -> None:
    _write(tmp_path / "1.benign.csv", list(FEATURE_NAMES), [list(r) for r in _stats(np.random.default_rng(1), 10)])
    assert len(load_nbaiot(tmp_path, limit=4)) == 4
