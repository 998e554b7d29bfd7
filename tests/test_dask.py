"""Dask arrays in, lazy dask arrays out (``numbapool._lazy``): results equal to the
in-memory call on the whole array, bitwise, for odd chunkings of every family."""

import inspect
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
import dask  # noqa: E402
from dask.array.utils import assert_eq  # noqa: E402

import numbapool as npl  # noqa: E402
from numbapool import _lazy  # noqa: E402

CF, CL = "channels_first", "channels_last"


def values(rng, shape, dtype=np.float32, ties=False):
    """Random values; ``ties``: small integers (max pooling keeps the first of equal
    maxima) and a few NaN (the last NaN of a window wins)."""
    x = rng.standard_normal(shape) * 4
    if ties:
        x = np.round(x)
        if np.dtype(dtype).kind == "f":
            x.flat[rng.integers(0, x.size, size=x.size // 40)] = np.nan
    return x.astype(dtype)


def chunked(x, chunks):
    """``x`` as a dask array of these chunks (``None``: one chunk along that axis)."""
    return da.from_array(x, chunks=tuple(x.shape[i] if c is None else c
                                         for i, c in enumerate(chunks)))


def assert_same(got, want):
    """A dask result (or tuple) equal to the in-memory one, bitwise; its chunks, dtype
    and meta are what its blocks hold."""
    if not isinstance(want, tuple):
        got, want = (got,), (want,)
    assert isinstance(got, tuple) and len(got) == len(want)
    computed = dask.compute(*got)  # values and indices from the same tasks
    for lazy, result, expected in zip(got, computed, want):
        assert isinstance(lazy, da.Array)
        assert lazy.shape == expected.shape and lazy.dtype == expected.dtype
        np.testing.assert_array_equal(result, expected)
        assert_eq(lazy, expected)  # blocks of the promised chunks, dtype and type


# ---------------------------------------------------------------------------------------
# Forward: spatially blocked families

MAX, AVG = {"ties": True}, {}

# (function, arguments, caller's shape, chunks in the caller's axes, data_format, input);
# chunks of 1, uneven chunks, chunks smaller than the kernel and not multiples of the
# stride; batched and unbatched; both layouts
FORWARD = [
    ("max_pool1d", dict(kernel_size=3, stride=2, padding=1, return_indices=True),
     (2, 3, 23), ((1, 1), (2, 1), (3, 5, 2, 13)), CF, MAX),
    ("max_pool1d", dict(kernel_size=2, stride=3, padding=1, dilation=3, ceil_mode=True,
                        return_indices=True), (3, 29), (None, 1), CF, MAX),
    ("max_pool1d", dict(kernel_size=4, stride=1, padding=2, dilation=2, ceil_mode=True,
                        return_indices=True), (2, 19, 3), (1, (3, 5, 2, 9), (2, 1)), CL, MAX),
    # windows without taps inside the input (dilation and padding): index off the plane
    ("max_pool2d", dict(kernel_size=(2, 2), stride=1, padding=1, dilation=(1, 3),
                        return_indices=True), (1, 2, 5, 2), (None, 1, 2, 1), CF, MAX),
    ("max_pool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                        return_indices=True), (2, 13, 11, 3), (1, (3, 5, 2, 3), (4, 7), (2, 1)),
     CL, MAX),
    ("max_pool2d", dict(kernel_size=(4, 2), stride=(1, 3), padding=(2, 1), dilation=(2, 3),
                        return_indices=True), (2, 3, 17, 19), (2, (1, 2), (1, 16), (5, 5, 9)),
     CF, MAX),
    ("max_pool2d", dict(kernel_size=2, return_indices=True), (3, 9, 8), (None, 1, 3), CF,
     {"ties": True, "dtype": np.int64}),
    ("max_pool3d", dict(kernel_size=(2, 3, 3), stride=(2, 1, 2), padding=(1, 1, 0),
                        dilation=(1, 2, 1), ceil_mode=True, return_indices=True),
     (2, 9, 10, 11), (None, (4, 5), (3, 3, 4), (1, 10)), CF, MAX),
    ("max_pool3d", dict(kernel_size=3, stride=(3, 2, 1), padding=1, return_indices=True),
     (1, 7, 8, 6, 2), (None, (2, 5), 3, (1, 5), 1), CL, MAX),
    ("avg_pool1d", dict(kernel_size=4, stride=3, padding=2, ceil_mode=True,
                        count_include_pad=False), (2, 3, 70), (1, 2, (17, 20, 1, 32)), CF, AVG),
    ("avg_pool1d", dict(kernel_size=3, stride=5, padding=1), (40, 2), ((16, 24), 1), CL, AVG),
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
     (2, 13, 11, 3), (1, (3, 5, 2, 3), (4, 7), (2, 1)), CL, AVG),
    ("avg_pool2d", dict(kernel_size=(5, 3), stride=(6, 1), padding=(2, 0),
                        divisor_override=7), (2, 3, 19, 50), (None, 1, (1, 2, 16), (16, 3, 31)),
     CF, {"dtype": np.float64}),
    ("avg_pool2d", dict(kernel_size=2, stride=3, ceil_mode=True, count_include_pad=False),
     (3, 11, 40), (2, (2, 9), (19, 21)), CF, {"ties": True, "dtype": np.int64}),
    ("avg_pool3d", dict(kernel_size=3, stride=(1, 2, 3), padding=1, ceil_mode=True,
                        count_include_pad=False), (1, 2, 7, 9, 33), (None, 1, (2, 5), 4, (16, 17)),
     CF, AVG),
    ("avg_pool3d", dict(kernel_size=(2, 3, 2), stride=2, padding=(1, 1, 0), ceil_mode=True),
     (6, 7, 5, 3), ((5, 1), 3, 2, None), CL, AVG),
    ("lp_pool1d", dict(norm_type=2.5, kernel_size=3, stride=2, ceil_mode=True),
     (2, 3, 45), (1, None, (16, 1, 28)), CF, AVG),
    ("lp_pool2d", dict(norm_type=1, kernel_size=(2, 3), stride=(3, 1)),
     (2, 10, 12, 3), (None, (3, 5, 2), (5, 7), (1, 2)), CL, AVG),
    ("lp_pool3d", dict(norm_type=np.inf, kernel_size=2), (2, 6, 7, 20),
     (1, (1, 5), (3, 4), None), CF, AVG),
    ("adaptive_avg_pool1d", dict(output_size=7), (2, 3, 23), (1, 2, (5, 18)), CF, AVG),
    ("adaptive_avg_pool1d", dict(output_size=60), (40, 2), ((16, 24), 1), CL, AVG),
    ("adaptive_avg_pool2d", dict(output_size=(6, 1)), (2, 3, 18, 40),
     (1, (1, 2), (3, 5, 2, 8), None), CF, AVG),
    ("adaptive_avg_pool2d", dict(output_size=(14, 10)), (2, 21, 45, 2),
     (None, (7, 3, 11), (20, 25), 1), CL, AVG),
    ("adaptive_avg_pool3d", dict(output_size=(8, None, 3)), (2, 4, 5, 36),
     (1, (1, 3), 2, (17, 19)), CF, AVG),
    ("adaptive_max_pool1d", dict(output_size=10, return_indices=True), (2, 3, 25),
     (1, (2, 1), (3, 5, 2, 15)), CF, MAX),
    ("adaptive_max_pool2d", dict(output_size=(12, 1), return_indices=True), (2, 18, 7, 3),
     (1, (5, 13), 3, 1), CL, MAX),
    ("adaptive_max_pool3d", dict(output_size=(3, 4, 5), return_indices=True),
     (2, 6, 8, 10), (None, (1, 5), (3, 5), (4, 6)), CF, MAX),
    ("adaptive_max_pool2d", dict(output_size=1), (2, 3, 9, 8), (1, 2, 4, 3), CF, MAX),
]


def _id(case):
    name, arguments, shape, _, data_format, _ = case
    return f"{name}-{data_format}-{'x'.join(map(str, shape))}"


@pytest.mark.parametrize("case", FORWARD, ids=[_id(c) for c in FORWARD])
def test_forward_matches_in_memory(case):
    name, arguments, shape, chunks, data_format, kind = case
    rng = np.random.default_rng(len(name) + sum(shape))
    x = values(rng, shape, **kind)
    function = getattr(npl, name)
    want = function(x, **arguments, data_format=data_format)
    got = function(chunked(x, chunks), **arguments, data_format=data_format)
    assert_same(got, want)


def test_output_chunks_follow_the_input():
    x = chunked(np.ones((4, 6, 40, 64), np.float32), (1, (2, 4), (10, 10, 20), 32))
    y = npl.max_pool2d(x, 2)
    assert y.chunks == ((1, 1, 1, 1), (2, 4), (5, 5, 10), (16, 16))
    y = npl.adaptive_avg_pool2d(x, (20, 32))
    assert y.chunks == ((1, 1, 1, 1), (2, 4), (5, 5, 10), (16, 16))


@pytest.mark.parametrize("chunks", [1, 3, (5, 2, 14), (16, 5)])
@pytest.mark.parametrize("config", [
    dict(kernel_size=3, stride=1, padding=1),
    dict(kernel_size=4, stride=2, padding=2, ceil_mode=True),
    dict(kernel_size=2, stride=5, padding=1, ceil_mode=True),
    dict(kernel_size=5, stride=3, padding=2, dilation=3),
    dict(kernel_size=3, stride=4, dilation=2, ceil_mode=True),
])
def test_fixed_windows_for_many_chunkings(config, chunks):
    """Every chunking of one line against each geometry (chunks of 1 are smaller than
    every kernel here)."""
    rng = np.random.default_rng(1)
    x = values(rng, (2, 21), ties=True)
    lazy = chunked(x, (None, chunks))
    want = npl.max_pool1d(x, **config, return_indices=True)
    assert_same(npl.max_pool1d(lazy, **config, return_indices=True), want)
    if "dilation" not in config:
        for count_include_pad in (True, False):
            assert_same(npl.avg_pool1d(lazy, **config, count_include_pad=count_include_pad),
                        npl.avg_pool1d(x, **config, count_include_pad=count_include_pad))


@pytest.mark.parametrize("size, out", [(21, 6), (24, 16), (10, 25), (30, 1), (7, 7)])
def test_adaptive_windows_for_many_chunkings(size, out):
    rng = np.random.default_rng(2)
    x = values(rng, (2, size), ties=True)
    for chunks in (1, 3, (size // 3, size - size // 3)):
        lazy = chunked(x, (None, chunks))
        assert_same(npl.adaptive_max_pool1d(lazy, out, True),
                    npl.adaptive_max_pool1d(x, out, True))
        assert_same(npl.adaptive_avg_pool1d(lazy, out), npl.adaptive_avg_pool1d(x, out))


def test_blocks_are_exact_subproblems():
    """Fixed-window slabs start at multiples of the stride and hold their windows;
    adaptive slabs are whole steps of in / gcd(in, out)."""
    from numbapool._params import adaptive_geometry, fixed_geometry

    (dim,) = fixed_geometry((30,), 5, 3, 2, 2, True)
    blocks = _lazy.fixed_blocks(dim, (4, 7, 1, 18))
    # boundaries 4, 11, 12: the first outputs whose windows start at or after them
    assert [(b.o0, b.o1) for b in blocks] == [(0, 2), (2, 5), (5, 10)]
    for b in blocks:
        assert b.lo % 3 == 0 and b.skip == b.o0 - b.lo // 3
        assert b.o0 * 3 - 2 >= b.lo or b.lo == 0  # the first window starts in the slab
        assert b.hi == 30 or (b.o1 - 1) * 3 - 2 + 9 <= b.hi  # the last one ends in it
    (dim,) = adaptive_geometry((21,), 6)
    blocks = _lazy.adaptive_blocks(dim, (6, 9, 6))  # boundaries 6 and 15: near 7 and 14
    assert [(b.o0, b.o1, b.lo, b.hi) for b in blocks] == [(0, 2, 0, 7), (2, 4, 7, 14),
                                                         (4, 6, 14, 21)]


# ---------------------------------------------------------------------------------------
# Forward: spatial dims whole


@pytest.mark.parametrize("nd, shape, chunks, data_format", [
    (2, (3, 4, 13, 11), ((1, 2), (3, 1), 5, 4), CF),
    (2, (4, 12, 10), ((1, 3), 5, None), CF),
    (3, (2, 9, 8, 7, 5), (1, 4, 3, 2, (2, 3)), CL),
])
def test_fractional_max_pool(nd, shape, chunks, data_format):
    rng = np.random.default_rng(3)
    x = values(rng, shape, ties=True)
    function = getattr(npl, f"fractional_max_pool{nd}d")
    arguments = dict(kernel_size=2, output_ratio=0.5, return_indices=True,
                     data_format=data_format)
    lazy = chunked(x, chunks)
    want = function(x, **arguments, rng=np.random.default_rng(7))
    assert_same(function(lazy, **arguments, rng=np.random.default_rng(7)), want)
    batch = shape[0] if len(shape) == nd + 2 else 1
    channels = shape[1] if data_format == CF and len(shape) == nd + 2 else (
        shape[0] if data_format == CF else shape[-1])
    samples = rng.random((batch + 1, channels, nd))
    assert_same(function(lazy, **arguments, _random_samples=samples),
                function(x, **arguments, _random_samples=samples))


@pytest.mark.parametrize("nd, shape, chunks, data_format", [
    (1, (2, 3, 20), (1, (1, 2), 7), CF),
    (2, (2, 8, 10, 3), ((1, 1), 3, 4, (2, 1)), CL),
    (3, (3, 6, 4, 8), (2, 1, 3, 5), CF),
])
def test_max_unpool(nd, shape, chunks, data_format):
    rng = np.random.default_rng(4)
    x = values(rng, shape, ties=True)
    pool, unpool = getattr(npl, f"max_pool{nd}d"), getattr(npl, f"max_unpool{nd}d")
    y, indices = pool(x, 2, data_format=data_format, return_indices=True)
    want = unpool(y, indices, 2, data_format=data_format)
    lazy_y, lazy_indices = pool(chunked(x, chunks), 2, data_format=data_format,
                                return_indices=True)
    assert_same(unpool(lazy_y, lazy_indices, 2, data_format=data_format), want)
    assert_same(unpool(lazy_y, indices, 2, data_format=data_format), want)  # NumPy indices
    assert_same(unpool(y, lazy_indices, 2, data_format=data_format), want)  # NumPy values


# ---------------------------------------------------------------------------------------
# Backward

BACKWARD = [
    ("max_pool2d", dict(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True),
     (2, 3, 13, 11), CF),
    ("max_pool1d", dict(kernel_size=2, stride=3, padding=1, dilation=3), (3, 29), CF),
    ("avg_pool3d", dict(kernel_size=(2, 3, 2), stride=2, padding=(1, 1, 0), ceil_mode=True,
                        count_include_pad=False), (1, 6, 7, 5, 3), CL),
    ("avg_pool2d", dict(kernel_size=3, stride=1, divisor_override=5), (3, 9, 8), CF),
    ("lp_pool2d", dict(norm_type=2.5, kernel_size=(2, 3), stride=(3, 1)), (2, 10, 12, 3), CL),
    ("adaptive_avg_pool2d", dict(output_size=(4, 5)), (2, 3, 9, 11), CF),
    ("adaptive_max_pool3d", dict(output_size=(3, 2, 4)), (2, 6, 5, 7), CF),
    ("adaptive_max_pool1d", dict(output_size=4), (2, 9, 3), CL),
    ("fractional_max_pool2d", dict(kernel_size=2, output_size=(5, 4)), (2, 3, 11, 9), CF),
    ("fractional_max_pool3d", dict(kernel_size=2, output_ratio=0.5), (2, 6, 5, 7), CF),
    ("max_unpool2d", dict(kernel_size=2, stride=2), (2, 3, 5, 4), CF),
    ("max_unpool1d", dict(kernel_size=3, stride=2, padding=1), (2, 7, 3), CL),
]


def _backward_inputs(rng, name, arguments, shape, data_format):
    """(input, indices or None, the forward's output) in memory, for ``name``."""
    x = values(rng, shape, ties=name.startswith(("max", "adaptive_max", "fractional")))
    forward = getattr(npl, name)
    if name.startswith("max_unpool"):
        nd = int(name[-2])
        y, indices = getattr(npl, f"max_pool{nd}d")(x, **arguments, data_format=data_format,
                                                    return_indices=True)
        return y, indices, forward(y, indices, **arguments, data_format=data_format)
    if name.startswith(("max", "adaptive_max", "fractional")):
        extra = {"rng": np.random.default_rng(0)} if name.startswith("fractional") else {}
        out, indices = forward(x, **arguments, return_indices=True, data_format=data_format,
                               **extra)
        return x, indices, out
    return x, None, forward(x, **arguments, data_format=data_format)


@pytest.mark.parametrize("case", BACKWARD, ids=[f"{c[0]}-{c[3]}" for c in BACKWARD])
def test_backward_matches_in_memory(case):
    name, arguments, shape, data_format = case
    rng = np.random.default_rng(5)
    x, indices, out = _backward_inputs(rng, name, arguments, shape, data_format)
    grad = values(rng, out.shape)
    backward = getattr(npl, name + "_backward")
    arrays = (grad, x) if indices is None else (grad, x, indices)
    taken = inspect.signature(backward).parameters
    arguments = {k: v for k, v in arguments.items() if k in taken}
    want = backward(*arrays, **arguments, data_format=data_format)
    # each array chunked its own way; then only grad_output, then only the input lazy
    odd = [chunked(a, tuple((1, a.shape[i] - 1) if a.shape[i] > 1 and i % 2 == 0 else 2
                            for i in range(a.ndim))) for a in arrays]
    for lazy in (odd, [odd[0], *arrays[1:]], [arrays[0], odd[1], *arrays[2:]]):
        got = backward(*lazy, **arguments, data_format=data_format)
        assert_same(got, want)


def test_layers_take_dask_arrays():
    rng = np.random.default_rng(8)
    x = values(rng, (2, 3, 9, 8), ties=True)
    lazy = chunked(x, (1, (1, 2), (4, 5), 3))
    for make in (lambda: npl.nn.MaxPool2d(3, 2, 1),
                 lambda: npl.nn.AvgPool2d(2, ceil_mode=True),
                 lambda: npl.nn.FractionalMaxPool2d(2, output_size=4,
                                                    rng=np.random.default_rng(0))):
        layer, twin = make(), make()
        want = twin(x)
        assert_same(layer(lazy), want)
        grad = values(rng, want.shape)
        assert_same(layer.backward(chunked(grad, (1, 2, 2, 3))), twin.backward(grad))


# ---------------------------------------------------------------------------------------
# Laziness, errors, empty arrays, clusters


def _never_computed(shape, dtype=np.float32, chunks=2):
    """A dask array whose blocks raise when computed."""

    def fail(block):
        raise RuntimeError("computed")

    return da.zeros(shape, dtype, chunks=chunks).map_blocks(fail, dtype=dtype)


def test_calls_are_lazy():
    x = _never_computed((2, 3, 8, 8))
    grad = _never_computed((2, 3, 4, 4))
    indices = _never_computed((2, 3, 4, 4), np.int64)
    results = [
        npl.max_pool2d(x, 3, 2, 1, return_indices=True)[1],
        npl.avg_pool2d(x, 3, 2, 1),
        npl.lp_pool2d(x, 2, 2),
        npl.adaptive_avg_pool2d(x, 3),
        npl.adaptive_max_pool2d(x, 5, True)[0],
        npl.fractional_max_pool2d(x, 2, output_size=4, rng=np.random.default_rng(0)),
        npl.max_unpool2d(grad, indices, 2),
        npl.max_pool2d_backward(grad, x, indices, 2),
        npl.avg_pool2d_backward(grad, x, 2),
        npl.adaptive_max_pool2d_backward(grad, x, indices),
    ]
    for result in results:
        assert isinstance(result, da.Array)
        with pytest.raises(RuntimeError, match="computed"):
            result.compute()


def test_numpy_calls_do_not_import_dask():
    code = textwrap.dedent("""
        import sys
        import numpy as np
        import numbapool
        numbapool.max_pool2d(np.ones((1, 1, 4, 4), np.float32), 2)
        numbapool.avg_pool1d_backward(np.ones((1, 1, 2), np.float32),
                                      np.ones((1, 1, 4), np.float32), 2)
        assert not any(name.split(".")[0] == "dask" for name in sys.modules), "dask imported"
    """)
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(__file__),
                   env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(
                       os.path.abspath(npl.__file__)))})


def _bad_calls():
    """(function name, arrays, arguments) of calls numbapool rejects."""
    x4 = np.ones((2, 3, 8, 8), np.float32)
    x3 = np.ones((3, 8, 8), np.float32)
    g = np.ones((2, 3, 4, 4), np.float32)
    i = np.zeros((2, 3, 4, 4), np.int64)
    return [
        ("max_pool2d", (x4,), dict(kernel_size=0)),
        ("max_pool2d", (x4,), dict(kernel_size=2, padding=2)),
        ("max_pool2d", (x4,), dict(kernel_size=9)),
        ("max_pool2d", (x4,), dict(kernel_size=2.0)),
        ("max_pool2d", (x4,), dict(kernel_size=2, ceil_mode=1)),
        ("max_pool2d", (x4,), dict(kernel_size=2, data_format="NHWC")),
        ("max_pool2d", (np.ones((8, 8), np.float32),), dict(kernel_size=2)),
        ("max_pool2d", (x4.astype(np.complex64),), dict(kernel_size=2)),
        ("avg_pool2d", (x3,), dict(kernel_size=2, divisor_override=0)),
        ("avg_pool2d", (x4.astype(np.int32),), dict(kernel_size=2)),
        ("avg_pool3d", (np.ones((1, 2, 2, 8, 8), np.float32),), dict(kernel_size=3,
                                                                     padding=1)),
        ("lp_pool2d", (x4,), dict(norm_type=0, kernel_size=2)),
        ("adaptive_avg_pool2d", (x4,), dict(output_size=(2, 2, 2))),
        ("adaptive_max_pool2d", (x3,), dict(output_size=-1)),
        ("fractional_max_pool2d", (x4,), dict(kernel_size=2, output_size=8)),
        ("fractional_max_pool2d", (x4,), dict(kernel_size=2, output_size=4, rng=0)),
        ("fractional_max_pool2d", (x4,), dict(kernel_size=2, output_size=4,
                                              _random_samples=np.full((2, 3, 2), 1.5))),
        ("fractional_max_pool2d", (x4,), dict(kernel_size=2, output_size=4,
                                              random_samples=np.zeros((1, 3, 2)))),
        ("max_unpool2d", (g, i.astype(np.float32)), dict(kernel_size=2)),
        ("max_unpool2d", (g, i[:1]), dict(kernel_size=2)),
        ("max_unpool2d", (g, i), dict(kernel_size=2, output_size=(20, 20))),
        ("max_pool2d_backward", (g[:, :, :3], x4, i), dict(kernel_size=2)),
        ("max_pool2d_backward", (g[:1], x4, i), dict(kernel_size=2)),
        ("max_pool2d_backward", (g.astype(np.float64), x4, i), dict(kernel_size=2)),
        ("avg_pool2d_backward", (g[0], x4), dict(kernel_size=2)),
        ("adaptive_avg_pool2d_backward", (g[:, :2], x4), {}),
        ("adaptive_max_pool2d_backward", (g, x4, i[..., :2]), {}),
    ]


@pytest.mark.parametrize("name, arrays, arguments", _bad_calls(),
                         ids=[f"{c[0]}-{k}" for k, c in enumerate(_bad_calls())])
def test_bad_calls_raise_when_called(name, arrays, arguments):
    function = getattr(npl, name)
    with pytest.raises((ValueError, TypeError)) as in_memory:
        function(*arrays, **arguments)
    # each array lazy in turn: the same error, at once
    for k in range(len(arrays)):
        lazy = list(arrays)
        lazy[k] = da.from_array(arrays[k], chunks=1)
        with pytest.raises(in_memory.type) as error:
            function(*lazy, **arguments)
        assert str(error.value) == str(in_memory.value)


def test_index_values_are_checked_when_computed():
    x = np.ones((1, 1, 4, 4), np.float32)
    bad = np.full((1, 1, 2, 2), 7, np.int64)  # not in the windows of its outputs
    result = npl.max_pool2d_backward(da.ones((1, 1, 2, 2), dtype=np.float32), x, bad, 2)
    with pytest.raises(ValueError, match="outside their output's window"):
        result.compute()


@pytest.mark.parametrize("shape", [(0, 3, 8, 8), (2, 0, 8, 8)])
def test_empty_inputs(shape):
    x = np.ones(shape, np.float32)
    want = npl.adaptive_avg_pool2d(x, 3)
    got = npl.adaptive_avg_pool2d(da.from_array(x), 3)
    assert isinstance(got, da.Array) and got.shape == want.shape and got.dtype == want.dtype
    if shape[1] == 0:  # max pooling takes no empty channels, lazily neither
        with pytest.raises(ValueError) as in_memory:
            npl.max_pool2d(x, 2)
        with pytest.raises(ValueError) as error:
            npl.max_pool2d(da.from_array(x), 2)
        assert str(error.value) == str(in_memory.value)


def test_unknown_chunk_sizes_are_refused():
    x = da.ones((2, 3, 8, 8), chunks=2)
    x = x[x[:, 0, 0, 0] > 0]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        npl.max_pool2d(x, 2)


def test_distributed_worker_processes():
    """Blocks computed by a LocalCluster's worker processes (kernels compile, or load
    from NUMBA_CACHE_DIR, in each worker)."""
    distributed = pytest.importorskip("distributed")
    rng = np.random.default_rng(6)
    x = values(rng, (2, 3, 20, 18), ties=True)
    lazy = chunked(x, (1, (1, 2), (7, 13), (5, 13)))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        assert_same(npl.max_pool2d(lazy, 3, 2, 1, return_indices=True),
                    npl.max_pool2d(x, 3, 2, 1, return_indices=True))
        assert_same(npl.adaptive_avg_pool2d(lazy, (10, 6)), npl.adaptive_avg_pool2d(x, (10, 6)))
        grad = values(rng, (2, 3, 10, 9))
        assert_same(npl.avg_pool2d_backward(chunked(grad, (1, 2, 5, 9)), lazy, 2),
                    npl.avg_pool2d_backward(grad, x, 2))
