"""Checks tests/reference.py (the slow NumPy reference) against documented values and PyTorch."""
import numpy as np
import pytest

import reference as R

X44 = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)   # the 4x4 example of the PyTorch pooling tutorials


# ---------------------------------------------------------------- documented values (no torch)

def test_documented_fixed_window_examples():
    out, idx = R.max_pool(X44, (2, 2), (2, 2), (0, 0), (1, 1), False)
    assert out[0, 0].tolist() == [[6, 8], [14, 16]]
    assert idx[0, 0].tolist() == [[5, 7], [13, 15]]
    assert R.avg_pool(X44, (2, 2), (2, 2), (0, 0), False, True, None)[0, 0].tolist() == \
        [[3.5, 5.5], [11.5, 13.5]]
    assert R.lp_pool(X44, 1, (2, 2), (2, 2), False)[0, 0].tolist() == [[14, 22], [46, 54]]
    x = np.arange(49.0).reshape(1, 1, 7, 7)
    assert R.max_pool(x, (2, 2), (2, 2), (0, 0), (1, 1), False)[0][0, 0].tolist() == \
        [[8, 10, 12], [22, 24, 26], [36, 38, 40]]


def test_documented_adaptive_examples():
    out, _ = R.adaptive_max_pool(X44, (3, 4))
    assert out[0, 0].tolist() == [[5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]]
    assert R.adaptive_avg_pool(X44, (1, 1)).item() == 8.5


def test_unpool_round_trip_and_gradients():
    out, idx = R.max_pool(X44, (2, 2), (2, 2), (0, 0), (1, 1), False)
    up = R.max_unpool(out, idx, (4, 4))
    assert up[0, 0].tolist() == [[0, 0, 0, 0], [0, 6, 0, 8], [0, 0, 0, 0], [0, 14, 0, 16]]
    assert R.max_unpool_backward(X44, out, idx)[0, 0].tolist() == [[6, 8], [14, 16]]
    g = R.max_backward(np.ones_like(out), X44, idx)
    assert g[0, 0].tolist() == [[0, 0, 0, 0], [0, 1, 0, 1], [0, 0, 0, 0], [0, 1, 0, 1]]


# ---------------------------------------------------------------- against PyTorch

@pytest.fixture
def F():
    """torch.nn.functional (tests using it skip without torch), run on one thread: max_unpool
    with duplicate indices is only deterministic (last write wins) there."""
    torch = pytest.importorskip("torch")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch.nn.functional
    torch.set_num_threads(n)


def tt(a):
    """NumPy array -> torch tensor sharing its memory."""
    import torch
    return torch.from_numpy(a)


def data(shape, dtype, kind="normal", seed=0):
    """Random input; 'ties' are small integers, 'nan' / 'neginf' add NaN / -inf to ties."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) if kind == "normal" else rng.integers(-2, 3, shape).astype(float)
    if kind in ("nan", "neginf"):
        x[rng.random(shape) < 0.2] = np.nan if kind == "nan" else -np.inf
    return x.astype(dtype)


def grad_of(fn, x, seed=1):
    """(grad_out, torch's input gradient) for fn applied to x."""
    t = tt(x).requires_grad_()
    out = fn(t)
    out = out[0] if isinstance(out, tuple) else out
    g = data(tuple(out.shape), x.dtype, seed=seed)
    out.backward(tt(g))
    return g, t.grad.numpy()


def assert_close(ref, want):
    tol = dict(rtol=1e-10, atol=0) if ref.dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    assert ref.dtype == want.dtype
    np.testing.assert_allclose(ref, want, **tol)


def assert_same_max(ref, want):
    """Max-type results: values and int64 indices exactly equal (NaN == NaN)."""
    for r, w in zip(ref, want):
        w = w.detach().numpy()
        assert r.dtype == w.dtype
        np.testing.assert_array_equal(r, w)


@pytest.mark.parametrize("shape, k, s, p, d, ceil, dtype, kind", [
    ((2, 3, 9), (3,), (2,), (1,), (1,), False, "float64", "normal"),
    ((1, 2, 10), (2,), (3,), (1,), (2,), True, "float32", "nan"),
    ((2, 2, 5, 6), (2, 3), (1, 2), (1, 1), (1, 1), True, "float64", "ties"),
    ((1, 2, 7, 5), (3, 2), (2, 2), (1, 0), (2, 3), False, "float32", "neginf"),
    ((1, 1, 6, 6), (2, 2), (2, 2), (1, 1), (1, 1), True, "float16", "nan"),
    ((1, 2, 5, 5), (3, 3), (2, 1), (1, 1), (1, 1), False, "int32", "ties"),
    ((1, 2, 4, 5, 6), (2, 3, 2), (2, 1, 2), (1, 1, 0), (1, 2, 2), True, "float64", "nan"),
    ((2, 1, 3, 4, 4), (3, 2, 2), (1, 2, 2), (1, 0, 1), (1, 1, 1), False, "float32", "neginf"),
])
def test_max_pool(F, shape, k, s, p, d, ceil, dtype, kind):
    x = data(shape, dtype, kind)
    fn = lambda t: getattr(F, f"max_pool{len(k)}d")(t, k, s, p, d, ceil, return_indices=True)
    ref = R.max_pool(x, k, s, p, d, ceil)
    assert_same_max(ref, fn(tt(x)))
    if dtype in ("float32", "float64"):
        g, want = grad_of(fn, x)
        assert_close(R.max_backward(g, x, ref[1]), want)


def test_max_pool_window_without_in_bounds_tap(F):
    # taps -1 and 2 of a length-1 input: -inf, index = start advanced by dilation (2, off the
    # plane). PyTorch's backward would scatter there out of bounds, so forward only.
    x = np.array([[[5.0]]])
    ref = R.max_pool(x, (2,), (2,), (1,), (3,), True)
    assert_same_max(ref, F.max_pool1d(tt(x), 2, 2, 1, 3, True, return_indices=True))
    assert ref[0].item() == -np.inf and ref[1].item() == 2


@pytest.mark.parametrize("shape, k, s, p, ceil, cip, dov, dtype", [
    ((2, 2, 9), (3,), (2,), (1,), True, True, None, "float64"),
    ((1, 2, 7, 6), (3, 2), (2, 2), (1, 1), True, False, None, "float64"),
    ((1, 2, 7, 6), (3, 3), (2, 1), (1, 0), False, True, 3, "float64"),
    ((1, 1, 5, 5), (2, 2), (3, 3), (1, 1), True, True, -2, "float32"),
    ((1, 2, 4, 5, 6), (2, 3, 3), (2, 2, 1), (1, 1, 1), True, False, None, "float64"),
    ((2, 1, 5, 4, 4), (3, 2, 2), (1, 2, 2), (0, 1, 0), False, True, 7, "float64"),
])
def test_avg_pool(F, shape, k, s, p, ceil, cip, dov, dtype):
    x = data(shape, dtype)
    if len(k) == 1:   # avg_pool1d has no divisor_override
        fn = lambda t: F.avg_pool1d(t, k, s, p, ceil, cip)
    else:
        fn = lambda t: getattr(F, f"avg_pool{len(k)}d")(t, k, s, p, ceil, cip, dov)
    assert_close(R.avg_pool(x, k, s, p, ceil, cip, dov), fn(tt(x)).numpy())
    g, want = grad_of(fn, x)
    assert_close(R.avg_pool_backward(g, x, k, s, p, ceil, cip, dov), want)


@pytest.mark.parametrize("shape, osz, dtype, kind", [
    ((2, 2, 7), (3,), "float64", "nan"),
    ((1, 2, 5, 7), (3, 4), "float64", "ties"),
    ((1, 2, 3, 4), (5, 7), "float32", "neginf"),        # output larger than input
    ((1, 1, 4, 5, 6), (3, 2, 4), "float64", "normal"),
    ((1, 2, 6, 5), (4, 4), "float16", "nan"),
])
def test_adaptive_pool(F, shape, osz, dtype, kind):
    avg = lambda t: getattr(F, f"adaptive_avg_pool{len(osz)}d")(t, osz)
    mx = lambda t: getattr(F, f"adaptive_max_pool{len(osz)}d")(t, osz, return_indices=True)
    x = data(shape, dtype, kind)
    assert_same_max(R.adaptive_max_pool(x, osz), mx(tt(x)))
    if dtype == "float16":
        return
    x = data(shape, dtype)   # finite values for the sums and gradients
    assert_close(R.adaptive_avg_pool(x, osz), avg(tt(x)).numpy())
    g, want = grad_of(avg, x)
    assert_close(R.adaptive_avg_pool_backward(g, x), want)
    g, want = grad_of(mx, x)
    assert_close(R.max_backward(g, x, R.adaptive_max_pool(x, osz)[1]), want)


@pytest.mark.parametrize("shape, p, k, s, ceil, dtype", [
    ((2, 2, 9), 2.0, (3,), (2,), False, "float64"),
    ((1, 2, 6, 7), 1.5, (2, 3), (2, 2), True, "float64"),   # ceil_mode without overhang
    ((1, 1, 4, 5, 6), 3.0, (2, 2, 3), (2, 1, 3), False, "float32"),
])
def test_lp_pool(F, shape, p, k, s, ceil, dtype):
    # positive inputs only: PyTorch computes x**p without abs (see SPEC "LP pooling")
    x = np.abs(data(shape, dtype)) + np.asarray(0.1, dtype)
    kk, ss = (k[0], s[0]) if len(k) == 1 else (k, s)
    fn = lambda t: getattr(F, f"lp_pool{len(k)}d")(t, p, kk, ss, ceil)
    assert_close(R.lp_pool(x, p, k, s, ceil), fn(tt(x)).numpy())
    g, want = grad_of(fn, x)
    assert_close(R.lp_pool_backward(g, x, p, k, s, ceil), want)


@pytest.mark.parametrize("shape, k, osz, dtype", [
    ((2, 2, 7, 7), (2, 2), (3, 3), "float64"),
    ((1, 2, 9, 11), (3, 2), (4, 6), "float32"),
    ((1, 2, 8, 8), (2, 2), (5, 5), "float16"),
    ((1, 2, 6, 7, 8), (2, 2, 3), (3, 4, 4), "float64"),
])
def test_fractional_max_pool(F, shape, k, osz, dtype):
    x = data(shape, dtype, "nan")
    smp = np.random.default_rng(2).random(shape[:2] + (len(k),)).astype(dtype)
    fn = lambda t: getattr(F, f"fractional_max_pool{len(k)}d")(
        t, k, output_size=osz, return_indices=True, _random_samples=tt(smp))
    assert_same_max(R.fractional_max_pool(x, k, osz, smp), fn(tt(x)))
    if dtype == "float64":
        x = data(shape, dtype)
        g, want = grad_of(fn, x)
        assert_close(R.max_backward(g, x, R.fractional_max_pool(x, k, osz, smp)[1]), want)


@pytest.mark.parametrize("dtype, L, O, u, want_starts", [
    # float64 arithmetic would give [..., 8, 10, 13] and [0, 2, 5]
    ("float32", 14, 7, 0.5384615063667297, [0, 2, 4, 6, 8, 11, 13]),
    ("float16", 6, 3, 0.599609375, [0, 3, 5]),
])
def test_fractional_intervals_use_input_precision(F, dtype, L, O, u, want_starts):
    x = data((1, 1, 1, L), dtype)
    smp = np.array([[[u, 0.5]]], dtype)
    ref = R.fractional_max_pool(x, (1, 1), (1, O), smp)
    assert ref[1][0, 0, 0].tolist() == want_starts   # kernel 1: index = window start
    assert_same_max(ref, F.fractional_max_pool2d(tt(x), (1, 1), output_size=(1, O),
                                                 return_indices=True, _random_samples=tt(smp)))


@pytest.mark.parametrize("shape, k, s, p, osz, seed", [
    ((1, 2, 5), (3,), (2,), (1,), (9,), 0),
    ((2, 1, 3, 4), (2, 2), (2, 2), (0, 0), (6, 8), 1),
    ((1, 2, 2, 3, 2), (2, 2, 2), (2, 2, 2), (0, 0, 0), (4, 6, 4), 2),
])
def test_max_unpool_duplicate_indices(F, shape, k, s, p, osz, seed):
    x = data(shape, "float64", seed=seed)
    idx = np.random.default_rng(seed).integers(0, 4, shape)   # many duplicates
    fn = lambda t: getattr(F, f"max_unpool{len(k)}d")(t, tt(idx), k, s, p, output_size=osz)
    np.testing.assert_array_equal(R.max_unpool(x, idx, osz), fn(tt(x)).numpy())
    g, want = grad_of(fn, x)
    np.testing.assert_array_equal(R.max_unpool_backward(g, x, idx), want)


def test_max_unpool_of_overlapping_max_pool(F):
    x = data((1, 2, 6, 7), "float64", "ties")
    out, idx = R.max_pool(x, (3, 3), (2, 2), (1, 1), (1, 1), False)
    t_out, t_idx = F.max_pool2d(tt(x), 3, 2, 1, return_indices=True)
    want = F.max_unpool2d(t_out, t_idx, 3, 2, 1, output_size=(6, 7)).numpy()
    np.testing.assert_array_equal(R.max_unpool(out, idx, (6, 7)), want)
