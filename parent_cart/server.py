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
    """Serve on the event loop `settings.event_loop` names (uvloop, when it is installed, unless told asyncio)."""
    with asyncio.Runner(loop_factory=loop_factory(settings.event_loop)) as runner:
        runner.run(serve(settings, ready))


def loop_factory(kind: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when asked for and installed (bench/relay.py measures it relaying ~1.3-1.7x the frames of
    asyncio's own on this machine: its transports read and write with fewer copies), else asyncio's default."""
    if kind != "uvloop":
        return None
    try:
        import uvloop
    except ImportError:
        log.warning("EVENT_LOOP=uvloop but uvloop is not installed: serving on asyncio's own loop")
        return None
    return uvloop.new_event_loop
