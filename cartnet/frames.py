"""Binary frame layout on a WebSocket (or any byte-message channel).

    C <json>                               control message for the hop
    D <transfer id 16> <index u32> <data>  one transfer chunk
    R <to 20> <from 20> <inner frame>      routed: the bridge forwards `inner` untouched

A bridge reads only the first 41 bytes of a routed frame, so end-to-end
encrypted payloads pass through it unread.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from cartnet import messages
from cartnet.messages import Message

CONTROL, CHUNK, ROUTED = b"C", b"D", b"R"
_CHUNK_HEAD = struct.Struct(">16sI")
ID_BYTES = 20
ROUTE_HEAD = 1 + 2 * ID_BYTES


class FrameError(ValueError):
    """A frame that does not follow the layout above."""


@dataclass(frozen=True)
class Chunk:
    transfer_id: str
    index: int
    data: bytes | memoryview


@dataclass(frozen=True)
class Routed:
    to: str
    sender: str
    inner: bytes


def control(message: Message) -> bytes:
    return CONTROL + messages.encode(message)


def chunk(transfer_id: str, index: int, data: bytes | memoryview) -> bytes:
    return b"".join((CHUNK, _CHUNK_HEAD.pack(bytes.fromhex(transfer_id), index), data))


def routed(to: str, sender: str, inner: bytes) -> bytes:
    return b"".join((ROUTED, bytes.fromhex(to), bytes.fromhex(sender), inner))


def parse(frame: bytes) -> Message | Chunk | Routed:
    """Decode one frame; raises FrameError or messages.MessageError with a clear reason."""
    if not frame:
        raise FrameError("empty frame")
    kind = frame[:1]
    if kind == CONTROL:
        return messages.decode(frame[1:])
    if kind == CHUNK:
        if len(frame) < 1 + _CHUNK_HEAD.size:
            raise FrameError("truncated chunk header")
        tid, index = _CHUNK_HEAD.unpack_from(frame, 1)
        return Chunk(tid.hex(), index, memoryview(frame)[1 + _CHUNK_HEAD.size :])
    if kind == ROUTED:
        return parse_route(frame)
    raise FrameError(f"unknown frame kind {kind!r}")


def parse_route(frame: bytes) -> Routed:
    """Read only the routing header; the inner frame stays opaque bytes."""
    if len(frame) < ROUTE_HEAD + 1 or frame[:1] != ROUTED:
        raise FrameError("truncated routed frame")
    return Routed(frame[1:21].hex(), frame[21:41].hex(), frame[ROUTE_HEAD:])
