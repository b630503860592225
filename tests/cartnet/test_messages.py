"""Control messages: round trips for every type, precise errors for bad input, bounded decoding
(size and depth before parsing), and the frame boundary that contains whatever one frame raises."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from cartnet import boundary, compact, frames
from cartnet import messages as m
from cartnet.identity import Identity
from cartnet.payloads import WeightUpdate
from cartnet.peers import sign_request
from cartnet.transfer import stream_manifest

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
        requester=node_ids,
        target=node_ids,
        task=st.sampled_from(["recommend", "iot-anomaly"]),
        round=st.integers(0, 10**6),
        issued_ms=st.integers(0, 2**45),
        signature=st.binary(min_size=64, max_size=64),
    ),
    st.builds(m.UpdateDeclined, request_id=tids, reason=texts, signature=st.binary(min_size=64, max_size=64)),
    st.builds(
        m.PeersRequest,
        sample=st.none() | st.integers(1, m.MAX_SAMPLE),
        task=st.none() | st.sampled_from(["recommend", "iot-anomaly"]),
        node_id=st.none() | node_ids,
    ),
)


@given(EXAMPLES)
def test_round_trip(message):
    decoded = compact.decode(compact.encode(message))
    assert decoded == message
    if "signature" in type(message).model_fields:
        assert m.signed_bytes(decoded, b"label") == m.signed_bytes(message, b"label"), "signatures cover the same bytes"


def test_the_compact_form_halves_a_copys_control_messages():
    """Around each update copy travel a signed request and a signed manifest: names by number and ids, keys and
    signatures as bytes make each about half its JSON (a manifest 569 bytes as JSON, a request 338)."""
    sender, receiver = Identity.generate(), Identity.generate()
    request = sign_request(receiver, sender.node_id, "recommend", 12, eager=True)
    meta = WeightUpdate(request_id=request.request_id, samples=354, task="recommend", round=12, precision="int8")
    manifest = stream_manifest(sender, 1104, "update", meta.to_meta(), 1 << 20, sealed=bytes(range(32)), eager=True)
    for message in (request, manifest, m.TransferWant(transfer_id=manifest.transfer_id, missing=[0])):
        assert len(compact.encode(message)) <= 0.5 * len(message.model_dump_json()), message.type
        assert compact.decode(compact.encode(message)) == message


def test_the_names_are_the_schemas_own():
    """Both ends derive the table from the same schemas; every type, field and enum text is in it, at one byte."""
    assert set(compact.NAMES) >= m.MESSAGE_TYPES and {"certificate", "cart", "bridge", "int8"} <= set(compact.NAMES)
    assert list(compact.NAMES) == sorted(set(compact.NAMES)) and len(compact.NAMES) <= 128, "a positive fixint"


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_decode(data):
    with contextlib.suppress(m.MessageError):
        compact.decode(data)


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
        ({"type": "peers_request", "sample": 0}, "sample", "greater than or equal to 1"),
        ({"type": "peers_request", "sample": m.MAX_SAMPLE + 1}, "sample", f"less than or equal to {m.MAX_SAMPLE}"),
        ({"type": "peers_request", "sample": 3, "task": "Not A Task!"}, "task", "pattern"),
        ({"type": "peer_list", "peers": [], "total": -1}, "total", "greater than or equal to 0"),
    ],
)
def test_bad_field_is_named(payload, field, reason):
    with pytest.raises(m.MessageError) as caught:
        compact.decode(compact.dumps(payload))
    assert caught.value.field == field
    assert reason in caught.value.reason


@pytest.mark.parametrize("data", [b"", b"\xff\xfe", compact.dumps([1, 2]), compact.dumps(None), b"\x81"])
def test_not_an_object(data):
    with pytest.raises(m.MessageError, match="message"):
        compact.decode(data)


def test_oversized_message_refused_before_parsing():
    data = compact.dumps({"type": "error", "code": "x", "detail": "z" * 1000})[:-1000] + b"z" * m.MAX_CONTROL_BYTES
    with pytest.raises(m.MessageError, match="exceeds"):
        compact.decode(data)


def _largest_peer_info() -> m.PeerInfo:
    """A directory entry as large as its fields allow (longest bridge URL, longest task)."""
    record = m.PresenceRecord(
        node_id="a" * 40,
        public_key=bytes(32),
        kx_public_key=bytes(32),
        bridge_id="b" * 40,
        issued_ms=2**45,
        expires_ms=2**45,
        task="t" * 32,
        ready=True,
        signature=bytes(64),
    )
    certificate = m.Certificate(
        swarm_id="c" * 32,
        node_id="a" * 40,
        public_key=bytes(32),
        role="cart",
        not_before_ms=2**45,
        not_after_ms=2**45,
        signature=bytes(64),
    )
    card = m.CertifiedPresence(record=record, certificate=certificate)
    return m.PeerInfo.of(card, "http://" + "x" * 249)


def test_oversized_message_refused_on_encode():
    with pytest.raises(m.MessageError, match="exceeds"):
        compact.encode(m.PeerList(peers=[_largest_peer_info()] * 1000))


def test_the_largest_sample_and_roster_fit_one_message():
    """Entries carry each cart's signed presence and certificate: the bounds on samples and rosters keep them in."""
    peer = _largest_peer_info()
    assert len(compact.encode(m.PeerList(peers=[peer] * m.MAX_SAMPLE, total=10**6))) <= m.MAX_CONTROL_BYTES
    card = m.CertifiedPresence(record=peer.record, certificate=peer.certificate)
    assert len(compact.encode(m.Roster(joined=[card] * m.MAX_ROSTER_JOINED))) <= m.MAX_CONTROL_BYTES


# --- bounded decoding: nothing but MessageError / FrameError, whatever arrives ------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=40,
)
type_values = st.one_of(st.sampled_from(sorted(m.MESSAGE_TYPES)), json_values)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


def _nest(depth: int, inner: object, kinds: str) -> bytes:
    """`inner` wrapped in `depth` arrays or maps (chosen by `kinds`, cycling), in the compact form."""
    head = b"".join(b"\x91" if kinds[level % len(kinds)] == "[" else b"\x81\xa1k" for level in range(depth))
    return head + compact.dumps(inner)


@given(st.binary(max_size=600))
def test_arbitrary_frames_raise_only_frame_or_message_errors(data):
    for frame in (data, frames.CONTROL + data, frames.CHUNK + data, frames.ROUTED + data):
        with contextlib.suppress(frames.FrameError, m.MessageError):
            frames.parse(frame)
        with contextlib.suppress(frames.FrameError, m.MessageError):
            frames.parse(memoryview(frame))


@given(json_values, type_values, st.dictionaries(st.text(max_size=12), json_values, max_size=5))
def test_arbitrary_documents_raise_only_message_errors(value, kind, fields):
    for document in (value, {"type": kind, **fields}, {**fields, "type": kind}):
        with contextlib.suppress(m.MessageError):
            compact.decode(compact.dumps(document))


@given(st.integers(0, 70_000), st.sampled_from(["[", "{", "[{"]), json_values)
def test_arbitrarily_deep_documents_are_refused(depth, kinds, inner):
    data = _nest(depth, inner, kinds)
    if len(data) > m.MAX_CONTROL_BYTES:
        with pytest.raises(m.MessageError, match="exceeds"):
            compact.decode(data)
    elif depth + _depth(inner) > m.MAX_DEPTH:
        with pytest.raises(m.MessageError, match="levels deep"):
            compact.decode(data)
    else:
        with contextlib.suppress(m.MessageError):
            compact.decode(data)


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        (b"\x91" * 120_000 + b"\x90", "message", "nested more than 16 levels deep"),
        (compact.dumps({"type": ["heartbeat"], "seq": 1}), "type", "must be a string, not an array"),
        (compact.dumps({"type": {"a": 1}}), "type", "must be a string, not an object"),
        (compact.dumps({"seq": 1}), "type", "must be a string, not null"),
        (compact.dumps({"type": "heartbeat", "seq": 1.5}), "seq", "valid integer"),
        (compact.dumps({"type": "heartbeat", "seq": float("nan")}), "seq", "finite number"),
        (b"\x82\xa4type\xa3bye\xa6reason\xa1\xff", "message", "not MessagePack"),
        (compact.dumps({"type": "heartbeat", "seq": 1, "x" * 5000: 2}), "x" * 125 + "...", "Extra inputs"),
        (compact.dumps({"type": "bye"}) + b"\x00", "message", "not MessagePack: unpack(b) received extra data"),
        (compact.dumps({"type": "bye", "reason": "truncated"})[:-3], "message", "not MessagePack"),
        (b"\x81\xd4\x05\x00\x01", "message", "unknown extension 5"),
        (b"\x81\xd4\x02\xff\x01", "message", "unknown extension 2"),
        (b"\x81" + bytes([0xCC, len(compact.NAMES)]) + b"\x01", "message", "a map key must be a name"),
        (b"\x81\xc3\x01", "message", "a map key must be a name or a name's index, not True"),
        (b"\x81\x91\x01\x01", "message", "not MessagePack: unhashable type"),
        (b"\x81\xd6\xff\x00\x00\x00\x00\x01", "message", "a map key must be a name"),
    ],
    ids=[
        "deep",
        "type-list",
        "type-object",
        "no-type",
        "float-for-int",
        "nan",
        "not-utf8",
        "long-field-name",
        "extra-data",
        "truncated",
        "unknown-extension",
        "name-out-of-range",
        "key-out-of-range",
        "bool-key",
        "unhashable-key",
        "timestamp-key",
    ],
)
def test_hostile_messages_get_clear_errors(data, field, reason):
    with pytest.raises(m.MessageError) as caught:
        compact.decode(data)
    assert caught.value.field == field
    assert reason in caught.value.reason
    assert len(str(caught.value)) <= 520


def test_unknown_frame_kind_names_the_byte():
    with pytest.raises(frames.FrameError, match=r"unknown frame kind b'X' \(0x58\)"):
        frames.parse(memoryview(b"Xnonsense"))


# --- the frame boundary --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "code", "detail"),
    [
        (m.MessageError("type", "must be a string, not an array"), "bad_message", "type: must be a string"),
        (frames.FrameError("empty frame"), "bad_frame", "empty frame"),
        (RecursionError("maximum recursion depth exceeded"), "unhandled", "RecursionError: maximum recursion"),
        (TypeError("unhashable type: 'list'"), "unhandled", "TypeError: unhashable type"),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "unhandled", "UnicodeDecodeError"),
    ],
)
async def test_boundary_turns_any_exception_into_a_refusal(exc, code, detail, caplog):
    refused: list[boundary.Refusal] = []

    async def handling() -> str:
        raise exc

    async def refuse(refusal: boundary.Refusal) -> None:
        refused.append(refusal)

    assert await boundary.guard(handling(), refuse, "peer 1234") is None
    [refusal] = refused
    assert refusal.code == code and detail in refusal.detail, refusal
    assert refusal.error().code == code
    assert not [r for r in caplog.records if r.exc_info and r.levelno >= logging.INFO], "a line, not a traceback"


def test_boundary_refuses_pydantic_errors_as_bad_messages():
    with pytest.raises(ValidationError) as caught:
        m.Heartbeat(seq=-1)
    refusal = boundary.refusal_for(caught.value)
    assert refusal.code == "bad_message" and refusal.field == "seq", refusal


async def test_boundary_passes_results_through_and_survives_a_failing_reply():
    async def handling() -> str:
        return "bye"

    async def broken(_refusal: boundary.Refusal) -> None:
        raise ConnectionResetError("gone")

    async def failing() -> None:
        raise ValueError("bad")

    assert await boundary.guard(handling(), broken, "peer") == "bye"
    assert await boundary.guard(failing(), broken, "peer") is None


async def test_boundary_lets_cancellation_through():
    async def cancelled() -> None:
        raise asyncio.CancelledError

    async def refuse(_refusal: boundary.Refusal) -> None:
        pytest.fail("cancellation is not a bad frame")

    with pytest.raises(asyncio.CancelledError):
        await boundary.guard(cancelled(), refuse, "peer")
