"""Fixtures for bridge tests; the helpers they use live in bridgekit.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bridgekit import Swarm, until

from parent_cart.bridge import Bridge


@pytest.fixture
async def swarm(tmp_path: Path) -> AsyncIterator[Swarm]:
    s = Swarm(tmp_path)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def linked(swarm: Swarm) -> tuple[Bridge, Bridge]:
    """Two bridges bootstrapped into one DHT and linked to each other."""
    b1 = await swarm.add_bridge()
    b2 = await swarm.add_bridge()
    await until(
        lambda: b2.node_id in b1.links.ids() and b1.node_id in b2.links.ids(), "the two bridges never linked", b1, b2
    )
    return b1, b2
