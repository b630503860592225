"""Personalization with a shared body and a local head: peers get the body only, each cart keeps its own head."""

from __future__ import annotations

import numpy as np
import pytest

from child_cart.rounds.personalize import HEAD_ARRAYS, body, head
from fedcart.inprocess import run_round

from .swarmkit import swarm

pytestmark = pytest.mark.slow


async def test_carts_share_bodies_and_keep_their_own_heads(tmp_path):
    # float32: each cart averages its own exact body with its peers' packed ones, so only lossless packing
    # leaves every cart with the same average
    async with swarm(
        tmp_path, bridges=1, carts=3, rows=300, local_head=True, local_epochs=1, update_precision="float32"
    ) as s:
        records = await run_round(s.nodes)
        offered = [node.engine.exchange._reference for node in s.nodes]
        kept = [node.engine.current for node in s.nodes]
    full = len(kept[0])
    assert all(r is not None and len(r) == full - HEAD_ARRAYS for r in offered), "a cart offered more than its body"
    for record in records:
        assert len(record.peers_answered) == 2, f"{record.node_id[:8]} took no body from a peer: {record.skipped}"
        assert record.aggregated, f"{record.node_id[:8]} scored no aggregate: {record.reason}"
    merged = [weights for weights, record in zip(kept, records) if record.kept == "aggregate"]
    assert len(merged) >= 2, [r.reason for r in records]
    for a, b in zip(merged, merged[1:]):  # k = 2 of 3 carts: every cart averaged the same three bodies
        assert all(np.allclose(x, y, atol=1e-6) for x, y in zip(body(a), body(b)))
        assert not all(np.allclose(x, y) for x, y in zip(head(a), head(b))), "two carts ended with the same head"
