"""Small helpers for the tests that run real fedcart processes next to the compose checks."""

from __future__ import annotations

import queue
import socket
import threading
from typing import IO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_line(stream: IO[bytes], text: str, seconds: float) -> tuple[str | None, str]:
    """(the first line of `stream` containing `text`, or None at end of stream or deadline; what was read so far).

    The stream is read by a daemon thread, so the deadline holds even while no line comes; the thread keeps
    draining the stream afterwards, so the process never blocks on a full pipe.
    """
    found: queue.Queue[str | None] = queue.Queue()
    transcript: list[str] = []

    def read() -> None:
        seen = False
        for raw in stream:
            line = raw.decode(errors="replace")
            transcript.append(line)
            if not seen and text in line:
                seen = True
                found.put(line)
        if not seen:
            found.put(None)

    threading.Thread(target=read, daemon=True).start()
    try:
        line = found.get(timeout=seconds)
    except queue.Empty:
        line = None
    return line, "".join(transcript)
