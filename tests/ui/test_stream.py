"""The live event stream: bus events reach an open stream in order, and closing ends every stream."""

from __future__ import annotations

import json

import pytest

from child_cart.ui.context import EXTENSION
from child_cart.ui.stream import EventStream, StreamsFull, format_event

from .conftest import Api, round_record


def _parse(chunk: bytes) -> tuple[str, dict]:
    kind, data = chunk.decode().strip().split("\n")
    return kind.removeprefix("event: "), json.loads(data.removeprefix("data: "))


def test_round_published_on_the_bus_reaches_the_stream(app, admin_api: Api, bus):
    response = admin_api.client.get("/api/events", buffered=False)
    assert response.mimetype == "text/event-stream"
    chunks = iter(response.response)
    assert _parse(next(chunks)) == ("ready", {})
    record = round_record(7).model_dump(mode="json")
    bus.publish("round", record)
    bus.publish("checkout", {"rows": 2})
    assert _parse(next(chunks)) == ("round", record)
    assert _parse(next(chunks)) == ("checkout", {"rows": 2})
    app.extensions[EXTENSION].stream.close()
    assert next(chunks, None) is None
    response.close()


def test_stream_sends_keep_alive_comments_when_idle(bus):
    stream = EventStream(bus, heartbeat=0.01)
    events = stream.events()
    assert next(events).startswith("event: ready")
    assert next(events) == ": keep-alive\n\n"
    stream.close()
    assert next(events, None) is None


def test_event_data_is_one_line_even_with_newlines_in_values():
    assert format_event("round", {"reason": "line one\nline two"}).count("\n") == 3


def test_a_slot_is_given_back_when_a_body_is_closed_even_unread(bus):
    """A client that leaves before its body starts (the server then only calls close) frees its slot."""
    stream = EventStream(bus, max_streams=1)
    first = stream.events()
    with pytest.raises(StreamsFull) as full:
        stream.events()
    assert full.value.status == 503 and full.value.code == "too_many_streams"
    first.close()
    second = stream.events()
    assert next(second).startswith("event: ready")
    stream.close()
    assert next(second, None) is None
    assert stream.open_streams == 0
