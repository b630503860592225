"""Growing delays after wrong admin passwords, per client address.

After `free_attempts` consecutive failures a client must wait 1, 2, 4, ...
seconds (capped at `max_delay`) after its latest failure before the next
attempt is even checked. Attempts made during the wait are refused without
looking at the password, so guessing costs time rather than CPU. A correct
password clears the client's record.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_TRACKED_CLIENTS = 10_000


@dataclass
class _Failures:
    count: int
    last: float


class LoginThrottle:
    """Thread-safe failure bookkeeping; `clock` is injectable so tests need no waiting."""

    def __init__(self, free_attempts: int, max_delay: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._free = free_attempts
        self._max_delay = max_delay
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: OrderedDict[str, _Failures] = OrderedDict()

    def wait_seconds(self, client: str) -> float:
        """How long `client` must still wait before its next attempt is checked (0 = go ahead)."""
        with self._lock:
            failures = self._clients.get(client)
            if failures is None or failures.count < self._free:
                return 0.0
            delay = min(self._max_delay, 2.0 ** (failures.count - self._free))
            return max(0.0, failures.last + delay - self._clock())

    def failed(self, client: str) -> None:
        """Record a wrong password."""
        with self._lock:
            failures = self._clients.pop(client, None) or _Failures(0, 0.0)
            failures.count += 1
            failures.last = self._clock()
            self._clients[client] = failures
            while len(self._clients) > MAX_TRACKED_CLIENTS:
                self._clients.popitem(last=False)

    def succeeded(self, client: str) -> None:
        """Forget a client's failures after a correct password."""
        with self._lock:
            self._clients.pop(client, None)
