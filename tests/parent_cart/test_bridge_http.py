"""The bridge's HTTP side: health, Prometheus metrics, and the model store phones download from."""

from __future__ import annotations

import hashlib
import json
import os

import aiohttp
import pytest
from bridgekit import cart, certificate, get_json, seen_everywhere, within
from prometheus_client.parser import text_string_to_metric_families

from cartnet.transfer import TransferError
from parent_cart.models import LATEST

MODEL_META = {
    "accuracy": 0.82,
    "task": "recommend",
    "created": "2026-11-23T10:00:00+00:00",
    "profiles": ["student", "family"],
    "categories": ["dairy", "bakery", "produce"],
}


async def publish(bridge, client, blob: bytes, version: int, **overrides) -> None:
    """Upload a model and wait until the bridge serves it (or let the refusal propagate)."""
    await within(client.publish_model(blob, version=version, **{**MODEL_META, **overrides}), f"publishing v{version}")
    await within(bridge.models.wait_for(version), f"the bridge serving v{version}")


async def get_bytes(url: str) -> tuple[int, dict, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, dict(response.headers), await response.read()


async def test_health_and_metrics_parse_as_prometheus_text(linked):
    b1, b2 = linked
    async with cart(b1) as a, cart(b2) as b:
        await seen_everywhere(b.node_id, b1, b2)
        await a.transfers.send_blob(b.node_id, os.urandom(3 << 20), "update")
        status, health = await get_json(f"{b1.url}/health")
        async with aiohttp.ClientSession() as session, session.get(f"{b1.url}/metrics") as response:
            content_type, text = response.headers["Content-Type"], await response.text()
    assert status == 200 and health["status"] == "ok" and health["bridge_id"] == b1.node_id
    assert (health["carts"], health["swarm_carts"], health["bridges_linked"]) == (1, 2, 1)
    assert content_type.startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    assert samples[("fedcart_bridge_carts_connected", ())] == 1
    assert samples[("fedcart_bridge_links", ())] == 1
    assert samples[("fedcart_bridge_frames_relayed_total", (("path", "link_out"),))] >= 3
    assert samples[("fedcart_bridge_bytes_relayed_total", (("path", "link_out"),))] >= 3 << 20
    assert ("fedcart_bridge_transfers_in_flight", ()) in samples


async def test_rejects_are_counted_by_reason(swarm):
    from cartnet.client import BridgeClient
    from cartnet.handshake import AdmissionRefused
    from cartnet.identity import Identity

    bridge = await swarm.add_bridge()
    identity = Identity.generate()
    expired = certificate(identity, days=1, now=1_000_000_000_000)
    client = BridgeClient(identity, bridge.url, expired)
    await client.start()
    with pytest.raises(AdmissionRefused, match="certificate expired"):
        await client.wait_connected(10)
    await client.close()
    assert bridge.metrics.registry.get_sample_value("fedcart_bridge_rejects_total", {"reason": "expired"}) == 1


async def test_model_404_then_publish_then_download(swarm):
    bridge = await swarm.add_bridge()
    status, body = await get_json(f"{bridge.url}/models/latest.json")
    assert (status, body) == (404, {"error": "no model published yet"})
    assert (await get_bytes(f"{bridge.url}/models/latest"))[0] == 404
    tflite = os.urandom(300_000)
    async with cart(bridge) as a:
        await publish(bridge, a, tflite, version=3)
    status, meta = await get_json(f"{bridge.url}/models/latest.json")
    assert status == 200
    assert meta == {
        "version": 3,
        "sha256": hashlib.sha256(tflite).hexdigest(),
        "created": MODEL_META["created"],
        "accuracy": 0.82,
        "size": len(tflite),
        "task": "recommend",
        "profiles": MODEL_META["profiles"],
        "categories": MODEL_META["categories"],
    }
    status, headers, data = await get_bytes(f"{bridge.url}/models/latest")
    assert (status, data) == (200, tflite)
    assert (headers["X-Model-Version"], headers["X-Model-Sha256"]) == ("3", meta["sha256"])


async def test_newest_version_wins_and_bad_uploads_are_refused_with_a_reason(swarm):
    bridge = await swarm.add_bridge()
    async with cart(bridge) as a, cart(bridge) as b:
        await publish(bridge, a, b"v5" * 1000, version=5)
        with pytest.raises(TransferError, match="not newer than the published version 5"):
            await publish(bridge, b, b"v4" * 1000, version=4)
        with pytest.raises(TransferError, match="categories"):
            await publish(bridge, b, b"v6" * 1000, version=6, categories=["x" * 65])
        with pytest.raises(TransferError, match="accuracy"):
            await publish(bridge, b, b"v6" * 1000, version=6, accuracy=float("nan"))
        with pytest.raises(TransferError, match="task"):
            await publish(bridge, b, b"v6" * 1000, version=6, task="Not A Task!")
        with pytest.raises(TransferError, match="purpose 'model'"):
            await within(b.transfers.send_blob(bridge.node_id, b"x", "update"), "a non-model upload")
        await publish(bridge, b, b"v6" * 1000, version=6)
    _, meta = await get_json(f"{bridge.url}/models/latest.json")
    assert meta["version"] == 6


async def test_published_model_survives_a_crash_mid_write_and_a_restart(swarm):
    bridge = await swarm.add_bridge()
    tflite = os.urandom(50_000)
    async with cart(bridge) as a:
        await publish(bridge, a, tflite, version=1)
    models = bridge.settings.data_dir / "models"
    assert sorted(p.name for p in models.iterdir() if p.name.startswith(".")) == []
    (models / ".model-v2-0123456789abcdef.tflite.tmp").write_bytes(b"half a mod")
    bridge = await swarm.restart(bridge)
    status, _, data = await get_bytes(f"{bridge.url}/models/latest")
    assert (status, data) == (200, tflite)
    assert json.loads((models / LATEST).read_text())["version"] == 1


async def test_a_pointer_to_a_missing_model_serves_404_not_garbage(swarm):
    bridge = await swarm.add_bridge()
    async with cart(bridge) as a:
        await publish(bridge, a, os.urandom(10_000), version=2)
    models = bridge.settings.data_dir / "models"
    for model in models.glob("*.tflite"):
        model.unlink()
    bridge = await swarm.restart(bridge)
    assert (await get_json(f"{bridge.url}/models/latest.json"))[0] == 404
