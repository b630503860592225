"""What a cart signs about a model it publishes for phones, and the signed fixture the Android core tests against.

`phone_claims` turns an exported model version into the claims of its signed manifest
(`cartnet.phone_models`: task, swarm version, round, held-out metrics, label lists);
`BridgeClient.publish_model` signs them with the cart's key and certificate.
`signed_golden` writes, for the phone's JVM tests, the `/models/latest.json` a bridge
would serve for an export, signed by this cart (which must be enrolled), next to the
swarm key and the pairing URI a phone would be given: the Java side verifies it with
nothing but that key, as a phone does.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

from cartnet import phone_models
from cartnet.certificates import load_enrolment
from cartnet.files import write_atomic
from cartnet.identity import Identity
from cartnet.phone_models import ModelClaims, PublishedModel
from child_cart.models.versions import ModelVersion
from child_cart.tasks.base import Task

DEFAULT_PAIRING_BRIDGE = "http://10.0.2.2:8470"
"""The app's default bridge: the Android emulator's name for the developer machine."""


def swarm_version(version: ModelVersion) -> int:
    """Version numbers phones compare across the whole swarm: creation time in milliseconds.

    Each cart numbers its own versions 1, 2, 3..., so those numbers say nothing
    about which of two carts' models is newer; the creation time does. Stores keep
    times naive in UTC: read as local time they would be hours off, and a version
    ahead of a bridge's clock is refused.
    """
    return int(_utc(version.created).timestamp() * 1000)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def phone_claims(task: Task, exported: ModelVersion, round_number: int) -> ModelClaims:
    """What the cart signs about an exported version: task, swarm version, the round that accepted it, its
    held-out metrics and label lists (LiteRT reads the tensor shapes from the file when it is signed)."""
    return ModelClaims(
        task=task.name,
        version=swarm_version(exported),
        round=round_number,
        created=_utc(exported.created).isoformat(),
        accuracy=exported.metrics.get(task.primary_metric, 0.0),
        metrics={name: value for name, value in exported.metrics.items() if math.isfinite(value)},
        profiles=list(getattr(task, "profiles", [])),
        categories=list(getattr(task, "categories", [])),
    )


def signed_golden(
    data_dir: Path,
    tflite: bytes,
    claims: ModelClaims,
    bridge_url: str = DEFAULT_PAIRING_BRIDGE,
) -> dict[str, object]:
    """The phone's signed fixture for `tflite`: {swarm, pairing, latest}. CertificateError (naming `fedcart enrol`)
    when the cart in `data_dir` is not enrolled. Blocking (LiteRT reads the shapes)."""
    identity = Identity.load_or_create(data_dir)
    swarm, certificate = load_enrolment(data_dir, identity.public_key, "cart")
    signed = phone_models.sign(identity, phone_models.describe(tflite, certificate, claims))
    published = PublishedModel.of(signed, phone_models.parse(signed.manifest))
    return {
        "swarm": swarm.model_dump(mode="json"),
        "pairing": phone_models.pairing_uri(bridge_url, swarm),
        "latest": published.model_dump(mode="json"),
    }


def write_signed_golden(path: Path, fixture: dict[str, object]) -> Path:
    write_atomic(path, (json.dumps(fixture, indent=1) + "\n").encode("utf-8"))
    return path
