"""The bridge's HTTP side: the status page, health, Prometheus metrics, and the model store phones download from."""

from __future__ import annotations

import hashlib
import json
import os

import aiohttp
import pytest
from bridgekit import cart, certificate, get_json, seen_everywhere, until, within
from phonekit import CATEGORIES, CREATED, PROFILES, claims, tiny_tflite
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from cartnet import phone_models
from cartnet.certificates import Certificate
from cartnet.presence import now_ms
from cartnet.transfer import TransferError
from parent_cart.models import LATEST


async def publish(bridge, client, blob: bytes, version: int, **overrides) -> None:
    """Upload a signed model and wait until the bridge serves it (or let the refusal propagate)."""
    await within(client.publish_model(blob, claims(version, **overrides)), f"publishing v{version}")
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


async def test_status_page_shows_carts_links_and_the_published_model(linked):
    b1, b2 = linked
    async with cart(b1, task="recommend") as a, cart(b2, task="recommend") as b:
        await a.announce(ready=True)
        await seen_everywhere(b.node_id, b1, b2)
        await until(lambda: (m := b1.directory.member(a.node_id)) is not None and m.record.ready, "a never ready", b1)
        before = await get_bytes(f"{b1.url}/")
        await publish(b1, a, tiny_tflite(seed=3), version=3)
        status, headers, body = await get_bytes(f"{b1.url}/")
    page = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp, "no script may run on the page"
    assert "<script" not in page
    assert 'id="carts-here">1<' in page and 'id="carts-swarm">2<' in page and 'id="links">1<' in page
    own = page.split(f'data-node="{a.node_id}"', 1)[1].split("</tr>", 1)[0]
    assert "this bridge" in own and ">recommend<" in own and ">yes<" in own
    other = page.split(f'data-node="{b.node_id}"', 1)[1].split("</tr>", 1)[0]
    assert b2.node_id[:12] in other and b2.url in other and ">no<" in other
    link = page.split(f'data-bridge="{b2.node_id}"', 1)[1].split("</tr>", 1)[0]
    assert b2.url in link and '<td class="num">1</td>' in link, "b2 vouches for one cart"
    assert b"No model published yet" in before[2]
    assert "Version</th><td>3<" in page and "its round 4" in page and a.node_id[:12] in page
    assert "accuracy 0.820" in page


async def test_status_page_escapes_what_it_shows(swarm):
    hostile = 'http://127.0.0.1:9/"><script>alert(1)</script>'
    bridge = await swarm.add_bridge(public_url=hostile)
    status, _, body = await get_bytes(f"http://127.0.0.1:{bridge.port}/")
    page = body.decode()
    assert status == 200 and "No cart is known" in page and "No other bridge is linked" in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


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
    tflite = tiny_tflite()
    async with cart(bridge) as a:
        await publish(bridge, a, tflite, version=3)
    status, meta = await get_json(f"{bridge.url}/models/latest.json")
    assert status == 200
    signed = phone_models.SignedModel.from_base64(meta.pop("manifest"), meta.pop("signature"))
    cert = Certificate.model_validate(meta.pop("certificate"))
    assert meta == {
        "version": 3,
        "sha256": hashlib.sha256(tflite).hexdigest(),
        "created": CREATED,
        "accuracy": 0.82,
        "size": len(tflite),
        "task": "recommend",
        "profiles": PROFILES,
        "categories": CATEGORIES,
        "round": 4,
        "metrics": {"accuracy": 0.82, "loss": 1.25},
        "publisher": a.node_id,
        "swarm_id": bridge.membership.swarm_id,
        "input_shape": [-1, 7],
        "output_shape": [-1, 3],
    }
    swarm_key = bridge.membership.swarm.public_key
    manifest = phone_models.verify(signed, swarm_key, now_ms())
    assert manifest.certificate == cert == a.certificate and manifest.sha256 == meta["sha256"]
    status, headers, data = await get_bytes(f"{bridge.url}/models/latest")
    assert (status, data) == (200, tflite)
    assert (headers["X-Model-Version"], headers["X-Model-Sha256"]) == ("3", meta["sha256"])


async def test_newest_version_wins_and_bad_uploads_are_refused_with_a_reason(swarm):
    bridge = await swarm.add_bridge()
    async with cart(bridge) as a, cart(bridge) as b:
        await publish(bridge, a, tiny_tflite(seed=5), version=5)
        with pytest.raises(TransferError, match="not newer than the published version 5"):
            await publish(bridge, b, tiny_tflite(seed=4), version=4)
        with pytest.raises(TransferError, match="purpose 'model'"):
            await within(b.transfers.send_blob(bridge.node_id, b"x", "update"), "a non-model upload")
        for bad in ({"categories": ["x" * 65, "y", "z"]}, {"accuracy": float("nan")}, {"task": "Not A Task!"}):
            with pytest.raises(ValidationError):  # a cart does not sign what no bridge would serve
                await publish(bridge, b, tiny_tflite(seed=6), version=6, **bad)
        await publish(bridge, b, tiny_tflite(seed=6), version=6)
    _, meta = await get_json(f"{bridge.url}/models/latest.json")
    assert (meta["version"], meta["publisher"]) == (6, b.node_id)


async def test_pairing_names_this_bridge_and_the_swarm_key(swarm):
    bridge = await swarm.add_bridge()
    status, pairing = await get_json(f"{bridge.url}/pairing")
    swarm_key = bridge.membership.swarm
    assert status == 200
    assert pairing["uri"] == phone_models.pairing_uri(bridge.url, swarm_key)
    assert pairing["uri"].startswith("fedcart://pair?v=1&bridge=http%3A%2F%2F127.0.0.1%3A")
    assert (pairing["bridge"], pairing["swarm_id"]) == (bridge.url, swarm_key.swarm_id)
    status, headers, svg = await get_bytes(f"{bridge.url}/pairing.svg")
    assert status == 200 and headers["Content-Type"].startswith("image/svg+xml")
    assert svg.startswith(b'<svg xmlns="http://www.w3.org/2000/svg"'), "a document browsers draw as an image"


async def test_published_model_survives_a_crash_mid_write_and_a_restart(swarm):
    bridge = await swarm.add_bridge()
    tflite = tiny_tflite(seed=1)
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
        await publish(bridge, a, tiny_tflite(seed=2), version=2)
    models = bridge.settings.data_dir / "models"
    for model in models.glob("*.tflite"):
        model.unlink()
    bridge = await swarm.restart(bridge)
    assert (await get_json(f"{bridge.url}/models/latest.json"))[0] == 404
