"""Server-sent events: the EventBus's events, pushed to the admin pages as they happen.

Each open page holds one bus subscription. A comment line goes out when
nothing happened for a while, so proxies keep the connection and a closed tab
is noticed (the write fails and the subscription is dropped). `close()` wakes
every stream so a server shutdown does not wait for them.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Iterator
from typing import Any

from child_cart.events import EventBus

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
CLOSE = {"type": "_close"}


class EventStream:
    """Turns bus subscriptions into text/event-stream bodies and ends them all on close."""

    def __init__(self, bus: EventBus, heartbeat: float = HEARTBEAT_SECONDS) -> None:
        self._bus = bus
        self._heartbeat = heartbeat
        self._lock = threading.Lock()
        self._open: set[queue.Queue[dict[str, Any]]] = set()
        self._closed = False

    def events(self) -> Iterator[str]:
        """One client's stream: a `ready` event, then every bus event as `event: <type>` / `data: <json>`."""
        subscription = self._bus.subscribe()
        with self._lock:
            if self._closed:
                self._bus.unsubscribe(subscription)
                return
            self._open.add(subscription)
        try:
            yield format_event("ready", {})
            yield from self._relay(subscription)
        finally:
            with self._lock:
                self._open.discard(subscription)
            self._bus.unsubscribe(subscription)

    def close(self) -> None:
        """End every open stream (server shutdown) and refuse new ones."""
        with self._lock:
            self._closed = True
            subscriptions = list(self._open)
        for subscription in subscriptions:
            _push_close(subscription)
        log.debug("closed %d event streams", len(subscriptions))

    def _relay(self, subscription: queue.Queue[dict[str, Any]]) -> Iterator[str]:
        while True:
            try:
                event = subscription.get(timeout=self._heartbeat)
            except queue.Empty:
                yield ": keep-alive\n\n"
                continue
            if event is CLOSE:
                return
            yield format_event(event["type"], event["data"])


def _push_close(subscription: queue.Queue[dict[str, Any]]) -> None:
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
