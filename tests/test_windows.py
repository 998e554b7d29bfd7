"""numbapool.windows: the windows it reports are the ones the kernels read, and the ones
the independent reference (tests/reference.py) places."""

import itertools
import math

import numpy as np
import pytest

import numbapool as npl
import reference

# (function, spatial input size, args, kwargs)
FIXED_CASES = [
    ("max_pool1d", (11,), (3, 2, 1), {}),
    ("max_pool2d", (9, 8), (3, 2, 1), {"dilation": (2, 1), "ceil_mode": True}),
    ("max_pool2d", (7, 7), (2,), {"ceil_mode": True}),
    ("max_pool3d", (5, 6, 7), (3, (1, 2, 3), 1), {"dilation": 2}),
    ("adaptive_max_pool1d", (13,), (5,), {}),
    ("adaptive_max_pool2d", (4, 4), ((3, 4),), {}),
    ("adaptive_max_pool3d", (5, 7, 3), ((2, 3, 5),), {}),
    ("fractional_max_pool2d", (10, 9), (2,), {"output_size": 4,
                                              "random_samples": (0.3, 0.7)}),
    ("fractional_max_pool3d", (9, 8, 7), ((2, 3, 2),), {"output_ratio": 0.5,
                                                        "random_samples": (0.9, 0.1, 0.5)}),
]
AVERAGE_CASES = [
    ("avg_pool1d", (11,), (3, 2, 1), {}),
    ("avg_pool2d", (9, 8), (3, 2, 1), {"ceil_mode": True, "count_include_pad": False}),
    ("avg_pool2d", (9, 8), (3, 2, 1), {"ceil_mode": True}),
    ("avg_pool3d", (5, 6, 7), (3, (1, 2, 3), 1), {"divisor_override": 4}),
    ("adaptive_avg_pool2d", (13, 13), (7,), {}),
    ("adaptive_avg_pool3d", (4, 5, 6), ((3, None, 4),), {}),
    ("lp_pool2d", (9, 8), (1, 3, 2), {"ceil_mode": True}),
]


def _call(name, size, args, kwargs, x, **extra):
    kwargs = dict(kwargs)
    samples = kwargs.pop("random_samples", None)
    if samples is not None:
        kwargs["random_samples"] = np.asarray(samples, np.float32).reshape(1, 1, -1)
    return getattr(npl, name)(x, *args, **kwargs, **extra)


@pytest.mark.parametrize("name, size, args, kwargs", FIXED_CASES)
def test_max_type_windows_are_the_kernels(name, size, args, kwargs):
    """On increasing values a max-type output picks its window's last tap inside the
    input, on decreasing ones its first: both must be what the windows say."""
    w = npl.windows(name, size, *args, **kwargs)
    plane = np.arange(np.prod(size), dtype=np.float32).reshape(1, 1, *size)
    for x, pick in ((plane, -1), (-plane, 0)):
        out, indices = _call(name, size, args, kwargs, x, return_indices=True)
        assert out.shape[2:] == w.output_size
        for o in itertools.product(*map(range, w.output_size)):
            tap = tuple(region[pick] for region in w.region(*o))
            assert indices[(0, 0, *o)] == np.ravel_multi_index(tap, size), (name, o)


@pytest.mark.parametrize("name, size, args, kwargs", AVERAGE_CASES)
def test_average_divisors_and_counts_are_the_kernels(name, size, args, kwargs):
    """Pooling ones: an average gives count / divisor, LP (p=1) gives the count."""
    w = npl.windows(name, size, *args, **kwargs)
    out = _call(name, size, args, kwargs, np.ones((1, 1, *size)))[0, 0]
    counts = math.prod(np.ix_(*(d.count for d in w.dims)))
    if name.startswith("lp"):
        assert w.divisor is None
        np.testing.assert_allclose(out, counts)
    else:
        np.testing.assert_allclose(out, counts / w.divisor)


def test_windows_match_the_reference():
    """Average windows and divisors, adaptive ranges and fractional starts as the slow
    reference places them."""
    size, kernel, stride, padding = (9, 8), (3, 3), (2, 2), (1, 1)
    for include_pad in (True, False):
        w = npl.windows(npl.avg_pool2d, size, kernel, stride, padding,
                        count_include_pad=include_pad)
        for o in itertools.product(*map(range, w.output_size)):
            ranges, divisor = reference._avg_window(o, size, kernel, stride, padding,
                                                    include_pad, None)
            assert w.region(*o) == tuple(ranges) and w.divisor[o] == divisor
    for size, out in ((13, 7), (4, 3), (5, 9), (7, 1)):
        w = npl.windows("adaptive_avg_pool1d", (size,), out)
        assert [range(a, b) for a, b in zip(w.dims[0].start, w.dims[0].stop)] == \
            [reference._adaptive_range(o, size, out) for o in range(out)]
    for dtype in (np.float16, np.float32, np.float64):
        sample = dtype(0.37)
        w = npl.windows("fractional_max_pool2d", (50, 41), 3, output_size=(17, 11),
                        random_samples=(0.5, float(sample)), dtype=dtype)
        # sample 1 drives H (dim 0) in PyTorch's 2d order
        assert w.dims[0].start.tolist() == reference.fractional_intervals(
            float(sample), 50, 17, 3, dtype)


def test_unpool_windows_hold_the_indices_max_pool_reports():
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 7))
    _, indices = npl.max_pool2d(x, 3, 2, 1, return_indices=True)
    w = npl.windows(npl.max_unpool2d, indices.shape[2:], 3, 2, 1, output_size=(9, 7))
    rows, cols = np.unravel_index(indices, (9, 7))
    for (n, c, i, j), row, col in zip(np.ndindex(indices.shape), rows.flat, cols.flat):
        region = w.region(i, j)
        assert row in region[0] and col in region[1]


def test_layers_report_their_windows():
    assert npl.nn.AvgPool2d(3, 2, 1).windows((9, 8)).divisor.tolist() == \
        npl.windows(npl.avg_pool2d, (9, 8), 3, 2, 1).divisor.tolist()
    fractional = npl.nn.FractionalMaxPool2d(2, output_size=3)
    assert fractional.windows((8, 8), random_samples=(0.2, 0.4)).output_size == (3, 3)
    unpooled = npl.nn.MaxUnpool1d(2).windows((4,), output_size=(9,))
    assert unpooled.dims[0].stop.tolist() == [2, 4, 6, 8]


def test_bad_arguments():
    with pytest.raises(ValueError, match="not a numbapool pooling function"):
        npl.windows(np.mean, (4, 4), 2)
    with pytest.raises(ValueError, match="kernel_size"):
        npl.windows(npl.max_pool2d, (4, 4), 0)
    with pytest.raises(ValueError, match="pad should be at most half"):
        npl.windows(npl.max_pool2d, (4, 4), 2, 1, 2)
    with pytest.raises(TypeError, match="windows\\(max_pool2d"):
        npl.windows(npl.max_pool2d, (4, 4))
    with pytest.raises(ValueError, match="random_samples"):
        npl.windows(npl.fractional_max_pool2d, (8, 8), 2, output_size=3)
    with pytest.raises(ValueError, match="random_samples"):
        npl.windows(npl.fractional_max_pool2d, (8, 8), 2, output_size=3,
                    random_samples=(0.5, 1.0))
    with pytest.raises(ValueError, match="input_size"):
        npl.windows(npl.max_pool2d, (4, -1), 2)
    w = npl.windows(npl.max_pool2d, (4, 4), 2)
    with pytest.raises(ValueError, match="outside the output size"):
        w.region(2, 0)
    with pytest.raises(ValueError, match="one index per spatial dim"):
        w.region(0)


def test_docstring_example_runs():
    import doctest

    from numbapool import _inspection

    assert doctest.testmod(_inspection).failed == 0
