"""Deal rows read from real data sets out to carts, one device per cart where possible (non-IID as in the field).

With at least as many devices as carts, cart c takes devices c, c + carts, ...
(sorted by name); with fewer, each device is shared by the carts c with
c mod devices = its index, a row going to one of them by a hash of its id.
Either way the outcome depends only on the rows, never on their order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def by_device(rows: Sequence[dict], carts: int) -> list[list[dict]]:
    """`carts` lists of rows, every row in exactly one."""
    if carts < 1:
        raise ValueError("carts must be >= 1")
    devices = sorted({str(row["device"]) for row in rows})
    index = {device: i for i, device in enumerate(devices)}
    dealt: list[list[dict]] = [[] for _ in range(carts)]
    for row in sorted(rows, key=lambda r: str(r["_id"])):
        dealt[_cart_of(index[str(row["device"])], len(devices), carts, str(row["_id"]))].append(row)
    return dealt


def _cart_of(device: int, devices: int, carts: int, row_id: str) -> int:
    if devices >= carts:
        return device % carts
    sharing = [c for c in range(carts) if c % devices == device]
    pick = int.from_bytes(hashlib.sha256(row_id.encode("utf-8")).digest()[:4], "big") % len(sharing)
    return sharing[pick]
