"""The request-header deadline aiohttp's server lacks: a new connection must send complete headers in time.

aiohttp bounds idle keep-alive connections itself (`keepalive_timeout`, the
bridge's HTTP_IDLE_TIMEOUT): its timer starts when a connection opens and again
after every response, and bytes that trickle in meanwhile do not push it back,
so a request sent a byte at a time still ends when the idle time is up. What it
has no setting for is a shorter deadline for the headers of a request (Go's
ReadHeaderTimeout, the usual answer to slowloris): half-sent upgrade requests
would each hold a socket for the whole idle time.

`HeaderDeadline` adds it without touching aiohttp's internals: it makes the
protocol objects for the bridge's listening socket (each one aiohttp's own
`RequestHandler`, made by the runner's `web.Server`), arms a timer for each new
connection, and closes the connection when the timer fires unless one of its
requests has reached the application by then (`middleware` runs as soon as
aiohttp has parsed a request's headers). Later requests on a kept-alive
connection are bounded by the idle timeout, as above.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from prometheus_client import Counter

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HeaderDeadline:
    """Closes every connection whose first request's headers are not complete `timeout` seconds after it opened."""

    def __init__(self, timeout: float, expired: Counter | None = None) -> None:
        self.timeout = timeout
        self._expired = expired
        self._timers: dict[RequestHandler, asyncio.TimerHandle] = {}

    @property
    def waiting(self) -> int:
        """Connections whose first request's headers have not arrived yet (or that closed since, until their timer)."""
        return len(self._timers)

    def protocols(self, server: web.Server) -> Callable[[], RequestHandler]:
        """A protocol factory for `loop.create_server`: `server`'s request handlers, each with its deadline armed."""
        loop = asyncio.get_running_loop()

        def make() -> RequestHandler:
            handler = server()
            self._timers[handler] = loop.call_later(self.timeout, self._expire, handler)
            return handler

        return make

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Headers parsed: the connection met its deadline."""
        protocol = request.protocol
        if isinstance(protocol, RequestHandler):
            timer = self._timers.pop(protocol, None)
            if timer is not None:
                timer.cancel()
        return await handler(request)

    def cancel(self) -> None:
        """Disarm every timer (the server is shutting down and closes the connections itself)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _expire(self, handler: RequestHandler) -> None:
        self._timers.pop(handler, None)
        if handler.transport is None:  # gone already
            return
        peer = handler.transport.get_extra_info("peername")
        log.info("closing connection from %s: no complete request headers within %gs", peer, self.timeout)
        if self._expired is not None:
            self._expired.inc()
        handler.force_close()
