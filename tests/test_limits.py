"""Arguments at and past the limits, and the conditions users meet around the kernels: every
call either gives the reference's answer or a ValueError/TypeError naming the bad value,
whatever was called before, and nothing grows or drifts with the size of the input.

One test per class of defect: int64 window arithmetic, the LP norm range, sizes as Python
and NumPy integers only, unpooling's output_size in the caller's data_format, masked
arrays, foreign max indices, a layer's kept input, fractional samples in 16-bit floats,
accurate long sums, bounded window tables; then a fuzz over argument values.
"""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numbapool as npl
import reference as ref
from numbapool import _cpu, _ops, _plans, _reductions
from oracles import assert_close, assert_exact, bfloat16, make_input
from ops_table import ROWS

X = np.random.default_rng(0).standard_normal((2, 3, 8, 7)).astype(np.float32)
HUGE = 2 ** 63 - 1


def run_python(code):
    """``code`` in a fresh interpreter; its stdout (it must exit cleanly)."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


# --- int64 window arithmetic --------------------------------------------------------------


@pytest.mark.parametrize("call,match", [
    (lambda: npl.avg_pool3d(np.ones((1, 1, 2, 2, 2), np.float32), (1, 1, 2 ** 32 + 1),
                            padding=(0, 0, 2 ** 31)), "4294967297"),
    (lambda: npl.avg_pool1d(np.ones((1, 1, 9), np.float32), 3, stride=2 ** 62),
     "4611686018427387904"),
    (lambda: npl.max_pool2d(X, 2, stride=HUGE), str(HUGE)),
    (lambda: npl.max_pool2d(X, 2, dilation=2 ** 61), str(2 ** 61)),
    (lambda: npl.max_pool1d(X[0], 2 ** 62, padding=2 ** 61), str(2 ** 62)),
    (lambda: npl.adaptive_avg_pool2d(X, 2 ** 40), str(2 ** 40)),
    (lambda: npl.adaptive_max_pool1d(X[0], HUGE), str(HUGE)),
    (lambda: npl.avg_pool2d(X, 2, divisor_override=2 ** 63), str(2 ** 63)),
    (lambda: npl.lp_pool2d(X, 2.0, 2, stride=2 ** 62), str(2 ** 62)),
    (lambda: npl.fractional_max_pool2d(X, 2, output_size=2 ** 62), str(2 ** 62)),
    (lambda: npl.max_unpool2d(*npl.max_pool2d(X, 2, return_indices=True), 2,
                              output_size=(2 ** 40, 2 ** 40)), str(2 ** 40)),
])
def test_sizes_past_int64_window_arithmetic_are_value_errors(call, match):
    """Sizes whose window bounds, divisors or outputs would overflow int64 (or memory) are
    refused up front, naming the value, instead of wrapping around."""
    with pytest.raises(ValueError, match=match):
        call()


def test_large_valid_sizes_still_work():
    x = np.arange(10, dtype=np.float32).reshape(1, 1, 10)
    assert_exact(npl.max_pool1d(x, 3, stride=2 ** 40),
                 ref.max_pool(x, (3,), (2 ** 40,), (0,), (1,), False)[0])
    assert_exact(npl.avg_pool1d(x, 2, divisor_override=2 ** 40),
                 ref.avg_pool(x, (2,), (2,), (0,), False, True, 2 ** 40))


# --- LP norm range ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype,norm_type", [(np.float32, 1e39), (np.float32, -1e39),
                                             (np.float32, 1e-300), (np.float16, 1e39),
                                             (np.float64, 1e-320)])
def test_norm_type_outside_the_compute_type_is_a_value_error(dtype, norm_type):
    """p and 1/p must both be finite in the type the p-norm is computed in (float32 for
    16-bit input): 1e39 gave all ones in float32, 1e-300 a ZeroDivisionError."""
    with pytest.raises(ValueError, match="norm_type"):
        npl.lp_pool2d(X.astype(dtype), norm_type, 2)


def test_norm_type_at_the_edge_of_the_range_matches_the_reference():
    x = np.abs(X) + 0.5
    for p in (1e-3, 30.0, -30.0):
        assert_close(npl.lp_pool2d(x, p, 2), ref.lp_pool(x, p, (2, 2), (2, 2), False),
                     np.float32)


# --- sizes: Python and NumPy integers, nothing else, every time ----------------------------


def _integer_arguments():
    """``(op name, arrays, kwargs, keyword)`` for each integer-valued argument of each
    op-table family's sample call."""
    cases = []
    for op in _ops.OPS:
        nd = 2 if 2 in op.dims else op.dims[0]
        arrays, kwargs = ROWS[op.name].inputs(np.random.default_rng(1), nd, np.float32)
        for key, value in kwargs.items():
            values = value if isinstance(value, tuple) else (value,)
            if values and all(type(v) is int for v in values):
                cases.append((op.function_name(nd), arrays, kwargs, key))
    return cases


def _with(value, convert):
    return tuple(map(convert, value)) if isinstance(value, tuple) else convert(value)


@pytest.mark.parametrize("case", _integer_arguments(),
                         ids=lambda case: f"{case[0]}-{case[3]}")
def test_every_size_takes_numpy_integers_and_refuses_bools_and_floats(case):
    name, arrays, kwargs, key = case
    fn = getattr(npl, name)
    expected = fn(*arrays, **kwargs)
    for scalar in (np.int64, np.int32, np.uint16, np.intp):
        got = fn(*arrays, **{**kwargs, key: _with(kwargs[key], scalar)})
        for part, want in zip(got if isinstance(got, tuple) else (got,),
                              expected if isinstance(expected, tuple) else (expected,)):
            assert_exact(part, want)
    for bad in (lambda v: float(v), lambda v: np.float64(v), lambda v: bool(v),
                lambda v: np.bool_(v), lambda v: np.array(v)):
        with pytest.raises(TypeError, match=key):
            fn(*arrays, **{**kwargs, key: _with(kwargs[key], bad)})


def test_validation_does_not_depend_on_what_was_called_before():
    """A bool or a float equal to an int seen before is still refused (the validation
    memo keys on types too), in a fresh process and after the int was accepted."""
    code = """
        import numpy as np, numbapool as npl
        x = np.ones((1, 1, 6, 6), np.float32)
        def outcome(**kwargs):
            try:
                npl.max_pool2d(x, **kwargs)
                return "ok"
            except (TypeError, ValueError) as error:
                return type(error).__name__
        bad = [dict(kernel_size=3, padding=(1, True)), dict(kernel_size=2.0),
               dict(kernel_size=(2, np.float64(2))), dict(kernel_size=2, stride=True)]
        good = [dict(kernel_size=3, padding=(1, 1)), dict(kernel_size=2),
                dict(kernel_size=(2, 2)), dict(kernel_size=2, stride=1)]
        first = [outcome(**kwargs) for kwargs in bad]
        for kwargs in good:
            assert outcome(**kwargs) == "ok"
        print(first, [outcome(**kwargs) for kwargs in bad])
    """
    assert run_python(code).strip() == str(["TypeError"] * 4) + " " + str(["TypeError"] * 4)


# --- channels-last scatter (unpooling, fractional gradients) ---------------------------


@pytest.mark.parametrize("n, c, size", [(3, 70, (20, 24)), (2, 130, (9, 9)), (1, 5, (64, 64))])
def test_channels_last_unpooling_with_repeated_indices_matches_the_reference(n, c, size):
    # channel blocks that do not divide C, one block, a single batch entry; sizes on both
    # sides of the parallel threshold; many indices repeat (the last one must win)
    rng = np.random.default_rng(n * c)
    x = rng.standard_normal((n, *size, c)).astype(np.float32).transpose(0, 3, 1, 2)
    out_size = tuple(2 * s for s in size)
    idx = rng.integers(0, np.prod(out_size) // 8, size=(n, *size, c)).transpose(0, 3, 1, 2)
    got = npl.max_unpool2d(x, idx, 2, output_size=out_size)
    assert_exact(got, ref.max_unpool(x, idx, out_size))
    assert got.strides[1] == got.itemsize   # channels-last memory kept
    # the accumulating scatter: fractional pooling's gradient in both layouts
    samples = rng.random((n, c, 2)).astype(np.float32)
    y, ind = npl.fractional_max_pool2d(x, 2, output_size=(size[0] // 2, size[1] // 2),
                                       return_indices=True, random_samples=samples)
    grad = rng.standard_normal(y.shape).astype(np.float32)
    args = (2, (size[0] // 2, size[1] // 2))
    assert_exact(npl.fractional_max_pool2d_backward(grad, x, ind, *args),
                 npl.fractional_max_pool2d_backward(*map(np.ascontiguousarray, (grad, x, ind)),
                                                    *args))


# --- unpooling's output_size follows data_format ------------------------------------------


def test_unpool_output_size_in_the_callers_data_format():
    pooled, idx = npl.max_pool2d(X, 2, return_indices=True)
    want = npl.max_unpool2d(pooled, idx, 2, output_size=(2, 3, 8, 7))
    cl = (0, 2, 3, 1)
    for output_size in ((2, 8, 7, 3), (8, 7)):
        got = npl.max_unpool2d(pooled.transpose(cl), idx.transpose(cl), 2,
                               output_size=output_size, data_format="channels_last")
        assert got.shape == (2, 8, 7, 3)
        assert_exact(got.transpose(0, 3, 1, 2), want)
    with pytest.raises(ValueError, match="output_size"):  # a channels-first size
        npl.max_unpool2d(pooled.transpose(cl), idx.transpose(cl), 2,
                         output_size=(2, 3, 8, 7), data_format="channels_last")


# --- masked arrays ------------------------------------------------------------------------


def test_masked_arrays_are_refused_in_a_fresh_process_and_after_plain_calls():
    code = """
        import numpy as np, numbapool as npl
        x = np.ones((1, 1, 4, 4), np.float32)
        masked = np.ma.masked_array(x, mask=x > 0)
        def outcome():
            try:
                npl.max_pool2d(masked, 2)
                return "accepted"
            except TypeError as error:
                assert "masked" in str(error)
                return "TypeError"
        first = outcome()
        npl.max_pool2d(x, 2)
        print(first, outcome())
    """
    assert run_python(code).split() == ["TypeError", "TypeError"]


# --- foreign max indices ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["max_pool2d", "adaptive_max_pool2d", "max_pool1d",
                                  "adaptive_max_pool3d", "max_pool3d"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_max_gradients_refuse_indices_their_windows_cannot_report(name, channels_last):
    """An index outside its output's window (one from another call, or out of the plane)
    is a ValueError, not a dropped or misplaced gradient, in either memory layout and
    wherever it sits (first or last channel and position)."""
    nd = int(name[-2])
    x = np.random.default_rng(2).standard_normal((2, 3) + (6,) * nd).astype(np.float32)
    if channels_last:
        x = np.ascontiguousarray(np.moveaxis(x, 1, -1)).transpose(0, nd + 1, *range(1, nd + 1))
    args = (2,) if name.startswith("max") else (3,)
    out, idx = getattr(npl, name)(x, *args, return_indices=True)
    backward = getattr(npl, name + "_backward")
    grad = np.ones_like(out)
    backward_args = args if name.startswith("max") else ()
    assert_close(backward(grad, x, idx, *backward_args), ref.max_backward(grad, x, idx),
                 np.float32)
    plane = 6 ** nd
    for bad_value in (plane, -1, int(idx.flat[-1])):  # past the plane, negative, far away
        for at in (0, -1):
            bad = idx.copy(order="K")   # in idx's memory layout
            bad[(at,) * bad.ndim] = bad_value if at == 0 or bad_value != int(idx.flat[-1]) \
                else int(idx.flat[0])
            with pytest.raises(ValueError, match="indic|index"):
                backward(grad, x, bad, *backward_args)


# --- a layer's kept input -----------------------------------------------------------------


@pytest.mark.parametrize("layer", [npl.nn.LPPool2d(2.0, 2), npl.nn.AvgPool2d(2),
                                   npl.nn.MaxPool2d(2), npl.nn.AdaptiveAvgPool2d(3)])
def test_layer_backward_ignores_later_changes_to_its_input(layer):
    """What backward needs is kept at forward time: changing the input array in place
    afterwards does not change the gradient."""
    x = np.abs(X) + 0.1
    out = layer(x)
    out = out[0] if isinstance(out, tuple) else out
    grad = np.random.default_rng(3).standard_normal(out.shape).astype(np.float32)
    want = layer.backward(grad)
    x[...] = 7.0  # in place, after the forward
    assert_exact(layer.backward(grad), want)


# --- fractional samples in 16-bit floats --------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float16] + ([bfloat16] if bfloat16 else []))
def test_fractional_layer_draws_valid_samples_every_call(dtype):
    """Samples drawn in float32 could round up to 1.0 in float16 (a ValueError on about
    half the calls): they are drawn valid in the input's sample type."""
    layer = npl.nn.FractionalMaxPool2d(2, output_ratio=0.5)
    x = np.random.default_rng(4).standard_normal((8, 16, 12, 12)).astype(dtype)
    for _ in range(100):
        assert layer(x).shape == (8, 16, 6, 6)


# --- accurate sums ------------------------------------------------------------------------


@pytest.mark.parametrize("channels_last", [False, True])
def test_long_float32_means_are_accurate(channels_last):
    """Means of 4096 x 4096 float32 planes within 1e-6 of the exact mean (0.1004 and
    0.1153 came out before sums were carried in float64)."""
    rng = np.random.default_rng(5)
    for plane in (np.full((4096, 4096), 0.1, np.float32),
                  rng.standard_normal((4096, 4096)).astype(np.float32) + 3):
        x = plane[None, None]
        kwargs = {}
        if channels_last:
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
            kwargs = {"data_format": "channels_last"}
        got = npl.adaptive_avg_pool2d(x, 1, **kwargs).item()
        exact = plane.astype(np.float64).mean()
        assert abs(got - exact) <= 1e-6 * abs(exact), (got, exact)
        got = npl.avg_pool2d(x, 4096, **kwargs).item()
        assert abs(got - exact) <= 1e-6 * abs(exact), (got, exact)


# --- kernels specialised for compile time ------------------------------------------------


@pytest.mark.parametrize("p", [1.0, 2.0])
def test_lp_norms_built_into_kernels_equal_the_norm_read_at_run_time(p, monkeypatch):
    """LP pooling with p = 1 or 2 runs kernels with p built in (their powers compile to
    products and a square root): bitwise the same values and gradients as the kernels that
    read p at run time, every rank and both memory layouts."""
    assert _reductions.lp(p) is _reductions.P_NORMS[p]
    rng = np.random.default_rng(8)
    cases = []
    for nd, shape in ((1, (2, 5, 40)), (2, (2, 5, 12, 11)), (3, (1, 3, 6, 7, 8))):
        x = rng.standard_normal(shape).astype(np.float32)
        x.flat[::7] = 0   # zero windows sums have a zero gradient
        for memory in (x, np.ascontiguousarray(np.moveaxis(x, 1, -1))):
            cl = memory is not x
            kwargs = {"data_format": "channels_last"} if cl else {}
            cases.append((nd, memory, kwargs))

    def results():
        _plans.clear()
        out = []
        for nd, x, kwargs in cases:
            y = getattr(npl, f"lp_pool{nd}d")(x, p, 3, 2, **kwargs)
            grad = np.linspace(-1, 1, y.size, dtype=np.float32).reshape(y.shape)
            out += [y, getattr(npl, f"lp_pool{nd}d_backward")(grad, x, p, 3, 2, **kwargs)]
        return out

    built_in = results()
    monkeypatch.setattr(_reductions, "P_NORMS", {})
    assert _reductions.lp(p) is _reductions.P_NORM
    for got, want in zip(built_in, results()):
        assert_exact(got, want)


@pytest.mark.parametrize("name, args", [("avg_pool2d", ((1, 3), (1, 2), (0, 1))),
                                        ("avg_pool3d", ((1, 1, 4), 1, (0, 0, 2))),
                                        ("lp_pool2d", (2.0, (1, 3), (1, 2))),
                                        ("adaptive_avg_pool2d", ((9, 4),))])
def test_sums_over_windows_one_line_high_match_the_reference(name, args):
    """Windows that span one input line run their own kernel (``_cpu.sum_line_kernel``),
    as 1d pooling does: the reference's values and gradients, both memory layouts."""
    nd = int(name[-2])
    shape = (2, 3) + (9, 13) if nd == 2 else (2, 3, 5, 4, 13)
    x = np.random.default_rng(9).standard_normal(shape).astype(np.float32)
    family = next(op for op in _ops.OPS if name.startswith(op.name))
    params = [p for p in family.forward_params() if p.name != "data_format"]
    kwargs = {p.name: p.default for p in params[len(args):]}
    kwargs.update(zip((p.name for p in params), args))
    row = ROWS[family.name]
    want = row.forward((x,), kwargs, nd)
    grad = np.random.default_rng(10).standard_normal(want.shape).astype(np.float32)
    backward_kwargs = {k: v for k, v in kwargs.items() if k not in row.backward_drops}
    want_grad = row.backward(grad, (x,), kwargs, nd, None)
    for cl in (False, True):
        memory = np.ascontiguousarray(np.moveaxis(x, 1, -1)).transpose(
            0, nd + 1, *range(1, nd + 1)) if cl else x
        assert_close(getattr(npl, name)(memory, *args), want, np.float32)
        assert_close(getattr(npl, name + "_backward")(grad, memory, **backward_kwargs),
                     want_grad, np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int8])
def test_max_pooling_of_unit_stride_matches_the_reference(dtype):
    """Windows one input apart take each tap in one pass over the outputs whose windows
    lie whole inside the input (``_cpu._unit_stride_run``), the others one output at a
    time: values and indices equal the reference's (ties, NaN and +-inf included), for
    runs that cover every output, some, one or none, with padding and dilation."""
    rng = np.random.default_rng(12)
    for nd, size, kernel, padding, dilation in (
            (1, 40, 3, 0, 1), (1, 40, 5, 2, 1), (1, 40, 3, 1, 3), (1, 3, 3, 1, 1),
            (1, 5, 5, 2, 1), (1, 2, 2, 1, 1), (2, 9, 3, 1, 1), (2, 9, 4, 2, 2),
            (3, 6, 3, 1, 1)):
        shape = (2, 3) + (size,) * nd
        x = make_input(rng, shape, dtype, specials=True)
        args = ((kernel,) * nd, (1,) * nd, (padding,) * nd, (dilation,) * nd)
        want = ref.max_pool(x, *args, False)
        got = getattr(npl, f"max_pool{nd}d")(x, *args, return_indices=True)
        assert_exact(got[0], want[0])
        assert_exact(got[1], want[1])
        assert_exact(getattr(npl, f"max_pool{nd}d")(x, *args), want[0])
        if dtype is np.float32 and dilation == 1:
            lp = getattr(npl, f"lp_pool{nd}d")(x, np.inf, kernel, 1)
            assert_exact(lp, ref.lp_pool(x, np.inf, (kernel,) * nd, (1,) * nd, False))


def test_long_one_line_means_are_accurate():
    """Means over one line of 20,000 float32 values (sums carried in float64 in runs of
    ``_cpu.RUN``) within 1e-6 of the exact mean."""
    line = np.random.default_rng(11).standard_normal(40_000).astype(np.float32) + 3
    got = npl.avg_pool1d(line[None, None], 20_000)[0, 0]
    exact = line.astype(np.float64).reshape(2, 20_000).mean(axis=1)
    assert np.all(np.abs(got - exact) <= 1e-6 * np.abs(exact)), (got, exact)


# --- bounded window tables ----------------------------------------------------------------


def test_long_dims_build_no_window_tables():
    _cpu._tables.cache_clear()
    x = np.random.default_rng(6).standard_normal((1, 1, 100_000)).astype(np.float32)
    y, idx = npl.max_pool1d(x, 3, 1, 1, return_indices=True)
    npl.max_pool1d_backward(np.ones_like(y), x, idx, 3, 1, 1)
    npl.adaptive_avg_pool1d(x, 50_000)
    assert _cpu._tables.cache_info().currsize == 0
    assert _cpu._tables.cache_info().maxsize <= 64
    assert_exact(y, ref.max_pool(x, (3,), (1,), (1,), (1,), False)[0])


@pytest.mark.parametrize("name", sorted(ROWS))
def test_window_formula_matches_the_tables(name, monkeypatch):
    """Every family computed from the window formula (what long dims use) equals the
    reference, forward and backward."""
    monkeypatch.setattr(_cpu, "TABLE_LENGTH", 0)
    _plans.clear()
    op = next(op for op in _ops.OPS if op.name == name)
    row = ROWS[name]
    for nd in op.dims:
        arrays, kwargs = row.inputs(np.random.default_rng(nd), nd, np.float32)
        got = getattr(npl, op.function_name(nd))(*arrays, **kwargs)
        want = row.forward(arrays, kwargs, nd)
        for part, expected in zip(got if row.returns_indices else (got,),
                                  want if row.returns_indices else (want,)):
            (assert_exact if row.exact else
             lambda a, b: assert_close(a, b, np.float32))(part, expected)
        out = want[0] if row.returns_indices else want
        grad = np.random.default_rng(7).standard_normal(out.shape).astype(np.float32)
        indices = want[1] if row.returns_indices else None
        backward_kwargs = {k: v for k, v in kwargs.items() if k not in row.backward_drops}
        rest = (indices,) if row.returns_indices else arrays[1:]
        assert_close(getattr(npl, op.function_name(nd) + "_backward")(
            grad, arrays[0], *rest, **backward_kwargs),
            row.backward(grad, arrays, kwargs, nd, indices), np.float32)


# --- a fuzz over argument values ----------------------------------------------------------

EXTREME_INTS = [0, 1, 2, 3, -1, 2 ** 31, 2 ** 32 + 1, 2 ** 61, 2 ** 62, HUGE, -HUGE - 1]
SIZE = st.one_of(
    st.sampled_from(EXTREME_INTS), st.integers(0, 9),
    st.builds(lambda v, t: t(v), st.integers(0, 9),
              st.sampled_from([np.int8, np.int64, np.uint32, np.intp])),
    st.sampled_from([True, False, 2.0, np.float32(2), np.bool_(True), None, "2", (2, 1),
                     (1, 2, 3), (), (np.int64(2), True)]))

FUZZ_X = np.random.default_rng(8).standard_normal((1, 2, 7, 6)).astype(np.float32)


def _tuple2(value):
    return tuple(int(v) for v in value) if isinstance(value, tuple) else (int(value),) * 2


def _fuzz_outcome(name, kwargs):
    """The call's result or its error type; ``AssertionError`` if it accepted arguments
    and disagreed with the reference, or raised anything but ValueError/TypeError."""
    try:
        got = getattr(npl, name)(FUZZ_X, **kwargs)
    except (ValueError, TypeError) as error:
        return type(error).__name__
    if name == "max_pool2d":
        stride = kwargs["stride"] if kwargs["stride"] is not None else kwargs["kernel_size"]
        want = ref.max_pool(FUZZ_X, _tuple2(kwargs["kernel_size"]), _tuple2(stride),
                            _tuple2(kwargs["padding"]), _tuple2(kwargs["dilation"]),
                            bool(kwargs["ceil_mode"]))[0]
    elif name == "avg_pool2d":
        stride = kwargs["stride"] if kwargs["stride"] is not None else kwargs["kernel_size"]
        divisor = kwargs["divisor_override"]
        want = ref.avg_pool(FUZZ_X, _tuple2(kwargs["kernel_size"]), _tuple2(stride),
                            _tuple2(kwargs["padding"]), bool(kwargs["ceil_mode"]), True,
                            None if divisor is None else int(divisor))
    else:
        size = kwargs["output_size"]
        size = tuple(FUZZ_X.shape[2 + i] if v is None else int(v) for i, v in
                     enumerate(size if isinstance(size, tuple) else (size, size)))
        want = ref.adaptive_avg_pool(FUZZ_X, size)
    assert got.shape == want.shape, (name, kwargs)
    assert_close(got, want, np.float32)
    return "ok"


FUZZ_CALL = st.one_of(
    st.fixed_dictionaries({"kernel_size": SIZE, "stride": SIZE, "padding": SIZE,
                           "dilation": SIZE, "ceil_mode": st.sampled_from(
                               [False, True, np.bool_(True), 1, None])}).map(
        lambda kw: ("max_pool2d", kw)),
    st.fixed_dictionaries({"kernel_size": SIZE, "stride": SIZE, "padding": SIZE,
                           "ceil_mode": st.booleans(), "divisor_override": SIZE}).map(
        lambda kw: ("avg_pool2d", kw)),
    st.fixed_dictionaries({"output_size": SIZE}).map(
        lambda kw: ("adaptive_avg_pool2d", kw)))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(FUZZ_CALL)
def test_fuzzed_arguments_match_the_reference_or_raise_value_or_type_errors(call):
    _fuzz_outcome(*call)


def _drawn_calls(count, seed):
    """``count`` calls drawn like ``FUZZ_CALL``'s, reproducibly."""
    rng = np.random.default_rng(seed)
    sizes = EXTREME_INTS + [np.int64(2), np.uint8(3), True, 2.0, None, (2, 1), (1, True)]

    def size():
        return sizes[rng.integers(len(sizes))]

    calls = []
    for _ in range(count):
        kind = rng.integers(3)
        if kind == 0:
            calls.append(("max_pool2d", dict(kernel_size=size(), stride=size(),
                                             padding=size(), dilation=size(),
                                             ceil_mode=bool(rng.integers(2)))))
        elif kind == 1:
            calls.append(("avg_pool2d", dict(kernel_size=size(), stride=size(),
                                             padding=size(), ceil_mode=False,
                                             divisor_override=size())))
        else:
            calls.append(("adaptive_avg_pool2d", dict(output_size=size())))
    return calls


def test_fuzzed_outcomes_are_the_same_in_a_fresh_process():
    """The outcomes of 200 drawn calls, here after everything else ran and in a fresh
    interpreter in the reverse order, are the same."""
    here = [_fuzz_outcome(name, kwargs) for name, kwargs in _drawn_calls(200, 9)]
    code = f"""
        import sys
        sys.path.insert(0, {str(__import__('os').path.dirname(__file__))!r})
        import test_limits as t
        calls = t._drawn_calls(200, 9)
        print([t._fuzz_outcome(name, kwargs) for name, kwargs in reversed(calls)][::-1])
    """
    assert run_python(code).strip() == str(here)
    assert here.count("ok") >= 10  # the draw reaches valid calls too
