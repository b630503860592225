"""Lossy update packing: the error stays within half a step, the bytes shrink, and a peer's bad arrays are refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cartnet import weights
from cartnet.quantize import LEVELS, QuantizeError, pack, unpack

FINITE = st.floats(-1e3, 1e3, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(0, 6), st.integers(1, 5)), elements=FINITE))
def test_int8_moves_a_weight_by_at_most_half_a_step(values):
    (restored,) = unpack(pack([values], "int8"), "int8", [values])
    assert restored.dtype == values.dtype and restored.shape == values.shape
    if values.size:
        step = (float(values.max()) - float(values.min())) / LEVELS
        assert np.max(np.abs(restored - values), initial=0.0) <= step / 2 + 1e-6 * (1 + np.abs(values).max())


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, st.integers(1, 50), elements=st.floats(-10, 10, allow_nan=False, width=32)))
def test_float16_keeps_three_digits(values):
    (restored,) = unpack(pack([values], "float16"), "float16", [values])
    assert restored.dtype == np.float32
    np.testing.assert_allclose(restored, values, rtol=1e-3, atol=1e-4)


def test_float32_is_exact_and_the_others_shrink_the_blob():
    rng = np.random.default_rng(0)
    model = [rng.normal(size=(40, 20)).astype(np.float32), rng.normal(size=20).astype(np.float32)]
    sizes = {p: len(weights.encode(pack(model, p))) for p in ("float32", "float16", "int8")}
    assert all(np.array_equal(a, b) for a, b in zip(unpack(pack(model, "float32"), "float32", model), model))
    assert sizes["float16"] < 0.55 * sizes["float32"] and sizes["int8"] < 0.32 * sizes["float32"], sizes


def test_a_constant_tensor_survives_int8():
    flat = np.full((3, 3), 0.25, dtype=np.float32)
    (restored,) = unpack(pack([flat], "int8"), "int8", [flat])
    np.testing.assert_array_equal(restored, flat)


REFERENCE = [np.zeros((2, 3), np.float32), np.zeros(3, np.float32)]
CODES, SCALES = pack(REFERENCE, "int8")


@pytest.mark.parametrize(
    ("arrays_", "precision", "why"),
    [
        ([CODES], "int8", "1 arrays, expected 2"),
        ([CODES[:8], SCALES], "int8", "array 0 is uint8(8,), expected uint8(9,)"),
        ([CODES.astype(np.int16), SCALES], "int8", "array 0 is int16"),
        ([CODES, np.array([[0.0, 1.0], [0.0, -1.0]], np.float32)], "int8", "step >= 0"),
        ([CODES, np.array([[np.nan, 1.0], [0.0, 1.0]], np.float32)], "int8", "finite"),
        ([CODES, np.zeros(4, np.float32)], "int8", "array 1 is float32(4,)"),
        ([a.astype(np.float32) for a in REFERENCE], "float16", "array 0 is float32"),
        ([np.zeros((3, 2), np.float16), np.zeros(3, np.float16)], "float16", "expected float16(2, 3)"),
        (REFERENCE, "bfloat7", "unknown precision"),
    ],
)
def test_a_peers_bad_arrays_are_refused_with_the_reason(arrays_, precision, why):
    with pytest.raises(QuantizeError, match=why.replace("(", r"\(").replace(")", r"\)")):
        unpack(arrays_, precision, REFERENCE)
