"""Readers for the real IoT data sets' CSV files, for users who have them on disk.

Each reader turns files into `telemetry` rows (`rows.py`) with deterministic ids
(data set, file path relative to the root, line number), so the held-out split
is stable however often the files are read. `limit` caps the rows read per
file: the full captures run to millions of rows.

N-BaIoT (`load_nbaiot`, traffic rows, 115 features)
    The 115 statistic columns are matched by name (`nbaiot.FEATURE_NAMES`;
    their order in the file does not matter, any other column is ignored).
    The files have no label column: the label comes from the file name.
    Two layouts are read: the original one, `<Device>/benign_traffic.csv`,
    `<Device>/mirai_attacks/<attack>.csv`, `<Device>/gafgyt_attacks/<attack>.csv`;
    and the flat one, `<n>.benign.csv`, `<n>.mirai.<attack>.csv`,
    `<n>.gafgyt.<attack>.csv` with device n = 1..9 in `nbaiot.DEVICES` order.

Edge-IIoTset (`load_edge_iiotset`, traffic rows, one feature per numeric column)
    Label from `Attack_label` (0/1), family from `Attack_type` (`Normal` =
    benign). Dropped: identifiers and free text (`EDGE_DROPPED`: time stamps,
    addresses, ports, URIs, payloads, messages) and text categories
    (`EDGE_CATEGORICAL`: their vocabularies differ between capture files, so a
    one-hot layout would not match across carts). Every other column is a
    feature, in header order; empty cells read as 0, hex cells (`0x18`) as
    their value, and a row with any other non-number is skipped. The device is
    the file's name (the merged files carry no device column).

TON_IoT weather (`load_ton_iot_weather`, weather rows)
    Columns `temperature`, `pressure`, `humidity`, `label` (0/1), `type`
    (`normal` = benign); the hour of day from `time` (`HH:MM:SS`, spaces
    allowed) or else from `ts` (Unix seconds, UTC). `date` is not used. The
    device is the file's name.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from child_cart.tasks.iot.nbaiot import DEVICES, FEATURE_NAMES
from child_cart.tasks.iot.rows import BENIGN, traffic_row, weather_row

log = logging.getLogger(__name__)

EDGE_LABEL, EDGE_TYPE = "Attack_label", "Attack_type"
EDGE_DROPPED = frozenset(
    {
        "frame.time",
        "ip.src_host",
        "ip.dst_host",
        "arp.src.proto_ipv4",
        "arp.dst.proto_ipv4",
        "http.file_data",
        "http.request.full_uri",
        "icmp.transmit_timestamp",
        "http.request.uri.query",
        "tcp.options",
        "tcp.payload",
        "tcp.srcport",
        "tcp.dstport",
        "udp.port",
        "mqtt.msg",
    }
)
EDGE_CATEGORICAL = frozenset(
    {
        "http.request.method",
        "http.referer",
        "http.request.version",
        "dns.qry.name.len",
        "mqtt.conack.flags",
        "mqtt.protoname",
        "mqtt.topic",
    }
)
_FLAT_NBAIOT = re.compile(r"^(\d+)\.(benign|mirai|gafgyt)(?:\.(\w+))?$")


class DataFormatError(ValueError):
    """A file that is not in the format its reader expects; the message names the file and the problem."""


# --- N-BaIoT -----------------------------------------------------------------------------


def load_nbaiot(root: Path, limit: int | None = None) -> list[dict]:
    """Every N-BaIoT CSV under `root` (either layout) as traffic rows."""
    rows: list[dict] = []
    for path in _csv_files(root):
        device, attack = nbaiot_origin(path, root)
        header, records = _read(path, limit)
        columns = _column_index(path, header, FEATURE_NAMES)
        prefix = f"nbaiot:{_relative(path, root)}"
        for line, record in records:
            features = _all_numbers([_number(record[i]) for i in columns])
            if features is None:
                log.debug("%s line %d: non-numeric statistic, skipped", path, line)
                continue
            rows.append(traffic_row(f"{prefix}:{line:08d}", device, features, attack, "nbaiot"))
    log.info("read %d N-BaIoT rows from %s", len(rows), root)
    return rows


def nbaiot_origin(path: Path, root: Path) -> tuple[str, str]:
    """(device, attack family or `benign`) of an N-BaIoT file, from its name and folder."""
    flat = _FLAT_NBAIOT.match(path.stem)
    if flat:
        number, botnet, attack = int(flat.group(1)), flat.group(2), flat.group(3)
        if not 1 <= number <= len(DEVICES):
            raise DataFormatError(f"{path}: device number {number} is not 1..{len(DEVICES)}")
        return DEVICES[number - 1], BENIGN if botnet == "benign" else f"{botnet}_{attack}"
    parent = path.parent.name
    if path.stem == "benign_traffic":
        return parent, BENIGN
    if parent in ("mirai_attacks", "gafgyt_attacks"):
        return path.parent.parent.name, f"{parent.split('_')[0]}_{path.stem}"
    raise DataFormatError(
        f"{_relative(path, root)}: not an N-BaIoT file name (benign_traffic.csv, <botnet>_attacks/<attack>.csv or <n>.<botnet>.<attack>.csv)"
    )


# --- Edge-IIoTset ------------------------------------------------------------------------


def load_edge_iiotset(root: Path, limit: int | None = None) -> tuple[list[dict], list[str]]:
    """Every Edge-IIoTset CSV under `root` as traffic rows, and the feature names (the same for every file)."""
    rows: list[dict] = []
    names: list[str] | None = None
    for path in _csv_files(root):
        header, records = _read(path, limit)
        features = edge_features(header)
        if names is not None and features != names:
            raise DataFormatError(f"{path}: its feature columns differ from the first file's")
        names = features
        columns = _column_index(path, header, [*features, EDGE_LABEL, EDGE_TYPE])
        rows.extend(_edge_rows(path, root, records, columns))
    log.info("read %d Edge-IIoTset rows with %d features from %s", len(rows), len(names or []), root)
    return rows, names or []


def edge_features(header: list[str]) -> list[str]:
    """The feature columns of an Edge-IIoTset header, in header order."""
    if EDGE_LABEL not in header or EDGE_TYPE not in header:
        raise DataFormatError(f"not an Edge-IIoTset header: no {EDGE_LABEL}/{EDGE_TYPE} columns")
    skipped = EDGE_DROPPED | EDGE_CATEGORICAL | {EDGE_LABEL, EDGE_TYPE}
    return [name for name in header if name not in skipped]


def _edge_rows(path: Path, root: Path, records: Iterator[tuple[int, list[str]]], columns: list[int]) -> Iterator[dict]:
    *feature_columns, label_column, type_column = columns
    prefix = f"edge-iiotset:{_relative(path, root)}"
    for line, record in records:
        features = _all_numbers([_number(record[i], empty=0.0) for i in feature_columns])
        label = _number(record[label_column])
        if features is None or label not in (0.0, 1.0):
            log.debug("%s line %d: unreadable value, skipped", path, line)
            continue
        family = record[type_column].strip()
        attack = BENIGN if label == 0.0 or family.lower() == "normal" else family
        yield traffic_row(f"{prefix}:{line:08d}", path.stem, features, attack, "edge-iiotset")


# --- TON_IoT weather ---------------------------------------------------------------------


def load_ton_iot_weather(root: Path, limit: int | None = None) -> list[dict]:
    """Every TON_IoT weather CSV under `root` as weather rows."""
    rows: list[dict] = []
    for path in _csv_files(root):
        header, records = _read(path, limit)
        columns = dict(
            zip(
                ("temperature", "pressure", "humidity", "label", "type"),
                _column_index(path, header, ["temperature", "pressure", "humidity", "label", "type"]),
            )
        )
        clock = _clock(path, header)
        prefix = f"ton-iot:{_relative(path, root)}"
        for line, record in records:
            row = _weather(record, columns, clock, f"{prefix}:{line:08d}", path.stem)
            if row is None:
                log.debug("%s line %d: unreadable value, skipped", path, line)
                continue
            rows.append(row)
    log.info("read %d TON_IoT weather rows from %s", len(rows), root)
    return rows


def _clock(path: Path, header: list[str]) -> tuple[str, int]:
    for name in ("time", "ts"):
        if name in header:
            return name, header.index(name)
    raise DataFormatError(f"{path}: no `time` or `ts` column to take the hour of day from")


def _weather(
    record: list[str], columns: dict[str, int], clock: tuple[str, int], row_id: str, device: str
) -> dict | None:
    values = _all_numbers([_number(record[columns[name]]) for name in ("temperature", "pressure", "humidity", "label")])
    hour = _hour(record[clock[1]], clock[0])
    if values is None or hour is None or values[3] not in (0.0, 1.0):
        return None
    temperature, pressure, humidity, label = values
    family = record[columns["type"]].strip().lower()
    attack = BENIGN if label == 0.0 or family == "normal" else family
    return weather_row(row_id, device, temperature, pressure, humidity, hour, attack, "ton-iot")


def _hour(text: str, kind: str) -> float | None:
    """Hour of day from `HH:MM:SS` or from Unix seconds."""
    text = text.strip()
    if kind == "ts":
        seconds = _number(text)
        return None if seconds is None else datetime.fromtimestamp(seconds, UTC).hour + 0.0
    parts = text.split(":")
    numbers = _all_numbers([_number(p) for p in parts])
    if len(parts) != 3 or numbers is None or not 0 <= numbers[0] < 24:
        return None
    hours, minutes, seconds = numbers
    return hours + minutes / 60 + seconds / 3600


# --- shared ------------------------------------------------------------------------------


def _csv_files(root: Path) -> list[Path]:
    root = Path(root)
    if root.is_file():
        return [root]
    files = sorted(p for p in root.rglob("*.csv") if p.is_file())
    if not files:
        raise DataFormatError(f"no CSV files under {root}")
    return files


def _read(path: Path, limit: int | None) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header and an iterator of (line number, cells) over at most `limit` data rows."""
    handle = path.open(newline="", encoding="utf-8", errors="replace")
    reader = csv.reader(handle)
    header = [name.strip() for name in next(reader, [])]
    if not header:
        handle.close()
        raise DataFormatError(f"{path}: empty file")

    def records() -> Iterator[tuple[int, list[str]]]:
        with handle:
            for count, record in enumerate(reader):
                if limit is not None and count >= limit:
                    return
                if len(record) == len(header):
                    yield count + 2, record
                else:
                    log.debug("%s line %d: %d cells, expected %d: skipped", path, count + 2, len(record), len(header))

    return header, records()


def _column_index(path: Path, header: list[str], names: list[str] | tuple[str, ...]) -> list[int]:
    missing = [name for name in names if name not in header]
    if missing:
        raise DataFormatError(f"{path}: missing column(s) {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    return [header.index(name) for name in names]


def _number(text: str, empty: float | None = None) -> float | None:
    """A finite float from a cell (`0x..` as hex), `empty` for a blank cell, None when it is not a number."""
    text = text.strip()
    if not text:
        return empty
    try:
        value = float(int(text, 16)) if text.lower().startswith("0x") else float(text)
    except ValueError:
        return None
    return value if np.isfinite(value) else None


def _all_numbers(values: list[float | None]) -> list[float] | None:
    """`values` when every one of them is a number, None when any is not."""
    numbers = [value for value in values if value is not None]
    return numbers if len(numbers) == len(values) else None


def _relative(path: Path, root: Path) -> str:
    root = Path(root)
    return path.name if root.is_file() else path.relative_to(root).as_posix()
