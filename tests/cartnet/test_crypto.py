"""Identity on disk, swarm admission and end-to-end encryption."""

from __future__ import annotations

import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartnet import admission, e2e
from cartnet.identity import KX_KEY_FILE, SIGNING_KEY_FILE, Identity, node_id_of


def test_identity_created_once_with_private_mode(tmp_path):
    first = Identity.load_or_create(tmp_path)
    again = Identity.load_or_create(tmp_path)
    assert first.node_id == again.node_id == node_id_of(first.public_key)
    assert len(bytes.fromhex(first.node_id)) == 20
    for name in (SIGNING_KEY_FILE, KX_KEY_FILE):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


BRIDGE = Identity.generate()
TOKEN = "swarm-secret-123"


def test_good_answer_admits():
    ch = admission.challenge(BRIDGE.node_id)
    admission.verify(admission.answer(ch, Identity.generate(), TOKEN), ch, TOKEN)


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda auth, ch: (admission.answer(ch, Identity.generate(), "wrong-token-456"), ch), "wrong swarm token"),
        (lambda auth, ch: (auth.model_copy(update={"signature": bytes(64)}), ch), "bad signature"),
        (lambda auth, ch: (auth.model_copy(update={"node_id": "0" * 40}), ch), "node id is not the SHA-1"),
        (lambda auth, ch: (auth, admission.challenge(BRIDGE.node_id)), "replayed answer"),
        (lambda auth, ch: (auth.model_copy(update={"kx_public_key": os.urandom(32)}), ch), "bad signature"),
    ],
    ids=["wrong token", "bad signature", "foreign node id", "replayed nonce", "swapped kx key"],
)
def test_bad_answer_rejected_with_reason(tamper, reason):
    ch = admission.challenge(BRIDGE.node_id)
    auth, issued = tamper(admission.answer(ch, Identity.generate(), TOKEN), ch)
    with pytest.raises(admission.AdmissionError, match=reason):
        admission.verify(auth, issued, TOKEN)


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
