"""The frame boundary: whatever handling one frame raises is that frame's refusal, never the session's end.

Every place that reads frames off the network (the bridge's cart sessions, its gate and
its links, the cart's BridgeClient) hands the handling of each frame to `guard`. If the
handling raises, `guard` turns the exception into a `Refusal` (a small fixed code for
metrics, a clear bounded text for the peer and the log), logs one line without a
traceback, and lets the caller answer and count it; the session then reads on.

Expected faults (a malformed frame or message) and anything else a hostile frame might
shake loose (TypeError, RecursionError, a pydantic error, ...) take the same path; only
cancellation and interpreter exits pass through. The traceback of an unexpected
exception is still logged, at DEBUG (`--verbose`), for whoever debugs the handler.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from pydantic import ValidationError

from cartnet.frames import FrameError
from cartnet.messages import Error, MessageError

log = logging.getLogger(__name__)

T = TypeVar("T")

BAD_MESSAGE = "bad_message"
"""A control message that is not valid JSON, too big, too deep, of no known type or with a bad field."""
BAD_FRAME = "bad_frame"
"""A frame that does not follow the binary layout (empty, unknown kind, truncated header)."""
UNHANDLED = "unhandled"
"""The frame parsed, but handling it raised: a bug the frame exposed, refused like a bad frame."""


@dataclass(frozen=True)
class Refusal:
    """Why one frame was refused: `code` is one of a few fixed labels, `detail` is for people."""

    code: str
    detail: str
    field: str = ""

    def error(self) -> Error:
        """The Error reply that tells the sender."""
        return Error(code=self.code, detail=self.detail[:512], field=self.field[:128])

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


def refusal_for(exc: Exception) -> Refusal:
    """What a frame whose handling raised `exc` earns."""
    if isinstance(exc, MessageError):
        return Refusal(BAD_MESSAGE, str(exc), exc.field)
    if isinstance(exc, FrameError):
        return Refusal(BAD_FRAME, str(exc))
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(part) for part in first["loc"])[:128]
        return Refusal(BAD_MESSAGE, f"{field or exc.title}: {first['msg']}", field)
    text = str(exc)
    text = text if len(text) <= 300 else f"{text[:297]}..."
    return Refusal(UNHANDLED, f"the frame could not be handled ({type(exc).__name__}: {text})")


RefuseFn = Callable[[Refusal], Awaitable[None]]


async def guard(handling: Awaitable[T], refuse: RefuseFn, source: str) -> T | None:
    """Await the handling of one frame from `source`; if it raises, refuse the frame and return None.

    `refuse` answers and counts the refusal (an Error reply, a metric); if it raises
    in turn, that is logged too and swallowed: one frame never ends a session.
    """
    try:
        return await handling
    except Exception as exc:  # noqa: BLE001 - the boundary: any one frame's failure is contained here
        refusal = refusal_for(exc)
        if refusal.code == UNHANDLED:
            log.warning("refused a frame from %s: %s", source, refusal)
            log.debug("handling a frame from %s raised", source, exc_info=exc)
        else:
            log.info("refused a frame from %s: %s", source, refusal)
    try:
        await refuse(refusal)
    except Exception as exc:  # noqa: BLE001 - the reply is best effort; the connection's reader notices a dead socket
        log.info("could not tell %s its frame was refused: %s", source, exc or type(exc).__name__)
    return None
