"""A cart in a process of its own, for tests that kill (SIGKILL) or freeze (SIGSTOP) a real process.

Usage: python cart_process.py BRIDGE_URL DATA_DIR   (DATA_DIR enrolled as a cart: `fedcart enrol`)
Writes its node id on the first line of stdout once admitted, then one line per transfer
frame it receives; it never answers transfers, so a sender to it stays in flight.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from cartnet.certificates import load_enrolment
from cartnet.client import Backoff, BridgeClient
from cartnet.identity import Identity


async def main(url: str, data_dir: Path) -> None:
    identity = Identity.load_or_create(data_dir)
    _, cert = load_enrolment(data_dir, identity.public_key, "cart")
    client = BridgeClient(identity, url, cert, backoff=Backoff(initial=60.0, maximum=60.0))

    async def swallow(_peer: str, item: object) -> bool:
        sys.stdout.write(f"frame {type(item).__name__}\n")
        sys.stdout.flush()
        return True

    client.transfers.handle = swallow
    await client.start()
    await client.wait_connected(30)
    sys.stdout.write(f"{client.node_id}\n")
    sys.stdout.flush()
    await client.closed.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
