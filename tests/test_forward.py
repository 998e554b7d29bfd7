"""Forward parity: numbapool against PyTorch (live) and the slow NumPy reference."""

import math
from functools import partial

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import numbapool as npl
import reference as ref
from oracles import (
    FLOATS,
    INTS,
    assert_close,
    assert_exact,
    assert_exact_pair,
    is_16_bit_float,
    is_channels_last_memory,
    layouts,
    make_input,
    needs_torch,
    to_torch,
    torch,
    torch_call,
)

SHAPES = {1: (2, 3, 9), 2: (2, 3, 7, 6), 3: (1, 2, 5, 4, 6)}

# (kernel, stride, padding, dilation, ceil_mode); tuples are cut to the op's rank
FIXED_CONFIGS = [
    (2, None, 0, 1, False),
    (3, 2, 1, 1, False),
    (3, 2, 1, 1, True),
    (2, 3, 1, 2, True),
    ((3, 2, 1), (1, 2, 3), (1, 1, 0), (1, 2, 1), False),
    ((2, 3, 3), (2, 1, 2), (0, 1, 1), (2, 1, 1), True),
]


def cut(value, nd):
    return value[-nd:] if isinstance(value, tuple) else (value,) * nd


def normalised(config, nd):
    kernel, stride, padding, dilation, ceil_mode = config
    kernel = cut(kernel, nd)
    stride = kernel if stride is None else cut(stride, nd)
    return kernel, stride, cut(padding, nd), cut(dilation, nd), ceil_mode


def fits(x, kernel, stride, padding, dilation, ceil_mode):
    return all(
        ref.output_size_fixed(size, k, s, p, d, ceil_mode) >= 1
        for size, k, s, p, d in zip(x.shape[2:], kernel, stride, padding, dilation)
    )


def every_layout(x, run, check, *others):
    """Run numbapool on every layout of x (and same-shaped ``others``); check each result."""
    for label, arrays, kwargs, back in layouts(x, *others):
        result = run(*arrays, **kwargs)
        results = result if isinstance(result, tuple) else (result,)
        if label == "channels_last_memory" and x.shape[1] > 1 and max(results[0].shape[2:]) > 1:
            assert all(is_channels_last_memory(r) for r in results), label
        check(*(back(r) for r in results))


# --- max pooling ------------------------------------------------------------------------


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("config", FIXED_CONFIGS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_grid(nd, config, dtype):
    rng = np.random.default_rng(nd * 100 + FIXED_CONFIGS.index(config))
    x = make_input(rng, SHAPES[nd], dtype, specials=True)
    kernel, stride, padding, dilation, ceil_mode = normalised(config, nd)
    expected = ref.max_pool(x, kernel, stride, padding, dilation, ceil_mode)
    if torch is not None:
        torch_result = torch_call(f"max_pool{nd}d", x, kernel, stride, padding, dilation,
                                  ceil_mode, return_indices=True)
        assert_exact_pair(torch_result, expected)
    fn = getattr(npl, f"max_pool{nd}d")

    def check(out, idx):
        assert_exact_pair((out, idx), expected)

    every_layout(x, lambda a, **kw: fn(a, kernel, stride, padding, dilation, ceil_mode, True,
                                       **kw), check)
    # without indices numbapool runs another kernel
    every_layout(x, lambda a, **kw: fn(a, kernel, stride, padding, dilation, ceil_mode, **kw),
                 lambda out: assert_exact(out, expected[0]))


def test_max_pool_without_indices_returns_array():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    y = npl.max_pool2d(x, 2)
    assert isinstance(y, np.ndarray)
    assert_exact(y, np.array([[[[5, 7], [13, 15]]]], np.float32))


@pytest.mark.parametrize("dtype", FLOATS + INTS)
def test_max_type_ops_every_dtype(dtype):
    rng = np.random.default_rng(7)
    x = make_input(rng, (2, 3, 6, 7), dtype)
    assert_exact_pair(npl.max_pool2d(x, (3, 2), 2, 1, 1, True, True),
                      ref.max_pool(x, (3, 2), (2, 2), (1, 1), (1, 1), True))
    assert_exact_pair(npl.adaptive_max_pool2d(x, (4, 5), return_indices=True),
                      ref.adaptive_max_pool(x, (4, 5)))
    # windows are placed in the input's float type (float64 samples for integer inputs)
    sample_type = dtype if is_16_bit_float(dtype) else np.float64
    samples = np.minimum(rng.random((2, 3, 2)).astype(sample_type), sample_type(0.999))
    out, idx = npl.fractional_max_pool2d(x, 2, (4, 5), return_indices=True,
                                         random_samples=samples)
    placed_as = x.astype(np.float64) if np.dtype(dtype).kind in "iu" else x
    np.testing.assert_array_equal(idx, ref.fractional_max_pool(placed_as, (2, 2), (4, 5),
                                                               samples)[1])
    assert_exact(out, x.reshape(2, 3, -1)[np.arange(2)[:, None, None], np.arange(3)[None, :, None],
                                        idx.reshape(2, 3, -1)].reshape(out.shape))
    out, idx = npl.max_pool2d(x, 2, return_indices=True)
    assert_exact(npl.max_unpool2d(out, idx, 2, output_size=(6, 7)),
                 ref.max_unpool(out, idx, (6, 7)))


@needs_torch
@pytest.mark.parametrize("dtype", [np.float16, np.int32, np.int64, np.uint8])
def test_max_pool_dtypes_match_torch(dtype):
    rng = np.random.default_rng(3)
    x = make_input(rng, (2, 3, 7, 6), dtype)
    try:
        expected = torch_call("max_pool2d", x, 3, 2, 1, return_indices=True)
    except RuntimeError as error:  # not every integer dtype has a torch CPU kernel
        pytest.skip(f"torch has no kernel: {error}")
    assert_exact_pair(npl.max_pool2d(x, 3, 2, 1, return_indices=True), expected)


# --- average pooling --------------------------------------------------------------------


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("config", FIXED_CONFIGS)
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("divisor_override", [None, -3])
def test_avg_pool_grid(nd, config, count_include_pad, divisor_override):
    rng = np.random.default_rng(nd)
    x = make_input(rng, SHAPES[nd], np.float64)
    kernel, stride, padding, _, ceil_mode = normalised(config, nd)
    padding = tuple(min(p, k // 2) for p, k in zip(padding, kernel))
    if nd == 3 and any(k > s for k, s in zip(kernel, x.shape[2:])):
        pytest.skip("avg_pool3d needs the input to hold a kernel (checked in test_errors)")
    expected = ref.avg_pool(x, kernel, stride, padding, ceil_mode, count_include_pad,
                            divisor_override)
    if torch is not None and (nd > 1 or divisor_override is None):
        assert_close(torch_call(f"avg_pool{nd}d", x, kernel, stride, padding, ceil_mode,
                                count_include_pad, *([divisor_override] if nd > 1 else [])),
                     expected, np.float64)
    fn = getattr(npl, f"avg_pool{nd}d")
    every_layout(x, lambda a, **kw: fn(a, kernel, stride, padding, ceil_mode,
                                       count_include_pad, divisor_override, **kw),
                 lambda y: assert_close(y, expected, np.float64))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", ["avg_pool2d", "adaptive_avg_pool2d", "lp_pool2d"])
def test_average_ops_float_dtypes(dtype, op):
    rng = np.random.default_rng(11)
    x = np.abs(make_input(rng, (2, 3, 8, 7), dtype)) + dtype(0.25)
    args = {"avg_pool2d": (3, 2, 1), "adaptive_avg_pool2d": ((3, 5),),
            "lp_pool2d": (2.0, 3, 2)}[op]
    got = getattr(npl, op)(x, *args)
    x64 = x.astype(np.float64)
    expected = {
        "avg_pool2d": lambda: ref.avg_pool(x64, (3, 3), (2, 2), (1, 1), False, True, None),
        "adaptive_avg_pool2d": lambda: ref.adaptive_avg_pool(x64, (3, 5)),
        "lp_pool2d": lambda: ref.lp_pool(x64, 2.0, (3, 3), (2, 2), False),
    }[op]()
    assert_close(got, expected.astype(dtype), dtype)
    if torch is not None:
        assert_close(got, torch_call(op, x, *args), dtype)


# --- adaptive pooling -------------------------------------------------------------------


ADAPTIVE_SIZES = {1: [(4,), (1,), (13,)], 2: [(3, 4), (1, 1), (5, 11)],
                  3: [(2, 3, 4), (1, 1, 1), (7, 2, 9)]}


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("which", [0, 1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adaptive_grid(nd, which, dtype):
    rng = np.random.default_rng(which)
    x = make_input(rng, SHAPES[nd], dtype, specials=which == 2)
    size = ADAPTIVE_SIZES[nd][which]
    avg_expected = ref.adaptive_avg_pool(x, size)
    max_expected = ref.adaptive_max_pool(x, size)
    if torch is not None:
        assert_close(torch_call(f"adaptive_avg_pool{nd}d", x, size), avg_expected, dtype)
        torch_max = torch_call(f"adaptive_max_pool{nd}d", x, size, return_indices=True)
        assert_exact_pair(torch_max, max_expected)
    avg = getattr(npl, f"adaptive_avg_pool{nd}d")
    every_layout(x, lambda a, **kw: avg(a, size, **kw),
                 lambda y: assert_close(y, avg_expected, dtype))
    amax = getattr(npl, f"adaptive_max_pool{nd}d")

    def check(out, idx):
        assert_exact_pair((out, idx), max_expected)

    every_layout(x, lambda a, **kw: amax(a, size, True, **kw), check)
    every_layout(x, lambda a, **kw: amax(a, size, **kw),
                 lambda out: assert_exact(out, max_expected[0]))


def test_adaptive_none_entries_keep_input_size():
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 6))
    assert npl.adaptive_avg_pool2d(x, (None, 2)).shape == (2, 3, 5, 2)
    assert_close(npl.adaptive_avg_pool2d(x, (None, 2)), ref.adaptive_avg_pool(x, (5, 2)),
                 np.float64)
    assert npl.adaptive_max_pool2d(x, None).shape == x.shape


def test_adaptive_zero_output_size_gives_empty_output():
    x = np.ones((2, 3, 5, 6), np.float32)
    assert npl.adaptive_avg_pool2d(x, (0, 3)).shape == (2, 3, 0, 3)
    out, idx = npl.adaptive_max_pool2d(x, (2, 0), return_indices=True)
    assert out.shape == idx.shape == (2, 3, 2, 0)


# --- LP pooling -------------------------------------------------------------------------


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("norm_type", [1, 2, 3.5, -1.5, math.inf, -math.inf])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_lp_pool(nd, norm_type, ceil_mode):
    rng = np.random.default_rng(5)
    x = make_input(rng, SHAPES[nd], np.float64)
    x[x == 0] = 0.5
    kernel, stride = cut((3, 2, 2), nd), cut((2, 1, 2), nd)
    expected = ref.lp_pool(x, norm_type, kernel, stride, ceil_mode)
    fn = getattr(npl, f"lp_pool{nd}d")
    every_layout(x, lambda a, **kw: fn(a, norm_type, kernel, stride, ceil_mode, **kw),
                 lambda y: assert_close(y, expected, np.float64))
    if torch is not None and math.isfinite(norm_type) and norm_type > 0:
        # PyTorch raises x (not |x|) to p and rescales cut windows: compare where it agrees
        positive = np.abs(x)
        args = (kernel[0], stride[0]) if nd == 1 else (kernel, stride)
        assert_close(fn(positive, norm_type, *args),
                     torch_call(f"lp_pool{nd}d", positive, norm_type, *args), np.float64)


# --- fractional max pooling -------------------------------------------------------------


@pytest.mark.parametrize("nd", [2, 3])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("kernel,output", [(2, (3, 4, 2)), ((3, 1, 2), (2, 3, 4)), (1, (5, 4, 6))])
def test_fractional_max_pool(nd, dtype, kernel, output):
    rng = np.random.default_rng(9)
    x = make_input(rng, (2, 3) + (6, 7, 8)[-nd:], dtype, specials=True)
    kernel, output = cut(kernel, nd), output[-nd:]
    # float16 windows are placed with float16 arithmetic, as in PyTorch
    samples = np.minimum(rng.random((2, 3, nd)).astype(dtype), dtype(0.999))
    expected = ref.fractional_max_pool(x, kernel, output, samples)
    if torch is not None:
        torch_result = torch_call(f"fractional_max_pool{nd}d", x, kernel, output_size=output,
                                  return_indices=True, _random_samples=to_torch(samples))
        assert_exact_pair(torch_result, expected)
    fn = getattr(npl, f"fractional_max_pool{nd}d")

    def check(out, idx):
        assert_exact_pair((out, idx), expected)

    for label, (array,), kwargs, back in layouts(x):
        check(*(back(r) for r in fn(array, kernel, output, return_indices=True,
                                     random_samples=samples[:1] if label == "unbatched"
                                     else samples, **kwargs)))


def test_fractional_output_ratio_and_rng():
    x = np.random.default_rng(0).standard_normal((2, 3, 10, 9)).astype(np.float32)
    y = npl.fractional_max_pool2d(x, 2, output_ratio=0.5, rng=np.random.default_rng(4))
    assert y.shape == (2, 3, 5, 4)
    again = npl.fractional_max_pool2d(x, 2, output_ratio=(0.5, 0.5),
                                      rng=np.random.default_rng(4))
    assert_exact(again, y)
    samples = np.random.default_rng(4).random((2, 3, 2), dtype=np.float32)
    assert_exact(npl.fractional_max_pool2d(x, 2, (5, 4), random_samples=samples), y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fractional_window_arithmetic_uses_the_input_float_type(dtype):
    # size 54, output 43, kernel 11 and this sample: float32 and float64 arithmetic
    # place window 38 differently (checked live below, not taken on trust)
    size, out, kernel = 54, 43, 11
    u = np.uint32(1035895085).view(np.float32)
    in_f32 = ref.fractional_intervals(u, size, out, kernel, np.float32)
    in_f64 = ref.fractional_intervals(u, size, out, kernel, np.float64)
    assert in_f32 != in_f64
    x = np.arange(size, dtype=dtype).reshape(1, 1, 1, size)
    samples = np.array([[[u, 0.0]]], dtype)
    _, idx = npl.fractional_max_pool2d(x, (1, kernel), (1, out), return_indices=True,
                                       random_samples=samples)
    expected = in_f32 if dtype == np.float32 else in_f64
    assert idx.ravel().tolist() == [start + kernel - 1 for start in expected]


# --- max unpooling ----------------------------------------------------------------------


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.int16])
def test_max_unpool_roundtrip(nd, dtype):
    rng = np.random.default_rng(nd)
    x = make_input(rng, SHAPES[nd], dtype)
    y, idx = ref.max_pool(x, (2,) * nd, (2,) * nd, (0,) * nd, (1,) * nd, False)
    size = x.shape[2:]
    expected = ref.max_unpool(y, idx, size)
    fn = getattr(npl, f"max_unpool{nd}d")
    every_layout(y, lambda a, i, **kw: fn(a, i, 2, output_size=size, **kw),
                 lambda out: assert_exact(out, expected), idx)
    if torch is not None and dtype != np.int16:
        assert_exact(torch_call(f"max_unpool{nd}d", y, torch.from_numpy(idx), 2,
                                output_size=size), expected)


def test_max_unpool_duplicate_indices_last_wins():
    x = np.array([[[1.0, 2.0, 3.0]]])
    idx = np.array([[[4, 4, 1]]])
    assert_exact(npl.max_unpool1d(x, idx, 2), np.array([[[0, 3, 0, 0, 2, 0]]], np.float64))


# --- shapes, batches, views -------------------------------------------------------------


def test_empty_batch():
    x = np.zeros((0, 3, 8, 8), np.float32)
    assert npl.max_pool2d(x, 2).shape == (0, 3, 4, 4)
    assert npl.adaptive_avg_pool2d(x, 3).shape == (0, 3, 3, 3)
    out, idx = npl.fractional_max_pool2d(x, 2, 4, return_indices=True)
    assert out.shape == idx.shape == (0, 3, 4, 4)
    assert npl.max_unpool2d(out, idx, 2).shape == (0, 3, 8, 8)


def test_array_likes_and_results_are_numpy():
    y = npl.avg_pool1d([[[1.0, 2.0, 3.0, 4.0]]], 2)
    assert isinstance(y, np.ndarray)
    assert_close(y, np.array([[[1.5, 3.5]]]), np.float64)


def test_input_is_not_modified_or_copied_for_views():
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    before = x.copy()
    npl.max_pool2d(x[:, :, 1:, ::2], 2)
    npl.adaptive_avg_pool2d(x.transpose(0, 1, 3, 2), 3)
    np.testing.assert_array_equal(x, before)


# --- hypothesis-drawn configurations (PyTorch and the reference) -----------------------


def as_given(draw, values):
    """A per-dim size argument in one of the forms PyTorch takes: a tuple, an int, or a
    one-element tuple (the last two only when every dim has the same value)."""
    if len(set(values)) > 1:
        return values
    return draw(st.sampled_from([values, values[0], values[:1]]))


@st.composite
def fixed_cases(draw):
    nd = draw(st.integers(1, 3))
    sizes = tuple(draw(st.integers(1, 7)) for _ in range(nd))
    same = draw(st.booleans())  # equal sizes in every dim, so the short forms get drawn

    def per_dim(strategy):
        values = tuple(draw(strategy) for _ in range(1 if same else nd))
        return values * nd if same else values

    kernel = per_dim(st.integers(1, 4))
    stride = per_dim(st.integers(1, 4))
    dilation = per_dim(st.integers(1, 3))
    padding = per_dim(st.integers(0, min(kernel) // 2))
    ceil_mode = draw(st.booleans())
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + sizes
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int64]))
    layout = draw(st.sampled_from(["contiguous", "channels_last_memory", "data_format",
                                   "strided", "reversed"]))
    seed = draw(st.integers(0, 2**32 - 1))
    given = tuple(as_given(draw, v) for v in (kernel, stride, padding, dilation))
    return nd, shape, kernel, stride, padding, dilation, ceil_mode, dtype, layout, seed, given


def in_layout(x, layout):
    return next((a, kw, back) for label, (a,), kw, back in layouts(x) if label == layout)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fixed_cases())
def test_hypothesis_fixed_windows(case):
    nd, shape, kernel, stride, padding, dilation, ceil_mode, dtype, layout, seed, given = case
    k_given, s_given, p_given, d_given = given  # as the caller writes them
    rng = np.random.default_rng(seed)
    x = make_input(rng, shape, dtype, specials=True)
    array, kwargs, back = in_layout(x, layout)
    if not fits(x, kernel, stride, padding, dilation, ceil_mode):
        with pytest.raises(ValueError, match="Output size is too small"):
            getattr(npl, f"max_pool{nd}d")(array, k_given, s_given, p_given, d_given,
                                           ceil_mode, **kwargs)
        return
    expected = ref.max_pool(x, kernel, stride, padding, dilation, ceil_mode)
    out, idx = getattr(npl, f"max_pool{nd}d")(array, k_given, s_given, p_given, d_given,
                                              ceil_mode, True, **kwargs)
    assert_exact_pair((back(out), back(idx)), expected)
    if torch is not None:
        torch_out, torch_idx = torch_call(f"max_pool{nd}d", x, k_given, s_given, p_given,
                                          d_given, ceil_mode, return_indices=True)
        assert_exact_pair((back(out), back(idx)), (torch_out, torch_idx))
    if nd == 3 and any(k > s for k, s in zip(kernel, x.shape[2:])):
        return
    count_include_pad = bool(seed % 2)
    expected = ref.avg_pool(x, kernel, stride, padding, ceil_mode, count_include_pad, None)
    got = back(getattr(npl, f"avg_pool{nd}d")(array, k_given, s_given, p_given, ceil_mode,
                                             count_include_pad, **kwargs))
    check = assert_exact if np.dtype(dtype).kind in "iu" else partial(assert_close,
                                                                       dtype=dtype)
    check(got, expected)
    if torch is not None:
        check(got, torch_call(f"avg_pool{nd}d", x, k_given, s_given, p_given, ceil_mode,
                              count_include_pad))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 3), st.data())
def test_hypothesis_adaptive(nd, data):
    sizes = tuple(data.draw(st.integers(1, 9)) for _ in range(nd))
    outs = tuple(data.draw(st.integers(1, 12)) for _ in range(nd))
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    layout = data.draw(st.sampled_from(["contiguous", "channels_last_memory", "strided"]))
    x = make_input(np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))), (2, 3) + sizes,
                   dtype, specials=True)
    array, kwargs, back = in_layout(x, layout)
    avg = back(getattr(npl, f"adaptive_avg_pool{nd}d")(array, outs, **kwargs))
    out, idx = getattr(npl, f"adaptive_max_pool{nd}d")(array, outs, True, **kwargs)
    assert_close(avg, ref.adaptive_avg_pool(x, outs), dtype)
    expected = ref.adaptive_max_pool(x, outs)
    assert_exact_pair((back(out), back(idx)), expected)
    if torch is not None:
        assert_close(avg, torch_call(f"adaptive_avg_pool{nd}d", x, outs), dtype)
        torch_out, torch_idx = torch_call(f"adaptive_max_pool{nd}d", x, outs, True)
        assert_exact_pair((back(out), back(idx)), (torch_out, torch_idx))


def test_serial_kernels_match_parallel_kernels(monkeypatch):
    """Small inputs run serial builds of the same kernels: the results are identical."""
    from numbapool import _cpu, _plans

    rng = np.random.default_rng(21)
    x = make_input(rng, (2, 3, 9, 8), np.float32, specials=True)
    x_cl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    calls = [
        lambda a: npl.max_pool2d(a, 3, 2, 1, return_indices=True),
        lambda a: npl.max_pool2d(a, 2),
        lambda a: npl.avg_pool2d(a, 3, 2, 1),
        lambda a: npl.adaptive_avg_pool2d(a, (4, 3)),
        lambda a: npl.adaptive_avg_pool2d(a, 1),
        lambda a: npl.lp_pool2d(a, 2, 3),
        lambda a: npl.avg_pool2d_backward(np.ones((2, 3, 5, 4), np.float32), a, 3, 2, 1),
        lambda a: npl.max_pool2d_backward(*(lambda o, i: (o, a, i))(
            *npl.max_pool2d(a, 3, 2, 1, return_indices=True)), 3, 2, 1),
    ]
    for a in (x, x_cl):
        parallel = [call(a) for call in calls]
        monkeypatch.setattr(_cpu, "PARALLEL_MIN_WORK", 1 << 62)
        _plans.clear()
        serial = [call(a) for call in calls]
        monkeypatch.setattr(_cpu, "PARALLEL_MIN_WORK", 0)
        _plans.clear()
        for p, s in zip(parallel, serial):
            for p_part, s_part in zip(p if isinstance(p, tuple) else (p,),
                                      s if isinstance(s, tuple) else (s,)):
                assert p_part.tobytes() == s_part.tobytes()


@pytest.mark.parametrize("dtype,size,out,kernel,sample", [
    (np.float16, 1213, 1188, 1, 0.9580078125),  # float16 arithmetic: window 1186 at 1213
    (np.float16, 1496, 1296, 3, 0.65771484375),
    (np.float32, 15060884, 14138926, 1, 0.91908860206604),  # float32: tens of millions
])
def test_fractional_windows_that_rounding_pushes_out_stay_inside(dtype, size, out, kernel,
                                                                 sample):
    """The input's float arithmetic can place a window start one past the last window
    (PyTorch stops with an assertion there): numbapool takes the last window instead and
    never reads past the input, whose end here is fenced by a huge value."""
    buffer = np.full(size + 16, np.finfo(dtype).max, dtype)
    x = buffer[:size].reshape(1, 1, 1, size)
    x[...] = np.arange(size) % 7
    # the starts in the input's arithmetic (NumPy rounds each float16 / float32 step)
    u, alpha = dtype(sample), dtype(size - kernel) / dtype(out - 1)
    starts = ((np.arange(out - 1).astype(dtype) + u) * alpha).astype(np.int64) - int(u * alpha)
    assert starts.max() > size - kernel  # a start past the last window
    starts = np.append(np.minimum(starts, size - kernel), size - kernel)
    values, idx = npl.fractional_max_pool2d(x, (1, kernel), (1, out), return_indices=True,
                                            random_samples=np.array([[[sample, 0.0]]], dtype))
    assert idx.max() < size and values.max() <= 6
    windows = x.reshape(-1)[starts[:, None] + np.arange(kernel)]
    np.testing.assert_array_equal(idx.ravel(), starts + windows.argmax(axis=1))
