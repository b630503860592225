"""In-process event bus: the round engine publishes, the UI's live stream subscribes.

Thread-safe, because the Flask UI serves server-sent events from worker threads
while rounds run on the node's asyncio loop. Each subscriber has a bounded queue;
a slow browser loses old events instead of slowing the publisher.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from typing import Any

SUBSCRIBER_QUEUE = 100


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: set[queue.Queue[dict[str, Any]]] = set()

    def subscribe(self) -> queue.Queue[dict[str, Any]]:
        q: queue.Queue[dict[str, Any]] = queue.Queue(SUBSCRIBER_QUEUE)
        with self._lock:
            self._subscribers.add(q)
        return q

    def unsubscribe(self, q: queue.Queue[dict[str, Any]]) -> None:
        with self._lock:
            self._subscribers.discard(q)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """Send `{"type": kind, "time": ..., "data": data}` to every subscriber, dropping the oldest on overflow."""
        event = {"type": kind, "time": time.time(), "data": data}
        with self._lock:
            subscribers = list(self._subscribers)
        for q in subscribers:
            while True:
                try:
                    q.put_nowait(event)
                    break
                except queue.Full:
                    _drop_oldest(q)


def _drop_oldest(q: queue.Queue[dict[str, Any]]) -> None:
    with contextlib.suppress(queue.Empty):
        q.get_nowait()
