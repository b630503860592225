"""Server-sent events: the EventBus's events, pushed to the admin pages as they happen.

Each open page holds one bus subscription, and one of the UI server's worker
threads for as long as it stays open, so at most `max_streams` are served at
once (UI_MAX_STREAMS, kept below UI_THREADS): one more is refused with 503 and
a JSON error (`too_many_streams`) instead of taking the threads pages need. A
comment line goes out when nothing happened for a while, so proxies keep the
connection and a closed tab is noticed (the write fails, the server closes the
body and its slot is given back). `close()` wakes every stream so a server
shutdown does not wait for them.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Generator, Iterator
from typing import Any

from child_cart.events import EventBus
from child_cart.ui.errors import ApiError

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
RETRY_AFTER_SECONDS = 30
CLOSE = {"type": "_close"}

Subscription = queue.Queue[dict[str, Any]]


class StreamsFull(ApiError):
    """Every live-update slot is taken: 503, with a message saying why and when to try again."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            503,
            "too_many_streams",
            f"this cart already serves {limit} live-update streams, the most it serves at once; "
            "close another admin tab or try again later",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


class EventStream:
    """Turns bus subscriptions into text/event-stream bodies, at most `max_streams` at once, and ends them all on close."""

    def __init__(self, bus: EventBus, heartbeat: float = HEARTBEAT_SECONDS, max_streams: int | None = None) -> None:
        self._bus = bus
        self._heartbeat = heartbeat
        self._max_streams = max_streams
        self._lock = threading.Lock()
        self._open: set[Subscription] = set()
        self._closed = False

    @property
    def open_streams(self) -> int:
        with self._lock:
            return len(self._open)

    def events(self) -> Iterator[str]:
        """One client's stream: a `ready` event, then every bus event as `event: <type>` / `data: <json>`.

        The slot is taken now (`StreamsFull` when none is left, so the response
        can still be a 503) and given back when the body ends or is closed, also
        when it was never read. After `close()` the body is empty.
        """
        with self._lock:
            if self._closed:
                return iter(())
            if self._max_streams is not None and len(self._open) >= self._max_streams:
                raise StreamsFull(self._max_streams)
            subscription = self._bus.subscribe()
            self._open.add(subscription)
        return _Body(self, subscription)

    def close(self) -> None:
        """End every open stream (server shutdown) and refuse new ones."""
        with self._lock:
            self._closed = True
            subscriptions = list(self._open)
        for subscription in subscriptions:
            _push_close(subscription)
        log.debug("closed %d event streams", len(subscriptions))

    def _release(self, subscription: Subscription) -> None:
        with self._lock:
            self._open.discard(subscription)
        self._bus.unsubscribe(subscription)

    def _messages(self, subscription: Subscription) -> Generator[str, None, None]:
        try:
            yield format_event("ready", {})
            while True:
                try:
                    event = subscription.get(timeout=self._heartbeat)
                except queue.Empty:
                    yield ": keep-alive\n\n"
                    continue
                if event is CLOSE:
                    return
                yield format_event(event["type"], event["data"])
        finally:
            self._release(subscription)


class _Body(Iterator[str]):
    """A stream's response body; `close()` (which WSGI servers call) gives its slot back even before the first read."""

    def __init__(self, owner: EventStream, subscription: Subscription) -> None:
        self._owner, self._subscription = owner, subscription
        self._messages = owner._messages(subscription)

    def __next__(self) -> str:
        return next(self._messages)

    def close(self) -> None:
        self._messages.close()
        self._owner._release(self._subscription)


def _push_close(subscription: Subscription) -> None:
    """Queue the close marker even on a full queue (the oldest event gives way, as the bus does)."""
    while True:
        try:
            subscription.put_nowait(CLOSE)
            return
        except queue.Full:
            try:
                subscription.get_nowait()
            except queue.Empty:
                continue


def format_event(kind: str, data: Any) -> str:
    """One SSE message; JSON never contains a raw newline, so `data` is one line."""
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"
