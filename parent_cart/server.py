"""Run one bridge until SIGTERM or SIGINT, then shut it down gracefully (peers are told Bye)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from parent_cart.bridge import Bridge
from parent_cart.settings import BridgeSettings

log = logging.getLogger(__name__)


async def serve(settings: BridgeSettings, ready: Callable[[Bridge], None] | None = None) -> None:
    """Start a bridge, call `ready(bridge)`, and stop it cleanly on the first SIGTERM/SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    bridge = Bridge(settings)
    await bridge.start()
    try:
        if ready is not None:
            ready(bridge)
        await stop.wait()
        log.info("signal received, shutting down")
    finally:
        await bridge.stop("bridge shutting down")
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def run(settings: BridgeSettings, ready: Callable[[Bridge], None] | None = None) -> None:
    asyncio.run(serve(settings, ready))
