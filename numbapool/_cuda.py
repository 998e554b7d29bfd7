"""GPU backend: ``numba.cuda`` kernels over the canonical (N, C, D, H, W) view.

Arrays: a CuPy array gives CuPy results; a Numba device array gives Numba device
arrays; any other ``__cuda_array_interface__`` producer (a PyTorch CUDA tensor, ...)
is wrapped with ``numba.cuda.as_cuda_array`` without copying and gets Numba device
arrays back (``torch.as_tensor(result, device="cuda")`` takes them back into PyTorch
without a copy). Views of any strides share the caller's memory, as on the CPU.

Streams: work on a CuPy array is queued on CuPy's current stream; work on any other
array on the stream its ``__cuda_array_interface__`` names (the producer's, so no
host synchronisation is needed), else on the default stream. Nothing waits for the
GPU except ``value_range`` (the index check of unpooling and backward), which copies
two scalars to the host.

Kernels mirror the CPU backend's: the same window functions, loaders and reduction
pieces (``numbapool._reductions``) compiled for CUDA, one thread per output (forward)
or per input element (gather backward), with the flat thread index unravelled W-fastest
for channels-first memory and C-fastest for channels-last memory, so neighbouring
threads touch neighbouring addresses in both. Adaptive windows too large for one
thread are reduced by several threads and a fixed-order tree in shared memory.
Every result is deterministic: no atomics, fixed launch shapes and reduction orders.

Needs the numba-cuda package (``pip install "numbapool[cuda]"``): numba's deprecated
built-in CUDA target cannot compile these kernels (it fails on ``min()`` from Numba
0.68 on), and numba-cuda cannot compile ``inline="always"`` overloads, so the shared
reduction pieces are requested with ``inline="never"``. Numba's CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``) runs everything, slowly, for tests.

Nothing here imports ``numba.cuda`` (or CuPy) until a device array arrives, and
kernels are built on first use by memoised factories.
"""

import functools
import math
import sys
import warnings

import numpy as np
from numba.extending import register_jitable

from numbapool import _layout
from numbapool._reductions import (
    LOADS,
    WINDOWS,
    compute_dtype,
    gradient_parts,
    lowest,
    split_row,
    sum_parts,
)

INSTALL_HINT = 'pip install "numbapool[cuda]"'

THREADS = 256
"""Threads per block of every kernel (the block reductions' shared arrays have this size)."""

BLOCK_TAPS = {False: (1024, 32), True: 256}
"""When adaptive windows get a block reduction: channels-first, 256 threads share one
output from ``BLOCK_TAPS[False][0]`` taps on and 32 threads (a warp) from
``BLOCK_TAPS[False][1]``; channels-last, 8 threads share each of 32 neighbouring
channels from ``BLOCK_TAPS[True]`` taps on. Smaller windows get a thread per output."""

PLANE_LANES = {False: THREADS, True: 8}
"""Threads per (n, c) plane of the per-plane kernels (unpool, fractional backward):
a whole block channels-first, 8 threads for each of 32 neighbouring channels
channels-last."""

_NONE = -1  # "no element yet" in a partial (value, index) maximum


cuda = None
"""``numba.cuda`` once a device array has arrived. Kernels name it as this module
global, which is what the CUDA simulator swaps for its fake module while they run."""


def _backend():
    return sys.modules[__name__]


# ---------------------------------------------------------------------------------------
# numba.cuda, CuPy and the arrays of both, imported only once a device array arrives


@functools.cache
def _numba_cuda():
    global cuda
    try:
        from numba import cuda as module
    except ImportError as error:
        raise TypeError(
            f"numbapool got a CUDA array but numba.cuda cannot be imported ({error}); "
            f"install the GPU backend with: {INSTALL_HINT}"
        ) from None
    if not module.is_available():
        reason = module.cuda_error() if hasattr(module, "cuda_error") else None
        raise RuntimeError(
            f"numbapool got a CUDA array but numba.cuda finds no usable GPU"
            f"{f' ({reason})' if reason else ''}; it needs an NVIDIA driver and the CUDA "
            f"packages that {INSTALL_HINT} installs"
        )
    if getattr(module, "implementation", "") == "Built-in" and not _simulated():
        # numba's own (deprecated) CUDA target cannot compile min() from Numba 0.68 on
        raise TypeError(
            "numbapool's GPU backend needs the numba-cuda package, not numba's built-in "
            f"CUDA target; install it with: {INSTALL_HINT}"
        )
    cuda = module
    return module


@functools.cache
def _simulated():
    from numba.core import config

    return bool(config.ENABLE_CUDASIM)


def _is_cupy(array):
    cupy = sys.modules.get("cupy")
    return cupy is not None and isinstance(array, cupy.ndarray)


def adopt(x):
    """``(backend, array)`` for an object with ``__cuda_array_interface__``.

    CuPy arrays and Numba device arrays are used as they are; anything else is wrapped
    (no copy) as a Numba device array that keeps the producer's stream.
    """
    _numba_cuda()
    if _is_cupy(x) or getattr(x, "__cuda_ndarray__", False):
        return _backend(), x
    try:
        return _backend(), cuda.as_cuda_array(x, sync=False)
    except Exception as error:
        raise TypeError(
            f"numbapool cannot read {type(x).__name__} through its "
            f"__cuda_array_interface__: {error}"
        ) from None


def view(array, shape, strides, dtype=None):
    """A view of ``array``'s memory, its first element kept, of any shape and strides."""
    dtype = array.dtype if dtype is None else np.dtype(dtype)
    shape, strides = tuple(int(s) for s in shape), tuple(int(s) for s in strides)
    if _is_cupy(array):
        return sys.modules["cupy"].ndarray(shape, dtype, memptr=array.data, strides=strides)
    if _simulated():
        host = np.lib.stride_tricks.as_strided(array._ary, shape, strides)
        return type(array)(host.view(dtype), stream=array.stream)
    from numba.cuda.cudadrv.devicearray import DeviceNDArray

    # gpu_data points at the first element (the array interface's data pointer), so
    # negative strides index backwards from it, as they should
    return DeviceNDArray(shape, strides, dtype, stream=array.stream, gpu_data=array.gpu_data)


def canonical_view(array, nd, batched, data_format):
    """The (N, C, D, H, W) view of a caller's array (see ``_layout.to_canonical``)."""
    shape5, strides5 = _layout.to_canonical(array.shape, array.strides, nd, batched,
                                            data_format)
    return view(array, shape5, strides5)


def caller_view(y5, nd, batched, data_format):
    """A 5-d result in the caller's shape convention (``_layout.from_canonical``)."""
    shape, strides = _layout.from_canonical(y5.shape, y5.strides, nd, batched, data_format)
    return view(y5, shape, strides)


def _alloc(shape, dtype, like):
    """A C-contiguous uninitialised array of ``like``'s kind (CuPy or Numba)."""
    if like is not None and _is_cupy(like):
        return sys.modules["cupy"].empty(shape, dtype)
    stream = like.stream if like is not None else 0
    return _numba_cuda().device_array(shape, dtype, stream=stream)


def empty5(shape5, dtype, channels_last, like=None):
    """An uninitialised (N, C, D, H, W) array, with C fastest in memory if asked;
    a CuPy array if ``like`` is one, else a Numba device array."""
    n, c, d, h, w = shape5
    if channels_last:
        memory = _alloc((n, d, h, w, c), dtype, like)
        s = memory.strides
        return view(memory, shape5, (s[0], s[4], s[1], s[2], s[3]))
    memory = _alloc(shape5, dtype, like)
    return view(memory, shape5, memory.strides)


def _stream(array):
    """The stream work on ``array`` is queued on (see the module docstring)."""
    if _simulated():
        return 0
    if _is_cupy(array):
        pointer = sys.modules["cupy"].cuda.get_current_stream().ptr
        return _external_stream(pointer) if pointer else 0
    return array.stream


@functools.lru_cache(maxsize=64)
def _external_stream(pointer):
    return _numba_cuda().external_stream(pointer)


def _kernel_arg(array):
    """What a kernel launch takes: CuPy arrays become Numba views without the host
    synchronisation that Numba's own conversion of kernel arguments would do."""
    if _is_cupy(array):
        return _numba_cuda().as_cuda_array(array, sync=False)
    return array


@functools.cache
def _max_blocks():
    """Enough blocks of grid-stride loops to fill every SM of the current device."""
    if _simulated():
        return 1 << 30
    device = _numba_cuda().get_current_device()
    return device.MULTIPROCESSOR_COUNT * (2048 // THREADS) * 2


def _launch(kernel, work, stream, *args):
    """``kernel`` on enough blocks of ``THREADS`` threads for ``work`` grid-stride
    items (threads or blocks, as the kernel loops)."""
    blocks = max(1, min(work, _max_blocks()))
    args = tuple(_kernel_arg(a) if hasattr(a, "dtype") and hasattr(a, "strides") else a
                 for a in args)
    if blocks < 128:
        # small inputs give small grids; Numba would warn about occupancy on each call
        from numba.core.errors import NumbaPerformanceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NumbaPerformanceWarning)
            configured = kernel[blocks, THREADS, stream]
    else:
        configured = kernel[blocks, THREADS, stream]
    configured(*args)


def _thread_blocks(total):
    return -(-total // THREADS)


# ---------------------------------------------------------------------------------------
# Kernel pieces


@functools.cache
def _positions(channels_last):
    """``position(t, shape)``: the (n, c, d, h, w) of flat index t of a 5-d array, W
    fastest (channels-first) or C fastest (channels-last): consecutive threads touch
    consecutive addresses of either memory order."""
    if channels_last:

        @register_jitable
        def position(t, shape):
            channels, depth, height, width = shape[1], shape[2], shape[3], shape[4]
            n, d, h, w = split_row(t // channels, depth, height, width)
            return n, t % channels, d, h, w

        return position

    @register_jitable
    def position(t, shape):
        channels, depth, height, width = shape[1], shape[2], shape[3], shape[4]
        n, c, d, h = split_row(t // width, channels, depth, height)
        return n, c, d, h, t % width

    return position


@functools.cache
def _sampler(window_kind):
    """``sample(samples, n, c, k)``: the fractional sample of dim k, 0.0 for other kinds
    (whose launchers pass any array as ``samples``)."""
    if window_kind.startswith("fractional"):

        @register_jitable
        def sample(samples, n, c, k):
            return samples[n, c, k]

        return sample

    @register_jitable
    def sample(samples, n, c, k):
        return 0.0

    return sample


@register_jitable
def _walk(first, lanes, nh, nw):
    """Row-major (a, b, e) of tap ``first`` of a window with nh x nw taps per plane,
    and the same split of a ``lanes``-tap step, so walking needs no division."""
    row = first // nw
    step_row = lanes // nw
    return row // nh, row % nh, first % nw, step_row // nh, step_row % nh, lanes % nw


@register_jitable
def _walk_next(a, b, e, step_a, step_b, step_e, nh, nw):
    e += step_e
    b += step_b
    a += step_a
    if e >= nw:
        e -= nw
        b += 1
    if b >= nh:
        b -= nh
        a += 1
    return a, b, e


@register_jitable
def _wins(v, at, best, best_at):
    """Whether the partial maximum (v, at) of one set of taps replaces (best, best_at)
    of another: the SPEC's scan rule (first maximum, last NaN) made order-free by
    comparing indices, which grow in scan order. ``at == -1``: no taps."""
    if at < 0:
        return False
    if best_at < 0:
        return True
    if v != v:
        return best == best or at > best_at
    return v > best or (v == best and at < best_at)


def _split_functions(channels_last, lanes):
    """``(slots, split, lane_stride)``: a block of THREADS threads works on ``slots``
    outputs (or planes) with ``lanes`` threads each; ``split(tid)`` is a thread's
    ``(lane, slot)``. Channels-first lanes are neighbouring threads (they read along W),
    channels-last slots are (they are neighbouring channels)."""
    slots = THREADS // lanes
    if channels_last:

        @register_jitable
        def split(tid):
            return tid // slots, tid % slots

        return slots, split, slots

    @register_jitable
    def split(tid):
        return tid % lanes, tid // lanes

    return slots, split, 1


# ---------------------------------------------------------------------------------------
# Forward kernels


@functools.cache
def max_kernel(window_kind, channels_last, load_kind, with_indices):
    """Max over windows, with the int64 flat index of the winner (SPEC tie/NaN rules)
    when ``with_indices``; one thread per output.

    ``kernel(x, out, idx, gd, gh, gw, samples, lowest)`` on (N, C, D, H, W) arrays.
    """
    _numba_cuda()
    window = WINDOWS[window_kind][0]
    load = LOADS[load_kind]
    position = _positions(channels_last)
    sample = _sampler(window_kind)

    @cuda.jit
    def kernel(x, out, idx, gd, gh, gw, samples, lowest):
        height, width = x.shape[3], x.shape[4]
        for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            n, c, od, oh, ow = position(t, out.shape)
            d0, nd, sd, _ = window(gd, od, sample(samples, n, c, 0))
            h0, nh, sh, _ = window(gh, oh, sample(samples, n, c, 1))
            w0, nw, sw, _ = window(gw, ow, sample(samples, n, c, 2))
            best = lowest
            best_at = (d0 * height + h0) * width + w0
            for a in range(nd):
                d = d0 + a * sd
                for b in range(nh):
                    h = h0 + b * sh
                    for e in range(nw):
                        w = w0 + e * sw
                        v = load(x[n, c, d, h, w])
                        if v > best or v != v:
                            best = v
                            best_at = (d * height + h) * width + w
            out[n, c, od, oh, ow] = best
            if with_indices:
                idx[n, c, od, oh, ow] = best_at

    return kernel


@functools.cache
def block_max_kernel(window_kind, channels_last, load_kind, with_indices, lanes, dtype):
    """Max over large windows: ``lanes`` threads split each window's taps, then merge
    their partial maxima in a fixed tree (``_wins``). ``dtype``: the values' (compute)
    dtype name, for the shared arrays.

    ``kernel(x, out, idx, gd, gh, gw, lowest)``.
    """
    _numba_cuda()
    from numba import from_dtype, int64

    window = WINDOWS[window_kind][0]
    load = LOADS[load_kind]
    position = _positions(channels_last)
    slots, split, lane_stride = _split_functions(channels_last, lanes)
    value_type = from_dtype(np.dtype(dtype))

    @cuda.jit
    def kernel(x, out, idx, gd, gh, gw, lowest):
        values = cuda.shared.array(THREADS, value_type)
        indices = cuda.shared.array(THREADS, int64)
        tid = cuda.threadIdx.x
        lane, slot = split(tid)
        height, width = x.shape[3], x.shape[4]
        total = out.size
        for group in range(cuda.blockIdx.x, (total + slots - 1) // slots, cuda.gridDim.x):
            o = group * slots + slot
            best = lowest
            best_at = _NONE
            if o < total:
                n, c, od, oh, ow = position(o, out.shape)
                d0, nd, sd, _ = window(gd, od, 0.0)
                h0, nh, sh, _ = window(gh, oh, 0.0)
                w0, nw, sw, _ = window(gw, ow, 0.0)
                a, b, e, step_a, step_b, step_e = _walk(lane, lanes, nh, nw)
                while a < nd:
                    d = d0 + a * sd
                    h = h0 + b * sh
                    w = w0 + e * sw
                    v = load(x[n, c, d, h, w])
                    # a thread's first tap stands in for "the window's first tap"
                    if best_at == _NONE or v > best or v != v:
                        best = v
                        best_at = (d * height + h) * width + w
                    a, b, e = _walk_next(a, b, e, step_a, step_b, step_e, nh, nw)
            values[tid] = best
            indices[tid] = best_at
            cuda.syncthreads()
            step = lanes // 2
            while step > 0:
                if lane < step:
                    other = tid + step * lane_stride
                    if _wins(values[other], indices[other], values[tid], indices[tid]):
                        values[tid] = values[other]
                        indices[tid] = indices[other]
                cuda.syncthreads()
                step //= 2
            if lane == 0 and o < total:
                out[n, c, od, oh, ow] = values[tid]
                if with_indices:
                    idx[n, c, od, oh, ow] = indices[tid]

    return kernel


@functools.cache
def sum_kernel(window_kind, channels_last, load_kind, mode):
    """Average-type reductions (avg, adaptive avg, LP) over windows; one thread per output.

    ``kernel(x, out, gd, gh, gw, zero, count_include_pad, divisor_override, p)``;
    ``zero`` and ``p`` have the accumulation dtype (float32 for float16 input), ``out``
    the input's (the store rounds float32 sums to float16).
    """
    _numba_cuda()
    window = WINDOWS[window_kind][0]
    initial, transform, combine, finish = sum_parts(mode, LOADS[load_kind], inline="never")
    position = _positions(channels_last)

    @cuda.jit
    def kernel(x, out, gd, gh, gw, zero, count_include_pad, divisor_override, p):
        for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            n, c, od, oh, ow = position(t, out.shape)
            d0, nd, sd, pd = window(gd, od, 0.0)
            h0, nh, sh, ph = window(gh, oh, 0.0)
            w0, nw, sw, pw = window(gw, ow, 0.0)
            acc = initial(zero)
            for a in range(nd):
                d = d0 + a * sd
                for b in range(nh):
                    h = h0 + b * sh
                    for e in range(nw):
                        acc = combine(acc, transform(x[n, c, d, h, w0 + e * sw], p))
            out[n, c, od, oh, ow] = finish(
                acc, nd * nh * nw, pd * ph * pw, count_include_pad, divisor_override, p
            )

    return kernel


@functools.cache
def block_sum_kernel(window_kind, channels_last, load_kind, mode, lanes, dtype):
    """Average-type reductions over large windows: ``lanes`` threads split each
    window's taps, then ``combine`` their partial results in a fixed tree. ``dtype``:
    the accumulation dtype name.

    ``kernel(x, out, gd, gh, gw, zero, count_include_pad, divisor_override, p)``.
    """
    _numba_cuda()
    from numba import from_dtype

    window = WINDOWS[window_kind][0]
    initial, transform, combine, finish = sum_parts(mode, LOADS[load_kind], inline="never")
    position = _positions(channels_last)
    slots, split, lane_stride = _split_functions(channels_last, lanes)
    value_type = from_dtype(np.dtype(dtype))

    @cuda.jit
    def kernel(x, out, gd, gh, gw, zero, count_include_pad, divisor_override, p):
        partial = cuda.shared.array(THREADS, value_type)
        tid = cuda.threadIdx.x
        lane, slot = split(tid)
        total = out.size
        for group in range(cuda.blockIdx.x, (total + slots - 1) // slots, cuda.gridDim.x):
            o = group * slots + slot
            acc = initial(zero)
            count = 0
            padded_count = 0
            if o < total:
                n, c, od, oh, ow = position(o, out.shape)
                d0, nd, sd, pd = window(gd, od, 0.0)
                h0, nh, sh, ph = window(gh, oh, 0.0)
                w0, nw, sw, pw = window(gw, ow, 0.0)
                count = nd * nh * nw
                padded_count = pd * ph * pw
                a, b, e, step_a, step_b, step_e = _walk(lane, lanes, nh, nw)
                while a < nd:
                    acc = combine(acc, transform(x[n, c, d0 + a * sd, h0 + b * sh,
                                                   w0 + e * sw], p))
                    a, b, e = _walk_next(a, b, e, step_a, step_b, step_e, nh, nw)
            partial[tid] = acc
            cuda.syncthreads()
            step = lanes // 2
            while step > 0:
                if lane < step:
                    partial[tid] = combine(partial[tid], partial[tid + step * lane_stride])
                cuda.syncthreads()
                step //= 2
            if lane == 0 and o < total:
                out[n, c, od, oh, ow] = finish(
                    partial[tid], count, padded_count, count_include_pad, divisor_override, p
                )

    return kernel


@functools.cache
def unpool_kernel(channels_last):
    """Zero-fill each (n, c) plane of ``out``, then ``out[plane, idx[j]] = x[j]`` in j
    order: the plane's threads each own the positions ``at % lanes == lane``, so every
    position is written by one thread, in j order (the last j wins), without atomics.

    ``kernel(x, idx, out)``.
    """
    _numba_cuda()
    lanes = PLANE_LANES[channels_last]
    slots, split, _ = _split_functions(channels_last, lanes)

    @cuda.jit
    def kernel(x, idx, out):
        n_batch, channels, depth, height, width = x.shape
        out_h, out_w = out.shape[3], out.shape[4]
        out_plane = out.shape[2] * out_h * out_w
        lane, slot = split(cuda.threadIdx.x)
        planes = n_batch * channels
        for group in range(cuda.blockIdx.x, (planes + slots - 1) // slots, cuda.gridDim.x):
            plane = group * slots + slot
            if plane < planes:
                n = plane // channels
                c = plane % channels
                for at in range(lane, out_plane, lanes):
                    out[n, c, at // (out_h * out_w), (at // out_w) % out_h, at % out_w] = 0
                for d in range(depth):
                    for h in range(height):
                        for w in range(width):
                            at = np.int64(idx[n, c, d, h, w])
                            if at % lanes == lane:
                                out[n, c, at // (out_h * out_w), (at // out_w) % out_h,
                                    at % out_w] = x[n, c, d, h, w]

    return kernel


# ---------------------------------------------------------------------------------------
# Backward kernels: gathers. Each input element sums, in increasing output order, the
# outputs whose windows cover it, so results are bitwise reproducible for any launch.


@functools.cache
def sum_backward_kernel(window_kind, channels_last, load_kind, mode):
    """Gradient of avg / adaptive avg ("avg") and finite-p LP ("lp") pooling; one thread
    per input element.

    ``kernel(grad_out, x, out, grad_in, gd, gh, gw, zero, count_include_pad,
    divisor_override, p)``; ``out`` is the forward result (read by LP only), read
    through the same loader as ``grad_out``.
    """
    _numba_cuda()
    window, cover = WINDOWS[window_kind]
    load = LOADS[load_kind]
    contribution, factor = gradient_parts(mode, inline="never")
    position = _positions(channels_last)

    @cuda.jit
    def kernel(grad_out, x, out, grad_in, gd, gh, gw, zero, count_include_pad,
               divisor_override, p):
        for t in range(cuda.grid(1), grad_in.size, cuda.gridsize(1)):
            n, c, d, h, w = position(t, grad_in.shape)
            od_lo, od_hi = cover(gd, d, 0.0)
            oh_lo, oh_hi = cover(gh, h, 0.0)
            ow_lo, ow_hi = cover(gw, w, 0.0)
            acc = zero
            for od in range(od_lo, od_hi):
                _, nd, _, pd = window(gd, od, 0.0)
                for oh in range(oh_lo, oh_hi):
                    _, nh, _, ph = window(gh, oh, 0.0)
                    for ow in range(ow_lo, ow_hi):
                        _, nw, _, pw = window(gw, ow, 0.0)
                        acc += contribution(
                            load(grad_out[n, c, od, oh, ow]), load(out[n, c, od, oh, ow]),
                            nd * nh * nw, pd * ph * pw, count_include_pad,
                            divisor_override, p)
            grad_in[n, c, d, h, w] = acc * factor(load(x[n, c, d, h, w]), p)

    return kernel


@functools.cache
def max_backward_kernel(window_kind, channels_last, load_kind, signed):
    """Gradient of max / adaptive max pooling: each input element sums the grad_out of
    the covering outputs whose recorded index is that element; one thread per element.
    ``signed`` multiplies by sign(x) (LP with p = +-inf).

    ``kernel(grad_out, idx, x, grad_in, gd, gh, gw, zero)``.
    """
    _numba_cuda()
    cover = WINDOWS[window_kind][1]
    load = LOADS[load_kind]
    position = _positions(channels_last)

    @cuda.jit
    def kernel(grad_out, idx, x, grad_in, gd, gh, gw, zero):
        height, width = grad_in.shape[3], grad_in.shape[4]
        for t in range(cuda.grid(1), grad_in.size, cuda.gridsize(1)):
            n, c, d, h, w = position(t, grad_in.shape)
            od_lo, od_hi = cover(gd, d, 0.0)
            oh_lo, oh_hi = cover(gh, h, 0.0)
            ow_lo, ow_hi = cover(gw, w, 0.0)
            at = (d * height + h) * width + w
            acc = zero
            for od in range(od_lo, od_hi):
                for oh in range(oh_lo, oh_hi):
                    for ow in range(ow_lo, ow_hi):
                        if idx[n, c, od, oh, ow] == at:
                            acc += load(grad_out[n, c, od, oh, ow])
            if signed:
                # acc * sign(x), sign(NaN) = NaN
                s = load(x[n, c, d, h, w])
                if s < 0:
                    acc = -acc
                elif not s > 0:
                    acc = acc * s
            grad_in[n, c, d, h, w] = acc

    return kernel


@functools.cache
def plane_scatter_kernel(channels_last, load_kind):
    """Max-type gradient when the windows are unknown (fractional pooling without its
    samples): the threads of a plane each own the positions ``at % lanes == lane`` and
    add the outputs pointing there in increasing order, which sums exactly what the
    gather would, in the same order. ``grad_in`` has the accumulation dtype.

    ``kernel(grad_out, idx, grad_in, zero)``.
    """
    _numba_cuda()
    load = LOADS[load_kind]
    lanes = PLANE_LANES[channels_last]
    slots, split, _ = _split_functions(channels_last, lanes)

    @cuda.jit
    def kernel(grad_out, idx, grad_in, zero):
        channels = grad_in.shape[1]
        height, width = grad_in.shape[3], grad_in.shape[4]
        in_plane = grad_in.shape[2] * height * width
        out_d, out_h, out_w = grad_out.shape[2], grad_out.shape[3], grad_out.shape[4]
        lane, slot = split(cuda.threadIdx.x)
        planes = grad_in.shape[0] * channels
        for group in range(cuda.blockIdx.x, (planes + slots - 1) // slots, cuda.gridDim.x):
            plane = group * slots + slot
            if plane < planes:
                n = plane // channels
                c = plane % channels
                for at in range(lane, in_plane, lanes):
                    grad_in[n, c, at // (height * width), (at // width) % height,
                            at % width] = zero
                for od in range(out_d):
                    for oh in range(out_h):
                        for ow in range(out_w):
                            at = np.int64(idx[n, c, od, oh, ow])
                            if at % lanes == lane:
                                grad_in[n, c, at // (height * width), (at // width) % height,
                                        at % width] += load(grad_out[n, c, od, oh, ow])

    return kernel


@functools.cache
def unpool_backward_kernel(channels_last):
    """``grad_in[plane, j] = grad_out[plane, idx[j]]``; one thread per element.

    ``kernel(grad_out, idx, grad_in)``.
    """
    _numba_cuda()
    position = _positions(channels_last)

    @cuda.jit
    def kernel(grad_out, idx, grad_in):
        out_h, out_w = grad_out.shape[3], grad_out.shape[4]
        for t in range(cuda.grid(1), grad_in.size, cuda.gridsize(1)):
            n, c, d, h, w = position(t, grad_in.shape)
            at = np.int64(idx[n, c, d, h, w])
            grad_in[n, c, d, h, w] = grad_out[
                n, c, at // (out_h * out_w), (at // out_w) % out_h, at % out_w
            ]

    return kernel


# ---------------------------------------------------------------------------------------
# Small kernels: copies and the index range check


@functools.cache
def copy_kernel(channels_last):
    """``dst[...] = src[...]`` over 5-d arrays (the store converts float32 to float16).

    ``kernel(src, dst)``.
    """
    _numba_cuda()
    position = _positions(channels_last)

    @cuda.jit
    def kernel(src, dst):
        for t in range(cuda.grid(1), dst.size, cuda.gridsize(1)):
            n, c, d, h, w = position(t, dst.shape)
            dst[n, c, d, h, w] = src[n, c, d, h, w]

    return kernel




@functools.cache
def range_kernel(dtype):
    """Per-block (min, max) of ``lows`` and ``highs`` (5-d, same shape) into
    ``partial_lo[block]`` and ``partial_hi[block]``; a second launch over the partials
    gives the total.

    ``kernel(lows, highs, partial_lo, partial_hi, lowest, highest)``.
    """
    _numba_cuda()
    from numba import from_dtype

    value_type = from_dtype(np.dtype(dtype))
    position = _positions(False)

    @cuda.jit
    def kernel(lows, highs, partial_lo, partial_hi, lowest, highest):
        low = cuda.shared.array(THREADS, value_type)
        high = cuda.shared.array(THREADS, value_type)
        tid = cuda.threadIdx.x
        lo = highest
        hi = lowest
        for t in range(cuda.grid(1), lows.size, cuda.gridsize(1)):
            n, c, d, h, w = position(t, lows.shape)
            lo = min(lo, lows[n, c, d, h, w])
            hi = max(hi, highs[n, c, d, h, w])
        low[tid] = lo
        high[tid] = hi
        cuda.syncthreads()
        step = THREADS // 2
        while step > 0:
            if tid < step:
                low[tid] = min(low[tid], low[tid + step])
                high[tid] = max(high[tid], high[tid + step])
            cuda.syncthreads()
            step //= 2
        if tid == 0:
            partial_lo[cuda.blockIdx.x] = low[0]
            partial_hi[cuda.blockIdx.x] = high[0]

    return kernel


# ---------------------------------------------------------------------------------------
# Backend interface used by numbapool.functional: allocate, pick the kernel, launch.


def _copy(src5, dst5, channels_last):
    """``dst5[...] = src5[...]`` on the device (converting dtype as a store does)."""
    if dst5.size:
        _launch(copy_kernel(channels_last), _thread_blocks(dst5.size), _stream(src5),
                src5, dst5)


def _host_copy(array, stream):
    """A NumPy copy of a contiguous device array, waiting for ``stream``'s work."""
    if _is_cupy(array):
        return array.get()
    host = array.copy_to_host(stream=stream)
    if stream:
        stream.synchronize()  # copy_to_host on a stream is asynchronous
    return host


def value_range(array):
    """``(min, max)`` of a 5-d integer array as Python ints (``(0, -1)`` when empty);
    reduced on the device, only the two scalars are copied to the host."""
    if not array.size:
        return 0, -1
    info = np.iinfo(array.dtype)
    lowest, highest = array.dtype.type(info.min), array.dtype.type(info.max)
    kernel = range_kernel(array.dtype.name)
    stream = _stream(array)
    lows = highs = array
    # at most THREADS partials, so the second pass is one block
    for blocks in (min(_thread_blocks(array.size), THREADS), 1):
        partial = _alloc((2, blocks), array.dtype, array)
        _launch(kernel, blocks, stream, lows, highs, partial[0], partial[1], lowest,
                highest)
        item = array.dtype.itemsize
        lows, highs = (view(row, (1, 1, 1, 1, blocks), (0, 0, 0, 0, item))
                       for row in (partial[0], partial[1]))
    lo, hi = _host_copy(partial, stream).reshape(2)
    return int(lo), int(hi)


def to_host(array):
    """A NumPy copy of a device array (of any strides), or ``array`` as NumPy."""
    if _is_cupy(array):
        return sys.modules["cupy"].asnumpy(array)
    if not getattr(array, "__cuda_ndarray__", False):
        if not hasattr(array, "__cuda_array_interface__"):
            return np.asarray(array)
        # the host reads it next: wait for the producer's stream (sync=True)
        array = _numba_cuda().as_cuda_array(array)
    stream = _stream(array)
    if _simulated() or array.is_c_contiguous() or array.ndim > 5:
        return _host_copy(array, stream)
    # gather a strided view into contiguous memory first (copy_to_host copies extents)
    pad = 5 - array.ndim
    src5 = view(array, (1,) * pad + tuple(array.shape), (0,) * pad + tuple(array.strides))
    dst5 = _alloc(src5.shape, array.dtype, array)
    _copy(src5, dst5, False)
    return _host_copy(dst5, stream).reshape(array.shape)


def from_host(array):
    """A Numba device copy of a NumPy array (queued on CuPy's current stream when CuPy
    is in use, so that its kernels see the data)."""
    _numba_cuda()
    stream = 0
    if "cupy" in sys.modules and not _simulated():
        pointer = sys.modules["cupy"].cuda.get_current_stream().ptr
        stream = _external_stream(pointer) if pointer else 0
    return cuda.to_device(np.ascontiguousarray(array), stream=stream)


def _readable(x5):
    """The array as the kernels read it and the name of its element loader."""
    if x5.dtype == np.float16:
        return _bits(x5), "half"
    return x5, "plain"


def _bits(array):
    """float16 as uint16 (moved or compared, never computed with); others unchanged."""
    if array.dtype == np.float16:
        return view(array, array.shape, array.strides, np.uint16)
    return array


def _block_lanes(geometry, window_kind, channels_last):
    """Threads per output of the block reductions (0: a thread per output), from the
    largest window's taps (see ``BLOCK_TAPS``)."""
    if window_kind != "adaptive":
        return 0
    taps = math.prod(size // out + (2 if size % out else 0) for size, out, *_ in geometry)
    if channels_last:
        return 8 if taps >= BLOCK_TAPS[True] else 0
    block, warp = BLOCK_TAPS[False]
    return THREADS if taps >= block else 32 if taps >= warp else 0


def _groups(total, lanes):
    return -(-total // (THREADS // lanes))


def max_reduce(x5, geometry, window_kind, samples, channels_last, magnitude="",
               with_indices=True):
    """Max pooling over ``window_kind`` windows: ``(values, int64 indices or None)``.

    ``magnitude="abs"`` (``"negabs"``) pools ``|x|`` (``-|x|``) instead of x.
    """
    shape = tuple(x5.shape[:2]) + tuple(g[1] for g in geometry)
    out5 = empty5(shape, x5.dtype, channels_last, like=x5)
    idx5 = empty5(shape if with_indices else (1,) * 5, np.int64, channels_last, like=x5)
    if out5.size:
        x_read, load_kind = _readable(x5)
        load_kind += "_" + magnitude if magnitude else ""
        compute = compute_dtype(x5.dtype)
        start = lowest(compute)
        lanes = _block_lanes(geometry, window_kind, channels_last)
        if lanes:
            kernel = block_max_kernel(window_kind, channels_last, load_kind, with_indices,
                                      lanes, compute.name)
            _launch(kernel, _groups(out5.size, lanes), _stream(x5), x_read, out5, idx5,
                    *geometry, start)
        else:
            kernel = max_kernel(window_kind, channels_last, load_kind, with_indices)
            # fixed and adaptive windows ignore the samples argument
            _launch(kernel, _thread_blocks(out5.size), _stream(x5), x_read, out5, idx5,
                    *geometry, x_read if samples is None else samples, start)
    return out5, (idx5 if with_indices else None)


def sum_reduce(x5, geometry, window_kind, mode, channels_last, count_include_pad=True,
               divisor_override=0, norm_type=1.0):
    """Average-type pooling (``mode`` in ``SUM_MODES``) over ``window_kind`` windows."""
    shape = tuple(x5.shape[:2]) + tuple(g[1] for g in geometry)
    out5 = empty5(shape, x5.dtype, channels_last, like=x5)
    if out5.size:
        x_read, load_kind = _readable(x5)
        compute = compute_dtype(x5.dtype)
        args = (*geometry, compute.type(0), bool(count_include_pad), int(divisor_override),
                compute.type(norm_type))
        lanes = _block_lanes(geometry, window_kind, channels_last)
        if lanes:
            kernel = block_sum_kernel(window_kind, channels_last, load_kind, mode, lanes,
                                      compute.name)
            _launch(kernel, _groups(out5.size, lanes), _stream(x5), x_read, out5, *args)
        else:
            kernel = sum_kernel(window_kind, channels_last, load_kind, mode)
            _launch(kernel, _thread_blocks(out5.size), _stream(x5), x_read, out5, *args)
    return out5


def unpool(x5, idx5, out_spatial, channels_last):
    """Max unpooling: zeros with ``x`` scattered to ``idx`` in each (n, c) plane."""
    out5 = empty5(tuple(x5.shape[:2]) + tuple(out_spatial), x5.dtype, channels_last,
                  like=x5)
    if out5.size:
        planes = x5.shape[0] * x5.shape[1]
        _launch(unpool_kernel(channels_last), _groups(planes, PLANE_LANES[channels_last]),
                _stream(x5), _bits(x5), idx5, _bits(out5))
    return out5


def sum_backward(grad5, x5, out5, geometry, window_kind, mode, channels_last,
                 count_include_pad=True, divisor_override=0, norm_type=1.0):
    """Gradient of average-type pooling; ``out5`` is the forward result (LP only)."""
    grad_in = empty5(tuple(x5.shape), x5.dtype, channels_last, like=x5)
    if grad_in.size:
        grad_read, load_kind = _readable(grad5)
        compute = compute_dtype(x5.dtype)
        # LP reads the forward result through grad's loader; avg never reads it
        out_read = _bits(out5) if mode == "lp" else grad_read
        kernel = sum_backward_kernel(window_kind, channels_last, load_kind, mode)
        _launch(kernel, _thread_blocks(grad_in.size), _stream(x5), grad_read,
                _readable(x5)[0], out_read, grad_in, *geometry, compute.type(0),
                bool(count_include_pad), int(divisor_override), compute.type(norm_type))
    return grad_in


def _max_backward(grad5, idx5, x5, geometry, window_kind, channels_last, signed):
    grad_in = empty5(tuple(x5.shape), x5.dtype, channels_last, like=x5)
    if grad_in.size:
        grad_read, load_kind = _readable(grad5)
        compute = compute_dtype(x5.dtype)
        zero = compute.type(0)
        if window_kind is None:
            # an ordered read-modify-write: accumulate float16 in a float32 buffer
            sums = grad_in if compute == x5.dtype else empty5(
                tuple(x5.shape), compute, channels_last, like=x5)
            planes = x5.shape[0] * x5.shape[1]
            _launch(plane_scatter_kernel(channels_last, load_kind),
                    _groups(planes, PLANE_LANES[channels_last]), _stream(x5), grad_read,
                    idx5, sums, zero)
            if sums is not grad_in:
                _copy(sums, grad_in, channels_last)
        else:
            kernel = max_backward_kernel(window_kind, channels_last, load_kind, signed)
            _launch(kernel, _thread_blocks(grad_in.size), _stream(x5), grad_read, idx5,
                    _readable(x5)[0], grad_in, *geometry, zero)
    return grad_in


def max_backward(grad5, idx5, x5, geometry, window_kind, channels_last):
    """Gradient of max-type pooling from the forward's indices.

    ``window_kind=None`` (windows unknown) uses the per-plane ordered scatter.
    """
    return _max_backward(grad5, idx5, x5, geometry, window_kind, channels_last, False)


def unpool_backward(grad5, idx5, x5, channels_last):
    """Gradient of max unpooling: each input position reads its index's gradient."""
    grad_in = empty5(tuple(x5.shape), x5.dtype, channels_last, like=x5)
    if grad_in.size:
        _launch(unpool_backward_kernel(channels_last), _thread_blocks(grad_in.size),
                _stream(x5), _bits(grad5), idx5, _bits(grad_in))
    return grad_in


def lp_extreme_backward(grad5, x5, geometry, negate, channels_last):
    """Gradient of LP pooling with p = +inf (max |x|) or -inf (min |x|, ``negate``):
    the window's first extreme element receives grad_out * sign(x)."""
    _, idx5 = max_reduce(x5, geometry, "fixed", None, channels_last,
                         "negabs" if negate else "abs")
    return _max_backward(grad5, idx5, x5, geometry, "fixed", channels_last, True)
