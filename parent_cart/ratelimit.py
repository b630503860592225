"""Token buckets that pace one cart's sending, so a flooding cart slows only itself.

The bridge reads each cart on its own task; when a cart exceeds its budget the bridge
simply stops reading it for a while (the debt divided by the rate). TCP backpressure
then pushes the delay back into the flooding cart, and nobody else waits.
"""

from __future__ import annotations

import time


class TokenBucket:
    """`rate` tokens per second, up to `burst` saved; a rate of 0 means unlimited."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._stamp = time.monotonic()

    def charge(self, amount: float) -> float:
        """Spend `amount` tokens (going into debt if need be); returns the seconds to pause."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        self._tokens -= amount
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


class SendBudget:
    """A cart's two budgets together: frames per second and bytes per second."""

    def __init__(self, frames_per_s: float, bytes_per_s: float, max_frame: int) -> None:
        self._frames = TokenBucket(frames_per_s, max(frames_per_s, 1.0))
        self._bytes = TokenBucket(bytes_per_s, max(bytes_per_s, float(max_frame)))

    def charge(self, size: int) -> float:
        """Seconds to pause before reading this cart again."""
        return max(self._frames.charge(1), self._bytes.charge(size))
