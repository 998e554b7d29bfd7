"""CPU backend: NumPy arrays, and ``@njit`` kernels over the canonical (N, C, D, H, W) view.

Kernels do no validation; ``numbapool._params`` has checked everything before they run.
The shared bodies of ``numbapool._bodies`` (one output, or one input element, at a time)
run here in ``prange`` loops where nothing faster exists: the per-plane scatter, the
gather by index, and forward pooling over windows that differ per plane on channels-last
memory. Elsewhere the CPU has twins of the same algorithms, which
``bench/twins.py`` measured 2x to 30x faster than the shared bodies on every case of the
README's benchmark:

- channels-last memory: loops over C innermost, contiguous and vectorised, for every
  reduction and gradient;
- channels-first max: each output row keeps its running maxima while every input line of
  its windows is read once;
- channels-first sums: the window's input lines are summed element-wise first (long
  loops that vectorise), then each output sums a short span of those column sums; where
  every window spans one line (1d pooling), each output sums its span of it directly;
- channels-first gradients: the thread that owns an input line adds each covering output
  to it (a span for sums, the winner's position for max);
- global sums over rows of whole planes, and the per-plane scatter for max gradients
  whose windows hold their winners.

They share everything below the loops: windows, reduction parts, element loaders. Fixed
and adaptive windows run from precomputed tables (loads instead of divisions); fractional
windows, a different set per plane, from their formula. Kernels take the three dims
(``dim_d, dim_h, dim_w``) as separate arguments: a parallel loop cannot capture a nested
tuple. Small inputs run serial builds of the kernels (a parallel launch costs more than
the work), large ones parallel builds once a call repeats (``_ParallelBuild``). Kernels
are built on first use by memoised factories keyed by hashable parameters (``builds``),
so importing numbapool compiles nothing.
"""

import bisect
import functools
import math
import os
import threading
import time
import types

import numpy as np
from numba import get_num_threads, njit, prange, threading_layer

from numbapool import _bodies, _elements, _layout, _windows
from numbapool._backend import INLINED_DIGEST, Backend, jit_cached, load_cached, window_extent
from numbapool._bodies import flat_index, split_row
from numbapool._reductions import takes_over
from numbapool._windows import TABLE, Dims

def builds(fastmath=False):
    """Decorate a kernel factory ``factory(*key)`` that returns a kernel's Python function:
    ``factory(*key, parallel)`` is then its serial or parallel build, memoised, compiled on
    first use with ``njit(cache=True)``.

    Numba's cache key ignores compile options and the code a kernel inlines from other
    modules: each build is named after both, so that a serial build is never loaded as the
    parallel one (or the reverse) and editing the inlined modules recompiles. A parallel
    build is a ``_ParallelBuild``, which holds the serial build of the same key."""

    def decorate(factory):
        function_of = functools.cache(factory)

        @functools.cache
        def build(*key_and_parallel):
            *key, parallel = key_and_parallel
            function = function_of(*key)
            # one Python function, two builds: each needs a name of its own
            named = types.FunctionType(function.__code__, function.__globals__,
                                       function.__name__, function.__defaults__,
                                       function.__closure__)
            named.__qualname__ = (f"{function.__qualname__}_{INLINED_DIGEST}_"
                                  f"{'parallel' if parallel else 'serial'}"
                                  + ("_fastmath" if fastmath else ""))
            kernel = jit_cached(njit, named, parallel=parallel,
                                fastmath={"reassoc"} if fastmath else False)
            return _ParallelBuild(kernel, build(*key, False)) if parallel else kernel

        return functools.update_wrapper(build, factory)

    return decorate


SERIAL_FIRST = True
"""Whether a parallel build's first calls may run the serial build (``_ParallelBuild``);
tests that must run parallel builds from the first call turn it off."""

SERIAL_FIRST_SECONDS = 0.5
"""Seconds of serial runs on parallel-sized inputs, per kernel and argument types, after
which the parallel build is compiled even where no call has repeated: about half its
compile time, so that a few varied calls never wait for it and a long run loses little."""

SERIAL_FIRST_MAX_WORK = 1 << 27
"""Elements (inputs and outputs) from which a first call compiles the parallel build at
once: one core on so many takes about as long as that compile."""


class _ParallelBuild:
    """A kernel's parallel build: compiled only once it pays, and safe to call from
    several Python threads under any threading layer.

    Compiling: Numba's parfor lowering makes a parallel build take 2-3 times as long to
    compile as the serial one (1.7 s against 0.7 s for the summing twin on the 2-core
    VM), most of what a first call waits for. So calls run the serial build, which gives
    the same results, until a call repeats (the same argument types and shapes), or
    serial runs have taken ``SERIAL_FIRST_SECONDS``; then the parallel build is compiled.
    It runs from the first call where it is already compiled or in the disk cache, or
    where the input is very large (``SERIAL_FIRST_MAX_WORK``). ``numbapool.warmup``
    compiles both builds ahead of time.

    Threads: OpenMP and TBB take concurrent launches; Numba's workqueue layer (what Numba
    picks where neither is installed) aborts the process on them. Launches are serialised
    until a parallel region has shown which layer Numba loaded, and for good under
    workqueue."""

    _lock = threading.Lock()
    _layer_takes_threads = None  # unknown until a parallel region has run
    forked_from_openmp = False
    """In a process forked after an OpenMP parallel region: GNU OpenMP terminates a
    child that opens one, so such a child runs serial builds."""

    @staticmethod
    def after_fork_in_child():
        if _ParallelBuild._layer_takes_threads is not None and threading_layer() == "omp":
            _ParallelBuild.forked_from_openmp = True

    def __init__(self, kernel, serial):
        self.kernel, self.serial = kernel, serial
        self._serial_runs = {}   # argument types -> _SerialRuns
        # Numba calls this hook for argument types that have no compiled build yet
        self._compile_for_args = kernel._compile_for_args
        kernel._compile_for_args = self._uncompiled_call

    def __call__(self, *args):
        if _ParallelBuild._layer_takes_threads:
            return self.kernel(*args)
        with _ParallelBuild._lock:
            result = self.kernel(*args)
            try:
                _ParallelBuild._layer_takes_threads = threading_layer() != "workqueue"
            except ValueError:   # no parallel region has run yet
                pass
        return result

    def _uncompiled_call(self, *args, **kws):
        """The function that runs a call for whose argument types the parallel build is
        not compiled in this process (Numba calls it with the call's arguments)."""
        if SERIAL_FIRST and not kws:
            signature = tuple(map(self.kernel.typeof_pyval, args))
            runs = self._serial_runs.get(signature)
            if runs is None:
                if sum(a.size for a in args if isinstance(a, np.ndarray)) >= \
                        SERIAL_FIRST_MAX_WORK:
                    return self._compile_for_args(*args)
                loaded = load_cached(self.kernel, signature)
                if loaded is not None:
                    return loaded
                runs = self._serial_runs[signature] = _SerialRuns(self.serial, signature)
            shapes = tuple(a.shape for a in args if isinstance(a, np.ndarray))
            if shapes not in runs.shapes and runs.seconds < SERIAL_FIRST_SECONDS:
                runs.shapes.add(shapes)
                return runs
        return self._compile_for_args(*args, **kws)

    def __getattr__(self, name):
        return getattr(self.kernel, name)


os.register_at_fork(after_in_child=_ParallelBuild.after_fork_in_child)


class _SerialRuns:
    """The serial build standing in for a parallel one, for one set of argument types:
    the shapes it ran and its time (not counting its own compile)."""

    def __init__(self, serial, signature):
        self.serial, self.signature = serial, signature
        self.shapes = set()
        self.seconds = 0.0

    def __call__(self, *args):
        if self.signature not in self.serial.overloads:
            return self.serial(*args)
        start = time.perf_counter()
        try:
            return self.serial(*args)
        finally:
            self.seconds += time.perf_counter() - start


# Below this many elements touched, a parallel launch costs more than the work.
PARALLEL_MIN_WORK = 1 << 15


def _parallel(*arrays):
    return _parallel_for(sum(a.size for a in arrays))


def _parallel_for(work):
    return not _ParallelBuild.forked_from_openmp and work >= PARALLEL_MIN_WORK


def _cl(array):
    """A canonical array with C fastest seen as (N, D, H, W, C)."""
    return array.transpose(0, 2, 3, 4, 1)


# ---------------------------------------------------------------------------------------
# Window tables


TABLE_LENGTH = 4096
"""The longest dim whose windows are tabulated (6 int64 per entry, for each of 3 dims):
longer dims, and tables that would outweigh 1/32 of the data, run the window formula in
the kernels instead, so that bookkeeping stays small next to the data, and the memo of
tables (64 of them) below 40 MB whatever shapes come."""


@functools.lru_cache(maxsize=64)
def _tables(windows, dims):
    """Read-only window tables of the three dims (memoised: shapes repeat)."""
    length = max(max(dim.size, dim.out) for dim in dims)
    tables = np.zeros((3, 6, length), np.int64)
    for table, dim in zip(tables, dims):
        # the jitable formulas, run by the interpreter: at most a few ms (4096 entries),
        # where compiling a builder added 0.3-0.5 s to the first call of every process
        for o in range(dim.out):
            table[:4, o] = windows.window(dim, o, 0.0)
        for i in range(dim.size):
            table[4:, i] = windows.cover(dim, i, 0.0)
    tables.flags.writeable = False
    return Dims(*tables)


def _windows_for(windows, dims, data_bytes):
    """The windows kernels run from: tables for fixed and adaptive windows where they are
    small (see ``TABLE_LENGTH``), else the formula, as for windows that differ per plane."""
    if windows.per_plane:
        return windows, dims
    length = max(max(dim.size, dim.out) for dim in dims)
    if length > TABLE_LENGTH or 3 * 6 * 8 * length > max(1 << 16, data_bytes // 32):
        return windows, dims
    return TABLE, _tables(windows, dims)


_NO_SAMPLES = np.zeros((1, 1, 3))
_NO_SAMPLES.flags.writeable = False


# ---------------------------------------------------------------------------------------
# Forward: window reductions


@builds()
def reduce_kernel(windows, reduction, load, with_indices):
    """Forward pooling by the shared per-output body, over rows (n, od, oh) of
    channels-last memory with C innermost: for windows that differ per plane, which the
    channels-last twin cannot share along C.

    ``kernel(x, out, idx, dim_d, dim_h, dim_w, samples, initial, options)``.
    """
    reduce_window = _bodies.window_reducer(windows, reduction, load)

    def kernel(x, out, idx, dim_d, dim_h, dim_w, samples, initial, options):
        n_batch, channels, out_d, out_h, out_w = out.shape
        for row in prange(n_batch * out_d * out_h):
            n, _, od, oh = split_row(row, 1, out_d, out_h)
            for ow in range(out_w):
                for c in range(channels):
                    value, at = reduce_window(x, n, c, od, oh, ow, Dims(dim_d, dim_h, dim_w),
                                              samples, initial, options)
                    out[n, c, od, oh, ow] = value
                    if with_indices:
                        idx[n, c, od, oh, ow] = at

    return kernel


@builds()
def max_rows_kernel(windows, reduction, load, with_indices, unit_stride):
    """Channels-first twin for selecting reductions: each output row holds its running
    maxima, and every input line of the row's windows is read once for all its outputs.
    Where windows lie one input apart (``unit_stride``), those whole inside the line
    take each tap in one contiguous pass over them (vectorised: max_pool1d of stride 1 ran
    3.4x slower one output at a time); each output still sees its taps in the same order.
    (Built only where it runs: the passes, even empty, made other max pooling 25-40%
    slower.)

    ``kernel(x, out, idx, dim_d, dim_h, dim_w, samples, initial, options, run)``; ``run``
    is ``_unit_stride_run``'s (first, stop, shift, taps, step) along W.
    """
    window, sample = windows.window, windows.sample
    parts = reduction.parts()
    prepare, finish = parts.prepare, parts.finish
    finishes = reduction.finishes

    def kernel(x, out, idx, dim_d, dim_h, dim_w, samples, initial, options, run):
        n_batch, channels, depth, height, width = x.shape
        out_d, out_h, out_w = out.shape[2], out.shape[3], out.shape[4]
        if unit_stride:
            run_first, run_stop, run_shift, run_taps, run_step = run[0], run[1], run[2], \
                run[3], run[4]
        else:
            run_first = run_stop = run_shift = run_taps = run_step = 0
        for row in prange(n_batch * channels * out_d * out_h):
            n, c, od, oh = split_row(row, channels, out_d, out_h)
            sample_w = sample(samples, n, c, 2)
            d0, nd, sd, pd = window(dim_d, od, sample(samples, n, c, 0))
            h0, nh, sh, ph = window(dim_h, oh, sample(samples, n, c, 1))
            for ow in range(out_w):
                out[n, c, od, oh, ow] = initial
                if with_indices:
                    idx[n, c, od, oh, ow] = flat_index(d0, h0, window(dim_w, ow,
                                                                      sample_w)[0],
                                                       height, width)
            for a in range(nd):
                d = d0 + a * sd
                for b in range(nh):
                    h = h0 + b * sh
                    line_at = flat_index(d, h, 0, height, width)
                    for e in range(run_taps):
                        shift = run_shift + e * run_step
                        for ow in range(run_first, run_stop):
                            # unsigned positions: no negative-index wrap, which would
                            # keep LLVM from vectorising (3x slower)
                            o = np.uint64(ow)
                            w = ow + shift
                            v = prepare(load(x[n, c, d, h, np.uint64(w)]), options.norm)
                            if with_indices:
                                if takes_over(v, out[n, c, od, oh, o]):
                                    out[n, c, od, oh, o] = v
                                    idx[n, c, od, oh, o] = line_at + w
                            else:
                                best = out[n, c, od, oh, o]
                                out[n, c, od, oh, o] = v if takes_over(v, best) else best
                    for side in range(2):   # the outputs before the run, then after it
                        for ow in range(0 if side == 0 else run_stop,
                                        run_first if side == 0 else out_w):
                            w0, nw, sw, _ = window(dim_w, ow, sample_w)
                            best = out[n, c, od, oh, ow]
                            if with_indices:
                                best_at = idx[n, c, od, oh, ow]
                                for e in range(nw):
                                    w = w0 + e * sw
                                    v = prepare(load(x[n, c, d, h, np.uint64(w)]),
                                                options.norm)
                                    if takes_over(v, best):
                                        best = v
                                        best_at = line_at + w
                                idx[n, c, od, oh, ow] = best_at
                            else:
                                for e in range(nw):
                                    v = prepare(load(x[n, c, d, h, np.uint64(w0 + e * sw)]),
                                                options.norm)
                                    best = v if takes_over(v, best) else best
                            out[n, c, od, oh, ow] = best
            if finishes:
                for ow in range(out_w):
                    out[n, c, od, oh, ow] = finish(out[n, c, od, oh, ow], 0, 0, options)

    return kernel


_NO_RUN = np.zeros(5, np.int64)
_NO_RUN.flags.writeable = False


def _unit_stride_run(windows, dim):
    """The outputs ``first <= o < stop`` of ``dim`` whose fixed windows of unit stride lie
    whole inside the input, as the int64 array (first, stop, shift, taps, step): their
    taps are ``o + shift + t * step`` for ``t < taps``. None (all zeros) for other windows.

    The whole windows of unit stride are a run around the middle output: found by
    bisection with the window formula itself."""
    if windows is not _windows.FIXED or dim.stride != 1 or dim.out == 0:
        return _NO_RUN

    def whole(o):
        return windows.window(dim, o, 0.0)[1] == dim.kernel

    middle = dim.out // 2
    if not whole(middle):
        return _NO_RUN
    first, stop = bisect.bisect_left(range(middle), True, key=whole), \
        middle + bisect.bisect_left(range(middle, dim.out), True, key=lambda o: not whole(o))
    start, taps, step, _ = windows.window(dim, first, 0.0)
    run = np.array([first, stop, start - first, taps, step], np.int64)
    run.flags.writeable = False
    return run


# Long sums are carried: values are added in their own type in runs (RUN contiguous
# values, which vectorise over many partial sums, or EXACT_TAPS values one after another)
# and each run's sum is added in the compute type (float64 where ``sums_carry``, see
# ``_elements.Element.carrying``). Float32 speed, float64 accuracy.
RUN = _elements.EXACT_RUN
EXACT_TAPS = _elements.EXACT_TAPS


@builds(fastmath=True)
def sum_line_kernel(windows, reduction, load, carries):
    """Channels-first twin for summing reductions whose windows span one input line (1d
    pooling, 2d windows one row high): each output sums its span of that line, in runs of
    RUN values carried in the compute type where it ``carries``.

    ``kernel(x, out, dim_d, dim_h, dim_w, initial, run_zero, options)``.
    """
    window = windows.window
    parts = reduction.parts()
    prepare, add, finish = parts.prepare, parts.add, parts.finish

    def kernel(x, out, dim_d, dim_h, dim_w, initial, run_zero, options):
        channels = x.shape[1]
        out_d, out_h, out_w = out.shape[2], out.shape[3], out.shape[4]
        for row in prange(x.shape[0] * channels * out_d * out_h):
            n, c, od, oh = split_row(row, channels, out_d, out_h)
            d, _, _, pd = window(dim_d, od, 0.0)
            h, _, _, ph = window(dim_h, oh, 0.0)
            for ow in range(out_w):
                w0, nw, _, pw = window(dim_w, ow, 0.0)
                acc = initial
                whole = 0
                if carries:
                    whole = nw - nw % RUN
                    for start in range(w0, w0 + whole, RUN):
                        run = run_zero
                        for i in range(RUN):
                            run = add(run, prepare(load(x[n, c, d, h, np.uint64(start + i)]),
                                                   options.norm))
                        acc = add(acc, run)
                run = run_zero
                for w in range(w0 + whole, w0 + nw):
                    run = add(run, prepare(load(x[n, c, d, h, np.uint64(w)]), options.norm))
                out[n, c, od, oh, ow] = finish(add(acc, run), nw, pd * ph * pw, options)

    return kernel


@builds(fastmath=True)
def sum_rows_kernel(windows, reduction, load, carries):
    """Channels-first twin for summing reductions (windows of step 1): the window's input
    lines are combined element-wise into a line of column sums (long loops that
    vectorise), then each output combines its short span of that line.

    ``kernel(x, out, dim_d, dim_h, dim_w, initial, run_zero, options, lines, carried)``;
    ``lines`` (chunks, W) in the value type and, where ``carries``, ``carried`` (chunks, W)
    in the compute type hold one chunk of rows' column sums.
    """
    window = windows.window
    parts = reduction.parts()
    prepare, add, finish = parts.prepare, parts.add, parts.finish

    def kernel(x, out, dim_d, dim_h, dim_w, initial, run_zero, options, lines, carried):
        n_batch, channels, width = x.shape[0], x.shape[1], x.shape[4]
        out_d, out_h, out_w = out.shape[2], out.shape[3], out.shape[4]
        rows = n_batch * channels * out_d * out_h
        chunks = lines.shape[0]
        # rows are dealt out in chunks, each with lines of its own
        for chunk in prange(chunks):
            for row in range(chunk * rows // chunks, (chunk + 1) * rows // chunks):
                n, c, od, oh = split_row(row, channels, out_d, out_h)
                d0, nd, _, pd = window(dim_d, od, 0.0)
                h0, nh, _, ph = window(dim_h, oh, 0.0)
                for w in range(width):
                    lines[chunk, w] = run_zero
                    if carries:
                        carried[chunk, w] = initial
                taken = 0
                for d in range(d0, d0 + nd):
                    for h in range(h0, h0 + nh):
                        for w in range(width):
                            lines[chunk, w] = add(lines[chunk, w],
                                                  prepare(load(x[n, c, d, h, w]), options.norm))
                        taken += 1
                        if carries and taken == EXACT_TAPS:
                            for w in range(width):
                                carried[chunk, w] = add(carried[chunk, w], lines[chunk, w])
                                lines[chunk, w] = run_zero
                            taken = 0
                if carries:
                    for w in range(width):
                        carried[chunk, w] = add(carried[chunk, w], lines[chunk, w])
                for ow in range(out_w):
                    w0, nw, _, pw = window(dim_w, ow, 0.0)
                    acc = initial
                    for w in range(w0, w0 + nw):
                        if carries:
                            acc = add(acc, carried[chunk, np.uint64(w)])
                        else:
                            acc = add(acc, lines[chunk, np.uint64(w)])
                    out[n, c, od, oh, ow] = finish(acc, nd * nh * nw, pd * ph * pw, options)

    return kernel


@builds(fastmath=True)
def channels_last_kernel(windows, reduction, load, with_indices, carries):
    """Channels-last twin for every reduction: rows (n, od, oh), each output's running
    values held in its C-long line of ``out`` and updated tap by tap in contiguous,
    vectorised loops over C. Where the compute type ``carries`` sums, a line of the
    value type takes EXACT_TAPS taps at a time and a line of the compute type carries
    them.

    ``kernel(x, out, idx, dim_d, dim_h, dim_w, samples, initial, run_zero, options)`` on
    (N, D, H, W, C) arrays; ``out`` has the value type.
    """
    window = windows.window
    parts = reduction.parts()
    prepare, add, finish = parts.prepare, parts.add, parts.finish
    selects, finishes = reduction.selects, reduction.finishes

    def kernel(x, out, idx, dim_d, dim_h, dim_w, samples, initial, run_zero, options):
        n_batch, depth, height, width, channels = x.shape
        out_d, out_h, out_w = out.shape[1], out.shape[2], out.shape[3]
        for row in prange(n_batch * out_d * out_h):
            n, _, od, oh = split_row(row, 1, out_d, out_h)
            d0, nd, sd, pd = window(dim_d, od, 0.0)
            h0, nh, sh, ph = window(dim_h, oh, 0.0)
            carried = np.full(channels if carries else 0, initial)
            for ow in range(out_w):
                w0, nw, sw, pw = window(dim_w, ow, 0.0)
                first_at = flat_index(d0, h0, w0, height, width)
                for c in range(channels):
                    out[n, od, oh, ow, c] = run_zero if carries else initial
                    if with_indices:
                        idx[n, od, oh, ow, c] = first_at
                    if carries:
                        carried[c] = initial
                taken = 0
                for a in range(nd):
                    d = d0 + a * sd
                    for b in range(nh):
                        h = h0 + b * sh
                        for e in range(nw):
                            w = w0 + e * sw
                            at = flat_index(d, h, w, height, width)
                            for c in range(channels):
                                v = prepare(load(x[n, d, h, w, c]), options.norm)
                                if not selects:
                                    out[n, od, oh, ow, c] = add(out[n, od, oh, ow, c], v)
                                elif with_indices:
                                    if takes_over(v, out[n, od, oh, ow, c]):
                                        out[n, od, oh, ow, c] = v
                                        idx[n, od, oh, ow, c] = at
                                elif takes_over(v, out[n, od, oh, ow, c]):
                                    out[n, od, oh, ow, c] = v
                            if carries:  # a run of EXACT_TAPS taps is carried
                                taken += 1
                                if taken == EXACT_TAPS:
                                    for c in range(channels):
                                        carried[c] = add(carried[c], out[n, od, oh, ow, c])
                                        out[n, od, oh, ow, c] = run_zero
                                    taken = 0
                if carries:
                    for c in range(channels):
                        out[n, od, oh, ow, c] = finish(add(carried[c], out[n, od, oh, ow, c]),
                                                       nd * nh * nw, pd * ph * pw, options)
                elif finishes:
                    for c in range(channels):
                        out[n, od, oh, ow, c] = finish(out[n, od, oh, ow, c], nd * nh * nw,
                                                       pd * ph * pw, options)

    return kernel


@builds(fastmath=True)
def global_sum_kernel(reduction, load, carries):
    """Summing reductions of whole planes laid out as the rows of a 2-d array: global
    pooling of channels-first inputs, where rows are short (7x7 planes) and a generic
    row's bookkeeping would cost more than its sum. Rows longer than RUN (where the
    compute type ``carries``) are summed in runs of RUN values in the value type, whose
    sums are carried in the compute type.

    ``kernel(planes, out, initial, run_zero, options)`` with ``planes`` (rows, length),
    ``out`` (rows,).
    """
    parts = reduction.parts()
    prepare, add, finish = parts.prepare, parts.add, parts.finish

    def kernel(planes, out, initial, run_zero, options):
        rows, length = planes.shape
        for row in prange(rows):
            acc = initial
            whole = 0
            if carries:
                whole = length - length % RUN
                for start in range(0, whole, RUN):
                    run = run_zero
                    for i in range(RUN):  # a fixed count, so the loop vectorises
                        run = add(run, prepare(load(planes[row, start + i]), options.norm))
                    acc = add(acc, run)
            run = run_zero
            for i in range(length - whole):
                run = add(run, prepare(load(planes[row, whole + i]), options.norm))
            out[row] = finish(add(acc, run), length, length, options)

    return kernel


# ---------------------------------------------------------------------------------------
# Backward: gradients. Each input element sums, in increasing output order, the outputs
# whose windows cover it, so results are bitwise the same for any thread count.


@builds()
def terms_kernel(windows, reduction, load):
    """What each output of a summing reduction passes to every input of its window,
    once per output: ``term(grad, out, ...)`` (``grad / divisor`` for the mean).

    ``kernel(grad, out, terms, dim_d, dim_h, dim_w, zero, options)``.
    """
    window = windows.window
    term = reduction.parts().term
    needs_output = reduction.needs_output

    def kernel(grad, out, terms, dim_d, dim_h, dim_w, zero, options):
        n_batch, channels, out_d, out_h, out_w = grad.shape
        for row in prange(n_batch * channels * out_d * out_h):
            n, c, od, oh = split_row(row, channels, out_d, out_h)
            _, nd, _, pd = window(dim_d, od, 0.0)
            _, nh, _, ph = window(dim_h, oh, 0.0)
            for ow in range(out_w):
                _, nw, _, pw = window(dim_w, ow, 0.0)
                out_value = zero
                if needs_output:
                    out_value = load(out[n, c, od, oh, ow])
                terms[n, c, od, oh, ow] = term(load(grad[n, c, od, oh, ow]), out_value,
                                               nd * nh * nw, pd * ph * pw, options)

    return kernel


@builds()
def line_gather_kernel(windows, reduction, load):
    """Channels-first twin of the gradient: the thread that owns an input line walks its
    covering output rows once, in order, adding each output's term over its span
    (summing reductions, from ``terms_kernel``) or its gradient at its winner's position
    when that lies on the line (selecting ones): the gather's sums in the same order, in
    contiguous loops.

    ``kernel(terms, idx, x, grad_in, dim_d, dim_h, dim_w, zero, options)``.
    """
    window, cover = windows.window, windows.cover
    factor = reduction.parts().factor
    selects, scaled = reduction.selects, reduction.scaled

    def kernel(terms, idx, x, grad_in, dim_d, dim_h, dim_w, zero, options):
        n_batch, channels, depth, height, width = grad_in.shape
        for row in prange(n_batch * channels * depth * height):
            n, c, d, h = split_row(row, channels, depth, height)
            od_lo, od_hi = cover(dim_d, d, 0.0)
            oh_lo, oh_hi = cover(dim_h, h, 0.0)
            line_at = flat_index(d, h, 0, height, width)
            for w in range(width):
                grad_in[n, c, d, h, w] = zero
            for od in range(od_lo, od_hi):
                for oh in range(oh_lo, oh_hi):
                    for ow in range(terms.shape[4]):
                        if selects:
                            at = idx[n, c, od, oh, ow] - line_at
                            if 0 <= at < width:
                                grad_in[n, c, d, h, at] += load(terms[n, c, od, oh, ow])
                        else:
                            w0, nw, _, _ = window(dim_w, ow, 0.0)
                            share = terms[n, c, od, oh, ow]
                            for w in range(w0, w0 + nw):
                                grad_in[n, c, d, h, np.uint64(w)] += share
            if scaled:
                for w in range(width):
                    grad_in[n, c, d, h, w] *= factor(load(x[n, c, d, h, w]), options.norm)

    return kernel


@builds()
def channels_last_gather_kernel(windows, reduction, load):
    """Channels-last twin of the gradient: per input position, the covering outputs in
    order, each adding its term (summing reductions) or, where its index is this position,
    its gradient (selecting ones) in contiguous loops over C.

    ``kernel(terms, idx, x, grad_in, dim_d, dim_h, dim_w, zero, options)`` on
    (N, D, H, W, C) arrays.
    """
    cover = windows.cover
    factor = reduction.parts().factor
    selects, scaled = reduction.selects, reduction.scaled

    def kernel(terms, idx, x, grad_in, dim_d, dim_h, dim_w, zero, options):
        n_batch, depth, height, width, channels = grad_in.shape
        for row in prange(n_batch * depth * height):
            n, _, d, h = split_row(row, 1, depth, height)
            od_lo, od_hi = cover(dim_d, d, 0.0)
            oh_lo, oh_hi = cover(dim_h, h, 0.0)
            for w in range(width):
                ow_lo, ow_hi = cover(dim_w, w, 0.0)
                at = flat_index(d, h, w, height, width)
                for c in range(channels):
                    grad_in[n, d, h, w, c] = zero
                for od in range(od_lo, od_hi):
                    for oh in range(oh_lo, oh_hi):
                        for ow in range(ow_lo, ow_hi):
                            for c in range(channels):
                                if not selects:
                                    grad_in[n, d, h, w, c] += terms[n, od, oh, ow, c]
                                elif idx[n, od, oh, ow, c] == at:
                                    grad_in[n, d, h, w, c] += load(terms[n, od, oh, ow, c])
                if scaled:
                    for c in range(channels):
                        grad_in[n, d, h, w, c] *= factor(load(x[n, d, h, w, c]),
                                                         options.norm)

    return kernel


@builds()
def index_check_kernel(windows, unit_steps, channels_last):
    """How many indices a max-type forward cannot have reported (``_bodies.reporter``),
    over rows whose depth and height windows are looked up once. On channels-last memory
    ``idx`` is the (N, D, H, W, C) view, and a row holds every channel, innermost, read
    along memory: a row per channel strides C elements at each step (5.6x slower in the
    max-pooling backward benchmark), and a channel loop over the (N, C, D, H, W) view has
    a stride known only at run time, which LLVM does not vectorise (6x slower).

    ``kernel(idx, dim_d, dim_h, dim_w, height, width) -> int``.
    """
    window = windows.window
    reported = _bodies.reporter(unit_steps)

    def kernel(idx, dim_d, dim_h, dim_w, height, width):
        if channels_last:
            n_batch, out_d, out_h, out_w, channels = idx.shape
        else:
            n_batch, channels, out_d, out_h, out_w = idx.shape
        row_channels = 1 if channels_last else channels  # channels split across rows
        outside = 0
        for row in prange(n_batch * row_channels * out_d * out_h):
            n, c, od, oh = split_row(row, row_channels, out_d, out_h)
            d0, nd, sd, _ = window(dim_d, od, 0.0)
            h0, nh, sh, _ = window(dim_h, oh, 0.0)
            missed = 0
            for ow in range(out_w):
                w0, nw, sw, _ = window(dim_w, ow, 0.0)
                if channels_last:
                    for c in range(channels):
                        missed += not reported(np.int64(idx[n, od, oh, ow, c]), d0, nd, sd,
                                               h0, nh, sh, w0, nw, sw, height, width)
                else:
                    missed += not reported(np.int64(idx[n, c, od, oh, ow]), d0, nd, sd, h0,
                                           nh, sh, w0, nw, sw, height, width)
            outside += missed
        return outside

    return kernel


# ---------------------------------------------------------------------------------------
# Per-plane scatter and gather by index (max unpooling and its gradient)


@builds()
def scatter_kernel(accumulate, load):
    """One thread per (n, c) plane runs the shared scatter body.

    ``kernel(values, idx, out, zero)``.
    """
    scatter_plane = _bodies.plane_scatterer(accumulate, load, 1)

    def kernel(values, idx, out, zero):
        n_batch, channels = out.shape[0], out.shape[1]
        for plane in prange(n_batch * channels):
            _, _, n, c = split_row(plane, 1, n_batch, channels)
            scatter_plane(values, idx, out, n, c, 0, zero)

    return kernel


CHANNEL_BLOCK = 64
"""Channels per task of the channels-last scatter (the fastest of 16, 32, 64 and 128 in the
unpooling benchmark: 256 bytes of float32 per position)."""


@builds()
def scatter_channels_last_kernel(accumulate, load):
    """Twin of ``scatter_kernel`` for channels-last rows, where one plane per thread
    strides C elements at every step and reads the whole batch entry's memory once per
    channel (unpooling 4x slower than PyTorch's in the benchmark). A task owns a block of
    channels of one batch entry and walks positions with the channels inner, along
    memory; each plane still has one writer, in increasing value order.

    ``kernel(values, idx, out, zero)`` on (N, C, 1, 1, L) views.
    """
    put = _bodies.row_writer(accumulate, load)

    def kernel(values, idx, out, zero):
        n_batch, channels, width = out.shape[0], out.shape[1], out.shape[4]
        blocks = (channels + CHANNEL_BLOCK - 1) // CHANNEL_BLOCK
        for task in prange(n_batch * blocks):
            n = task // blocks
            first = (task - n * blocks) * CHANNEL_BLOCK
            last = min(channels, first + CHANNEL_BLOCK)
            for at in range(width):
                for c in range(first, last):
                    out[n, c, 0, 0, at] = zero
            for j in range(values.shape[4]):
                for c in range(first, last):
                    put(values, out, n, c, j, np.int64(idx[n, c, 0, 0, j]))

    return kernel


@builds()
def gather_by_index_kernel():
    """``kernel(grad, idx, grad_in)``: the shared body over input rows."""

    def kernel(grad, idx, grad_in):
        n_batch, channels, depth, height, width = grad_in.shape
        for row in prange(n_batch * channels * depth * height):
            n, c, d, h = split_row(row, channels, depth, height)
            for w in range(width):
                grad_in[n, c, d, h, w] = _bodies.gather_by_index(grad, idx, n, c, d, h, w)

    return kernel


# ---------------------------------------------------------------------------------------
# The backend


def _chunks(rows, parallel):
    """How many chunks of rows a kernel with per-chunk lines deals out."""
    return 1 if not parallel else max(1, min(rows, 8 * get_num_threads()))


def _rows(flat5):
    """The (N, C, 1, 1, L) view of whole planes as a 2-d (N * C, L) view, when the memory
    allows one (N and C merge); None otherwise."""
    n, c, _, _, length = flat5.shape
    if n > 1 and flat5.strides[0] != flat5.strides[1] * c:
        return None
    return flat5.reshape(n * c, length)


def _windows_hold_winners(windows, dims):
    """Whether every output's index lies in its own window: for adaptive windows, and for
    fixed windows without dilation (with dilation a window can miss the input)."""
    return windows is _windows.ADAPTIVE or (
        windows is _windows.FIXED and all(dim.dilation == 1 for dim in dims))


# (N, C, *spatial) <-> (N, C, D, H, W) for each rank: made once, as calls repeat them
_NEW_DIMS = {nd: (slice(None), slice(None)) + (None,) * (3 - nd) for nd in (1, 2, 3)}
_FIRST_OF_NEW_DIMS = {nd: (slice(None), slice(None)) + (0,) * (3 - nd) for nd in (1, 2, 3)}

_NO_INDICES = np.empty((1,) * 5, np.int64)
"""What kernels that write no indices take in their place, for its type alone."""


class CpuBackend(Backend):
    """NumPy arrays, computed by ``@njit`` kernels on Numba's threads."""

    name = "cpu"
    writes_elements = False

    def canonical(self, array, nd, batched, data_format):
        # NumPy's indexing costs far less per call than as_strided
        if not batched:
            array = array[None]
        if data_format == "channels_last":
            array = np.moveaxis(array, -1, 1)
        return array[_NEW_DIMS[nd]]

    def restore(self, array5, nd, batched, data_format):
        y = array5[_FIRST_OF_NEW_DIMS[nd]]
        if data_format == "channels_last":
            y = np.moveaxis(y, 1, -1)
        return y if batched else y[0]

    def no_indices(self, like):
        return _NO_INDICES

    def empty(self, shape5, dtype, channels_last, like=None):
        if channels_last:
            n, c, d, h, w = shape5
            return np.empty((n, d, h, w, c), dtype).transpose(0, 4, 1, 2, 3)
        return np.empty(shape5, dtype)

    def retype(self, array, dtype):
        return array if array.dtype == dtype else array.view(dtype)

    def merged_planes(self, array5):
        merged = _layout.merged_planes(array5.shape, array5.strides)
        # the planes are one run each, so this reshape is a view
        return None if merged is None else array5.reshape(merged[0])

    def cast(self, array5, dtype, element):
        return array5.astype(dtype)

    def value_range(self, array):
        return (int(array.min()), int(array.max())) if array.size else (0, -1)

    def to_host(self, array):
        return np.asarray(array)

    def from_host(self, array, like):
        return array

    def sums_carry(self, dims, windows, channels_last):
        # the channels-last twin adds a window's taps one after another; the
        # channels-first twins add its lines one after another, and contiguous spans
        # (1d windows, global planes) in vectorised loops
        if channels_last:
            return super().sums_carry(dims, windows, channels_last)
        lines = window_extent(dims.depth, windows) * window_extent(dims.height, windows)
        return lines > EXACT_TAPS or window_extent(dims.width, windows) > RUN

    def window_reducer(self, x, out_shape, dims, windows, reduction, element, options, samples,
                       with_indices, channels_last):
        parallel = _parallel_for(x.size + math.prod(out_shape))
        initial = reduction.initial(element)
        run_zero = element.value.type(0)
        if samples is None:
            samples = _NO_SAMPLES
        if windows is _windows.ADAPTIVE and not reduction.selects and not channels_last \
                and x.shape[2] * x.shape[3] == 1 \
                and dims.depth.out == dims.height.out == dims.width.out == 1 \
                and (planes := _rows(x)) is not None:
            # global pooling of channels-first planes, each plane a row
            kernel = global_sum_kernel(reduction, element.load, element.carries, parallel)
            rows = planes.shape   # every call's x has this one's strides: a view
            return lambda x, out, idx: kernel(x.reshape(rows), out.reshape(-1), initial,
                                              run_zero, options)
        one_line = window_extent(dims.depth, windows) * window_extent(dims.height, windows) == 1
        run = _unit_stride_run(windows, dims.width)   # for the max twin
        windows, (dim_d, dim_h, dim_w) = _windows_for(windows, dims, x.nbytes)
        if channels_last and windows.per_plane:
            # windows that differ per plane cannot share a C-long line: the shared body,
            # C innermost (1.6x the channels-first twin on channels-last memory)
            kernel = reduce_kernel(windows, reduction, element.load, with_indices, parallel)
            return lambda x, out, idx: kernel(x, out, idx, dim_d, dim_h, dim_w, samples,
                                              initial, options)
        if channels_last:
            kernel = channels_last_kernel(windows, reduction, element.load, with_indices,
                                          element.carries and not reduction.selects, parallel)
            return lambda x, out, idx: kernel(_cl(x), _cl(out), _cl(idx), dim_d, dim_h, dim_w,
                                              samples, initial, run_zero, options)
        if reduction.selects:
            kernel = max_rows_kernel(windows, reduction, element.load, with_indices,
                                     bool(run[1] > run[0]), parallel)
            return lambda x, out, idx: kernel(x, out, idx, dim_d, dim_h, dim_w, samples,
                                              initial, options, run)
        if one_line:
            kernel = sum_line_kernel(windows, reduction, element.load, element.carries,
                                     parallel)
            return lambda x, out, idx: kernel(x, out, dim_d, dim_h, dim_w, initial, run_zero,
                                              options)
        kernel = sum_rows_kernel(windows, reduction, element.load, element.carries, parallel)
        rows, width = math.prod(out_shape[:4]), x.shape[4]

        def reduce(x, out, idx):
            # scratch lines per chunk of rows, per call: calls may run at once
            chunks = _chunks(rows, parallel)
            lines = np.empty((chunks, width), element.value)
            carried = np.empty((chunks, width) if element.carries else (1, 1),
                               element.compute)
            kernel(x, out, dim_d, dim_h, dim_w, initial, run_zero, options, lines, carried)

        return reduce

    def gather_gradient(self, grad, idx, out, x, grad_in, dims, windows, reduction,
                        element, options, channels_last):
        parallel = _parallel(grad, grad_in)
        zero = element.compute.type(0)
        load = element.load
        if reduction.selects and not reduction.scaled and not channels_last and \
                _windows_hold_winners(windows, dims) and \
                grad_in.shape[0] * grad_in.shape[1] >= 4 * get_num_threads():
            # every output's winner is in its window: scattering each plane's outputs in
            # order adds exactly the gather's sums, visiting each output once
            self.scatter_planes(*self.planes_as_rows(grad, idx, grad_in), element, True,
                                channels_last)
            return
        windows, dims = _windows_for(windows, dims, grad_in.nbytes)
        terms = grad
        if not reduction.selects:
            terms = self.empty(grad.shape, element.compute, channels_last)
            terms_kernel(windows, reduction, load, parallel)(grad, out, terms, *dims, zero,
                                                              options)
        if channels_last:
            kernel = channels_last_gather_kernel(windows, reduction, load, parallel)
            kernel(_cl(terms), _cl(idx), _cl(x), _cl(grad_in), *dims, zero, options)
        else:
            line_gather_kernel(windows, reduction, load, parallel)(
                terms, idx, x, grad_in, *dims, zero, options)

    def indices_outside_windows(self, idx, dims, windows, unit_steps, in_spatial):
        windows, dims = _windows_for(windows, dims, idx.nbytes)
        channels_last = _layout.is_channels_last(idx.shape, idx.strides)
        kernel = index_check_kernel(windows, unit_steps, channels_last, _parallel(idx))
        return kernel(_cl(idx) if channels_last else idx, *dims, *in_spatial[1:]) > 0

    def scatter_planes(self, values, idx, out, element, accumulate, channels_last):
        zero = element.compute.type(0) if accumulate else out.dtype.type(0)
        rows = values.shape[2] * values.shape[3] * out.shape[2] * out.shape[3] == 1
        make = scatter_channels_last_kernel if channels_last and rows else scatter_kernel
        make(accumulate, element.load, _parallel(values, out))(values, idx, out, zero)

    def gather_by_index(self, grad, idx, grad_in, channels_last):
        gather_by_index_kernel(_parallel(grad, grad_in))(grad, idx, grad_in)


CPU = CpuBackend()
