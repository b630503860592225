"""Federated rounds end to end: real bridges, real carts, real Keras, real TFLite."""

from __future__ import annotations

import aiohttp
import numpy as np
import pytest

from cartnet import phone_models
from cartnet.phone_models import PublishedModel
from cartnet.presence import now_ms
from fedcart.inprocess import pooled_accuracy, run_round

from .swarmkit import swarm

pytestmark = pytest.mark.slow


async def test_three_carts_beat_local_only_and_publish_for_phones(tmp_path):
    """1500 purchases per cart: ~220 held-out basket steps each, ~670 pooled (a standard error of ~1.9 points)."""
    rounds, epochs = 3, 3
    async with swarm(tmp_path, bridges=1, carts=3, rows=1500, publish=True) as s:
        for _ in range(rounds):
            records = await run_round(s.nodes)
        pooled = s.pooled
        for index, node in enumerate(s.nodes):
            federated = pooled_accuracy(node, pooled)
            alone = s.local_only_accuracy(index, rounds, epochs)
            assert federated > alone, f"cart {index}: federated {federated:.3f} did not beat local-only {alone:.3f}"
        assert any(r.accepted for r in records)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{s.bridges[0].url}/models/latest.json") as meta_response:
                assert meta_response.status == 200
                meta = await meta_response.json()
            async with session.get(f"{s.bridges[0].url}/models/latest") as model_response:
                body = await model_response.read()
        import hashlib

        assert hashlib.sha256(body).hexdigest() == meta["sha256"]
        assert meta["task"] == "recommend" and meta["categories"]
        published = PublishedModel.model_validate(meta)  # signed by the cart that published it, as phones check
        model = phone_models.verify(published.signed, s.bridges[0].membership.swarm.public_key, now_ms())
        phone_models.check_model(body, model)
        assert model.publisher in {node.node_id for node in s.nodes} and model.round < rounds
        assert model.metrics["accuracy"] == model.accuracy


async def test_exchange_crosses_bridges(tmp_path):
    async with swarm(tmp_path, bridges=2, carts=4) as s:
        records = await run_round(s.nodes)
    bridge_ids = {b.node_id for b in s.bridges}
    for record in records:
        assert len(record.peers_answered) == 3, record.skipped
        assert set(record.bridges) == bridge_ids, f"{record.node_id[:8]} only heard from {record.bridges}"
        assert record.bytes_in > 0 and record.timings["exchange"] > 0
    assert np.mean([r.aggregated["accuracy"] for r in records]) > 0
