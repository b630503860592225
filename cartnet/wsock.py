"""A client's WebSocket binary send that costs one copy of the payload fewer than aiohttp's, or none.

RFC 6455 makes a client mask every frame it sends with a fresh random key. aiohttp's
client does so by copying the payload into a new bytearray, masking it, and joining
header, key and payload into a third buffer. On the development machine fresh
megabyte buffers cost more than the copying itself (each new page is a fault), so
for bulk frames that is most of a sender's work. `send` masks a payload the caller
hands over (a bytearray it made for this frame and will not touch again) in place,
or one copy of any other payload, with aiohttp's own masking routine, and writes the frame header and the
payload to the transport as two writes: the same bytes on the wire, still masked
under a fresh key from the system's random source, without aiohttp's two buffers.
A short `prefix` (a routed frame's 41-byte header) is masked apart, the key running
on into the payload, so a routed chunk is not copied behind its header either.

It writes to the transport of aiohttp's own writer (synchronously, as aiohttp does)
and keeps that writer's flow control, so frames sent either way keep their order
and wait alike. A server's frames (not masked), compressed ones, and anything that
is not an aiohttp socket go through `send_bytes` unchanged.
"""

from __future__ import annotations

import os
import struct
from typing import cast

import aiohttp
from aiohttp import web
from aiohttp._websocket.helpers import websocket_mask
from aiohttp._websocket.writer import WebSocketWriter

_FIN_BINARY = 0x80 | aiohttp.WSMsgType.BINARY
_MASKED = 0x80
_LEN1, _LEN2, _LEN3 = struct.Struct("!BB"), struct.Struct("!BBH"), struct.Struct("!BBQ")


def frame_header(size: int, mask: bytes) -> bytes:
    """The header of a final, masked binary frame of `size` payload bytes, its masking key included."""
    if size < 126:
        head = _LEN1.pack(_FIN_BINARY, _MASKED | size)
    elif size < 65536:
        head = _LEN2.pack(_FIN_BINARY, _MASKED | 126, size)
    else:
        head = _LEN3.pack(_FIN_BINARY, _MASKED | 127, size)
    return head + mask


async def send(
    ws: aiohttp.ClientWebSocketResponse | web.WebSocketResponse,
    payload: bytes | bytearray,
    *,
    prefix: bytes = b"",
    handed_over: bool = False,
) -> None:
    """Send `prefix` + `payload` as one binary frame. From a client, the payload is masked in place when it is a
    bytearray `handed_over` by a caller that will never read or send it again, else a copy of it is (the prefix, a
    few header bytes, is always copied); a server's frames (not masked) go out as aiohttp writes them."""
    writer: WebSocketWriter | None = getattr(ws, "_writer", None)
    if writer is None or not writer.use_mask or writer.compress:
        await ws.send_bytes(prefix + payload if prefix else cast(bytes, payload))  # aiohttp sends any bytes-like
        return
    if ws.closed or writer.transport.is_closing():
        raise ConnectionResetError("Cannot write to closing transport")
    body = payload if handed_over and isinstance(payload, bytearray) else bytearray(payload)
    mask, head = os.urandom(4), bytearray(prefix)
    websocket_mask(mask, head)
    shift = len(prefix) % 4  # the key runs on from where the prefix ends
    websocket_mask(mask[shift:] + mask[:shift], body)
    header = frame_header(len(prefix) + len(body), mask) + head
    writer.transport.write(header)
    writer.transport.write(body)
    # aiohttp's own flow control: wait for a paused transport only after its limit of bytes was written
    writer._output_size += len(header) + len(body)
    if writer._output_size > writer._limit:
        writer._output_size = 0
        if writer.protocol._paused:
            await writer.protocol._drain_helper()
