"""Binary frame layout on a WebSocket (or any byte-message channel).

    C <compact message>                    control message for the hop (`cartnet.compact`)
    D <transfer id 16> <index u32> <data>  one transfer chunk
    R <to 20> <from 20> <inner frame>      routed: the bridge forwards `inner` untouched

A bridge reads only the first 41 bytes of a routed frame, so end-to-end
encrypted payloads pass through it unread. `parse` accepts bytes or a memoryview
and, whatever the input, returns a frame or raises FrameError / MessageError.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from cartnet import compact
from cartnet.messages import AnyMessage, Message

CONTROL, CHUNK, ROUTED = b"C", b"D", b"R"
_CHUNK_HEAD = struct.Struct(">16sI")
ID_BYTES = 20
ROUTE_HEAD = 1 + 2 * ID_BYTES
CHUNK_HEAD = 1 + _CHUNK_HEAD.size


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
    inner: bytes | memoryview


def control(message: Message) -> bytes:
    return CONTROL + compact.encode(message)


def chunk(transfer_id: str, index: int, data: bytes | memoryview) -> bytes:
    return b"".join((chunk_header(transfer_id, index), data))


def chunk_header(transfer_id: str, index: int) -> bytes:
    """The first CHUNK_HEAD bytes of a chunk frame, for a sender that writes the data after it itself."""
    return CHUNK + _CHUNK_HEAD.pack(bytes.fromhex(transfer_id), index)


def routed(to: str, sender: str, inner: bytes | bytearray | memoryview) -> bytes:
    return b"".join((route_header(to, sender), inner))


def route_header(to: str, sender: str) -> bytes:
    """The first ROUTE_HEAD bytes of a routed frame, for a sender that sends the inner frame after it itself."""
    return b"".join((ROUTED, bytes.fromhex(to), bytes.fromhex(sender)))


def parse(frame: bytes | memoryview) -> AnyMessage | Chunk | Routed:
    """Decode one frame; raises FrameError or messages.MessageError with a clear reason, nothing else."""
    if not frame:
        raise FrameError("empty frame")
    kind = bytes(frame[:1])
    if kind == CONTROL:
        return compact.decode(frame[1:])
    if kind == CHUNK:
        if len(frame) < 1 + _CHUNK_HEAD.size:
            raise FrameError(f"truncated chunk header ({len(frame)} bytes, at least {1 + _CHUNK_HEAD.size} needed)")
        tid, index = _CHUNK_HEAD.unpack_from(frame, 1)
        return Chunk(tid.hex(), index, memoryview(frame)[1 + _CHUNK_HEAD.size :])
    if kind == ROUTED:
        return parse_route(frame)
    raise FrameError(f"unknown frame kind {kind!r} (0x{kind[0]:02x}); expected C, D or R")


def parse_route(frame: bytes | memoryview) -> Routed:
    """Read only the routing header; the inner frame stays opaque bytes."""
    if len(frame) < ROUTE_HEAD + 1 or bytes(frame[:1]) != ROUTED:
        raise FrameError(f"truncated routed frame ({len(frame)} bytes, at least {ROUTE_HEAD + 1} needed)")
    return Routed(bytes(frame[1:21]).hex(), bytes(frame[21:41]).hex(), frame[ROUTE_HEAD:])
