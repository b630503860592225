"""A restarted cart offers its saved model at once: its peers' next round gets its update before it trains again."""

from __future__ import annotations

import pytest

from child_cart.node import CartNode
from fedcart.inprocess import run_round

from .swarmkit import swarm

pytestmark = pytest.mark.slow
LISTED_DEADLINE = 30.0


async def test_a_restarted_cart_offers_its_saved_model_before_it_trains(tmp_path):
    async with swarm(tmp_path, bridges=1, carts=2, rows=300) as s:
        await run_round(s.nodes)  # both carts keep a model
        old = s.nodes[0]
        saved = old.models.latest(old.task.name)
        assert saved is not None
        await old.stop()

        restarted = CartNode(old.settings, store=old.store, publish=False)
        s.nodes[0] = restarted  # the swarm stops it at the end
        await restarted.start(scheduled_rounds=False)
        await restarted.client.wait_connected()
        bridge = s.bridges[0]

        def listed_ready() -> bool:
            member = bridge.directory.member(restarted.node_id)
            return member is not None and member.record.ready

        assert await bridge.directory.wait_until(listed_ready, LISTED_DEADLINE), (
            f"the restarted cart was not listed with an update ready within {LISTED_DEADLINE:.0f}s"
        )
        record = await s.nodes[1].engine.run_round()
        assert restarted.node_id in record.peers_answered, f"the restarted cart did not answer: {record.skipped}"
        assert record.samples[restarted.node_id] == saved.samples
        assert restarted.engine.trained_rows == -1, "the restarted cart trained before it was asked"
