"""GPU backend: ``numba.cuda`` kernels over the canonical (N, C, D, H, W) view.

The kernels run the bodies of ``numbapool._bodies`` (the same window, reduction and
element code the CPU compiles) with one thread per output (forward) or per input
element (gather backward), the flat thread index unravelled W-fastest for channels-first
memory and C-fastest for channels-last memory, so neighbouring threads touch
neighbouring addresses in both. Adaptive windows too large for one thread are reduced by
several threads and a fixed-order tree (register shuffles within a warp, shared memory
between warps). Every result is deterministic:
no atomics, fixed launch shapes and reduction orders. Results are stored in the element
type by the kernels themselves (``Element.store``).

Nothing waits for the GPU except ``value_range`` (the index check of unpooling and
backward), which copies two scalars to the host. Arrays, streams and CuPy are
``numbapool._cuda_arrays``'s business; nothing here imports ``numba.cuda`` until a device
array arrives, and kernels are built on first use by memoised factories.
"""

import functools
import math
import sys
import warnings

import numpy as np
from numba.extending import register_jitable

from numbapool import _bodies, _layout
from numbapool._backend import INLINED_DIGEST, Backend, jit_cached
from numbapool._bodies import flat_index, position
from numbapool._cuda_arrays import (
    allocate,
    host_copy,
    is_cupy,
    kernel_argument,
    numba_cuda,
    simulated,
    stream_of,
    to_device,
    view,
)
from numbapool._elements import store_plain
from numbapool._reductions import NO_INDEX, merged_wins, takes_over
from numbapool._windows import ADAPTIVE

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

cuda = None
"""``numba.cuda`` once a device array has arrived. Kernels name it as this module
global, which is what the CUDA simulator swaps for its fake module while they run."""


def _cuda():
    global cuda
    cuda = numba_cuda()
    return cuda


def _jit(kernel):
    """``cuda.jit(cache=True)`` (``_backend.jit_cached``), the kernel named after the
    code it inlines (see ``_backend.INLINED_DIGEST``): a fresh process loads compiled
    kernels from disk."""
    kernel.__qualname__ += f"_{INLINED_DIGEST}"
    return jit_cached(cuda.jit, kernel)


# ---------------------------------------------------------------------------------------
# Launching


@functools.cache
def _max_blocks():
    """Enough blocks of grid-stride loops to fill every SM of the current device."""
    if simulated():
        return 1 << 30
    device = _cuda().get_current_device()
    return device.MULTIPROCESSOR_COUNT * (2048 // THREADS) * 2


def _launch(kernel, work, stream, *args):
    """``kernel`` on enough blocks of ``THREADS`` threads for ``work`` grid-stride
    items (threads or blocks, as the kernel loops)."""
    blocks = _blocks(work)
    key = _launch_key(kernel, args) if _launch_state["fast"] else None
    if key is not None and _fast_launch(key, blocks, stream, args):
        return
    converted = tuple(kernel_argument(a) if _is_array(a) else a for a in args)
    with warnings.catch_warnings():
        # small inputs give small grids; Numba would warn about occupancy on each call
        warnings.filterwarnings("ignore", "Grid size")
        kernel[blocks, THREADS, stream](*converted)
    if key is not None:
        _remember_launch(key, converted)


def _blocks(work):
    return max(1, min(work, _max_blocks()))


def _is_array(value):
    return hasattr(value, "dtype") and hasattr(value, "strides")


# Numba's launch path (typing every argument, converting CuPy arrays to Numba ones,
# laying out each argument) costs hundreds of microseconds per kernel. Once a kernel has
# run for a signature of arguments (array dtypes, shapes and strides, scalar types), the
# same compiled kernel is launched again directly, its arguments laid out as Numba lays
# them out. Anything unexpected turns this off for good and Numba launches everything
# (``_launch_state["error"]`` says why).

_launchers: dict = {}
"""``(kernel, argument signature) -> (compiled kernel, one layout function per
argument)`` of launches seen."""

_launch_state = {"fast": not simulated(), "error": None}


def _launch_key(kernel, args):
    """``_launchers``' key of a launch of ``kernel`` on ``args``."""
    return kernel, tuple(_signature(a) for a in args)


def _signature(value):
    if _is_array(value):
        return (type(value), value.dtype, value.shape, value.strides)
    if isinstance(value, tuple):
        return (type(value),) + tuple(_signature(v) for v in value)
    return type(value)


def _remember_launch(key, converted):
    """Remember the compiled kernel that Numba just launched for ``key``."""
    if not _launch_state["fast"] or len(_launchers) > 4096:
        return
    kernel = key[0]
    try:
        from numba import types

        kinds = tuple(kernel.typeof_pyval(a) for a in converted)
        compiled = kernel.overloads.get(kinds)
        if compiled is not None:
            layouts = tuple(_layout_function(kind, compiled, types) for kind in kinds)
            _launchers[key] = compiled, layouts
    except Exception as error:  # noqa: BLE001  a numba-cuda without these internals
        _give_up_fast_launch(error)


def _layout_function(kind, compiled, types):
    """``lay_out(value, parameters, stream)`` appending an argument of numba type
    ``kind`` as the kernel takes it."""
    if isinstance(kind, types.Array):
        return lambda value, parameters, stream: _array_parameters(value, parameters)
    if kind == types.int64 or kind == types.intp:  # passed as intptr, as Numba does
        return lambda value, parameters, stream: parameters.append(int(value))
    if isinstance(kind, types.BaseTuple):
        if all(isinstance(k, types.UniTuple) and k.dtype == types.int64 for k in kind):
            def lay_out(value, parameters, stream):  # Dims: tuples of int64
                for part in value:
                    parameters.extend(part)
            return lay_out
        parts = tuple(_layout_function(k, compiled, types) for k in kind)

        def lay_out(value, parameters, stream):
            for part, item in zip(parts, value):
                part(item, parameters, stream)
        return lay_out
    return lambda value, parameters, stream: compiled._prepare_args(kind, value, stream,
                                                                    [], parameters)


def _give_up_fast_launch(error):
    _launch_state["fast"] = False
    _launch_state["error"] = f"{type(error).__name__}: {error}"


def _fast_launch(key, blocks, stream, args):
    """Launch ``key``'s kernel directly if it ran before for arguments like ``args``."""
    found = _launchers.get(key)
    if found is None:
        return False
    compiled, layouts = found
    try:
        parameters = []
        for lay_out, value in zip(layouts, args):
            lay_out(value, parameters, stream)
        function = compiled._codelibrary.get_cufunc().kernel
    except Exception as error:  # noqa: BLE001  never again; this launch goes through Numba
        _give_up_fast_launch(error)
        return False
    return _launch_directly(function, blocks, stream, parameters)


def _launch_directly(function, blocks, stream, parameters):
    """Launch a compiled kernel's CUfunction with its parameters laid out; False (and
    no direct launch ever again) where that fails."""
    try:
        _core_launch()(_core_stream(stream), _launch_config(blocks), function, *parameters)
    except Exception as error:  # noqa: BLE001  never again; this launch goes through Numba
        _give_up_fast_launch(error)
        return False
    return True


def _array_parameters(array, parameters):
    """An array argument as Numba's kernels take it: meminfo, parent, size, itemsize,
    data pointer, shape, strides."""
    if is_cupy(array):
        pointer = array.data.ptr
    else:
        pointer = array.__cuda_array_interface__["data"][0] or 0
    parameters += (0, 0, array.size, array.dtype.itemsize, pointer)
    parameters += array.shape
    parameters += array.strides


@functools.cache
def _core_launch():
    from cuda.core import launch

    return launch


@functools.lru_cache(maxsize=64)
def _launch_config(blocks):
    from cuda.core import LaunchConfig

    return LaunchConfig(grid=blocks, block=THREADS, shmem_size=0)


@functools.lru_cache(maxsize=64)
def _core_stream(stream):
    from numba.cuda.cudadrv.driver import _to_core_stream

    return _to_core_stream(stream)


class _PlanLaunch:
    """``launch(work, stream, *arrays)``: ``kernel`` on ``arrays`` followed by the same
    ``constants`` every time, as a forward plan launches it (``numbapool._plans``).

    The first launch goes through ``_launch``. Later ones on CuPy arrays of the first
    one's dtypes, shapes and strides, on the device then current, skip even
    ``_launch``'s argument signature: only the arrays' addresses are new, the constants'
    parameters were laid out once."""

    def __init__(self, kernel, *constants):
        self.kernel = kernel
        self.constants = constants
        self.direct = None
        """``(array signatures, device -> CUfunction, constants' parameters)``"""

    def __call__(self, work, stream, *arrays):
        direct = self.direct
        if direct is not None and _launch_state["fast"]:
            signatures, functions, constant_parameters = direct
            function = functions.get(_current_device())
            # the signatures hold the type: equal ones are CuPy arrays like the first
            if function is not None and all(
                    _signature(a) == s for a, s in zip(arrays, signatures)):
                parameters = []
                for array in arrays:
                    _array_parameters(array, parameters)
                parameters.extend(constant_parameters)
                if _launch_directly(function, _blocks(work), stream, parameters):
                    return
        _launch(self.kernel, work, stream, *arrays, *self.constants)
        if _launch_state["fast"] and all(is_cupy(a) for a in arrays):
            self._remember(stream, arrays)

    def _remember(self, stream, arrays):
        """Lay out the constants for later launches like the one just made."""
        key = _launch_key(self.kernel, arrays + self.constants)
        found = _launchers.get(key)
        if found is None:
            return
        compiled, layouts = found
        try:
            parameters = []
            for lay_out, value in zip(layouts[len(arrays):], self.constants):
                lay_out(value, parameters, stream)
            functions = {_current_device(): compiled._codelibrary.get_cufunc().kernel}
        except Exception as error:  # noqa: BLE001  a numba-cuda without these internals
            _give_up_fast_launch(error)
            return
        signatures = key[1][:len(arrays)]
        if self.direct is not None and self.direct[0] == signatures:
            functions = {**self.direct[1], **functions}   # another device's, kept
        self.direct = signatures, functions, tuple(parameters)


def _current_device():
    return sys.modules["cupy"].cuda.runtime.getDevice()


def _thread_blocks(total):
    return -(-total // THREADS)


def _groups(total, lanes):
    return -(-total // (THREADS // lanes))


# ---------------------------------------------------------------------------------------
# Block-reduction pieces


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
# Kernels


@functools.cache
def reduce_kernel(windows, reduction, element, with_indices, channels_last):
    """Forward pooling, one thread per output running the shared body.

    ``kernel(x, out, idx, samples, dims, initial, options)``; ``out`` is the element
    type's ``stored`` view.
    """
    _cuda()
    reduce_window = _bodies.window_reducer(windows, reduction, element.load)
    store = element.store
    at_position = position(channels_last)

    @_jit
    def kernel(x, out, idx, samples, dims, initial, options):
        for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            n, c, od, oh, ow = at_position(t, out.shape)
            value, at = reduce_window(x, n, c, od, oh, ow, dims, samples, initial, options)
            out[n, c, od, oh, ow] = store(value)
            if with_indices:
                idx[n, c, od, oh, ow] = at

    return kernel


@functools.cache
def block_reduce_kernel(windows, reduction, element, with_indices, channels_last, lanes):
    """Forward pooling over large windows: ``lanes`` threads split each window's taps,
    then merge their partial results in a fixed tree (``merged_wins`` for selecting
    reductions, ``add`` for summing ones; see ``_lane_merger``).

    ``kernel(x, out, idx, dims, initial, options)``.
    """
    _cuda()
    from numba import from_dtype, int64

    window = windows.window
    load, store = element.load, element.store
    parts = reduction.parts()
    prepare, add, finish = parts.prepare, parts.add, parts.finish
    selects = reduction.selects
    at_position = position(channels_last)
    slots, split, _ = _split_functions(channels_last, lanes)
    value_type = from_dtype(element.compute)
    index_slots = THREADS if selects else 1  # summing reductions merge no indices
    merge = _lane_merger(reduction, element, channels_last, lanes)

    @_jit
    def kernel(x, out, idx, dims, initial, options):
        values = cuda.shared.array(THREADS, value_type)
        indices = cuda.shared.array(index_slots, int64)
        tid = cuda.threadIdx.x
        lane, slot = split(tid)
        height, width = x.shape[3], x.shape[4]
        total = out.size
        for group in range(cuda.blockIdx.x, (total + slots - 1) // slots, cuda.gridDim.x):
            o = group * slots + slot
            acc = initial
            at = NO_INDEX
            count = 0
            padded_count = 0
            if o < total:
                n, c, od, oh, ow = at_position(o, out.shape)
                d0, nd, sd, pd = window(dims.depth, od, 0.0)
                h0, nh, sh, ph = window(dims.height, oh, 0.0)
                w0, nw, sw, pw = window(dims.width, ow, 0.0)
                count = nd * nh * nw
                padded_count = pd * ph * pw
                a, b, e, step_a, step_b, step_e = _walk(lane, lanes, nh, nw)
                while a < nd:
                    d = d0 + a * sd
                    h = h0 + b * sh
                    w = w0 + e * sw
                    value = prepare(load(x[n, c, d, h, w]), options.norm)
                    if selects:
                        # a thread's first tap stands in for "the window's first tap"
                        if at == NO_INDEX or takes_over(value, acc):
                            acc = value
                            at = flat_index(d, h, w, height, width)
                    else:
                        acc = add(acc, value)
                    a, b, e = _walk_next(a, b, e, step_a, step_b, step_e, nh, nw)
            acc, at = merge(values, indices, tid, lane, acc, at)
            if lane == 0 and o < total:
                out[n, c, od, oh, ow] = store(finish(acc, count, padded_count, options))
                if with_indices:
                    idx[n, c, od, oh, ow] = at

    return kernel


WARP = 32
ALL_LANES = 0xFFFFFFFF


def _lane_merger(reduction, element, channels_last, lanes):
    """``merge(values, indices, tid, lane, acc, at) -> (acc, at)``: the partial results of
    an output's ``lanes`` threads merged, in lane 0, in a tree fixed by ``lanes`` alone
    (lane i takes lane i + step, step halving), so results never depend on the grid.
    Every thread of the block calls it.

    Channels-first lanes are neighbouring threads: a warp's partials meet through
    register shuffles, and for lanes > 32 the warps' results through shared memory
    (``values``, ``indices``). Channels-last lanes are a block apart and every step
    goes through shared memory, as it does on the simulator, which has no shuffles."""
    from numba import from_dtype

    selects = reduction.selects
    add = reduction.parts().add
    _, _, lane_stride = _split_functions(channels_last, lanes)

    if channels_last or simulated():

        @register_jitable
        def shared_merge(values, indices, tid, lane, acc, at):
            values[tid] = acc
            if selects:
                indices[tid] = at
            cuda.syncthreads()
            step = lanes // 2
            while step > 0:
                if lane < step:
                    other = tid + step * lane_stride
                    if not selects:
                        values[tid] = add(values[tid], values[other])
                    elif merged_wins(values[other], indices[other], values[tid],
                                     indices[tid]):
                        values[tid] = values[other]
                        indices[tid] = indices[other]
                cuda.syncthreads()
                step //= 2
            if selects:
                at = indices[tid]
            return values[tid], at

        return shared_merge

    value_type = from_dtype(element.compute)
    # shuffles move 32- and 64-bit words: narrower integers travel as int64
    wide = np.int64 if element.compute.kind in "iu" else element.compute.type

    @register_jitable
    def warp_tree(acc, at, step):
        while step > 0:
            other = value_type(cuda.shfl_down_sync(ALL_LANES, wide(acc), step))
            if selects:
                other_at = cuda.shfl_down_sync(ALL_LANES, at, step)
                if merged_wins(other, other_at, acc, at):
                    acc = other
                    at = other_at
            else:
                acc = add(acc, other)
            step //= 2
        return acc, at

    warps = lanes // WARP

    @register_jitable
    def shuffle_merge(values, indices, tid, lane, acc, at):
        acc, at = warp_tree(acc, at, WARP // 2)
        if warps > 1:
            if tid % WARP == 0:
                values[tid // WARP] = acc
                if selects:
                    indices[tid // WARP] = at
            cuda.syncthreads()
            if tid < WARP:   # the first warp merges the warps' results
                if tid < warps:
                    acc = values[tid]
                    if selects:
                        at = indices[tid]
                acc, at = warp_tree(acc, at, warps // 2)
            cuda.syncthreads()   # values are read before the next output's are written
        return acc, at

    return shuffle_merge


@functools.cache
def gather_kernel(windows, reduction, element, channels_last):
    """Backward pooling, one thread per input element running the shared gather.

    ``kernel(grad, idx, out, x, grad_in, dims, zero, options)``.
    """
    _cuda()
    gather_gradient = _bodies.gradient_gatherer(windows, reduction, element.load)
    store = element.store
    at_position = position(channels_last)

    @_jit
    def kernel(grad, idx, out, x, grad_in, dims, zero, options):
        for t in range(cuda.grid(1), grad_in.size, cuda.gridsize(1)):
            n, c, d, h, w = at_position(t, grad_in.shape)
            grad_in[n, c, d, h, w] = store(gather_gradient(grad, idx, out, x, n, c, d, h, w,
                                                           dims, zero, options))

    return kernel


@functools.cache
def index_check_kernel(windows, unit_steps, channels_last):
    """``outside[o] = 1`` where index o is not one its output's window can report
    (``_bodies.reporter``), else 0; one thread per output.

    ``kernel(idx, outside, dims, height, width)``.
    """
    _cuda()
    window = windows.window
    reported = _bodies.reporter(unit_steps)
    at_position = position(channels_last)

    @_jit
    def kernel(idx, outside, dims, height, width):
        for t in range(cuda.grid(1), idx.size, cuda.gridsize(1)):
            n, c, od, oh, ow = at_position(t, idx.shape)
            d0, nd, sd, _ = window(dims.depth, od, 0.0)
            h0, nh, sh, _ = window(dims.height, oh, 0.0)
            w0, nw, sw, _ = window(dims.width, ow, 0.0)
            inside = reported(np.int64(idx[n, c, od, oh, ow]), d0, nd, sd, h0, nh, sh, w0, nw,
                              sw, height, width)
            outside[n, c, od, oh, ow] = 0 if inside else 1

    return kernel


@functools.cache
def scatter_kernel(accumulate, load, channels_last):
    """The shared per-plane scatter, ``PLANE_LANES`` threads per plane.

    ``kernel(values, idx, out, zero)``.
    """
    _cuda()
    lanes = PLANE_LANES[channels_last]
    scatter_plane = _bodies.plane_scatterer(accumulate, load, lanes)
    slots, split, _ = _split_functions(channels_last, lanes)

    @_jit
    def kernel(values, idx, out, zero):
        channels = out.shape[1]
        lane, slot = split(cuda.threadIdx.x)
        planes = out.shape[0] * channels
        for group in range(cuda.blockIdx.x, (planes + slots - 1) // slots, cuda.gridDim.x):
            plane = group * slots + slot
            if plane < planes:
                scatter_plane(values, idx, out, plane // channels, plane % channels, lane,
                              zero)

    return kernel


@functools.cache
def gather_by_index_kernel(channels_last):
    """``grad_in[plane, j] = grad[plane, idx[j]]``; one thread per element.

    ``kernel(grad, idx, grad_in)``.
    """
    _cuda()
    at_position = position(channels_last)

    @_jit
    def kernel(grad, idx, grad_in):
        for t in range(cuda.grid(1), grad_in.size, cuda.gridsize(1)):
            n, c, d, h, w = at_position(t, grad_in.shape)
            grad_in[n, c, d, h, w] = _bodies.gather_by_index(grad, idx, n, c, d, h, w)

    return kernel


@functools.cache
def copy_kernel(channels_last, store):
    """``dst[...] = store(src[...])`` over 5-d arrays (float32 to float16 conversion is
    the store instruction's, to bfloat16 ``store``'s).

    ``kernel(src, dst)``.
    """
    _cuda()
    at_position = position(channels_last)

    @_jit
    def kernel(src, dst):
        for t in range(cuda.grid(1), dst.size, cuda.gridsize(1)):
            n, c, d, h, w = at_position(t, dst.shape)
            dst[n, c, d, h, w] = store(src[n, c, d, h, w])

    return kernel


@functools.cache
def range_kernel(dtype):
    """Per-block (min, max) of ``lows`` and ``highs`` (5-d, same shape) into
    ``partial_lo[block]`` and ``partial_hi[block]``; a second launch over the partials
    gives the total.

    ``kernel(lows, highs, partial_lo, partial_hi, lowest, highest)``.
    """
    _cuda()
    from numba import from_dtype

    value_type = from_dtype(np.dtype(dtype))
    at_position = position(False)

    @_jit
    def kernel(lows, highs, partial_lo, partial_hi, lowest, highest):
        low = cuda.shared.array(THREADS, value_type)
        high = cuda.shared.array(THREADS, value_type)
        tid = cuda.threadIdx.x
        lo = highest
        hi = lowest
        for t in range(cuda.grid(1), lows.size, cuda.gridsize(1)):
            n, c, d, h, w = at_position(t, lows.shape)
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
# The backend


def _block_lanes(dims, windows, channels_last):
    """Threads per output of the block reductions (0: a thread per output), from the
    largest window's taps (see ``BLOCK_TAPS``)."""
    if windows is not ADAPTIVE:
        return 0
    taps = math.prod(dim.size // dim.out + (2 if dim.size % dim.out else 0) for dim in dims)
    if channels_last:
        return 8 if taps >= BLOCK_TAPS[True] else 0
    block, warp = BLOCK_TAPS[False]
    return THREADS if taps >= block else 32 if taps >= warp else 0


_NO_INDICES: dict = {}
"""CuPy device id -> ``CudaBackend.no_indices`` there."""


class CudaBackend(Backend):
    """Device arrays (CuPy, Numba, any ``__cuda_array_interface__``), computed by
    ``numba.cuda`` kernels on the input's stream."""

    name = "cuda"
    writes_elements = True

    def canonical(self, array, nd, batched, data_format):
        shape5, strides5 = _layout.to_canonical(array.shape, array.strides, nd, batched,
                                                data_format)
        return view(array, shape5, strides5)

    def restore(self, array5, nd, batched, data_format):
        shape, strides = _layout.from_canonical(array5.shape, array5.strides, nd, batched,
                                                data_format)
        return view(array5, shape, strides)

    def empty(self, shape5, dtype, channels_last, like=None):
        n, c, d, h, w = shape5
        if channels_last:
            memory = allocate((n, d, h, w, c), dtype, like)
            s = memory.strides
            return view(memory, shape5, (s[0], s[4], s[1], s[2], s[3]))
        return allocate(shape5, dtype, like)

    def no_indices(self, like):
        if not is_cupy(like):
            return super().no_indices(like)
        device = like.data.device_id
        placeholder = _NO_INDICES.get(device)
        if placeholder is None:   # never written: one per device serves every call
            placeholder = _NO_INDICES[device] = super().no_indices(like)
        return placeholder

    def retype(self, array, dtype):
        if array.dtype == dtype:
            return array
        return view(array, array.shape, array.strides, dtype)

    def merged_planes(self, array5):
        merged = _layout.merged_planes(array5.shape, array5.strides)
        return None if merged is None else view(array5, *merged)

    def cast(self, array5, dtype, element):
        channels_last = _layout.is_channels_last(array5.shape, array5.strides)
        result = self.empty(array5.shape, dtype, channels_last, array5)
        if result.size:
            _launch(copy_kernel(channels_last, element.store), _thread_blocks(result.size),
                    stream_of(array5), array5, self.retype(result, element.stored))
        return result

    def value_range(self, array):
        if not array.size:
            return 0, -1
        info = np.iinfo(array.dtype)
        lowest, highest = array.dtype.type(info.min), array.dtype.type(info.max)
        kernel = range_kernel(array.dtype.name)
        stream = stream_of(array)
        lows = highs = array
        # one partial per launched block (at most THREADS, so the second pass is one block)
        for blocks in (min(_thread_blocks(array.size), THREADS, _max_blocks()), 1):
            partial = allocate((2, blocks), array.dtype, array)
            _launch(kernel, blocks, stream, lows, highs, partial[0], partial[1], lowest,
                    highest)
            item = array.dtype.itemsize
            lows, highs = (view(row, (1, 1, 1, 1, blocks), (0, 0, 0, 0, item))
                           for row in (partial[0], partial[1]))
        lo, hi = host_copy(partial, stream).reshape(2)
        return int(lo), int(hi)

    def to_host(self, array):
        if is_cupy(array):
            return sys.modules["cupy"].asnumpy(array)
        if not getattr(array, "__cuda_ndarray__", False):
            if not hasattr(array, "__cuda_array_interface__"):
                return np.asarray(array)
            # the host reads it next: wait for the producer's stream (sync=True)
            array = numba_cuda().as_cuda_array(array)
        stream = stream_of(array)
        if simulated() or array.is_c_contiguous() or array.ndim > 5:
            return host_copy(array, stream)
        # gather a strided view into contiguous memory first (copy_to_host copies extents)
        pad = 5 - array.ndim
        src5 = view(array, (1,) * pad + tuple(array.shape), (0,) * pad + tuple(array.strides))
        dst5 = allocate(src5.shape, array.dtype, array)
        _launch(copy_kernel(False, store_plain), _thread_blocks(dst5.size), stream, src5,
                dst5)
        return host_copy(dst5, stream).reshape(array.shape)

    def from_host(self, array, like):
        return to_device(array, like)

    def window_reducer(self, x, out_shape, dims, windows, reduction, element, options, samples,
                       with_indices, channels_last):
        initial = reduction.initial(element)
        lanes = _block_lanes(dims, windows, channels_last)
        if lanes:
            launch = _PlanLaunch(block_reduce_kernel(windows, reduction, element,
                                                     with_indices, channels_last, lanes),
                                 dims, initial, options)
            return lambda x, out, idx: launch(_groups(out.size, lanes), stream_of(x), x, out,
                                              idx)
        launch = _PlanLaunch(reduce_kernel(windows, reduction, element, with_indices,
                                           channels_last), dims, initial, options)
        # windows that are the same in every plane ignore the samples argument
        return lambda x, out, idx: launch(_thread_blocks(out.size), stream_of(x), x, out, idx,
                                          x if samples is None else samples)

    def gather_gradient(self, grad, idx, out, x, grad_in, dims, windows, reduction,
                        element, options, channels_last):
        _launch(gather_kernel(windows, reduction, element, channels_last),
                _thread_blocks(grad_in.size), stream_of(x), grad, idx, out, x, grad_in, dims,
                element.compute.type(0), options)

    def indices_outside_windows(self, idx, dims, windows, unit_steps, in_spatial):
        channels_last = _layout.is_channels_last(idx.shape, idx.strides)
        outside = self.empty(idx.shape, np.uint8, channels_last, idx)
        _launch(index_check_kernel(windows, unit_steps, channels_last),
                _thread_blocks(idx.size), stream_of(idx), idx, outside, dims, *in_spatial[1:])
        return self.value_range(outside)[1] > 0

    def scatter_planes(self, values, idx, out, element, accumulate, channels_last):
        zero = element.compute.type(0) if accumulate else out.dtype.type(0)
        planes = out.shape[0] * out.shape[1]
        _launch(scatter_kernel(accumulate, element.load, channels_last),
                _groups(planes, PLANE_LANES[channels_last]), stream_of(values), values, idx,
                out, zero)

    def gather_by_index(self, grad, idx, grad_in, channels_last):
        _launch(gather_by_index_kernel(channels_last), _thread_blocks(grad_in.size),
                stream_of(grad), grad, idx, grad_in)


CUDA = CudaBackend()
