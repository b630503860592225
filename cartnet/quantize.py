"""Lossy compression of the weights a cart shares: fewer bytes a round for a little precision.

A plain update is the sender's whole model, and every cart fetches k of them a
round, so their size is most of a round's bytes. Three precisions:

- `float32`: the weights as they are;
- `float16`: half the bytes, about 3 significant digits kept;
- `int8`: a quarter of the bytes: each tensor becomes codes 0..255 spread evenly
  between its smallest and largest value (uniform 8-bit quantization, as
  hivemind's `Uniform8BitQuantization`), so a weight moves by at most half a step,
  (max - min) / 510. Rounding is to the nearest code, so the error is fixed for a
  given tensor: the receiver averages it with its own exact weights.

`pack` turns a weight list into the arrays that travel (int8: two, whatever the
model: every tensor's codes in one flat uint8 array, and a float32 (low, step)
row per tensor, since a header per tensor would cost a small model a third of
its bytes); `unpack` checks those arrays
against the receiver's own model layout and rebuilds float weights in its dtypes.
Everything `unpack` reads came from a peer: it refuses a wrong count, shape,
dtype, or a non-finite or negative scale with `QuantizeError`, never an
exception of numpy's. The precision travels in the update's signed meta, so a
cart reads any precision whatever its own setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Precision = Literal["float32", "float16", "int8"]
PRECISIONS: tuple[Precision, ...] = ("float32", "float16", "int8")
LEVELS = 255


class QuantizeError(ValueError):
    """Arrays that do not unpack into the receiver's layout at the precision claimed."""


def pack(arrays: Sequence[np.ndarray], precision: Precision) -> list[np.ndarray]:
    """The arrays that carry `arrays` at `precision` (see the module docstring)."""
    if precision == "float32":
        return [np.asarray(a) for a in arrays]
    if precision == "float16":
        return [np.asarray(a, dtype=np.float16) for a in arrays]
    if precision == "int8":
        parts = [_quantize(np.asarray(a, dtype=np.float64).ravel()) for a in arrays]
        codes = np.concatenate([c for c, _ in parts]) if parts else np.zeros(0, np.uint8)
        return [codes, np.array([scale for _, scale in parts], dtype=np.float32).reshape(len(parts), 2)]
    raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")


def _quantize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    low = float(values.min()) if values.size else 0.0
    span = float(values.max()) - low if values.size else 0.0
    step = span / LEVELS if span > 0 else 0.0
    codes = np.zeros(values.shape, dtype=np.uint8) if step == 0 else np.rint((values - low) / step).astype(np.uint8)
    return codes, np.array([low, step], dtype=np.float32)


def unpack(arrays: Sequence[np.ndarray], precision: str, reference: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Float weights in `reference`'s shapes and dtypes from arrays a peer packed at `precision`."""
    if precision == "float32":
        return list(arrays)  # checked against the layout as they are, by the caller
    if precision == "float16":
        _expect(arrays, [(ref.shape, np.dtype(np.float16)) for ref in reference])
        return [np.asarray(a, dtype=ref.dtype) for a, ref in zip(arrays, reference)]
    if precision == "int8":
        sizes = [int(np.prod(ref.shape)) for ref in reference]
        _expect(arrays, [((sum(sizes),), np.dtype(np.uint8)), ((len(reference), 2), np.dtype(np.float32))])
        codes, scales = arrays
        pieces = np.split(codes, np.cumsum(sizes)[:-1]) if sizes else []
        return [_dequantize(piece, scale, ref) for piece, scale, ref in zip(pieces, scales, reference)]
    raise QuantizeError(f"unknown precision {precision[:16]!r}")


def _expect(arrays: Sequence[np.ndarray], layout: list[tuple[tuple[int, ...], np.dtype]]) -> None:
    if len(arrays) != len(layout):
        raise QuantizeError(f"{len(arrays)} arrays, expected {len(layout)}")
    for i, (got, (shape, dtype)) in enumerate(zip(arrays, layout)):
        if got.shape != shape or got.dtype != dtype:
            raise QuantizeError(f"array {i} is {got.dtype}{got.shape}, expected {dtype}{shape}")


def _dequantize(codes: np.ndarray, scale: np.ndarray, reference: np.ndarray) -> np.ndarray:
    low, step = (float(v) for v in scale)
    if not (np.isfinite(low) and np.isfinite(step) and step >= 0):
        raise QuantizeError(f"scale ({low}, {step}) is not a finite low and a step >= 0")
    return (low + codes.astype(np.float64) * step).astype(reference.dtype).reshape(reference.shape)
