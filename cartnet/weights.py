"""Weight codec: a Keras weight list <-> bytes, safely.

Arrays travel in the safetensors format (a JSON header plus raw buffers, no code
execution on load), optionally zstd-compressed. Decompression is streamed with a
hard cap, so a small "bomb" cannot allocate gigabytes. Anything that is not our
format (a pickle, a truncated file, a foreign header) is refused with a clear error.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import zstandard
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

MAGIC = b"FCW1"
RAW, ZSTD = 0, 1
DEFAULT_MAX_DECODED = 512 * 1024 * 1024
_KEY = "w{:05d}"


class WeightsError(ValueError):
    """Bytes that are not a valid weight blob."""


def encode(arrays: Sequence[np.ndarray], compress: bool = True, level: int = 3) -> bytes:
    """Serialize arrays in order; dtype and shape round-trip exactly."""
    tensors = {_KEY.format(i): np.require(a, requirements="C") for i, a in enumerate(arrays)}
    try:
        body = st_save(tensors, metadata={"count": str(len(tensors))})
    except (SafetensorError, ValueError, TypeError) as exc:
        raise WeightsError(f"cannot encode weights: {exc}") from None
    if compress:
        return MAGIC + bytes([ZSTD]) + zstandard.ZstdCompressor(level=level).compress(body)
    return MAGIC + bytes([RAW]) + body


def decode(blob: bytes | bytearray, max_decoded: int = DEFAULT_MAX_DECODED) -> list[np.ndarray]:
    """Parse a blob made by `encode`; never executes code and never inflates past `max_decoded`."""
    if len(blob) < len(MAGIC) + 1 or blob[: len(MAGIC)] != MAGIC:
        raise WeightsError("not a fedcart weight blob (bad magic; pickles and foreign formats are refused)")
    mode, payload = blob[len(MAGIC)], memoryview(blob)[len(MAGIC) + 1 :]
    if mode == ZSTD:
        body = _inflate(payload, max_decoded)
    elif mode == RAW:
        if len(payload) > max_decoded:
            raise WeightsError(f"weights of {len(payload)} bytes exceed the {max_decoded}-byte limit")
        body = bytes(payload)
    else:
        raise WeightsError(f"unknown compression mode {mode}")
    try:
        tensors = st_load(body)
    except (SafetensorError, ValueError, TypeError) as exc:
        raise WeightsError(f"corrupt tensor data: {exc}") from None
    return _ordered(tensors)


def _inflate(payload: memoryview, limit: int) -> bytes:
    try:
        with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(payload)) as reader:
            body = reader.read(limit + 1)
    except zstandard.ZstdError as exc:
        raise WeightsError(f"corrupt compressed data: {exc}") from None
    if len(body) > limit:
        raise WeightsError(f"decompressed weights exceed the {limit}-byte limit")
    return body


def _ordered(tensors: dict[str, np.ndarray]) -> list[np.ndarray]:
    expected = [_KEY.format(i) for i in range(len(tensors))]
    if sorted(tensors) != expected:
        raise WeightsError("tensor names are not the expected w00000.. sequence")
    return [tensors[name] for name in expected]


def shapes_match(received: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> str | None:
    """None when `received` has the reference's layout; else a reason naming the first mismatch."""
    if len(received) != len(reference):
        return f"{len(received)} tensors, expected {len(reference)}"
    for i, (got, want) in enumerate(zip(received, reference)):
        if got.shape != want.shape or got.dtype != want.dtype:
            return f"tensor {i} is {got.dtype}{got.shape}, expected {want.dtype}{want.shape}"
    return None
