"""Every family of the op table, every rank, element type and layout, forward, backward and
layer, against the independent reference (rows in ``ops_table.py``).

The family tests (``test_forward.py``, ``test_backward.py``, ...) probe each family's
semantics in depth and against PyTorch; this module makes sure that whatever the op table
generates (functions, gradients, layers, docstrings) is right for every family it holds.
"""

import inspect

import numpy as np
import pytest

import numbapool as npl
from numbapool import _ops
from oracles import FLOATS, INTS, assert_close, assert_exact, layouts
from ops_table import ROWS

CASES = [(op, nd) for op in _ops.OPS for nd in op.dims]


def case_id(case):
    op, nd = case
    return op.function_name(nd)


def element_types(op):
    """The float types, and the integer types the family takes (as PyTorch does)."""
    return FLOATS + tuple(t for t in INTS if np.dtype(t) in op.integers)


def compare(got, expected, exact, dtype):
    if exact or np.dtype(dtype).kind in "iu":
        assert_exact(got, expected)
    else:
        assert_close(got, expected, dtype)


def test_every_family_has_a_reference_row():
    assert {op.name for op in _ops.OPS} == set(ROWS)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_generated_api(case):
    op, nd = case
    name = op.function_name(nd)
    forward, backward = getattr(npl, name), getattr(npl, name + "_backward")
    layer = getattr(npl.nn, op.layer_name(nd))
    for public in (npl.__all__, npl.functional.__all__):
        assert name in public and name + "_backward" in public
    assert op.layer_name(nd) in npl.nn.__all__
    def in_signature_order(params):  # keyword-only ones come last
        return ([p.name for p in params if not p.keyword_only]
                + [p.name for p in params if p.keyword_only])

    forward_params = list(inspect.signature(forward).parameters)
    assert forward_params == ["input", *in_signature_order(op.forward_params()),
                              "data_format"]
    assert list(inspect.signature(backward).parameters) == [
        "grad_output", "input", *in_signature_order(op.backward_params()), "data_format"]
    for function in (forward, backward):
        assert function.__module__ == "numbapool.functional"
        assert function.__name__ == function.__qualname__ in (name, name + "_backward")
        for param in inspect.signature(function).parameters:
            assert f"    {param}" in function.__doc__, (function.__name__, param)
    constructor = inspect.signature(layer.__init__).parameters
    assert list(constructor)[1:] == [p.name for p in op.constructor_params(nd)] + [
        "data_format"]
    assert layer.__module__ == "numbapool.nn" and name in layer.__doc__


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_forward_and_backward_match_the_reference(case):
    op, nd = case
    row = ROWS[op.name]
    forward = getattr(npl, op.function_name(nd))
    backward = getattr(npl, op.function_name(nd) + "_backward")
    for dtype in element_types(op):
        rng = np.random.default_rng(nd)
        arrays, kwargs = row.inputs(rng, nd, dtype)
        expected = row.forward(arrays, kwargs, nd)
        expected = expected if row.returns_indices else (expected,)
        for label, laid_out, extra, back in layouts(*arrays):
            got = forward(*laid_out, **kwargs, **extra)
            got = got if row.returns_indices else (got,)
            for part, want in zip(got, expected):
                compare(back(part), want, row.exact, dtype)
        if np.dtype(dtype).kind in "iu":
            continue  # integers have no gradient
        out = expected[0]
        grad = np.random.default_rng(7).standard_normal(out.shape).astype(dtype)
        indices = expected[1] if row.returns_indices else None
        want = row.backward(grad, arrays, kwargs, nd, indices)
        backward_kwargs = {k: v for k, v in kwargs.items() if k not in row.backward_drops}
        extra_arrays = (indices,) if row.returns_indices else arrays[1:]
        for label, (g, x, *rest), extra, back in layouts(grad, arrays[0], *extra_arrays):
            got = backward(g, x, *rest, **backward_kwargs, **extra)
            assert got.shape == x.shape and got.dtype == x.dtype, label
            compare(back(got), want, False, dtype)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_layer_matches_its_functions(case):
    op, nd = case
    row = ROWS[op.name]
    arrays, kwargs = row.inputs(np.random.default_rng(3), nd, np.float32)
    layer_kwargs = {p.name: kwargs[p.name] for p in op.constructor_params(nd)
                    if p.name in kwargs}
    if op.name == "fractional_max_pool":
        layer_kwargs["_random_samples"] = kwargs["random_samples"]
    layer = getattr(npl.nn, op.layer_name(nd))(**layer_kwargs)
    call_arrays = arrays[:1]
    if op.name == "max_unpool":
        got = layer(arrays[0], arrays[1], kwargs["output_size"])
    else:
        got = layer(*call_arrays)
    expected = getattr(npl, op.function_name(nd))(*arrays, **kwargs)
    for part, want in zip(got if isinstance(got, tuple) else (got,),
                          expected if isinstance(expected, tuple) else (expected,)):
        assert_exact(part, want)
    out = got[0] if isinstance(got, tuple) else got
    grad = np.random.default_rng(5).standard_normal(out.shape).astype(np.float32)
    indices = expected[1] if row.returns_indices else None
    want = row.backward(grad, arrays, kwargs, nd, indices)
    assert_close(layer.backward(grad), want, np.float32)


def test_benchmark_cases_call_functions_of_the_table():
    from numbapool.benchmark.cases import CASES as BENCH, OVERHEAD_CASES

    names = set(_ops.function_names())
    for case in BENCH + OVERHEAD_CASES:
        assert set(case.functions) <= names, case.id


def test_import_loads_no_optional_package():
    import subprocess
    import sys

    code = ("import sys, numbapool, numbapool.nn\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('ml_dtypes', 'cupy', 'torch', 'dask', 'matplotlib') or "
            "m.startswith('numba.cuda')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_16_bit_loads_are_exact_and_bfloat16_stores_round_to_nearest_even():
    """Over every bit pattern: what kernels read of float16 and bfloat16 is the value
    NumPy (ml_dtypes) reads; what CUDA kernels store as bfloat16 is what ml_dtypes
    rounds to."""
    from numba import njit

    from numbapool import _elements

    def apply(function, values, out):
        @njit
        def each(values, out):
            for i in range(values.size):
                out[i] = function(values[i])

        each(values, out)

    bits = np.arange(1 << 16, dtype=np.uint16)
    loaded = np.empty(bits.size, np.float32)
    apply(_elements.load_half_bits, bits, loaded)
    np.testing.assert_array_equal(loaded, bits.view(np.float16).astype(np.float32))
    bfloat16 = pytest.importorskip("ml_dtypes").bfloat16
    apply(_elements.load_bfloat16_bits, bits, loaded)
    np.testing.assert_array_equal(loaded, bits.view(bfloat16).astype(np.float32))
    rng = np.random.default_rng(0)
    values = np.concatenate([
        (rng.standard_normal(20000) * 10.0 ** rng.integers(-45, 39, 20000)).astype(np.float32),
        loaded[::97],  # bfloat16 values themselves, subnormals and both infinities included
        np.array([3.4e38, 2**-134, 3 * 2**-135, -0.0, np.nextafter(np.float32(1), 2)],
                 np.float32)])
    values = values[~np.isnan(values)]
    stored = np.empty(values.size, np.uint16)
    apply(_elements.store_bfloat16_bits, values, stored)
    np.testing.assert_array_equal(stored, values.astype(bfloat16).view(np.uint16))


def fenced(array, rng):
    """``array``'s values in a view into a larger buffer whose other elements (before it,
    after it, and between its elements along the last dim) hold a sentinel that any read
    would show: the type's largest value, or NaN."""
    if array.dtype.kind in "iu":
        sentinel = np.iinfo(array.dtype).max
    else:
        sentinel = np.nan if rng.random() < 0.5 else np.finfo(np.float32).max
    gap = int(rng.integers(1, 3))  # contiguous, or every other element
    big = np.full(array.size * gap + 64, sentinel, dtype=array.dtype)
    strides = [gap * array.dtype.itemsize]
    for size in reversed(array.shape[1:]):
        strides.insert(0, strides[0] * size)
    view = np.ndarray(array.shape, array.dtype, big, offset=32 * array.dtype.itemsize,
                      strides=tuple(strides))
    view[...] = array
    return view


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_no_read_outside_the_arrays(case):
    """Every array argument as a view with sentinels right before, after and between its
    elements: the results equal those of plain copies."""
    op, nd = case
    row = ROWS[op.name]
    forward = getattr(npl, op.function_name(nd))
    backward = getattr(npl, op.function_name(nd) + "_backward")
    rng = np.random.default_rng(nd)
    integer = (np.int16,) if np.dtype(np.int16) in op.integers else tuple(op.integers)
    for dtype in (np.float32, np.float64) + integer:
        arrays, kwargs = row.inputs(rng, nd, dtype)
        expected = forward(*arrays, **kwargs)
        got = forward(*(fenced(a, rng) for a in arrays), **kwargs)
        for part, want in zip(got if isinstance(got, tuple) else (got,),
                              expected if isinstance(expected, tuple) else (expected,)):
            assert_exact(part, want)
        if np.dtype(dtype).kind in "iu":
            continue
        out = expected[0] if isinstance(expected, tuple) else expected
        grad = rng.standard_normal(out.shape).astype(dtype)
        extra = (expected[1],) if row.returns_indices else arrays[1:]
        backward_kwargs = {k: v for k, v in kwargs.items() if k not in row.backward_drops}
        want = backward(grad, arrays[0], *extra, **backward_kwargs)
        got = backward(*(fenced(a, rng) for a in (grad, arrays[0], *extra)),
                       **backward_kwargs)
        assert_exact(got, want)
