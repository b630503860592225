"""Signed phone-model manifests: the bytes a cart signs, every reason a verifier refuses them, the pairing URI."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from cartnet import phone_models
from cartnet.authority import Authority
from cartnet.identity import Identity
from cartnet.phone_models import ModelClaims, ModelRefused, PublishedModel, SignedModel
from cartnet.presence import now_ms

NOW = now_ms()
CLAIMS = ModelClaims(
    task="recommend",
    version=NOW - 1000,
    round=7,
    created="2026-11-23T10:00:00+00:00",
    accuracy=0.5,
    metrics={"accuracy": 0.5, "recall_at_5": 0.9},
    profiles=["student", "family"],
    categories=["dairy", "bakery", "produce"],
    input_shape=[-1, 7],
    output_shape=[-1, 3],
)
BLOB = b"tflite bytes stand-in"


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return Authority.create(tmp_path_factory.mktemp("phone") / "authority")


@pytest.fixture(scope="module")
def cart(authority: Authority) -> tuple[Identity, phone_models.Certificate]:
    identity = Identity.generate()
    return identity, authority.issue(identity.public_key, "cart", now=NOW)  # NOW is fixed at import, long before


def signed(cart: tuple[Identity, phone_models.Certificate], **changes: object) -> SignedModel:
    identity, cert = cart
    claims = ModelClaims(**{**CLAIMS.__dict__, **changes})
    return phone_models.sign(identity, phone_models.describe(BLOB, cert, claims))


def test_the_signed_bytes_are_canonical_json_and_verify_against_the_swarm_key_alone(authority, cart) -> None:
    model = signed(cart)
    document = json.loads(model.manifest)
    assert model.manifest == json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    assert document["type"] == "phone_model" and document["publisher"] == cart[0].node_id
    assert document["certificate"]["node_id"] == cart[0].node_id and document["round"] == 7
    manifest = phone_models.verify(model, authority.public_key, NOW, publisher=cart[0].node_id)
    assert manifest.sha256 == phone_models.sha256_hex(BLOB) and manifest.size == len(BLOB)


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        (lambda m: SignedModel(m.manifest.replace(b'"round":7', b'"round":8'), m.signature), "bad_signature"),
        (lambda m: SignedModel(m.manifest, bytes(64)), "bad_signature"),
        (lambda m: SignedModel(m.manifest.replace(b",", b", ", 1), m.signature), "not_canonical"),
        (lambda m: SignedModel(b"{" + m.manifest, m.signature), "malformed"),
        (lambda m: SignedModel(b" " * (phone_models.MAX_MANIFEST_BYTES + 1), m.signature), "malformed"),
    ],
    ids=["altered", "zero signature", "not canonical", "not json", "oversized"],
)
def test_a_tampered_manifest_is_refused_with_its_reason(authority, cart, tamper, code) -> None:
    with pytest.raises(ModelRefused) as refused:
        phone_models.verify(tamper(signed(cart)), authority.public_key, NOW)
    assert refused.value.code == code


def test_version_skew_other_swarms_other_uploaders_and_expiry_are_refused(authority, cart, tmp_path: Path) -> None:
    future = signed(cart, version=NOW + phone_models.DEFAULT_MAX_SKEW_MS + 1)
    with pytest.raises(ModelRefused, match="from the future") as refused:
        phone_models.verify(future, authority.public_key, NOW)
    assert refused.value.code == "future_version"
    phone_models.verify(signed(cart, version=NOW + 1000), authority.public_key, NOW)  # a little skew is fine
    other = Authority.create(tmp_path / "other")
    assert _code(signed(cart), other.public_key, NOW) == "wrong_swarm"
    assert _code(signed(cart), authority.public_key, NOW, publisher="0" * 40) == "publisher_mismatch"
    expiry = cart[1].not_after_ms
    assert _code(signed(cart), authority.public_key, expiry + 1) == "expired"
    revoked = authority.revoke([cart[0].node_id])
    assert _code(signed(cart), authority.public_key, NOW, revocations=revoked) == "revoked"


def _code(model: SignedModel, key: bytes, now: int, **options: object) -> str:
    with pytest.raises(ModelRefused) as refused:
        phone_models.verify(model, key, now, **options)
    return refused.value.code


def test_a_cart_signs_only_its_own_certificate(authority, cart) -> None:
    someone = Identity.generate()
    with pytest.raises(ValueError, match="naming itself"):
        phone_models.sign(someone, phone_models.describe(BLOB, cart[1], CLAIMS))


def test_the_published_document_repeats_the_manifest_and_refuses_to_differ(cart) -> None:
    model = signed(cart)
    manifest = phone_models.parse(model.manifest)
    document = PublishedModel.of(model, manifest).model_dump(mode="json")
    assert PublishedModel.model_validate(document).signed == model
    assert document["certificate"] == manifest.certificate.model_dump(mode="json")
    with pytest.raises(ValueError, match="differ from the signed manifest"):
        PublishedModel.model_validate({**document, "version": document["version"] + 1})


def test_the_pairing_uri_holds_the_bridge_and_the_swarm_key(authority) -> None:
    uri = phone_models.pairing_uri("http://192.168.1.20:8470/", authority.swarm)
    parts = urlsplit(uri)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert (parts.scheme, parts.netloc) == ("fedcart", "pair")
    assert query["v"] == "1" and query["bridge"] == "http://192.168.1.20:8470"
    assert base64.urlsafe_b64decode(query["key"] + "=") == authority.public_key
    assert query["swarm"] == authority.swarm.swarm_id
    with pytest.raises(ValueError, match="http"):
        phone_models.pairing_uri("ws://bridge:8470", authority.swarm)
