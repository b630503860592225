"""Signed phone models (issue 13, finding 2): one attack a row, against a real bridge and real carts.

Each row runs against a fresh enrolled bridge. Honest cart H publishes a real TFLite model
(v1) first; then attacker cart A, certified in the same swarm (so admission lets it in),
tries one way of getting something else served to phones. A row says what the bridge
must answer (the transfer's refusal reason, counted in `ModelStore.refused`), and then,
whatever the row: `/models/latest` still serves H's v1 byte for byte; H's next
publication (v2) is accepted and served, and its `latest.json` verifies against the
swarm key alone; after a bridge restart the bridge still serves v2 and still refuses
what it refused. The bytes of every served model and every document are checked with
`cartnet.phone_models.verify` / `check_model`, the same rules the phone's Java core
applies (mobile_app/core `SignedModelVerifier`).
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from bridgekit import DEADLINE, Swarm, authority, cart, certificate, get_json, within
from phonekit import claims, forged_signature, manifest, publication_meta, served, tiny_tflite

from cartnet import phone_models
from cartnet.authority import Authority, store_revocations
from cartnet.certificates import Certificate
from cartnet.client import BridgeClient
from cartnet.identity import Identity
from cartnet.payloads import ModelPublication
from cartnet.phone_models import SignedModel
from cartnet.presence import now_ms
from cartnet.transfer import TransferError, build_manifest
from parent_cart.bridge import Bridge
from parent_cart.models import LATEST

FUTURE = 9_999_999_999_999
"""The version of the original finding: the year 2286."""


class Attack(enum.Enum):
    NOT_A_MODEL = "a 57-byte blob that is not a model, honestly signed, published as the phone model"
    FUTURE_VERSION = "version 9999999999999 (a date in 2286)"
    UNSIGNED = "an unsigned upload (the old publication meta)"
    ALTERED_MANIFEST = "a manifest altered after it was signed (version raised)"
    SIGNED_BY_ANOTHER_KEY = "a manifest naming the uploader, signed by another key"
    SOMEONE_ELSES_MODEL = "cart A uploading a model manifest cart H signed"
    SWAPPED_BYTES = "bytes other than the ones the manifest's SHA-256 names"
    WRONG_TENSORS = "a real TFLite model whose tensors are not the task's (5 in, 2 out for 3 categories)"
    LYING_SHAPES = "a manifest declaring the task's shapes for a model that has others"
    FOREIGN_SWARM_CERTIFICATE = "a manifest carrying the uploader's certificate from another swarm"
    EXPIRED_CERTIFICATE = "a manifest carrying the uploader's expired certificate"
    BRIDGE_CERTIFICATE = "a manifest carrying the uploader's bridge certificate"
    REVOKED_PUBLISHER = "a publisher revoked after its model is served, and its later upload"
    POISON_ON_DISK = "an unsigned version-9999999999999 latest.json left on disk before the upgrade"


@dataclass
class World:
    swarm: Swarm
    bridge: Bridge
    honest: BridgeClient
    attacker: BridgeClient
    stack: contextlib.AsyncExitStack
    served: bytes = b""


async def upload(client: BridgeClient, bridge: Bridge, blob: bytes, meta: dict[str, str]) -> str:
    """An upload as `BridgeClient.publish_model` makes it, with whatever meta the attack wants; the refusal reason."""
    with pytest.raises(TransferError) as refused:
        await within(client.transfers.send_blob(bridge.node_id, blob, ModelPublication.purpose, meta), "an upload")
    return str(refused.value)


async def signed_upload(world: World, blob: bytes, signed: SignedModel) -> str:
    return await upload(world.attacker, world.bridge, blob, publication_meta(signed))


# --- the rows --------------------------------------------------------------------------------


async def _not_a_model(world: World) -> str:
    blob = bytes(range(57))
    fake = manifest(blob, world.attacker.certificate, now_ms(), input_shape=[-1, 7], output_shape=[-1, 3])
    return await signed_upload(world, blob, phone_models.sign(world.attacker.identity, fake))


async def _future_version(world: World) -> str:
    with pytest.raises(TransferError) as refused:
        await within(world.attacker.publish_model(tiny_tflite(seed=9), claims(FUTURE)), "a future upload")
    return str(refused.value)


async def _unsigned(world: World) -> str:
    meta = {
        "version": str(FUTURE),
        "accuracy": "0.99",
        "task": "recommend",
        "profiles": '["student","family"]',
        "categories": '["dairy","bakery","produce"]',
    }
    return await upload(world.attacker, world.bridge, tiny_tflite(seed=9), meta)


async def _altered_manifest(world: World) -> str:
    tflite = tiny_tflite(seed=9)
    signed = phone_models.sign(world.attacker.identity, manifest(tflite, world.attacker.certificate, now_ms()))
    altered = json.loads(signed.manifest)
    altered["version"] += 10**9
    data = json.dumps(altered, sort_keys=True, separators=(",", ":")).encode()
    return await signed_upload(world, tflite, SignedModel(data, signed.signature))


async def _signed_by_another_key(world: World) -> str:
    tflite = tiny_tflite(seed=9)
    data = phone_models.manifest_bytes(manifest(tflite, world.attacker.certificate, now_ms()))
    return await signed_upload(world, tflite, SignedModel(data, forged_signature(Identity.generate(), data)))


async def _someone_elses_model(world: World) -> str:
    tflite = tiny_tflite(seed=9)
    theirs = manifest(tflite, world.honest.certificate, now_ms() + 1000)
    return await signed_upload(world, tflite, phone_models.sign(world.honest.identity, theirs))


async def _swapped_bytes(world: World) -> str:
    named, sent = tiny_tflite(seed=9), tiny_tflite(seed=10)
    assert len(named) == len(sent) and named != sent
    signed = phone_models.sign(world.attacker.identity, manifest(named, world.attacker.certificate, now_ms()))
    return await signed_upload(world, sent, signed)


async def _wrong_tensors(world: World) -> str:
    tflite = tiny_tflite(5, 2, seed=9)
    return await signed_upload(
        world,
        tflite,
        phone_models.sign(world.attacker.identity, manifest(tflite, world.attacker.certificate, now_ms())),
    )


async def _lying_shapes(world: World) -> str:
    tflite = tiny_tflite(5, 3, seed=9)
    lie = manifest(tflite, world.attacker.certificate, now_ms(), input_shape=[-1, 7], output_shape=[-1, 3])
    return await signed_upload(world, tflite, phone_models.sign(world.attacker.identity, lie))


async def _with_certificate(world: World, cert: Certificate) -> str:
    tflite = tiny_tflite(seed=9)
    return await signed_upload(
        world, tflite, phone_models.sign(world.attacker.identity, manifest(tflite, cert, now_ms()))
    )


async def _foreign_swarm(world: World) -> str:
    other = Authority.create(world.swarm.root / "other-authority")
    return await _with_certificate(world, other.issue(world.attacker.identity.public_key, "cart"))


async def _expired(world: World) -> str:
    old = certificate(world.attacker.identity, days=1, now=now_ms() - 3 * 86_400_000)
    return await _with_certificate(world, old)


async def _bridge_certificate(world: World) -> str:
    return await _with_certificate(world, certificate(world.attacker.identity, "bridge"))


async def _revoked_publisher(world: World) -> str:
    """A publishes v1.5 (served), then the operator revokes A: the bridge withdraws A's model at once, refuses
    A's manifests from then on, and drops A's session."""
    tflite = tiny_tflite(seed=9)
    version = world.bridge.models.latest.version + 1
    await within(world.attacker.publish_model(tflite, claims(version)), "A's honest-looking upload")
    await within(world.bridge.models.wait_for(version), "A's model being served")
    signed = phone_models.sign(world.attacker.identity, manifest(tflite, world.attacker.certificate, version + 1))
    transfer = await build_manifest(
        world.attacker.identity, tflite, ModelPublication.purpose, publication_meta(signed), 1 << 20
    )
    revocations = authority().revoke([world.attacker.node_id])
    store_revocations(world.bridge.settings.data_dir, revocations)
    assert world.bridge.membership.reload(), "the bridge never adopted the revocation list"
    assert world.bridge.models.latest is None, "the revoked publisher's model is still served"
    assert (await get_json(f"{world.bridge.url}/models/latest.json"))[0] == 404
    await within(world.attacker.closed.wait(), "the revoked cart being dropped")
    reason = world.bridge.models.admit(world.attacker.node_id, transfer)
    assert reason is not None
    world.served = b""  # nothing is served until the next honest publication
    return reason


async def _poison_on_disk(world: World) -> str:
    """What the original finding left behind: an unsigned pointer to a 57-byte blob, version 9999999999999."""
    models = world.bridge.settings.data_dir / "models"
    blob = b"\x00" * 57
    name = f"model-v{FUTURE}-{'0' * 16}.tflite"
    (models / name).write_bytes(blob)
    legacy = {
        "version": FUTURE,
        "sha256": "0" * 64,
        "created": "2286-11-20T17:46:39+00:00",
        "accuracy": 1.0,
        "size": 57,
        "task": "recommend",
        "profiles": ["student", "family"],
        "categories": ["dairy", "bakery", "produce"],
    }
    (models / LATEST).write_text(json.dumps(legacy))
    world.bridge = await world.swarm.restart(world.bridge)
    assert world.bridge.models.latest is None
    status, body = await get_json(f"{world.bridge.url}/models/latest.json")
    assert status == 404, body
    world.served = b""
    return "ignoring unreadable or unsigned latest.json"


@dataclass(frozen=True)
class Row:
    reason: str
    """A fragment of what the bridge answers the attacker (or logs, for what was on disk)."""
    attack: Callable[[World], Awaitable[str]]
    code: str | None
    """`ModelStore.refused` code the row must move (None: nothing was uploaded)."""


ROWS: dict[Attack, Row] = {
    Attack.NOT_A_MODEL: Row("not a TFLite model LiteRT loads", _not_a_model, "not_a_model"),
    Attack.FUTURE_VERSION: Row(f"version {FUTURE} is from the future", _future_version, "future_version"),
    Attack.UNSIGNED: Row("no signed model manifest", _unsigned, "unsigned"),
    Attack.ALTERED_MANIFEST: Row("bad model signature", _altered_manifest, "bad_signature"),
    Attack.SIGNED_BY_ANOTHER_KEY: Row("bad model signature", _signed_by_another_key, "bad_signature"),
    Attack.SOMEONE_ELSES_MODEL: Row("not by uploader", _someone_elses_model, "publisher_mismatch"),
    Attack.SWAPPED_BYTES: Row("do not match the SHA-256", _swapped_bytes, "hash_mismatch"),
    Attack.WRONG_TENSORS: Row("declares 2 outputs for 3 categories", _wrong_tensors, "wrong_signature"),
    Attack.LYING_SHAPES: Row("tensors are [-1, 5] -> [-1, 3]", _lying_shapes, "wrong_signature"),
    Attack.FOREIGN_SWARM_CERTIFICATE: Row("not this swarm", _foreign_swarm, "wrong_swarm"),
    Attack.EXPIRED_CERTIFICATE: Row("certificate expired at", _expired, "expired"),
    Attack.BRIDGE_CERTIFICATE: Row("certificate is for a bridge, not a cart", _bridge_certificate, "wrong_role"),
    Attack.REVOKED_PUBLISHER: Row("is revoked", _revoked_publisher, "revoked"),
    Attack.POISON_ON_DISK: Row("ignoring unreadable or unsigned latest.json", _poison_on_disk, None),
}


@contextlib.asynccontextmanager
async def world_for(tmp_path: Path) -> AsyncIterator[World]:
    swarm = Swarm(tmp_path)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(swarm.close)
        bridge = await swarm.add_bridge()
        honest = await stack.enter_async_context(cart(bridge))
        attacker = await stack.enter_async_context(cart(bridge))
        yield World(swarm, bridge, honest, attacker, stack)


async def publish_honestly(world: World, version: int, seed: int) -> bytes:
    tflite = tiny_tflite(seed=seed)
    await world.honest.wait_connected(DEADLINE)  # again, after a row that restarted the bridge
    await within(world.honest.publish_model(tflite, claims(version)), f"H publishing v{version}")
    await within(world.bridge.models.wait_for(version), f"the bridge serving v{version}")
    world.served = tflite
    return tflite


@pytest.mark.parametrize("attack", list(Attack), ids=[a.name for a in Attack])
async def test_attack(attack: Attack, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    row = ROWS[attack]
    caplog.set_level(logging.INFO)
    base = int(time.time() * 1000) - 60_000  # versions are creation times in ms
    async with world_for(tmp_path) as world:
        first = await publish_honestly(world, base, seed=1)

        said = await row.attack(world)

        assert row.reason in said or row.reason in caplog.text, f"{attack.name}: {said}"
        if row.code is not None:
            assert world.bridge.models.refused[row.code] >= 1, dict(world.bridge.models.refused)
        if world.served:
            document, data = await served(world.bridge)
            assert (document["version"], data) == (base, first), f"{attack.name} changed what is served"
            assert document["publisher"] == world.honest.node_id
        second = await publish_honestly(world, base + 1000, seed=2)
        document, data = await served(world.bridge)
        assert (document["version"], document["publisher"], data) == (base + 1000, world.honest.node_id, second)

        world.bridge = await world.swarm.restart(world.bridge)
        document, data = await served(world.bridge)
        assert (document["version"], data) == (base + 1000, second), f"after a restart ({attack.name})"
        if attack is Attack.FUTURE_VERSION:  # the restarted bridge refuses it as well (nothing was kept of it)
            await world.honest.wait_connected(DEADLINE)
            with pytest.raises(TransferError, match="from the future"):
                await within(world.honest.publish_model(tiny_tflite(seed=3), claims(FUTURE)), "a future upload")
