"""Gradients: PyTorch autograd (live), the NumPy reference, finite differences, determinism."""

import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import numbapool as npl
import reference as ref
from oracles import (
    FLOATS,
    assert_close,
    from_torch,
    layouts,
    make_input,
    needs_torch,
    to_torch,
    torch,
)

SHAPES = {1: (2, 3, 9), 2: (2, 3, 7, 6), 3: (1, 2, 5, 4, 6)}


def cut(value, nd):
    return value[-nd:] if isinstance(value, tuple) else (value,) * nd


def autograd(forward, x, grad):
    """PyTorch's gradient of ``forward(tensor)`` at x for the output gradient ``grad``."""
    t = to_torch(x.copy()).requires_grad_()
    out = forward(t)
    out = out[0] if isinstance(out, tuple) else out
    (g,) = torch.autograd.grad(out, t, to_torch(np.ascontiguousarray(grad)))
    return from_torch(g)


def check_every_layout(run, expected, dtype, x, *others):
    """numbapool's gradient, for x (and same-rank ``others``) in every layout, equals expected."""
    for label, arrays, kwargs, back in layouts(x, *others):
        got = run(*arrays, **kwargs)
        assert got.shape == arrays[0].shape, label
        assert_close(back(got), expected, dtype)


# (kernel, stride, padding, dilation, ceil_mode), cut to the op's rank
CONFIGS = [
    (2, None, 0, 1, False),
    (3, 1, 1, 1, False),  # overlapping windows
    (3, 2, 1, 2, True),
    ((3, 2, 1), (1, 2, 3), (1, 1, 0), (1, 2, 1), True),
]


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("dtype", FLOATS)
def test_max_pool_backward(nd, config, dtype):
    rng = np.random.default_rng(CONFIGS.index(config))
    x = make_input(rng, SHAPES[nd], dtype, specials=dtype == np.float64)
    kernel, stride, padding, dilation, ceil_mode = (cut(v, nd) if i < 4 else v
                                                   for i, v in enumerate(config))
    stride = kernel if stride == (None,) * nd else stride
    out, idx = getattr(npl, f"max_pool{nd}d")(x, kernel, stride, padding, dilation, ceil_mode,
                                              True)
    grad = make_input(rng, out.shape, dtype)
    expected = ref.max_backward(grad, x, idx)
    if torch is not None:
        torch_grad = autograd(lambda t: getattr(torch.nn.functional, f"max_pool{nd}d")(
            t, kernel, stride, padding, dilation, ceil_mode), x, grad)
        assert_close(torch_grad, expected, dtype)
    fn = getattr(npl, f"max_pool{nd}d_backward")
    check_every_layout(lambda a, g, i, **kw: fn(g, a, i, kernel, stride, padding, dilation,
                                                ceil_mode, **kw), expected, dtype, x, grad, idx)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("count_include_pad,divisor_override", [(True, None), (False, None),
                                                                (True, 5)])
def test_avg_pool_backward(nd, config, count_include_pad, divisor_override):
    rng = np.random.default_rng(nd)
    x = make_input(rng, SHAPES[nd], np.float64)
    kernel, stride, padding, _, ceil_mode = (cut(v, nd) if i < 4 else v
                                             for i, v in enumerate(config))
    stride = kernel if stride == (None,) * nd else stride
    out = getattr(npl, f"avg_pool{nd}d")(x, kernel, stride, padding, ceil_mode,
                                         count_include_pad, divisor_override)
    grad = make_input(rng, out.shape, np.float64)
    expected = ref.avg_pool_backward(grad, x, kernel, stride, padding, ceil_mode,
                                     count_include_pad, divisor_override)
    if torch is not None and (nd > 1 or divisor_override is None):  # torch's 1d has none
        extra = () if nd == 1 else (divisor_override,)
        assert_close(autograd(lambda t: getattr(torch.nn.functional, f"avg_pool{nd}d")(
            t, kernel, stride, padding, ceil_mode, count_include_pad, *extra), x, grad),
            expected, np.float64)
    fn = getattr(npl, f"avg_pool{nd}d_backward")
    check_every_layout(lambda a, g, **kw: fn(g, a, kernel, stride, padding, ceil_mode,
                                             count_include_pad, divisor_override, **kw),
                       expected, np.float64, x, grad)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("size", [(4, 1, 3), (1, 1, 1), (7, 9, 11)])  # output > input too
@pytest.mark.parametrize("dtype", FLOATS)
def test_adaptive_backward(nd, size, dtype):
    rng = np.random.default_rng(2)
    x = make_input(rng, SHAPES[nd], dtype, specials=dtype == np.float64)
    size = size[-nd:]
    grad = make_input(rng, x.shape[:2] + size, dtype)
    _, idx = getattr(npl, f"adaptive_max_pool{nd}d")(x, size, True)
    expected_avg = ref.adaptive_avg_pool_backward(grad, x)
    expected_max = ref.max_backward(grad, x, idx)
    if torch is not None:
        F = torch.nn.functional
        assert_close(autograd(lambda t: getattr(F, f"adaptive_avg_pool{nd}d")(t, size), x,
                              grad), expected_avg, dtype)
        assert_close(autograd(lambda t: getattr(F, f"adaptive_max_pool{nd}d")(t, size), x,
                              grad), expected_max, dtype)
    avg = getattr(npl, f"adaptive_avg_pool{nd}d_backward")
    check_every_layout(lambda a, g, **kw: avg(g, a, **kw), expected_avg, dtype, x, grad)
    amax = getattr(npl, f"adaptive_max_pool{nd}d_backward")
    check_every_layout(lambda a, g, i, **kw: amax(g, a, i, **kw), expected_max, dtype, x, grad,
                       idx)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("norm_type", [1, 2, 3.5, 0.5, math.inf, -math.inf])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_lp_pool_backward(nd, norm_type, ceil_mode):
    rng = np.random.default_rng(4)
    x = make_input(rng, SHAPES[nd], np.float64)
    x.flat[::7] = 0.0  # |x| ** (p - 1) at 0 and all-zero windows: gradient 0, never NaN
    x[0, 0] = 0.0
    kernel, stride = cut((3, 2, 2), nd), cut((2, 1, 2), nd)
    out = getattr(npl, f"lp_pool{nd}d")(x, norm_type, kernel, stride, ceil_mode)
    grad = make_input(rng, out.shape, np.float64)
    expected = ref.lp_pool_backward(grad, x, norm_type, kernel, stride, ceil_mode)
    fn = getattr(npl, f"lp_pool{nd}d_backward")
    check_every_layout(lambda a, g, **kw: fn(g, a, norm_type, kernel, stride, ceil_mode, **kw),
                       expected, np.float64, x, grad)
    assert not np.isnan(fn(grad, x, norm_type, kernel, stride, ceil_mode)).any()
    if torch is not None and math.isfinite(norm_type) and norm_type >= 1 and not ceil_mode:
        # PyTorch differentiates x ** p, not |x| ** p: compare on positive inputs
        positive = np.abs(x) + 0.5
        args = (kernel[0], stride[0]) if nd == 1 else (kernel, stride)
        torch_grad = autograd(lambda t: getattr(torch.nn.functional, f"lp_pool{nd}d")(
            t, norm_type, *args), positive, grad)
        assert_close(fn(grad, positive, norm_type, kernel, stride), torch_grad, np.float64)


@pytest.mark.parametrize("nd", [2, 3])
@pytest.mark.parametrize("dtype", FLOATS)
def test_fractional_max_pool_backward(nd, dtype):
    rng = np.random.default_rng(6)
    x = make_input(rng, (2, 3) + (7, 6, 8)[-nd:], dtype)
    kernel, output = cut(2, nd), (4, 3, 5)[-nd:]
    samples = np.minimum(rng.random((2, 3, nd)).astype(dtype), dtype(0.999))
    out, idx = getattr(npl, f"fractional_max_pool{nd}d")(x, kernel, output, return_indices=True,
                                                         random_samples=samples)
    grad = make_input(rng, out.shape, dtype)
    expected = ref.max_backward(grad, x, idx)
    if torch is not None:
        assert_close(autograd(lambda t: getattr(torch.nn.functional,
                                                f"fractional_max_pool{nd}d")(
            t, kernel, output_size=output, _random_samples=to_torch(samples)), x, grad),
            expected, dtype)
    fn = getattr(npl, f"fractional_max_pool{nd}d_backward")
    check_every_layout(lambda a, g, i, **kw: fn(g, a, i, kernel, output, **kw), expected, dtype,
                       x, grad, idx)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("dtype", FLOATS)
def test_max_unpool_backward(nd, dtype):
    rng = np.random.default_rng(8)
    pooled = make_input(rng, SHAPES[nd], dtype)
    y, idx = getattr(npl, f"max_pool{nd}d")(pooled, 2, 2, return_indices=True)
    size = pooled.shape[2:]
    grad = make_input(rng, pooled.shape, dtype)
    expected = ref.max_unpool_backward(grad, y, idx)
    if torch is not None:
        assert_close(autograd(lambda t: getattr(torch.nn.functional, f"max_unpool{nd}d")(
            t, torch.from_numpy(idx), 2, output_size=size), y, grad), expected, dtype)
    fn = getattr(npl, f"max_unpool{nd}d_backward")
    check_every_layout(lambda a, g, i, **kw: fn(g, a, i, 2, output_size=size, **kw), expected,
                       dtype, y, grad, idx)


def test_nan_input_gradients():
    x = np.array([[[1.0, np.nan, 3.0, np.nan, 2.0, 0.0]]])
    out, idx = npl.max_pool1d(x, 2, 2, return_indices=True)
    grad = npl.max_pool1d_backward(np.ones_like(out), x, idx, 2, 2)
    np.testing.assert_array_equal(grad, [[[0, 1, 0, 1, 1, 0]]])
    assert np.isnan(npl.avg_pool1d_backward(np.ones_like(out), x, 2, 2)).sum() == 0


def test_empty_batch_backward():
    x = np.zeros((0, 3, 6, 6))
    out, idx = npl.max_pool2d(x, 2, return_indices=True)
    assert npl.max_pool2d_backward(out, x, idx, 2).shape == x.shape
    assert npl.adaptive_avg_pool2d_backward(np.zeros((0, 3, 2, 2)), x).shape == x.shape


def test_window_without_input_taps_passes_no_gradient():
    # dilation 2 and padding 1 on a length-1 input: the only window misses the input
    x = np.array([[[5.0]]])
    out, idx = npl.max_pool1d(x, 2, stride=3, padding=1, dilation=2, return_indices=True)
    assert out[0, 0, 0] == -np.inf
    grad = npl.max_pool1d_backward(np.ones_like(out), x, idx, 2, 3, 1, 2)
    np.testing.assert_array_equal(grad, [[[0.0]]])


# --- hypothesis ----------------------------------------------------------------------


@needs_torch
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 3), st.data())
def test_hypothesis_backward_against_autograd(nd, data):
    sizes = tuple(data.draw(st.integers(2, 7)) for _ in range(nd))
    kernel = tuple(data.draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(data.draw(st.integers(1, 3)) for _ in range(nd))
    padding = tuple(data.draw(st.integers(0, k // 2)) for k in kernel)
    ceil_mode = data.draw(st.booleans())
    layout = data.draw(st.sampled_from(["contiguous", "channels_last_memory", "strided"]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = make_input(rng, (2, 2) + sizes, np.float64)
    if any(ref.output_size_fixed(s, k, t, p, 1, ceil_mode) < 1
           for s, k, t, p in zip(sizes, kernel, stride, padding)):
        return
    if nd == 3 and any(k > s for k, s in zip(kernel, sizes)):
        return
    F = torch.nn.functional

    def in_layout(*arrays):
        return next((found, kw, back) for label, found, kw, back in layouts(*arrays)
                    if label == layout)

    out, idx = getattr(npl, f"max_pool{nd}d")(x, kernel, stride, padding, 1, ceil_mode, True)
    grad = make_input(rng, out.shape, np.float64)
    (a, g, i), kwargs, back = in_layout(x, grad, idx)
    got = getattr(npl, f"max_pool{nd}d_backward")(g, a, i, kernel, stride, padding, 1,
                                                  ceil_mode, **kwargs)
    assert_close(back(got), autograd(lambda t: getattr(F, f"max_pool{nd}d")(
        t, kernel, stride, padding, 1, ceil_mode), x, grad), np.float64)

    out = getattr(npl, f"avg_pool{nd}d")(x, kernel, stride, padding, ceil_mode)
    grad = make_input(rng, out.shape, np.float64)
    (a, g), kwargs, back = in_layout(x, grad)
    got = getattr(npl, f"avg_pool{nd}d_backward")(g, a, kernel, stride, padding, ceil_mode,
                                                  **kwargs)
    assert_close(back(got), autograd(lambda t: getattr(F, f"avg_pool{nd}d")(
        t, kernel, stride, padding, ceil_mode), x, grad), np.float64)


# --- finite differences (no torch needed) -----------------------------------------------


def numerical_gradient(forward, x, grad, step=1e-6):
    """d(sum(grad * forward(x))) / dx by central differences."""
    result = np.zeros_like(x)
    for i in np.ndindex(*x.shape):
        plus, minus = x.copy(), x.copy()
        plus[i] += step
        minus[i] -= step
        result[i] = np.sum(grad * (forward(plus) - forward(minus))) / (2 * step)
    return result


@pytest.mark.parametrize("op,args", [
    ("avg_pool2d", (3, 2, 1, True, False)),
    ("adaptive_avg_pool2d", ((3, 5),)),
    ("lp_pool2d", (2.5, (2, 3), 1, True)),
    ("max_pool2d", (3, 2, 1)),
    ("adaptive_max_pool2d", ((2, 4),)),
])
def test_finite_differences(op, args):
    rng = np.random.default_rng(12)
    x = rng.permutation(np.arange(2 * 5 * 6, dtype=np.float64)).reshape(1, 2, 5, 6) / 7 + 0.5
    forward = getattr(npl, op)
    grad = rng.standard_normal(forward(x, *args).shape)
    # adaptive backwards read the output size off grad_output
    backward_args = () if op.startswith("adaptive") else args
    if "max" in op:
        _, idx = forward(x, *args, return_indices=True)
        got = getattr(npl, op + "_backward")(grad, x, idx, *backward_args)
    else:
        got = getattr(npl, op + "_backward")(grad, x, *backward_args)
    np.testing.assert_allclose(got, numerical_gradient(lambda v: forward(v, *args), x, grad),
                               rtol=1e-5, atol=1e-6)


# --- determinism ------------------------------------------------------------------------

_DIGEST_SCRIPT = textwrap.dedent("""
    import hashlib, numpy as np, numbapool as npl
    from numbapool import _cpu
    assert 4 * 16 * 40 * 37 > _cpu.PARALLEL_MIN_WORK  # large enough for parallel kernels
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 16, 40, 37)).astype(np.float32)
    x_cl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    digest = hashlib.sha256()
    for a in (x, x_cl):
        out, idx = npl.max_pool2d(a, 3, 1, 1, return_indices=True)
        g = rng.standard_normal(out.shape).astype(np.float32)
        digest.update(npl.max_pool2d_backward(g, a, idx, 3, 1, 1).tobytes())
        digest.update(npl.avg_pool2d_backward(g, a, 3, 1, 1).tobytes())
        g = rng.standard_normal((4, 16, 9, 7)).astype(np.float32)
        digest.update(npl.adaptive_avg_pool2d_backward(g, a).tobytes())
        out, idx = npl.adaptive_max_pool2d(a, (9, 7), return_indices=True)
        digest.update(npl.adaptive_max_pool2d_backward(g, a, idx).tobytes())
        out = npl.lp_pool2d(a, 3, 4, 3)
        g = rng.standard_normal(out.shape).astype(np.float32)
        digest.update(npl.lp_pool2d_backward(g, a, 3, 4, 3).tobytes())
        out, idx = npl.fractional_max_pool2d(a, 3, (9, 7), return_indices=True,
                                             random_samples=rng.random((4, 16, 2)))
        g = rng.standard_normal(out.shape).astype(np.float32)
        digest.update(npl.fractional_max_pool2d_backward(g, a, idx, 3, (9, 7)).tobytes())
        digest.update(npl.adaptive_avg_pool2d(a, 5).tobytes())
    print(digest.hexdigest())
""")


def test_backward_is_bitwise_identical_across_thread_counts():
    digests = set()
    for threads in ("1", "2", "7"):  # 7 > cores: other chunk boundaries
        env = dict(os.environ, NUMBA_NUM_THREADS=threads)
        result = subprocess.run([sys.executable, "-c", _DIGEST_SCRIPT], env=env, check=True,
                                capture_output=True, text=True)
        digests.add(result.stdout.strip())
    assert len(digests) == 1, digests


# --- errors -----------------------------------------------------------------------------


class TestErrors:
    x = np.zeros((2, 3, 8, 8), np.float32)
    out, idx = npl.max_pool2d(x, 2, return_indices=True)

    def test_grad_output_of_wrong_shape(self):
        with pytest.raises(ValueError, match=r"grad_output must have shape \(2, 3, 4, 4\)"):
            npl.max_pool2d_backward(self.out[:, :, :3], self.x, self.idx, 2)
        with pytest.raises(ValueError, match=r"grad_output must have shape"):
            npl.adaptive_avg_pool2d_backward(np.zeros((2, 4, 3, 3), np.float32), self.x)

    def test_grad_output_of_wrong_dtype(self):
        with pytest.raises(TypeError, match="grad_output must have the input's dtype float32"):
            npl.avg_pool2d_backward(self.out.astype(np.float64), self.x, 2)

    def test_indices_of_wrong_shape_dtype_or_range(self):
        with pytest.raises(ValueError, match=r"indices must have shape \(2, 3, 4, 4\)"):
            npl.max_pool2d_backward(self.out, self.x, self.idx[..., :2], 2)
        with pytest.raises(TypeError, match="integer array"):
            npl.adaptive_max_pool2d_backward(self.out, self.x, self.idx.astype(np.float32))
        bad = self.idx.copy()
        bad[0, 0, 0, 0] = 64
        with pytest.raises(ValueError, match="invalid max index: 64"):
            npl.fractional_max_pool2d_backward(self.out, self.x, bad, 2, 4)
        with pytest.raises(ValueError, match="invalid max index: 64"):
            npl.max_unpool2d_backward(self.x, self.out, bad, 2)

    def test_integer_inputs_have_no_gradient(self):
        with pytest.raises(TypeError, match="int32"):
            npl.max_pool2d_backward(self.out.astype(np.int32), self.x.astype(np.int32),
                                    self.idx, 2)
