"""One model for all phones (issue 16): two real linked bridges agree on the newest accepted model through the DHT.

A model a cart publishes to bridge 1 is served byte for byte by bridge 2 (it reads the
task's signed entry in the DHT and fetches the bytes from bridge 1), a newer one published
to bridge 2 replaces it on both, and `latest.json` names the task, version, publisher,
round, held-out metrics and creation time. Forged model entries stored over kademlia's own
UDP store RPC (an altered manifest, a bridge's certificate, a version from the future) are
refused by both bridges' storage, counted, and change nothing that is served. Of two
entries of the same version, the higher SHA-256 is kept whatever the order they arrive in.
"""

from __future__ import annotations

import json
import os
import time

from bridgekit import Swarm, cart, certificate, within
from kademlia.network import Server
from kademlia.utils import digest
from phonekit import CREATED, claims, manifest, served, tiny_tflite

from cartnet import phone_models
from cartnet.identity import Identity
from cartnet.phone_models import SignedModel
from cartnet.presence import now_ms
from parent_cart import records
from parent_cart.bridge import Bridge

KEY = records.model_key("recommend")


def _refused(bridge: Bridge, reason: str) -> float:
    return sum(
        sample.value
        for metric in bridge.metrics.registry.collect()
        for sample in metric.samples
        if sample.name == "fedcart_bridge_dht_refused_total" and sample.labels["reason"] == reason
    )


async def test_bridges_serve_the_newest_model_byte_for_byte(linked: tuple[Bridge, Bridge]) -> None:
    b1, b2 = linked
    base = int(time.time() * 1000) - 60_000
    first, second = tiny_tflite(seed=1), tiny_tflite(seed=2)
    async with cart(b1) as c1, cart(b2) as c2:
        await within(c1.publish_model(first, claims(base)), "cart 1 publishing v1 to bridge 1")
        await within(b1.models.wait_for(base), "bridge 1 serving v1")
        await within(b2.models.wait_for(base), "bridge 2 serving the v1 bridge 1 accepted")
        for bridge in (b1, b2):
            document, data = await served(bridge)
            assert data == first, f"bridge {bridge.node_id[:8]} serves other bytes"
            assert document["task"] == "recommend"
            assert document["version"] == base
            assert document["publisher"] == c1.node_id
            assert document["round"] == 4
            assert document["metrics"] == {"accuracy": 0.82, "loss": 1.25}
            assert document["accuracy"] == 0.82
            assert document["created"] == CREATED
        assert b2.agreement.adopted == 1 and b1.agreement.adopted == 0

        await within(c2.publish_model(second, claims(base + 1000)), "cart 2 publishing v2 to bridge 2")
        await within(b1.models.wait_for(base + 1000), "bridge 1 serving the v2 bridge 2 accepted")
        for bridge in (b1, b2):
            document, data = await served(bridge)
            assert (document["version"], document["publisher"], data) == (base + 1000, c2.node_id, second)


async def test_forged_model_entries_are_refused(linked: tuple[Bridge, Bridge]) -> None:
    b1, b2 = linked
    base = int(time.time() * 1000) - 60_000
    honest = tiny_tflite(seed=1)
    async with cart(b1) as c1:
        await within(c1.publish_model(honest, claims(base)), "the honest publication")
        await within(b2.models.wait_for(base), "bridge 2 serving the honest model")
        stranger = Server(node_id=os.urandom(20))
        await stranger.listen(0, "127.0.0.1")
        try:
            tflite = tiny_tflite(seed=9)
            attacker = Identity.generate()
            mine = manifest(tflite, certificate(attacker), base + 5000)
            altered = json.loads(phone_models.manifest_bytes(mine))
            altered["version"] += 1000
            altered_bytes = json.dumps(altered, sort_keys=True, separators=(",", ":")).encode()
            forged = {
                "bad_signature": SignedModel(altered_bytes, phone_models.sign(attacker, mine).signature),
                "wrong_role": phone_models.sign(
                    attacker, manifest(tflite, certificate(attacker, "bridge"), base + 5000)
                ),
                "from_future": phone_models.sign(attacker, manifest(tflite, certificate(attacker), now_ms() + 10**9)),
            }
            for reason, signed in forged.items():
                cert = phone_models.parse(signed.manifest).certificate
                value = records.encode(records.model_entry(signed, cert))
                before = _refused(b1, reason) + _refused(b2, reason)
                for bridge in (b1, b2):
                    answered, _ = await stranger.protocol.store(
                        ("127.0.0.1", bridge.dht_port), stranger.node.id, digest(KEY), value
                    )
                    assert answered, f"bridge {bridge.node_id[:8]} never answered the store of a forged entry"
                    assert bridge.dht.storage.store(digest(KEY), value) == reason
                assert _refused(b1, reason) + _refused(b2, reason) >= before + 4, reason
        finally:
            stranger.stop()
        for bridge in (b1, b2):
            believed = await bridge.dht.believed(KEY)
            assert believed is not None and believed.model is not None
            assert (believed.model.version, believed.model.publisher) == (base, c1.node_id)
            assert await bridge.agreement.sync() is None
            document, data = await served(bridge)
            assert (document["version"], data) == (base, honest)


async def test_same_version_higher_digest_wins(swarm: Swarm) -> None:
    bridge = await swarm.add_bridge()
    publisher = Identity.generate()
    cert = certificate(publisher)
    version = now_ms()
    values = []
    for seed in (1, 2):
        signed = phone_models.sign(publisher, manifest(tiny_tflite(seed=seed), cert, version))
        values.append((phone_models.parse(signed.manifest).sha256, records.encode(records.model_entry(signed, cert))))
    values.sort()
    low, high = values[0][1], values[1][1]
    storage = bridge.dht.storage
    assert storage.store(digest(KEY), high) is None
    assert storage.store(digest(KEY), low) == "stale"
    believed = storage.believed(digest(KEY))
    assert believed is not None and believed.raw == high
