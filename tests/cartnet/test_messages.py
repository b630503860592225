"""Control messages: round trips for every type, and precise errors for bad input."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cartnet import messages as m

node_ids = st.text("0123456789abcdef", min_size=40, max_size=40)
tids = st.text("0123456789abcdef", min_size=32, max_size=32)
texts = st.text(max_size=200)

EXAMPLES = st.one_of(
    st.builds(m.Challenge, nonce=st.binary(min_size=32, max_size=32), bridge_id=node_ids),
    st.builds(m.Heartbeat, seq=st.integers(0, 2**40)),
    st.builds(m.Error, code=st.text(max_size=20), detail=texts, field=st.text(max_size=20)),
    st.builds(m.Undeliverable, to=node_ids, reason=texts),
    st.builds(m.TransferWant, transfer_id=tids, missing=st.lists(st.integers(0, 5000), max_size=50)),
    st.builds(m.TransferDone, transfer_id=tids, ok=st.booleans(), reason=texts),
    st.builds(
        m.UpdateRequest,
        request_id=tids,
        task=st.sampled_from(["recommend", "iot-anomaly"]),
        round=st.integers(0, 10**6),
    ),
)


@given(EXAMPLES)
def test_round_trip(message):
    assert m.decode(m.encode(message)) == message


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_decode(data):
    with contextlib.suppress(m.MessageError):
        m.decode(data)


@pytest.mark.parametrize(
    ("payload", "field", "reason"),
    [
        ({"type": "teleport"}, "type", "unknown message type"),
        ({"type": "heartbeat"}, "seq", "Field required"),
        ({"type": "heartbeat", "seq": "soon"}, "seq", "valid integer"),
        ({"type": "heartbeat", "seq": -1}, "seq", "greater than or equal"),
        ({"type": "heartbeat", "seq": 1, "extra": 2}, "extra", "Extra inputs"),
        ({"type": "challenge", "nonce": "!!", "bridge_id": "a" * 40}, "nonce", "base64"),
        ({"type": "challenge", "nonce": "AAAA", "bridge_id": "a" * 40}, "nonce", "at least 32"),
        ({"type": "undeliverable", "to": "not-hex", "reason": ""}, "to", "pattern"),
    ],
)
def test_bad_field_is_named(payload, field, reason):
    with pytest.raises(m.MessageError) as caught:
        m.decode(json.dumps(payload))
    assert caught.value.field == field
    assert reason in caught.value.reason


@pytest.mark.parametrize("data", [b"", b"\xff\xfe", b"[1,2]", b"null", b"{"])
def test_not_a_json_object(data):
    with pytest.raises(m.MessageError, match="message"):
        m.decode(data)


def test_oversized_message_refused_before_parsing():
    data = b'{"type":"error","code":"x","detail":"' + b"a" * m.MAX_CONTROL_BYTES + b'"}'
    with pytest.raises(m.MessageError, match="exceeds"):
        m.decode(data)


def test_oversized_message_refused_on_encode():
    with pytest.raises(m.MessageError, match="exceeds"):
        peer = m.PeerInfo(
            node_id="a" * 40,
            bridge_id="b" * 40,
            bridge_url="http://x" * 30,
            kx_public_key=bytes(32),
            public_key=bytes(32),
        )
        m.encode(m.PeerList(peers=[peer] * 1000))
