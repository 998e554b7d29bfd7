"""GPU backend: every op, forward and backward, on device arrays against the CPU backend.

Runs on a CUDA GPU, or on Numba's CUDA simulator (CI: ``NUMBA_ENABLE_CUDASIM=1 python
-m pytest tests/test_cuda.py``), which runs each GPU thread as a Python thread: shapes
stay tiny. Max-type values and indices and max-type gradients must match the CPU
bitwise; sums within float rounding. Each input reaches the GPU in every layout the CPU
tests use (contiguous, channels-last memory, data_format="channels_last", strided,
reversed, unbatched). CuPy, stream and PyTorch tests need a real GPU (and CuPy / a CUDA
build of torch). ``test_every_kernel_compiles_for_cuda`` compiles every kernel variant
to PTX where NVVM is installed, without needing a GPU.
"""

import ctypes.util
import os
import subprocess
import sys

import numpy as np
import pytest

SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def _no_gpu_reason():
    if SIMULATED:
        return None
    # look for the driver before importing numba.cuda: a CPU-only run stays CPU-only
    if ctypes.util.find_library("cuda") is None:
        return "no CUDA GPU and NUMBA_ENABLE_CUDASIM is not set"
    try:
        from numba import cuda
    except ImportError as error:
        return f"numba.cuda cannot be imported ({error})"
    if not cuda.is_available():
        return "no CUDA GPU and NUMBA_ENABLE_CUDASIM is not set"
    return None


if __name__ != "__main__":  # run as a script, this file compiles kernels (see the end)
    _reason = _no_gpu_reason()
    if _reason:
        pytest.skip(_reason, allow_module_level=True)

    from numba import cuda

    import numbapool as npl
    from numbapool import _cuda
    from oracles import bfloat16, layouts, make_input

try:
    import cupy
except ImportError:
    cupy = None

# the 16-bit floats numbapool computes in float32: float16, and bfloat16 with ml_dtypes
HALVES = [np.float16] + ([bfloat16] if __name__ != "__main__" and bfloat16 else [])

needs_real_gpu = pytest.mark.skipif(SIMULATED, reason="needs a real GPU (simulator run)")
needs_cupy = pytest.mark.skipif(SIMULATED or cupy is None,
                                reason="needs a real GPU and CuPy")

SHAPES = {1: (1, 2, 7), 2: (1, 2, 5, 6), 3: (1, 2, 3, 4, 5)}


# --- moving arrays ----------------------------------------------------------------------


def _staged(host):
    """``(bytes, offset)``: a host buffer holding ``host``'s elements at ``host``'s strides
    (any sign), its first element at byte ``offset``."""
    item = host.dtype.itemsize
    low = sum(min(0, (n - 1) * s) for n, s in zip(host.shape, host.strides))
    high = sum(max(0, (n - 1) * s) for n, s in zip(host.shape, host.strides)) + item
    buffer = np.zeros(high - low, np.uint8)
    np.ndarray(host.shape, host.dtype, buffer, -low, host.strides)[...] = host
    return buffer, -low


def to_gpu(host):
    """A Numba device array with ``host``'s shape, strides (any sign), dtype and values."""
    host = np.asarray(host)
    if host.size == 0:
        return cuda.to_device(np.ascontiguousarray(host))
    buffer, offset = _staged(host)
    device = cuda.to_device(buffer)
    if SIMULATED:
        return type(device)(np.ndarray(host.shape, host.dtype, device._ary, offset,
                                       host.strides))
    from numba.cuda.cudadrv.devicearray import DeviceNDArray

    # built from the memory, not the array interface, whose typestr ('<V2') would lose
    # bfloat16
    return DeviceNDArray(host.shape, host.strides, host.dtype,
                         gpu_data=device.gpu_data.view(offset))


def to_cupy(host):
    """A CuPy array with ``host``'s shape, strides (any sign) and values."""
    host = np.asarray(host)
    if host.size == 0:
        return cupy.asarray(np.ascontiguousarray(host))
    buffer, offset = _staged(host)
    device = cupy.asarray(buffer)
    return cupy.ndarray(host.shape, host.dtype, device.data + offset, host.strides)


def is_device(array):
    return getattr(array, "__cuda_ndarray__", False) or hasattr(
        array, "__cuda_array_interface__")


def memory_order(array):
    """Dims longer than 1, fastest-moving first."""
    return [i for _, i in sorted((abs(s), i) for i, (n, s) in
                                 enumerate(zip(array.shape, array.strides)) if n > 1)]


def assert_same(gpu, cpu, exact):
    """A device result equal to the CPU's: type, shape, dtype, memory order, values."""
    assert is_device(gpu), type(gpu)
    assert tuple(gpu.shape) == cpu.shape and gpu.dtype == cpu.dtype
    if cpu.size:
        assert memory_order(gpu) == memory_order(cpu), (gpu.strides, cpu.strides)
    host = _cuda.CUDA.to_host(gpu)
    if cpu.dtype == bfloat16:  # compared as float32 (exactly), where NumPy sees its NaNs
        host, cpu = host.astype(np.float32), cpu.astype(np.float32)
        if not exact:  # both round float32 sums once; those may differ by an ulp
            np.testing.assert_allclose(host, cpu, rtol=1e-2, atol=1e-2, equal_nan=True)
            return
    if exact:
        np.testing.assert_array_equal(host, cpu)
    else:
        rtol = {2: 2e-3, 4: 1e-5, 8: 1e-6}[cpu.dtype.itemsize]
        np.testing.assert_allclose(host.astype(np.float64), cpu.astype(np.float64),
                                   rtol=rtol, atol=rtol, equal_nan=True)


def parity(name, arrays, *args, exact, every_layout=True, make=None, **kwargs):
    """``npl.<name>(*arrays, *args)`` on the GPU equals it on the CPU, in every layout
    (``every_layout="memory"``: channels-first and channels-last memory only); ``make``
    moves a host array to the device (default ``to_gpu``)."""
    fn = getattr(npl, name)
    cases = list(layouts(*arrays))
    if every_layout == "memory":
        cases = [case for case in cases if case[0] in ("contiguous", "channels_last_memory")]
    elif not every_layout:
        cases = cases[:1]
    for label, host_arrays, extra, _ in cases:
        expected = fn(*host_arrays, *args, **kwargs, **extra)
        got = fn(*map(make or to_gpu, host_arrays), *args, **kwargs, **extra)
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = got if isinstance(got, tuple) else (got,)
        assert len(got) == len(expected), label
        for g, e in zip(got, expected):
            try:
                assert_same(g, e, exact or e.dtype.kind in "iu")
            except AssertionError as error:
                raise AssertionError(f"{name} {label}: {error}") from None


def sample_input(nd, dtype=np.float32, seed=0, specials=True, shape=None):
    rng = np.random.default_rng(seed + 10 * nd)
    return make_input(rng, shape or SHAPES[nd], dtype, specials=specials)


def cut(value, nd):
    return value[-nd:] if isinstance(value, tuple) else value


# --- forward ----------------------------------------------------------------------------

# (kernel, stride, padding, dilation, ceil_mode); tuples are cut to the op's rank
MAX_CONFIGS = [(2, None, 0, 1, False), ((3, 2, 3), (2, 1, 2), (1, 1, 1), (1, 2, 1), True)]


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("config", MAX_CONFIGS)
def test_max_pool(nd, config):
    kernel, stride, padding, dilation, ceil_mode = (cut(v, nd) for v in config)
    parity(f"max_pool{nd}d", [sample_input(nd)], kernel, stride, padding, dilation,
           ceil_mode, True, exact=True, every_layout=nd == 2 or "memory")


@pytest.mark.parametrize("dtype", [*HALVES, np.float64, np.int8, np.uint64, np.int32])
def test_max_pool_dtypes(dtype):
    parity("max_pool2d", [sample_input(2, dtype)], 3, 2, 1, return_indices=True, exact=True,
           every_layout=dtype in (np.float16, np.int8))


# (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_CONFIGS = [(2, None, 0, False, True, None), (3, 2, 1, True, False, None),
               ((3, 2, 3), (1, 2, 2), (1, 1, 0), False, True, -3)]


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("config", AVG_CONFIGS)
def test_avg_pool(nd, config):
    kernel, stride, padding, *rest = (cut(v, nd) for v in config)
    parity(f"avg_pool{nd}d", [sample_input(nd)], kernel, stride, padding, *rest, exact=False,
           every_layout=nd == 2 or "memory")


@pytest.mark.parametrize("dtype", [*HALVES, np.float64])
def test_avg_pool_dtypes(dtype):
    parity("avg_pool2d", [sample_input(2, dtype)], 3, 2, 1, exact=False)


@pytest.mark.parametrize("nd,output_size", [(1, 3), (1, 11), (2, (None, 4)), (2, (2, 7)),
                                            (3, (2, 1, 3))])
@pytest.mark.parametrize("op", ["adaptive_avg_pool", "adaptive_max_pool"])
def test_adaptive(op, nd, output_size):
    extra = {"return_indices": True} if op == "adaptive_max_pool" else {}
    parity(f"{op}{nd}d", [sample_input(nd)], output_size, exact=op == "adaptive_max_pool",
           every_layout=nd == 2 or "memory", **extra)


@pytest.mark.parametrize("dtype", [*HALVES, np.float64, np.uint8])
def test_adaptive_dtypes(dtype):
    parity("adaptive_max_pool2d", [sample_input(2, dtype)], (2, 4), True, exact=True,
           every_layout=False)
    if dtype != np.uint8:
        parity("adaptive_avg_pool2d", [sample_input(2, dtype)], (2, 4), exact=False,
               every_layout=False)


@pytest.mark.parametrize("lanes", ["block", "warp", "channels_last"])
@pytest.mark.parametrize("nd,output_size", [(2, (2, 1)), (2, 1), (3, (1, 2, 2))])
def test_adaptive_block_reductions(monkeypatch, lanes, nd, output_size):
    """Several threads per window, merged in shared memory (forced on tiny windows)."""
    monkeypatch.setitem(_cuda.BLOCK_TAPS, False, {"block": (1, 1), "warp": (10**9, 1),
                                                  "channels_last": (10**9, 10**9)}[lanes])
    monkeypatch.setitem(_cuda.BLOCK_TAPS, True, 1 if lanes == "channels_last" else 10**9)
    x = sample_input(nd, seed=3)
    if nd == 2:
        x = np.round(x)  # ties: the first maximum must win across threads
        x[0, 1] = -np.inf  # an all -inf plane: index of the first tap
    parity(f"adaptive_max_pool{nd}d", [x], output_size, True, exact=True,
           every_layout="memory")
    parity(f"adaptive_avg_pool{nd}d", [x], output_size, exact=False, every_layout="memory")
    parity(f"adaptive_avg_pool{nd}d", [sample_input(nd, np.float16, specials=False)],
           output_size, exact=False, every_layout=False)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("p", [2.0, 1.5, np.inf, -np.inf])
def test_lp_pool(nd, p):
    x = sample_input(nd, specials=False)
    parity(f"lp_pool{nd}d", [x], p, cut((2, 3, 2), nd), cut((1, 2, 2), nd), True,
           exact=False, every_layout=nd == 2 or "memory")


def test_lp_pool_float16():
    parity("lp_pool2d", [sample_input(2, np.float16, specials=False)], 2.0, 2, exact=False,
           every_layout=False)


@pytest.mark.parametrize("nd", [2, 3])
@pytest.mark.parametrize("dtype", [np.float32, *HALVES, np.float64, np.int16])
def test_fractional_max_pool(nd, dtype):
    x = sample_input(nd, dtype, shape=(2, 2, 6, 7) if nd == 2 else (1, 2, 5, 6, 5))
    samples = np.random.default_rng(nd).random((x.shape[0], 2, nd))
    parity(f"fractional_max_pool{nd}d", [x], 2, output_size=cut((3, 4, 3), nd),
           return_indices=True, random_samples=samples, exact=True,
           every_layout=dtype == np.float32 and (nd == 2 or "memory"))
    # samples on the device, as a strided view
    host = np.zeros(samples.shape[:-1] + (2 * nd,))
    host[..., ::2] = samples
    got = getattr(npl, f"fractional_max_pool{nd}d")(
        to_gpu(x), 2, output_ratio=0.6, random_samples=to_gpu(host)[:, :, ::2])
    expected = getattr(npl, f"fractional_max_pool{nd}d")(
        x, 2, output_ratio=0.6, random_samples=samples)
    assert_same(got, expected, exact=True)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, *HALVES, np.int64])
def test_max_unpool(nd, dtype):
    # overlapping windows repeat indices: the last input must win
    x = sample_input(nd, dtype, specials=False)
    _, idx = getattr(npl, f"max_pool{nd}d")(x, 3, 1, 1, return_indices=True)
    values = sample_input(nd, dtype, seed=5, specials=False)
    parity(f"max_unpool{nd}d", [values, idx], 3, 1, 1, exact=True,
           every_layout=dtype == np.float32 and (nd == 2 or "memory"))
    pooled, idx = getattr(npl, f"max_pool{nd}d")(x, 2, return_indices=True)
    parity(f"max_unpool{nd}d", [pooled, idx], 2, exact=True, every_layout=False,
           output_size=tuple(2 * n + 1 for n in pooled.shape[2:]))


# --- backward ---------------------------------------------------------------------------


def grad_for(result, seed=7, dtype=None):
    rng = np.random.default_rng(seed)
    out = result[0] if isinstance(result, tuple) else result
    return rng.standard_normal(out.shape).astype(dtype or out.dtype)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("config", MAX_CONFIGS)
def test_max_pool_backward(nd, config):
    kernel, stride, padding, dilation, ceil_mode = (cut(v, nd) for v in config)
    x = np.round(sample_input(nd, specials=False))  # ties
    out, idx = getattr(npl, f"max_pool{nd}d")(x, kernel, stride, padding, dilation,
                                              ceil_mode, True)
    parity(f"max_pool{nd}d_backward", [grad_for(out), x, idx], kernel, stride, padding,
           dilation, ceil_mode, exact=True, every_layout=nd == 2 or "memory")


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("config", AVG_CONFIGS)
def test_avg_pool_backward(nd, config):
    kernel, stride, padding, *rest = (cut(v, nd) for v in config)
    x = sample_input(nd, specials=False)
    out = getattr(npl, f"avg_pool{nd}d")(x, kernel, stride, padding, *rest)
    parity(f"avg_pool{nd}d_backward", [grad_for(out), x], kernel, stride, padding, *rest,
           exact=False, every_layout=nd == 2 or "memory")


@pytest.mark.parametrize("nd,output_size", [(1, 3), (2, (2, 7)), (3, (2, 1, 3)), (2, 1)])
def test_adaptive_backward(nd, output_size):
    x = np.round(sample_input(nd, specials=False))
    out, idx = getattr(npl, f"adaptive_max_pool{nd}d")(x, output_size, True)
    layouts_ = nd == 2 or "memory"
    parity(f"adaptive_max_pool{nd}d_backward", [grad_for(out), x, idx], exact=True,
           every_layout=layouts_)
    out = getattr(npl, f"adaptive_avg_pool{nd}d")(x, output_size)
    parity(f"adaptive_avg_pool{nd}d_backward", [grad_for(out), x], exact=False,
           every_layout=layouts_)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("p", [2.0, 3.0, np.inf, -np.inf])
def test_lp_pool_backward(nd, p):
    x = np.round(sample_input(nd, specials=False))  # zeros and ties
    args = (p, cut((2, 3, 2), nd), cut((1, 2, 2), nd), True)
    out = getattr(npl, f"lp_pool{nd}d")(x, *args)
    parity(f"lp_pool{nd}d_backward", [grad_for(out), x], *args, exact=np.isinf(p),
           every_layout=nd == 2 or "memory")


@pytest.mark.parametrize("nd", [2, 3])
@pytest.mark.parametrize("dtype", [np.float32, *HALVES])
def test_fractional_max_pool_backward(nd, dtype):
    x = np.round(sample_input(nd, dtype, specials=False, shape=(1, 2, 6, 7, 6)[:nd + 2]))
    out, idx = getattr(npl, f"fractional_max_pool{nd}d")(
        x, 2, output_size=cut((4, 5, 4), nd), return_indices=True,
        rng=np.random.default_rng(1))
    parity(f"fractional_max_pool{nd}d_backward", [grad_for(out), x, idx], 2,
           output_size=cut((4, 5, 4), nd), exact=True,
           every_layout=dtype == np.float32 and (nd == 2 or "memory"))


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_unpool_backward(nd):
    x = sample_input(nd, specials=False, shape=(1, 2, 4, 6, 4)[:nd + 2])
    pooled, idx = getattr(npl, f"max_pool{nd}d")(x, 2, return_indices=True)
    out = getattr(npl, f"max_unpool{nd}d")(pooled, idx, 2)
    parity(f"max_unpool{nd}d_backward", [grad_for(out), pooled, idx], 2, exact=True,
           every_layout=nd == 2 or "memory")


@pytest.mark.parametrize("dtype", [*HALVES, np.float64])
def test_backward_dtypes(dtype):
    x = np.round(sample_input(2, dtype, specials=False))
    out, idx = npl.max_pool2d(x, 3, 2, 1, return_indices=True)
    parity("max_pool2d_backward", [grad_for(out), x, idx], 3, 2, 1, exact=True,
           every_layout=False)
    out = npl.avg_pool2d(x, 3, 2, 1)
    parity("avg_pool2d_backward", [grad_for(out), x], 3, 2, 1, exact=False,
           every_layout=False)
    out = npl.lp_pool2d(x, 2.0, 2)
    parity("lp_pool2d_backward", [grad_for(out), x], 2.0, 2, exact=False,
           every_layout=False)
    pooled, idx = npl.max_pool2d(x, 2, return_indices=True)
    parity("max_unpool2d_backward", [grad_for(npl.max_unpool2d(pooled, idx, 2)), pooled,
                                     idx], 2, exact=True, every_layout=False)


@pytest.mark.parametrize("channels_last", [False, True])
def test_long_means_are_accurate(channels_last):
    """Sums of more than 64 float32 values are carried in float64 on the GPU too: means
    of 4096 values within 1e-6 of the exact mean (float32 sums drift by about 1e-5)."""
    rng = np.random.default_rng(0)
    planes = np.stack([np.full((64, 64), 0.1, np.float32),
                       rng.standard_normal((64, 64)).astype(np.float32) + 3])[None]
    x = np.ascontiguousarray(planes.transpose(0, 2, 3, 1)) if channels_last else planes
    kwargs = {"data_format": "channels_last"} if channels_last else {}
    exact = planes.astype(np.float64).mean(axis=(2, 3)).reshape(-1)
    for name, args in (("adaptive_avg_pool2d", (1,)), ("avg_pool2d", (64,))):
        got = _cuda.CUDA.to_host(getattr(npl, name)(to_gpu(x), *args, **kwargs))
        np.testing.assert_allclose(got.reshape(-1), exact, rtol=1e-6, atol=0)


def test_backward_is_deterministic():
    x = np.round(sample_input(2, specials=False))
    out, idx = npl.max_pool2d(x, 3, 1, 1, return_indices=True)
    g, x_gpu, idx_gpu = to_gpu(grad_for(out)), to_gpu(x), to_gpu(idx)
    first = _cuda.CUDA.to_host(npl.max_pool2d_backward(g, x_gpu, idx_gpu, 3, 1, 1))
    again = _cuda.CUDA.to_host(npl.max_pool2d_backward(g, x_gpu, idx_gpu, 3, 1, 1))
    assert first.tobytes() == again.tobytes()


# --- batches, results, errors ------------------------------------------------------------


def test_empty_batch():
    x = np.zeros((0, 2, 5, 6), np.float32)
    parity("max_pool2d", [x], 2, return_indices=True, exact=True, every_layout=False)
    parity("adaptive_avg_pool2d", [x], 3, exact=False, every_layout=False)
    parity("avg_pool2d_backward", [np.zeros((0, 2, 2, 3), np.float32), x], 2, exact=False,
           every_layout=False)
    idx = np.zeros((0, 2, 2, 3), np.int64)
    parity("max_unpool2d", [np.zeros((0, 2, 2, 3), np.float32), idx], 2, exact=True,
           every_layout=False)
    parity("max_pool2d_backward", [np.zeros((0, 2, 2, 3), np.float32), x, idx], 2,
           exact=True, every_layout=False)


def test_results_are_numba_device_arrays_sharing_the_stream():
    stream = cuda.stream()
    host = sample_input(2)
    x = cuda.device_array(host.shape, host.dtype, stream=stream)
    x.copy_to_device(host, stream=stream)
    y, idx = npl.max_pool2d(x, 2, return_indices=True)
    assert type(y) is type(x) and type(idx) is type(x)
    assert y.stream is stream and idx.stream is stream
    assert type(npl.max_pool2d_backward(cuda.to_device(grad_for(y.copy_to_host())), x, idx,
                                        2)) is type(x)


def raised(fn, *args, **kwargs):
    with pytest.raises(Exception) as info:
        fn(*args, **kwargs)
    return info.type, str(info.value)


@pytest.mark.parametrize("case", ["bad index", "negative index", "float indices",
                                  "index shape", "grad dtype", "grad shape", "int avg",
                                  "padding", "too small", "empty channels", "rank",
                                  "bad samples", "samples shape"])
def test_errors_match_the_cpu(case):
    x = sample_input(2, specials=False)
    out, idx = npl.max_pool2d(x, 2, return_indices=True)
    bad = idx.copy()
    bad.flat[3] = 999 if case == "bad index" else -2
    calls = {
        "bad index": ("max_unpool2d", [out, bad], (2,)),
        "negative index": ("adaptive_max_pool2d_backward", [out, x, bad], ()),
        "float indices": ("max_unpool2d", [out, idx.astype(np.float32)], (2,)),
        "index shape": ("max_unpool2d", [out, idx[:, :, :1]], (2,)),
        "grad dtype": ("max_pool2d_backward", [out.astype(np.float64), x, idx], (2,)),
        "grad shape": ("avg_pool2d_backward", [out[..., :1], x], (2,)),
        "int avg": ("avg_pool2d", [x.astype(np.int32)], (2,)),
        "padding": ("max_pool2d", [x], (2, 2, 2)),
        "too small": ("avg_pool2d", [x], (7,)),
        "empty channels": ("max_pool2d", [x[:, :0]], (2,)),
        "rank": ("max_pool2d", [x[0, 0]], (2,)),
        "bad samples": ("fractional_max_pool2d", [x], (2, 2, None, False, np.ones((1, 2, 2)))),
        "samples shape": ("fractional_max_pool2d", [x], (2, 2, None, False,
                                                         np.zeros((1, 2, 3)))),
    }
    name, arrays, args = calls[case]
    fn = getattr(npl, name)
    expected = raised(fn, *arrays, *args)
    assert expected[0] in (ValueError, TypeError)
    assert raised(fn, *map(to_gpu, arrays), *args) == expected
    if case == "bad samples":  # device samples too
        assert raised(fn, to_gpu(x), *args[:-1], to_gpu(args[-1])) == expected


def test_other_arrays_must_be_on_the_device():
    x = sample_input(2, specials=False)
    out, idx = npl.max_pool2d(x, 2, return_indices=True)
    with pytest.raises(TypeError, match="grad_output must live on the same device"):
        npl.max_pool2d_backward(out, to_gpu(x), to_gpu(idx), 2)
    with pytest.raises(TypeError, match="indices must live on the same device"):
        npl.max_unpool2d(to_gpu(out), idx, 2)


def test_value_range_reduces_on_the_device():
    rng = np.random.default_rng(0)
    for dtype, shape in ((np.int64, (3, 2, 5, 4, 5)), (np.uint8, (2, 3, 4)),
                         (np.uint64, (1, 2, 1, 3, 5)), (np.int16, (7,))):
        info = np.iinfo(dtype)
        host = rng.integers(info.min, info.max, shape, dtype, endpoint=True)
        host5 = to_gpu(host.reshape((1,) * (5 - host.ndim) + shape))  # 600 elements: 3 blocks
        assert _cuda.CUDA.value_range(host5) == (int(host.min()), int(host.max()))
    assert _cuda.CUDA.value_range(to_gpu(np.zeros((0, 2, 1, 1, 3), np.int64))) == (0, -1)


# --- imports, installation, compilation --------------------------------------------------


def _python(code, env_update=None, drop=()):
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(env_update or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=os.path.dirname(os.path.dirname(__file__)))


def test_cpu_use_imports_no_gpu_modules():
    result = _python(
        "import sys, numpy as np, numbapool as npl\n"
        "npl.max_pool2d(np.ones((1, 1, 4, 4), np.float32), 2)\n"
        "npl.nn.MaxPool2d(2)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('numba.cuda', 'cupy'))))\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_device_array_without_a_gpu_says_what_to_install():
    result = _python(
        "import numpy as np, numbapool as npl\n"
        "class Fake:\n"
        "    __cuda_array_interface__ = {'shape': (1, 1, 4, 4), 'typestr': '<f4',\n"
        "                                'data': (0, False), 'version': 3}\n"
        "try:\n"
        "    npl.max_pool2d(Fake(), 2)\n"
        "except (RuntimeError, TypeError) as error:\n"
        "    print(type(error).__name__, error)\n",
        {"CUDA_VISIBLE_DEVICES": ""}, drop=("NUMBA_ENABLE_CUDASIM",))
    assert result.returncode == 0, result.stderr
    assert all(f'"numbapool[{extra}]"' in result.stdout for extra in ("cuda12", "cuda13")), \
        result.stdout


@pytest.mark.skipif(not SIMULATED, reason="a real GPU runs the kernels themselves")
def test_every_kernel_compiles_for_cuda():
    """Every kernel variant through NVVM to PTX (needs numba-cuda and NVVM, no GPU)."""
    result = subprocess.run([sys.executable, __file__, "--ptx"], capture_output=True,
                            text=True, env={k: v for k, v in os.environ.items()
                                            if k != "NUMBA_ENABLE_CUDASIM"})
    if result.returncode == 77:
        pytest.skip(f"cannot compile PTX here: {result.stdout.strip()[-300:]}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


# --- real GPU: CuPy, streams, PyTorch ----------------------------------------------------


@needs_cupy
def test_cupy_in_cupy_out():
    x = sample_input(2)
    for label, (host,), kwargs, _ in layouts(x):
        device = cupy.asarray(np.ascontiguousarray(host))
        if label in ("channels_last_memory", "strided", "reversed"):
            # build the same strided view with CuPy itself
            device = {"channels_last_memory": lambda: cupy.ascontiguousarray(
                          cupy.asarray(x).transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2),
                      "strided": lambda: cupy.repeat(cupy.asarray(x), 2, axis=-1)[..., ::2],
                      "reversed": lambda: cupy.asarray(x[:, ::-1].copy())[:, ::-1]}[label]()
        y, idx = npl.max_pool2d(device, 3, 2, 1, return_indices=True, **kwargs)
        expected, expected_idx = npl.max_pool2d(host, 3, 2, 1, return_indices=True,
                                                **kwargs)
        assert isinstance(y, cupy.ndarray) and isinstance(idx, cupy.ndarray)
        np.testing.assert_array_equal(cupy.asnumpy(y), expected)
        np.testing.assert_array_equal(cupy.asnumpy(idx), expected_idx)
        avg = npl.adaptive_avg_pool2d(device, 2, **kwargs)
        assert isinstance(avg, cupy.ndarray)
        np.testing.assert_allclose(cupy.asnumpy(avg), npl.adaptive_avg_pool2d(host, 2,
                                                                              **kwargs),
                                   rtol=1e-5)


def _slow_product(cupy, products=40):
    """A (4096, 4096) float32 product, every element 4096, queued on the current stream
    behind ``products`` more of them, to keep the GPU busy for a while."""
    a = cupy.full((4096, 4096), 1.0, cupy.float32)
    for _ in range(products):
        a @ a  # the GPU's queue grows; the host goes on
    return a @ a


def _stream_work(x, samples):
    """Forward and backward of each family on ``x`` (16, 64, 128, 128) float32."""
    y = npl.adaptive_avg_pool2d(x, 7)
    pooled, idx = npl.max_pool2d(x, 2, return_indices=True)
    ones = x[:, :, ::2, ::2] * 0 + 1
    frac, frac_idx = npl.fractional_max_pool2d(x, 2, output_size=50, return_indices=True,
                                               random_samples=samples)
    return {
        "adaptive_avg": y,
        "adaptive_avg_backward": npl.adaptive_avg_pool2d_backward(y * 0 + 1, x),
        "max": pooled,
        "max_backward": npl.max_pool2d_backward(ones, x, idx, 2),
        "unpool": npl.max_unpool2d(ones, idx, 2),
        "lp": npl.lp_pool2d(x, 2.0, 2),
        "avg_backward": npl.avg_pool2d_backward(ones, x, 2),
        "fractional": frac,
        "fractional_backward": npl.fractional_max_pool2d_backward(frac * 0 + 1, x,
                                                                  frac_idx, 2, 50),
    }


@needs_cupy
def test_cupy_current_stream_is_used():
    """Work queued on a non-blocking stream must be seen: a kernel (or the copy of host
    fractional samples) on any other stream could run before the slow producer ends."""
    stream = cupy.cuda.Stream(non_blocking=True)
    samples = np.full((16, 64, 2), 0.5)
    with stream:
        x = _slow_product(cupy).reshape(16, 64, 128, 128)
        results = _stream_work(x, samples)
    stream.synchronize()
    got = {k: cupy.asnumpy(v) for k, v in results.items()}
    assert (got["adaptive_avg"] == 4096).all() and (got["max"] == 4096).all()
    assert (got["fractional"] == 4096).all() and (got["lp"] == 4096 * 2).all()
    # each output hands its 1 to its window's inputs
    assert np.isclose(got["adaptive_avg_backward"].sum(dtype=np.float64), 16 * 64 * 49)
    for key in ("max_backward", "unpool", "fractional_backward"):  # the first of ties
        assert got[key].sum() == got[key].size / 4 if key != "fractional_backward" else \
            got[key].sum() == 16 * 64 * 50 * 50, key
    assert got["avg_backward"].sum() == got["avg_backward"].size / 4


@needs_cupy
def test_forward_and_backward_never_wait_for_the_device():
    """With the kernels compiled, calls only queue work: right after them the stream
    still runs the slow producer (so nothing synchronised the device or the stream),
    except where indices are read (max-type backward, unpooling), whose check waits."""
    stream = cupy.cuda.Stream(non_blocking=True)
    samples = np.full((16, 64, 2), 0.5)
    with stream:
        _stream_work(cupy.ones((16, 64, 128, 128), cupy.float32), samples)  # compile
        stream.synchronize()
        # a second or so of matrix work: longer than the calls below take on the host
        x = _slow_product(cupy, 400).reshape(16, 64, 128, 128)
        assert not stream.done
        y = npl.adaptive_avg_pool2d(x, 7)
        pooled, idx = npl.max_pool2d(x, 2, return_indices=True)
        for label, call in (
                ("adaptive_avg_pool2d_backward", lambda: npl.adaptive_avg_pool2d_backward(y, x)),
                ("avg_pool2d_backward", lambda: npl.avg_pool2d_backward(pooled, x, 2)),
                ("lp_pool2d", lambda: npl.lp_pool2d(x, 2.0, 2)),
                # as compiled above (a kernel compiled here would give the GPU time)
                ("fractional_max_pool2d", lambda: npl.fractional_max_pool2d(
                    x, 2, output_size=50, return_indices=True, random_samples=samples)),
                ("fractional_max_pool2d rng", lambda: npl.fractional_max_pool2d(
                    x, 2, output_size=50, return_indices=True,
                    rng=np.random.default_rng(0)))):
            call()
            assert not stream.done, f"{label} waited for the stream"
    stream.synchronize()


@needs_real_gpu
def test_torch_cuda_tensors_give_numba_arrays():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    x = torch.randn(2, 3, 8, 8, device="cuda")
    y = npl.max_pool2d(x, 2)
    assert getattr(y, "__cuda_ndarray__", False)
    expected = torch.nn.functional.max_pool2d(x, 2)
    assert torch.equal(torch.as_tensor(y, device="cuda"), expected)


# --- real GPU: the whole op table, PyTorch CUDA, determinism, streams --------------------


def table_cases():
    from numbapool import _ops

    return [(op, nd) for op in _ops.OPS for nd in op.dims]


def table_id(case):
    op, nd = case
    return op.function_name(nd)


def table_element_types(op):
    from oracles import FLOATS, INTS

    return FLOATS + tuple(t for t in INTS if np.dtype(t) in op.integers)


def table_call(case, dtype, seed=None):
    """``(name, arrays, kwargs, row)`` of the op-table row's sample call (``ops_table``)."""
    from ops_table import ROWS

    op, nd = case
    row = ROWS[op.name]
    arrays, kwargs = row.inputs(np.random.default_rng(nd if seed is None else seed), nd,
                                dtype)
    return op.function_name(nd), arrays, kwargs, row


def backward_call(name, arrays, kwargs, row):
    """``(arrays, kwargs)`` of the gradient of ``npl.<name>(*arrays, **kwargs)``."""
    expected = getattr(npl, name)(*arrays, **kwargs)
    out = expected[0] if row.returns_indices else expected
    rest = (expected[1],) if row.returns_indices else tuple(arrays[1:])
    kwargs = {k: v for k, v in kwargs.items() if k not in row.backward_drops}
    return [grad_for(out), arrays[0], *rest], kwargs


@needs_cupy
@pytest.mark.parametrize("case", [c for c in table_cases() if c[0].name not in (
    "fractional_max_pool", "max_unpool")], ids=table_id)
def test_cupy_replays_equal_the_full_path(case):
    """A repeated forward on CuPy arrays replays its plan (``numbapool._plans``), launching
    its kernel directly: on new values, both memory layouts, every element type, on a
    busy non-blocking stream, it gives what the first call's full path gives (the CPU's
    results, the same shapes and strides), and the plan was used."""
    stream = cupy.cuda.Stream(non_blocking=True)
    for dtype in table_element_types(case[0]):
        for layout in ("contiguous", "channels_last_memory"):
            calls = []
            for seed in (1, 2, 3):
                name, arrays, kwargs, _ = table_call(case, dtype, seed)
                label, hosts, extra, _ = next(c for c in layouts(*arrays) if c[0] == layout)
                calls.append((hosts, {**kwargs, **extra}))
            fn = getattr(npl, name)
            expected_results = [fn(*hosts, **kwargs) for hosts, kwargs in calls]
            plans = fn.__globals__["_plans"]
            plans.clear()
            first = fn(to_cupy(calls[0][0][0]), *calls[0][0][1:], **calls[0][1])
            assert len(plans) == 1, f"{name} {dtype} {layout}: no plan recorded"
            for (hosts, kwargs), expected in zip(calls[1:], expected_results[1:]):
                source, x = to_cupy(hosts[0]), to_cupy(np.zeros_like(hosts[0]))
                cupy.cuda.Device().synchronize()
                with stream:
                    # x gets its values on the stream once a slow product is done: a
                    # replay on any other stream would read zeros
                    busy = _slow_product(cupy, 2)
                    cupy.copyto(x, source, where=busy[0, 0] == 4096)
                    got = fn(x, *hosts[1:], **kwargs)
                stream.synchronize()
                pairs = zip(got if isinstance(got, tuple) else (got,),
                            expected if isinstance(expected, tuple) else (expected,),
                            first if isinstance(first, tuple) else (first,))
                for g, e, f in pairs:
                    assert isinstance(g, cupy.ndarray) and g.strides == f.strides
                    assert_same(g, e, True if e.dtype.kind in "iu" else case_exact(case))
            assert len(plans) == 1


def case_exact(case):
    from ops_table import ROWS

    return ROWS[case[0].name].exact


@needs_real_gpu
@pytest.mark.parametrize("arrays_of", ["numba", "cupy"])
@pytest.mark.parametrize("case", table_cases(), ids=table_id)
def test_every_op_matches_the_cpu_on_hardware(case, arrays_of):
    """Every family and rank of the op table, every element type, every layout (views
    with offsets and negative strides included), forward and backward, from Numba device
    arrays and from CuPy arrays: the CPU backend's results (bitwise for max-type values,
    indices and gradients, float rounding for sums)."""
    if arrays_of == "cupy" and cupy is None:
        pytest.skip("CuPy is not installed")
    make = to_gpu if arrays_of == "numba" else to_cupy
    for dtype in table_element_types(case[0]):
        if arrays_of == "cupy" and dtype is bfloat16:
            continue  # CuPy has no bfloat16 arrays; the Numba run covers it
        name, arrays, kwargs, row = table_call(case, dtype)
        parity(name, arrays, exact=row.exact, make=make, **kwargs)
        if np.dtype(dtype).kind not in "iu":  # integers have no gradient
            grad_arrays, grad_kwargs = backward_call(name, arrays, kwargs, row)
            parity(name + "_backward", grad_arrays, exact=row.exact, make=make,
                   **grad_kwargs)


def torch_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    return torch


def torch_forward(torch, name, tensors, kwargs):
    """``torch.nn.functional.<name>`` with numbapool's keyword names."""
    kwargs = {k: v for k, v in kwargs.items() if v is not None}  # avg_pool1d has no
    # divisor_override
    if "random_samples" in kwargs:
        kwargs["_random_samples"] = kwargs.pop("random_samples")
    return getattr(torch.nn.functional, name)(*tensors, **kwargs)


def to_torch_cuda(torch, host, channels_last):
    """A CUDA tensor of ``host``'s values, in channels-last memory if asked."""
    tensor = torch.from_numpy(np.ascontiguousarray(host)).cuda()
    if channels_last and tensor.ndim > 2:
        order = (0, *range(2, tensor.ndim), 1)
        tensor = tensor.permute(order).contiguous().permute(tuple(np.argsort(order)))
    return tensor


@needs_real_gpu
@pytest.mark.parametrize("channels_last", [False, True], ids=["contiguous", "channels_last"])
@pytest.mark.parametrize("case", table_cases(), ids=table_id)
def test_every_op_matches_pytorch_cuda(case, channels_last):
    """PyTorch CUDA tensors straight into numbapool (``__cuda_array_interface__``), in
    contiguous and channels-last memory, float16/32/64: the values, indices and
    gradients of PyTorch CUDA (bitwise for max-type, float rounding for sums)."""
    torch = torch_cuda()
    from oracles import tolerance

    name = table_id(case)
    if not hasattr(torch.nn.functional, name):
        pytest.skip(f"PyTorch has no {name}")
    for dtype in (np.float32, np.float16, np.float64):
        _, arrays, kwargs, row = table_call(case, dtype)
        if case[0].name == "lp_pool":
            # PyTorch's p-norm of negative values is NaN, and it rescales the windows
            # ceil_mode cuts (README: differences)
            arrays = (np.abs(arrays[0]),)
            kwargs["ceil_mode"] = False
        tensors = [to_torch_cuda(torch, a, channels_last) for a in arrays]
        if "random_samples" in kwargs:  # PyTorch takes samples of the input's type
            kwargs["random_samples"] = torch.from_numpy(
                kwargs["random_samples"].astype(dtype)).cuda()
        leaf = tensors[0].detach().requires_grad_()
        want = torch_forward(torch, name, [leaf, *tensors[1:]], kwargs)
        got = getattr(npl, name)(*tensors, **kwargs)
        want = want if isinstance(want, tuple) else (want,)
        got = got if isinstance(got, tuple) else (got,)
        for g, w in zip(got, want):
            g = torch.as_tensor(g, device="cuda")
            assert g.shape == w.shape and g.dtype == w.dtype, (name, dtype)
            if row.exact or not w.is_floating_point():
                assert torch.equal(g.nan_to_num(7.0), w.detach().nan_to_num(7.0)), (name, dtype)
            else:
                torch.testing.assert_close(g, w.detach(), rtol=tolerance(dtype),
                                           atol=tolerance(dtype), equal_nan=True)
        grad = torch.randn(want[0].shape, device="cuda", dtype=want[0].dtype,
                           generator=torch.Generator("cuda").manual_seed(1))
        want[0].backward(grad)
        backward_kwargs = {k: v for k, v in kwargs.items() if k not in row.backward_drops}
        rest = (torch.as_tensor(got[1], device="cuda"),) if row.returns_indices else \
            tensors[1:]
        got_grad = torch.as_tensor(
            getattr(npl, name + "_backward")(grad, tensors[0], *rest, **backward_kwargs),
            device="cuda")
        want_grad = leaf.grad
        if channels_last and name in ("avg_pool1d", "avg_pool2d") and kwargs["padding"]:
            # PyTorch's channels-last CUDA kernel forgets the padding in its backward
            # (pytorch/pytorch#188344): PyTorch's CPU gradient is the oracle there
            cpu_leaf = tensors[0].detach().cpu().requires_grad_()
            torch_forward(torch, name, [cpu_leaf], kwargs).backward(grad.cpu())
            want_grad = cpu_leaf.grad.cuda()
        torch.testing.assert_close(got_grad, want_grad, rtol=tolerance(dtype),
                                   atol=tolerance(dtype), equal_nan=True)


@needs_real_gpu
@pytest.mark.parametrize("case", table_cases(), ids=table_id)
def test_backward_is_bitwise_repeatable_across_launch_shapes(case, monkeypatch):
    """Every gradient is the same bits on every run and for every grid size (no atomics,
    fixed orders), on an input large enough for many blocks."""
    name, arrays, kwargs, row = table_call(case, np.float32)
    big = [np.tile(a, (8, 16) + (1,) * (a.ndim - 2)) for a in arrays]
    if "random_samples" in kwargs:
        kwargs["random_samples"] = np.tile(kwargs["random_samples"], (8, 16, 1))
    grad_arrays, grad_kwargs = backward_call(name, big, kwargs, row)
    device_arrays = [to_gpu(a) for a in grad_arrays]
    backward = getattr(npl, name + "_backward")
    results = set()
    for blocks in (None, 1, 3, 1000):
        if blocks:
            monkeypatch.setattr(_cuda, "_max_blocks", lambda blocks=blocks: blocks)
        for _ in range(3):
            results.add(_cuda.CUDA.to_host(backward(*device_arrays, **grad_kwargs)).tobytes())
    assert len(results) == 1


PYTORCH_NONDETERMINISTIC = {  # PyTorch CUDA backwards that may refuse deterministic mode
    "adaptive_avg_pool2d": 7, "adaptive_avg_pool3d": 3, "adaptive_max_pool2d": 7,
    "adaptive_max_pool3d": 3, "max_pool3d": 3, "avg_pool3d": 3,
    "fractional_max_pool2d": None, "fractional_max_pool3d": None}


@needs_real_gpu
def test_deterministic_where_pytorch_cuda_refuses():
    """Where ``torch.use_deterministic_algorithms(True)`` makes PyTorch's CUDA backward
    raise, numbapool's gradient of the same tensors is bitwise repeatable and equals
    PyTorch's (nondeterministic) one within float rounding."""
    torch = torch_cuda()
    generator = torch.Generator("cuda").manual_seed(0)
    refused = []
    for name, size in PYTORCH_NONDETERMINISTIC.items():
        nd = int(name[-2])
        x = torch.randn((8, 32) + (24,) * nd, device="cuda", generator=generator)
        if name.startswith("fractional"):
            kwargs = dict(kernel_size=2, output_size=(11,) * nd, return_indices=True,
                          random_samples=torch.rand((8, 32, nd), device="cuda",
                                                    generator=generator))
        elif name.startswith("adaptive"):
            kwargs = dict(output_size=size)
            if "max" in name:
                kwargs["return_indices"] = True
        else:
            kwargs = dict(kernel_size=size, stride=2, padding=1)
            if name.startswith("max"):
                kwargs["return_indices"] = True
        leaf = x.detach().requires_grad_()
        out = torch_forward(torch, name, [leaf], kwargs)
        out = out[0] if isinstance(out, tuple) else out
        grad = torch.randn(out.shape, device="cuda", generator=generator)
        torch.use_deterministic_algorithms(True)
        try:
            try:
                probe = torch_forward(torch, name, [x.detach().requires_grad_()], kwargs)
                (probe[0] if isinstance(probe, tuple) else probe).backward(grad)
            except RuntimeError as error:
                assert "deterministic" in str(error)
                refused.append(name)
        finally:
            torch.use_deterministic_algorithms(False)
        out.backward(grad)
        ours = getattr(npl, name)(x, **kwargs)
        rest = (ours[1],) if isinstance(ours, tuple) else ()
        backward_kwargs = {k: v for k, v in kwargs.items()
                           if k not in ("return_indices", "random_samples")}
        if name.startswith("adaptive"):
            backward_kwargs.pop("output_size")
        grads = [torch.as_tensor(getattr(npl, name + "_backward")(grad, x, *rest,
                                                                  **backward_kwargs),
                                 device="cuda") for _ in range(5)]
        assert all(torch.equal(g, grads[0]) for g in grads), name
        torch.testing.assert_close(grads[0], leaf.grad, rtol=1e-5, atol=1e-5)
    print("PyTorch CUDA refuses deterministic backward for:", ", ".join(refused))
    assert refused, "PyTorch refused none: update the README's determinism note"


# --- run as a script: compile every kernel variant to PTX ---------------------------------


CC = (7, 5)  # the oldest compute capability CUDA 13 still targets


def _compile_every_kernel():
    """Exit 0 when every kernel variant compiles to PTX, 77 when it cannot be tried
    (no NVVM, or numba's built-in CUDA target)."""
    from numba import cuda as real_cuda
    from numba import from_dtype, types

    from numbapool import _cuda, _cuda_arrays, _elements, _reductions, _windows

    _cuda_arrays._load_array_support()
    if getattr(real_cuda, "implementation", "") == "Built-in":
        print("numba's built-in CUDA target cannot compile min(); the GPU backend needs "
              "numba-cuda")
        sys.exit(77)
    try:
        real_cuda.compile_ptx(lambda a: None, (types.float32[::1],), cc=CC)
    except Exception as error:
        print(f"{type(error).__name__}: {error}")
        sys.exit(77)
    # no GPU: the kernels' device functions compile for a stand-in compute capability
    import numba.cuda.dispatcher as dispatcher

    class Device:
        compute_capability = CC

    dispatcher.get_current_device = Device
    _cuda._cuda = lambda: setattr(_cuda, "cuda", real_cuda) or real_cuda
    _cuda.cuda = real_cuda

    def array(dtype, ndim=5):
        return types.Array(from_dtype(np.dtype(dtype)), ndim, "A")

    def scalar(dtype):
        return from_dtype(np.dtype(dtype))

    geometry = types.NamedUniTuple(types.int64, 6, _windows.Geometry)
    dims = types.NamedUniTuple(geometry, 3, _windows.Dims)

    def options(element):
        return types.NamedTuple((types.boolean, types.int64, scalar(element.compute)),
                                _reductions.Options)

    dtypes = ["float32", "float16", "float64", "int8", "uint64"]
    try:
        import ml_dtypes

        dtypes.append(ml_dtypes.bfloat16)
    except ImportError:
        pass
    dtypes.append("int64")
    elements = [_elements.element(dtype, "ptx", _elements.INTEGERS) for dtype in dtypes]
    # LP pooling of int64 reads it into float64 arithmetic
    elements.append(_elements.read_as_float(_elements.element("int64", "ptx", _elements.INT64),
                                            np.float32))
    floats = [e for e in elements if e.is_float]
    selecting = (_reductions.MAX, _reductions.ABS_MAX, _reductions.ABS_MIN)
    summing = (_reductions.MEAN, _reductions.P_NORM, *_reductions.P_NORMS.values())
    cases = []
    for element in elements:
        x, out = array(element.storage), array(element.stored)
        c = scalar(element.compute)
        for windows in (_windows.FIXED, _windows.ADAPTIVE, element.windows):
            samples = array(element.sample_compute, 3) if windows.per_plane else x
            reductions = selecting if element.is_float else selecting[:1]
            if element.is_float and not windows.per_plane:
                reductions += summing
            elif element.dtype == np.int64 and not windows.per_plane:
                reductions += (_reductions.MEAN,)  # int64 average pooling
            for reduction in reductions:
                for cl in (False, True):
                    for with_indices in ((False, True) if reduction.selects else (False,)):
                        cases.append((_cuda.reduce_kernel(windows, reduction, element,
                                                          with_indices, cl),
                                      (x, out, array("int64"), samples, dims, c,
                                       options(element))))
                    if windows is _windows.ADAPTIVE:
                        for lanes in ((8,) if cl else (256, 32)):
                            cases.append((_cuda.block_reduce_kernel(
                                windows, reduction, element, reduction.selects, cl, lanes),
                                (x, out, array("int64"), dims, c, options(element))))
                    if element.is_float and not windows.per_plane:
                        for idx in (("int64", "uint32") if reduction.selects else (None,)):
                            cases.append((_cuda.gather_kernel(windows, reduction, element,
                                                              cl),
                                          (x, array(idx) if idx else x, x, x, out, dims, c,
                                           options(element))))
    for windows in (_windows.FIXED, _windows.ADAPTIVE):
        for unit_steps in (False, True):
            for cl in (False, True):
                for index in ("int64", "int32", "uint8"):
                    cases.append((_cuda.index_check_kernel(windows, unit_steps, cl),
                                  (array(index), array("uint8"), dims, types.int64,
                                   types.int64)))
    for cl in (False, True):
        for dt, index in (("uint16", "int64"), ("float64", "int32"), ("int8", "uint8"),
                          ("uint64", "int64")):
            cases.append((_cuda.scatter_kernel(False, _elements.load_plain, cl),
                          (array(dt), array(index), array(dt), scalar(dt))))
            cases.append((_cuda.gather_by_index_kernel(cl),
                          (array(dt), array(index), array(dt))))
        for element in floats:
            c = element.compute
            for index in ("int64", "int16", "uint64"):
                cases.append((_cuda.scatter_kernel(True, element.load, cl),
                              (array(element.storage), array(index), array(c), scalar(c))))
            cases.append((_cuda.copy_kernel(cl, element.store),
                          (array(c), array(element.stored))))
        cases.append((_cuda.copy_kernel(cl, _elements.store_plain),
                      (array("int64"), array("int64"))))
    for dt in ("int64", "int32", "uint64", "uint8", "int8"):
        cases.append((_cuda.range_kernel(dt), (array(dt), array(dt), array(dt, 1),
                                               array(dt, 1), scalar(dt), scalar(dt))))
    failures = 0
    for kernel, signature in cases:
        try:
            real_cuda.compile_ptx(kernel.py_func, signature, cc=CC)
        except Exception as error:
            failures += 1
            print(f"FAILED {kernel.py_func.__qualname__}{signature}: "
                  f"{type(error).__name__}: {str(error)[:2000]}")
    print(f"{len(cases)} kernel variants, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__" and sys.argv[1:] == ["--ptx"]:
    _compile_every_kernel()
