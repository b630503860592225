"""Weight codec: exact round trips, and refusal of bombs, pickles and garbage."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cartnet import weights

DTYPES = st.sampled_from(["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"])
ARRAYS = DTYPES.flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6)))


@settings(max_examples=60, deadline=None)
@given(st.lists(ARRAYS, max_size=6), st.booleans())
def test_round_trip_exact(arrays, compress):
    decoded = weights.decode(weights.encode(arrays, compress=compress))
    assert len(decoded) == len(arrays)
    for got, want in zip(decoded, arrays):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_non_contiguous_arrays_encode():
    base = np.arange(24, dtype="float32").reshape(4, 6)
    (got,) = weights.decode(weights.encode([base.T]))
    np.testing.assert_array_equal(got, base.T)


def test_decompression_bomb_refused():
    body = weights.encode([np.zeros(8 * 1024 * 1024, dtype="float32")], compress=True)
    assert len(body) < 64 * 1024
    with pytest.raises(weights.WeightsError, match="exceed the 1048576-byte limit"):
        weights.decode(body, max_decoded=1024 * 1024)


def test_bomb_with_lying_frame_header_refused():
    raw = io.BytesIO()
    with zstandard.ZstdCompressor().stream_writer(raw, closefd=False) as writer:
        writer.write(b"\0" * (16 * 1024 * 1024))
    blob = weights.MAGIC + bytes([weights.ZSTD]) + raw.getvalue()
    with pytest.raises(weights.WeightsError, match="limit"):
        weights.decode(blob, max_decoded=1024 * 1024)


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        (pickle.dumps([np.zeros(3)]), "bad magic"),
        (pickle.dumps(Evil()), "bad magic"),
        (weights.MAGIC + bytes([weights.RAW]) + pickle.dumps(Evil()), "corrupt tensor data"),
        (weights.MAGIC + bytes([7]) + b"xx", "unknown compression mode"),
        (weights.MAGIC + bytes([weights.ZSTD]) + b"not zstd", "corrupt compressed data"),
        (b"", "bad magic"),
    ],
)
def test_garbage_refused(blob, reason):
    with pytest.raises(weights.WeightsError, match=reason):
        weights.decode(blob)


def test_truncated_blob_refused():
    blob = weights.encode([np.ones((64, 64), "float32")], compress=False)
    with pytest.raises(weights.WeightsError):
        weights.decode(blob[:-100])


def test_object_arrays_refused_on_encode():
    with pytest.raises(weights.WeightsError):
        weights.encode([np.array(["a", "b"])])


def test_shapes_match_names_first_mismatch():
    ref = [np.zeros((2, 3), "float32"), np.zeros(3, "float32")]
    assert weights.shapes_match(ref, ref) is None
    assert "tensor 1" in weights.shapes_match([ref[0], np.zeros(4, "float32")], ref)
    assert "2 tensors" not in (weights.shapes_match(ref[:1], ref) or "")
    assert "float64" in weights.shapes_match([ref[0].astype("float64"), ref[1]], ref)
