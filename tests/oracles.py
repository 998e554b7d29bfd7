"""What the tests compare numbapool with: PyTorch (live, when installed) and tests/reference.py.

Inputs here are batched channels-first NumPy arrays with normalised tuple parameters;
``layouts`` turns one such input into every way a user can hand it to numbapool.
"""

import numpy as np
import pytest

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the suite still means something without torch: see reference.py
    torch = None
    F = None

try:  # bfloat16 is a NumPy dtype through ml_dtypes, an optional dependency
    from ml_dtypes import bfloat16
except ImportError:
    bfloat16 = None

FLOATS = (np.float16, np.float32, np.float64) + ((bfloat16,) if bfloat16 else ())
INTS = (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


def tolerance(dtype):
    """Relative (and absolute) tolerance of sums: about two units in the last place."""
    if bfloat16 is not None and np.dtype(dtype) == bfloat16:
        return 2e-2
    return {np.float16: 2e-3, np.float32: 2e-5, np.float64: 1e-9}[np.dtype(dtype).type]


def is_16_bit_float(dtype):
    """float16 or bfloat16: computed in float32, fractional windows placed in 16 bits."""
    return np.dtype(dtype).itemsize == 2 and np.dtype(dtype).kind not in "iu"


def assert_exact(got, expected):
    """Max-type results: the same values (NaN where NaN) and the same dtype and shape."""
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype
    if bfloat16 is not None and got.dtype == bfloat16:  # NumPy's testing sees no NaN in it
        got, expected = got.astype(np.float32), expected.astype(np.float32)
    np.testing.assert_array_equal(got, expected)


def assert_exact_pair(got, expected):
    """Max-type results: (values, indices) equal to the expected pair."""
    assert_exact(got[0], expected[0])
    assert_exact(got[1], expected[1])


def assert_close(got, expected, dtype):
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape
    assert got.dtype == np.dtype(dtype)
    rtol = tolerance(dtype)
    np.testing.assert_allclose(
        got.astype(np.float64), expected.astype(np.float64), rtol=rtol, atol=rtol, equal_nan=True
    )


def make_input(rng, shape, dtype, specials=False):
    """Random values; small integers give ties; ``specials`` sprinkles NaN and +-inf."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    x = rng.standard_normal(shape)
    if rng.random() < 0.5:
        x = np.round(x * 2)
    x = x.astype(dtype)
    if specials and x.size:
        for value in (np.nan, np.inf, -np.inf):
            x.flat[rng.integers(0, x.size, size=max(1, x.size // 20))] = value
    return x


def to_torch(x):
    """A tensor of x's values; bfloat16 arrays become torch.bfloat16 tensors (exactly)."""
    if bfloat16 is not None and x.dtype == bfloat16:
        return torch.from_numpy(x.astype(np.float32)).to(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(x))


def from_torch(result):
    if isinstance(result, tuple):
        return tuple(from_torch(r) for r in result)
    if result.dtype == torch.bfloat16:
        return result.detach().float().numpy().astype(bfloat16)
    return result.detach().numpy()


def torch_call(name, x, *args, **kwargs):
    """torch.nn.functional.<name> on a NumPy input, NumPy out (tuples for indices)."""
    return from_torch(getattr(F, name)(to_torch(x), *args, **kwargs))


# --- the ways one input reaches numbapool ----------------------------------------------


def layouts(*arrays):
    """Every way to hand numbapool (N, C, *spatial) ``arrays`` of one rank together.

    Yields ``(label, transformed arrays, kwargs, back)``; ``back`` maps a numbapool result
    to the convention of the originals.
    """
    x = arrays[0]
    nd = x.ndim - 2
    cl_perm = (0,) + tuple(range(2, nd + 2)) + (1,)
    from_cl = tuple(np.argsort(cl_perm))

    def each(transform):
        return tuple(transform(a) for a in arrays)

    def strided(a):
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        big[..., ::2] = a
        return big[..., ::2]

    yield "contiguous", arrays, {}, lambda y: y
    yield "channels_last_memory", each(
        lambda a: np.ascontiguousarray(a.transpose(cl_perm)).transpose(from_cl)
    ), {}, lambda y: y
    yield "data_format", each(lambda a: np.ascontiguousarray(a.transpose(cl_perm))), {
        "data_format": "channels_last"
    }, lambda y: y.transpose(from_cl)
    yield "strided", each(strided), {}, lambda y: y
    yield "reversed", each(lambda a: a[:, ::-1].copy()[:, ::-1]), {}, lambda y: y
    if x.shape[0] == 1:
        yield "unbatched", each(lambda a: a[0]), {}, lambda y: y[None]


def is_channels_last_memory(y):
    """C moves fastest among the dims longer than 1 (how PyTorch lays out channels_last)."""
    spatial = [abs(s) for n, s in zip(y.shape[2:], y.strides[2:]) if n > 1]
    return abs(y.strides[1]) < min(spatial)
