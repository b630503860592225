"""Identity on disk, swarm admission and end-to-end encryption."""

from __future__ import annotations

import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartnet import admission, e2e
from cartnet.authority import Authority
from cartnet.identity import KX_KEY_FILE, SIGNING_KEY_FILE, Identity, node_id_of
from cartnet.settings import NodeSettings


def test_identity_created_once_with_private_mode(tmp_path):
    first = Identity.load_or_create(tmp_path)
    again = Identity.load_or_create(tmp_path)
    assert first.node_id == again.node_id == node_id_of(first.public_key)
    assert len(bytes.fromhex(first.node_id)) == 20
    for name in (SIGNING_KEY_FILE, KX_KEY_FILE):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


BRIDGE = Identity.generate()
TOKEN = "swarm-secret-123"


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return Authority.create(tmp_path_factory.mktemp("swarm") / "authority")


def _answer(swarm: Authority, ch, identity=None, role="cart", token="", cert_role=None):
    identity = identity or Identity.generate()
    cert = swarm.issue(identity.public_key, cert_role or role)
    relay = "http://127.0.0.1:9" if role == "bridge" else ""
    return admission.answer(ch, identity, cert, role, relay, token)


@pytest.mark.parametrize(("token", "role"), [("", "cart"), (TOKEN, "cart"), ("", "bridge")])
def test_good_answer_admits(swarm: Authority, token: str, role: str) -> None:
    ch = admission.challenge(BRIDGE.node_id)
    admission.verify(_answer(swarm, ch, role=role, token=token), ch, swarm.public_key, swarm_token=token)


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda s, auth, ch: (auth.model_copy(update={"signature": bytes(64)}), ch), "bad signature"),
        (lambda s, auth, ch: (auth.model_copy(update={"node_id": "0" * 40}), ch), "node id is not the SHA-1"),
        (lambda s, auth, ch: (auth, admission.challenge(BRIDGE.node_id)), "replayed answer"),
        (lambda s, auth, ch: (auth.model_copy(update={"kx_public_key": os.urandom(32)}), ch), "bad signature"),
        (
            lambda s, auth, ch: (auth.model_copy(update={"certificate": _answer(s, ch).certificate}), ch),
            "not for this key",
        ),
        (lambda s, auth, ch: (_answer(s, ch, role="bridge", cert_role="cart"), ch), "for a cart, not a bridge"),
        (lambda s, auth, ch: (_answer(s, ch, role="cart", cert_role="bridge"), ch), "for a bridge, not a cart"),
        (lambda s, auth, ch: (_answer(s, ch, token="wrong-token-456"), ch), "wrong swarm token"),
    ],
    ids=[
        "bad signature",
        "foreign node id",
        "replayed nonce",
        "swapped kx key",
        "someone else's certificate",
        "cart certificate as a bridge",
        "bridge certificate as a cart",
        "wrong token",
    ],
)
def test_bad_answer_rejected_with_reason(swarm: Authority, tamper, reason) -> None:
    ch = admission.challenge(BRIDGE.node_id)
    auth, issued = tamper(swarm, _answer(swarm, ch, token=TOKEN), ch)
    with pytest.raises(admission.AdmissionError, match=reason):
        admission.verify(auth, issued, swarm.public_key, swarm_token=TOKEN)


def test_certificate_of_another_swarm_or_revoked_node_rejected(swarm: Authority, tmp_path) -> None:
    other = Authority.create(tmp_path / "other")
    ch = admission.challenge(BRIDGE.node_id)
    with pytest.raises(admission.AdmissionError, match="not this swarm"):
        admission.verify(_answer(other, ch), ch, swarm.public_key)
    auth = _answer(swarm, ch)
    revocations = swarm.revoke([auth.node_id])
    with pytest.raises(admission.AdmissionError, match=f"node {auth.node_id[:8]} is revoked"):
        admission.verify(auth, ch, swarm.public_key, revocations=revocations)


def test_token_is_optional_and_never_enough(swarm: Authority, tmp_path) -> None:
    """Without a token on the bridge, any token passes; with one, the certificate is still required."""
    ch = admission.challenge(BRIDGE.node_id)
    admission.verify(_answer(swarm, ch, token="whatever-the-cart-has"), ch, swarm.public_key)
    stranger = _answer(Authority.create(tmp_path / "stranger"), ch, token=TOKEN)
    with pytest.raises(admission.AdmissionError, match="not this swarm"):
        admission.verify(stranger, ch, swarm.public_key, swarm_token=TOKEN)


def test_published_token_refused_by_the_settings() -> None:
    with pytest.raises(ValueError, match="a value published with fedcart, so it keeps no one out"):
        NodeSettings(_env_file=None, swarm_token="change-me-swarm-token")
    with pytest.raises(ValueError, match="at least 8 characters"):
        NodeSettings(_env_file=None, swarm_token="short")
    assert NodeSettings(_env_file=None).swarm_token == ""


RECEIVER = Identity.generate()
SENDER = Identity.generate()


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=3 * e2e.SEGMENT // 2))
def test_seal_round_trip(data):
    sealed = e2e.seal(data, RECEIVER.kx_public_key, SENDER.node_id)
    assert len(data) < 16 or data not in sealed
    assert e2e.open_sealed(sealed, RECEIVER.kx_key, SENDER.node_id) == data


@pytest.mark.parametrize(
    "attack",
    [
        lambda c: (c, Identity.generate().kx_key, SENDER.node_id),
        lambda c: (c, RECEIVER.kx_key, Identity.generate().node_id),
        lambda c: (c[:-1], RECEIVER.kx_key, SENDER.node_id),
        lambda c: (c[: len(c) - e2e.SEGMENT // 2], RECEIVER.kx_key, SENDER.node_id),
        lambda c: (c[:100] + bytes([c[100] ^ 1]) + c[101:], RECEIVER.kx_key, SENDER.node_id),
    ],
    ids=["other receiver", "other sender", "truncated tag", "dropped last segment", "flipped bit"],
)
def test_open_refuses_tampering(attack):
    sealed = e2e.seal(os.urandom(e2e.SEGMENT + 1000), RECEIVER.kx_public_key, SENDER.node_id)
    with pytest.raises(e2e.DecryptionError):
        e2e.open_sealed(*attack(sealed))


def _stream_of(count: int) -> tuple[e2e.Sealer, list[bytes], list[bytes]]:
    sealer = e2e.Sealer(RECEIVER.kx_public_key, SENDER.node_id)
    plain = [os.urandom(1000) for _ in range(count)]
    return sealer, plain, [sealer.seal(index, count, part) for index, part in enumerate(plain)]


def test_stream_segments_open_one_by_one_in_any_arrival_order():
    sealer, plain, sealed = _stream_of(4)
    opener = e2e.Opener(RECEIVER.kx_key, sealer.ephemeral_key, SENDER.node_id)
    for index in (2, 0, 3, 1):
        assert opener.open(index, 4, sealed[index]) == plain[index]
    assert sealer.seal(1, 4, plain[1]) == sealed[1], "a resent segment is the same bytes"


@pytest.mark.parametrize(
    "attack",
    [
        lambda s, o, key: o.open(0, 4, s[1]),
        lambda s, o, key: o.open(3, 3, s[3]),
        lambda s, o, key: o.open(2, 3, s[2]),
        lambda s, o, key: o.open(0, 4, s[0][:-1]),
        lambda s, o, key: o.open(0, 4, bytes([s[0][0] ^ 1]) + s[0][1:]),
        lambda s, o, key: e2e.Opener(RECEIVER.kx_key, key, Identity.generate().node_id).open(0, 4, s[0]),
        lambda s, o, key: e2e.Opener(Identity.generate().kx_key, key, SENDER.node_id).open(0, 4, s[0]),
    ],
    ids=["moved", "count grown", "cut short: last flag", "truncated", "flipped bit", "other sender", "other receiver"],
)
def test_stream_segment_refused_when_moved_cut_altered_or_misattributed(attack):
    sealer, _, sealed = _stream_of(4)
    opener = e2e.Opener(RECEIVER.kx_key, sealer.ephemeral_key, SENDER.node_id)
    with pytest.raises(e2e.DecryptionError):
        attack(sealed, opener, sealer.ephemeral_key)
