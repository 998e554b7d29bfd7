"""CPU backend: ``@njit(parallel=True)`` kernels over the canonical (N, C, D, H, W) view.

Kernels do no validation; ``numbapool._params`` has checked everything before they run.
Each reduction has one kernel for channels-first memory and a twin for channels-last
memory, where the loop over C is innermost so that reads and writes are contiguous.
Kernels are built on first use by memoised factories keyed by hashable parameters, so
importing numbapool compiles nothing.
"""

import functools
import hashlib
from pathlib import Path

import numpy as np
from numba import get_num_threads, njit, prange

from numbapool import _reductions, _windows
from numbapool._reductions import (
    LOADS,
    WINDOWS,
    compute_dtype,
    gradient_parts,
    lowest,
    split_row,
    sum_parts,
)

# Numba's on-disk cache keys a kernel on its own source file, but the window and reduction
# code it inlines from other modules only by name: name every kernel after those modules'
# digest too, so that editing or upgrading them recompiles instead of loading stale code.
_INLINED_DIGEST = hashlib.sha256(
    b"".join(Path(module.__file__).read_bytes() for module in (_windows, _reductions))
).hexdigest()[:16]


def compiled(**options):
    """``njit(cache=True, **options)`` with the cache keyed on the inlined code too."""

    def compile_(function):
        function.__qualname__ += "_" + _INLINED_DIGEST
        return njit(cache=True, **options)(function)

    return compile_

# Channels-first kernels run over rows (n, c, od, oh) of outputs; channels-last kernels
# over rows (n, od, oh) with the loop over C innermost and contiguous. Each output keeps
# its taps in row-major order (the NaN and tie rules). Arrays are indexed directly:
# 1-d views inside parallel loops cost reference counting that threads contend for.
# Inner indices that start from a table value are cast to uint64: they are never
# negative, and without the cast Numba's negative-index wraparound blocks vectorising.


@functools.cache
def max_kernel(window_kind, channels_last, load_kind, with_indices, parallel):
    """Max over windows and, ``with_indices``, the int64 flat index of the winner (SPEC
    tie/NaN rules); without indices the comparison is a plain select that vectorises.

    ``kernel(x, out, idx, gd, gh, gw, samples, lowest)`` on (N, C, D, H, W) arrays, or
    (N, D, H, W, C) arrays for channels-last, where ``samples`` is unused.
    """
    window = WINDOWS[window_kind][0]
    load = LOADS[load_kind]
    per_plane = window_kind.startswith("fractional")  # only these windows read samples

    if not channels_last:

        @compiled(parallel=parallel)
        def kernel(x, out, idx, gd, gh, gw, samples, lowest):
            n_batch, channels, depth, height, width = x.shape
            out_d, out_h, out_w = out.shape[2], out.shape[3], out.shape[4]
            for row in prange(n_batch * channels * out_d * out_h):
                n, c, od, oh = split_row(row, channels, out_d, out_h)
                sample_d = samples[n, c, 0] if per_plane else samples[0, 0, 0]
                sample_h = samples[n, c, 1] if per_plane else samples[0, 0, 1]
                sample_w = samples[n, c, 2] if per_plane else samples[0, 0, 2]
                d0, nd, sd, _ = window(gd, od, sample_d)
                h0, nh, sh, _ = window(gh, oh, sample_h)
                # the output row holds the running maxima: every input line of the
                # row's windows is read once, for all its outputs
                for ow in range(out_w):
                    out[n, c, od, oh, ow] = lowest
                    if with_indices:
                        idx[n, c, od, oh, ow] = (d0 * height + h0) * width + window(
                            gw, ow, sample_w)[0]
                for a in range(nd):
                    d = d0 + a * sd
                    for b in range(nh):
                        h = h0 + b * sh
                        line_at = (d * height + h) * width
                        for ow in range(out_w):
                            w0, nw, sw, _ = window(gw, ow, sample_w)
                            best = out[n, c, od, oh, ow]
                            if with_indices:
                                best_at = idx[n, c, od, oh, ow]
                                for e in range(nw):
                                    w = w0 + e * sw
                                    v = load(x[n, c, d, h, np.uint64(w)])
                                    if v > best or v != v:
                                        best = v
                                        best_at = line_at + w
                                idx[n, c, od, oh, ow] = best_at
                            else:
                                for e in range(nw):
                                    v = load(x[n, c, d, h, np.uint64(w0 + e * sw)])
                                    best = v if (v > best or v != v) else best
                            out[n, c, od, oh, ow] = best

        return kernel

    @compiled(parallel=parallel)
    def kernel_cl(x, out, idx, gd, gh, gw, samples, lowest):
        n_batch, depth, height, width, channels = x.shape
        out_d, out_h, out_w = out.shape[1], out.shape[2], out.shape[3]
        for row in prange(n_batch * out_d * out_h):
            n, _, od, oh = split_row(row, 1, out_d, out_h)
            d0, nd, sd, _ = window(gd, od, 0.0)
            h0, nh, sh, _ = window(gh, oh, 0.0)
            for ow in range(out_w):
                w0, nw, sw, _ = window(gw, ow, 0.0)
                first_at = (d0 * height + h0) * width + w0
                for c in range(channels):
                    out[n, od, oh, ow, c] = lowest
                    if with_indices:
                        idx[n, od, oh, ow, c] = first_at
                for a in range(nd):
                    d = d0 + a * sd
                    for b in range(nh):
                        h = h0 + b * sh
                        for e in range(nw):
                            w = w0 + e * sw
                            at = (d * height + h) * width + w
                            for c in range(channels):
                                v = load(x[n, d, h, w, c])
                                if with_indices:
                                    if v > out[n, od, oh, ow, c] or v != v:
                                        out[n, od, oh, ow, c] = v
                                        idx[n, od, oh, ow, c] = at
                                elif v > out[n, od, oh, ow, c] or v != v:
                                    out[n, od, oh, ow, c] = v

    return kernel_cl


@functools.cache
def sum_kernel(window_kind, channels_last, load_kind, mode, parallel):
    """Average-type reductions (avg, adaptive avg, LP) over windows (all of step 1).

    ``kernel(x, out, gd, gh, gw, zero, count_include_pad, divisor_override, p, scratch)``;
    ``out`` and ``zero`` have the accumulation dtype (float32 for float16 input), ``p``
    is the LP norm in that dtype, ``scratch`` a (threads, W) array of it.
    """
    window = WINDOWS[window_kind][0]
    initial, transform, combine, finish = sum_parts(mode, LOADS[load_kind])

    if not channels_last:

        @compiled(parallel=parallel, fastmath={"reassoc"})
        def kernel(x, out, gd, gh, gw, zero, count_include_pad, divisor_override, p, scratch):
            n_batch, channels, width = x.shape[0], x.shape[1], x.shape[4]
            out_d, out_h, out_w = out.shape[2], out.shape[3], out.shape[4]
            rows = n_batch * channels * out_d * out_h
            chunks = scratch.shape[0]
            # rows are dealt out in chunks, each with a scratch line of its own
            for chunk in prange(chunks):
                for row in range(chunk * rows // chunks, (chunk + 1) * rows // chunks):
                    n, c, od, oh = split_row(row, channels, out_d, out_h)
                    d0, nd, _, pd = window(gd, od, 0.0)
                    h0, nh, _, ph = window(gh, oh, 0.0)
                    if nd * nh == 1:  # one input line (1d, global): reduce straight from it
                        for ow in range(out_w):
                            w0, nw, _, pw = window(gw, ow, 0.0)
                            acc = initial(zero)
                            for w in range(w0, w0 + nw):
                                acc = combine(acc, transform(x[n, c, d0, h0, np.uint64(w)], p))
                            out[n, c, od, oh, ow] = finish(acc, nw, pd * ph * pw,
                                                           count_include_pad, divisor_override, p)
                        continue
                    # first the window's input lines element-wise (long contiguous loops
                    # that vectorise), then each output's short span of those column sums
                    for w in range(width):
                        scratch[chunk, w] = initial(zero)
                    for d in range(d0, d0 + nd):
                        for h in range(h0, h0 + nh):
                            for w in range(width):
                                scratch[chunk, w] = combine(scratch[chunk, w],
                                                            transform(x[n, c, d, h, w], p))
                    for ow in range(out_w):
                        w0, nw, _, pw = window(gw, ow, 0.0)
                        acc = initial(zero)
                        for w in range(w0, w0 + nw):
                            acc = combine(acc, scratch[chunk, np.uint64(w)])
                        out[n, c, od, oh, ow] = finish(acc, nd * nh * nw, pd * ph * pw,
                                                       count_include_pad, divisor_override, p)

        return kernel

    @compiled(parallel=parallel, fastmath={"reassoc"})
    def kernel_cl(x, out, gd, gh, gw, zero, count_include_pad, divisor_override, p, scratch):
        n_batch, channels = x.shape[0], x.shape[4]
        out_d, out_h, out_w = out.shape[1], out.shape[2], out.shape[3]
        for row in prange(n_batch * out_d * out_h):
            n, _, od, oh = split_row(row, 1, out_d, out_h)
            d0, nd, _, pd = window(gd, od, 0.0)
            h0, nh, _, ph = window(gh, oh, 0.0)
            for ow in range(out_w):
                w0, nw, _, pw = window(gw, ow, 0.0)
                for c in range(channels):
                    out[n, od, oh, ow, c] = initial(zero)
                for d in range(d0, d0 + nd):
                    for h in range(h0, h0 + nh):
                        for w in range(w0, w0 + nw):
                            for c in range(channels):
                                out[n, od, oh, ow, c] = combine(out[n, od, oh, ow, c],
                                                                transform(x[n, d, h, w, c], p))
                for c in range(channels):
                    out[n, od, oh, ow, c] = finish(out[n, od, oh, ow, c], nd * nh * nw,
                                                   pd * ph * pw, count_include_pad,
                                                   divisor_override, p)

    return kernel_cl


@functools.cache
def global_sum_kernel(load_kind, mode, parallel):
    """Average-type pooling of whole planes laid out as the rows of a 2-d array: the
    special path for global pooling of channels-first inputs, where rows are short
    (7x7 planes) and a generic row's bookkeeping would cost more than its sum.

    ``kernel(planes, out, zero, p)`` with ``planes`` (rows, length) and ``out`` (rows,).
    """
    initial, transform, combine, finish = sum_parts(mode, LOADS[load_kind])

    @compiled(parallel=parallel, fastmath={"reassoc"})
    def kernel(planes, out, zero, p):
        rows, length = planes.shape
        for row in prange(rows):
            acc = initial(zero)
            for i in range(length):
                acc = combine(acc, transform(planes[row, i], p))
            out[row] = finish(acc, length, length, True, 0, p)

    return kernel


@compiled(parallel=True)
def unpool_kernel(x, idx, out):
    """Zero-fill each (n, c) plane of ``out``, then ``out[plane, idx[j]] = x[j]`` in j order."""
    n_batch, channels, depth, height, width = x.shape
    out_h, out_w = out.shape[3], out.shape[4]
    for plane in prange(n_batch * channels):
        n = plane // channels
        c = plane % channels
        out[n, c] = 0
        for d in range(depth):
            for h in range(height):
                for w in range(width):
                    at = np.int64(idx[n, c, d, h, w])
                    out[n, c, at // (out_h * out_w), (at // out_w) % out_h, at % out_w] = x[
                        n, c, d, h, w
                    ]


# ---------------------------------------------------------------------------------------
# Backward kernels: gathers. Each input element sums, in increasing output order, the
# outputs whose windows cover it, so results are bitwise reproducible for any thread count.


@functools.cache
def contribution_kernel(window_kind, load_kind, mode, parallel):
    """What each output passes to every input of its window, once per output:
    ``grad / divisor`` (avg) or ``grad * out ** (1 - p)`` (LP).

    ``kernel(grad_out, out, contributions, gd, gh, gw, count_include_pad,
    divisor_override, p)`` on (N, C, D, H, W) arrays of any strides.
    """
    window = WINDOWS[window_kind][0]
    load = LOADS[load_kind]
    contribution = gradient_parts(mode)[0]

    @compiled(parallel=parallel)
    def kernel(grad_out, out, contributions, gd, gh, gw, count_include_pad, divisor_override,
               p):
        n_batch, channels, out_d, out_h, out_w = grad_out.shape
        for row in prange(n_batch * channels * out_d * out_h):
            n, c, od, oh = split_row(row, channels, out_d, out_h)
            _, nd, _, pd = window(gd, od, 0.0)
            _, nh, _, ph = window(gh, oh, 0.0)
            for ow in range(out_w):
                _, nw, _, pw = window(gw, ow, 0.0)
                contributions[n, c, od, oh, ow] = contribution(
                    load(grad_out[n, c, od, oh, ow]), out[n, c, od, oh, ow], nd * nh * nw,
                    pd * ph * pw, count_include_pad, divisor_override, p)

    return kernel


@functools.cache
def sum_backward_kernel(window_kind, channels_last, load_kind, mode, parallel):
    """Gradient of avg / adaptive avg ("avg") and finite-p LP ("lp") pooling: each input
    sums its covering outputs' contributions, times ``factor(x)`` (LP only).

    ``kernel(contributions, x, grad_in, gd, gh, gw, zero, p)``.
    """
    window, cover = WINDOWS[window_kind]
    load = LOADS[load_kind]
    factor = gradient_parts(mode)[1]
    scaled = mode == "lp"

    if not channels_last:

        @compiled(parallel=parallel)
        def kernel(contributions, x, grad_in, gd, gh, gw, zero, p):
            n_batch, channels, depth, height, width = grad_in.shape
            for row in prange(n_batch * channels * depth * height):
                n, c, d, h = split_row(row, channels, depth, height)
                od_lo, od_hi = cover(gd, d, 0.0)
                oh_lo, oh_hi = cover(gh, h, 0.0)
                for w in range(width):
                    grad_in[n, c, d, h, w] = zero
                # this thread owns the line: each covering output adds its contribution
                # over its span, outputs in increasing order (the gather's sums, in the
                # same order), in contiguous loops that vectorise
                for od in range(od_lo, od_hi):
                    for oh in range(oh_lo, oh_hi):
                        for ow in range(contributions.shape[4]):
                            w0, nw, _, _ = window(gw, ow, 0.0)
                            share = contributions[n, c, od, oh, ow]
                            for w in range(w0, w0 + nw):
                                grad_in[n, c, d, h, np.uint64(w)] += share
                if scaled:
                    for w in range(width):
                        grad_in[n, c, d, h, w] *= factor(load(x[n, c, d, h, w]), p)

        return kernel

    @compiled(parallel=parallel)
    def kernel_cl(contributions, x, grad_in, gd, gh, gw, zero, p):
        n_batch, depth, height, width, channels = grad_in.shape
        for row in prange(n_batch * depth * height):
            n, _, d, h = split_row(row, 1, depth, height)
            od_lo, od_hi = cover(gd, d, 0.0)
            oh_lo, oh_hi = cover(gh, h, 0.0)
            for w in range(width):
                ow_lo, ow_hi = cover(gw, w, 0.0)
                for c in range(channels):
                    grad_in[n, d, h, w, c] = zero
                for od in range(od_lo, od_hi):
                    for oh in range(oh_lo, oh_hi):
                        for ow in range(ow_lo, ow_hi):
                            for c in range(channels):
                                grad_in[n, d, h, w, c] += contributions[n, od, oh, ow, c]
                if scaled:
                    for c in range(channels):
                        grad_in[n, d, h, w, c] *= factor(load(x[n, d, h, w, c]), p)

    return kernel_cl


@functools.cache
def max_backward_kernel(window_kind, channels_last, load_kind, parallel):
    """Gradient of max / adaptive max pooling: each input element sums the grad_out of
    the covering outputs whose recorded index is that element.

    ``kernel(grad_out, idx, grad_in, gd, gh, gw, zero)``.
    """
    cover = WINDOWS[window_kind][1]
    load = LOADS[load_kind]

    if not channels_last:

        @compiled(parallel=parallel)
        def kernel(grad_out, idx, grad_in, gd, gh, gw, zero):
            n_batch, channels, depth, height, width = grad_in.shape
            for row in prange(n_batch * channels * depth * height):
                n, c, d, h = split_row(row, channels, depth, height)
                od_lo, od_hi = cover(gd, d, 0.0)
                oh_lo, oh_hi = cover(gh, h, 0.0)
                line_at = (d * height + h) * width
                for w in range(width):
                    grad_in[n, c, d, h, w] = zero
                # walk the covering output rows once, in order, and add each output
                # whose winner lies on this line: the gather's sums, in the same order
                for od in range(od_lo, od_hi):
                    for oh in range(oh_lo, oh_hi):
                        for ow in range(grad_out.shape[4]):
                            at = idx[n, c, od, oh, ow] - line_at
                            if 0 <= at < width:
                                grad_in[n, c, d, h, at] += load(grad_out[n, c, od, oh, ow])

        return kernel

    @compiled(parallel=parallel)
    def kernel_cl(grad_out, idx, grad_in, gd, gh, gw, zero):
        n_batch, depth, height, width, channels = grad_in.shape
        for row in prange(n_batch * depth * height):
            n, _, d, h = split_row(row, 1, depth, height)
            od_lo, od_hi = cover(gd, d, 0.0)
            oh_lo, oh_hi = cover(gh, h, 0.0)
            for w in range(width):
                ow_lo, ow_hi = cover(gw, w, 0.0)
                at = (d * height + h) * width + w
                for c in range(channels):
                    grad_in[n, d, h, w, c] = zero
                for od in range(od_lo, od_hi):
                    for oh in range(oh_lo, oh_hi):
                        for ow in range(ow_lo, ow_hi):
                            for c in range(channels):
                                if idx[n, od, oh, ow, c] == at:
                                    grad_in[n, d, h, w, c] += load(grad_out[n, od, oh, ow, c])

    return kernel_cl


@functools.cache
def plane_scatter_kernel(load_kind, parallel):
    """Max-type gradient, one thread per (n, c) plane adding the outputs in increasing
    order: exactly the gather's sums in the same order. Used when the windows are unknown
    (fractional pooling without its samples) and where every window holds its winner
    (no dilation), so each output is visited once instead of once per window row.

    ``kernel(grad_out, idx, grad_in, zero)`` on (N, C, plane) arrays; indices outside
    the plane pass nothing.
    """
    load = LOADS[load_kind]

    @compiled(parallel=parallel)
    def kernel(grad_out, idx, grad_in, zero):
        n_batch, channels, length = grad_in.shape
        for plane in prange(n_batch * channels):
            _, _, n, c = split_row(plane, 1, n_batch, channels)
            for i in range(length):
                grad_in[n, c, i] = zero
            for o in range(grad_out.shape[2]):
                at = idx[n, c, o]
                if 0 <= at < length:
                    grad_in[n, c, at] += load(grad_out[n, c, o])

    return kernel


@compiled(parallel=True)
def unpool_backward_kernel(grad_out, idx, grad_in):
    """``grad_in[plane, j] = grad_out[plane, idx[j]]``."""
    n_batch, channels, depth, height, width = grad_in.shape
    out_h, out_w = grad_out.shape[3], grad_out.shape[4]
    for row in prange(n_batch * channels * depth):
        _, n, c, d = split_row(row, n_batch, channels, depth)
        for h in range(height):
            for w in range(width):
                at = np.int64(idx[n, c, d, h, w])
                grad_in[n, c, d, h, w] = grad_out[
                    n, c, at // (out_h * out_w), (at // out_w) % out_h, at % out_w
                ]


# ---------------------------------------------------------------------------------------
# Backend interface used by numbapool.functional: allocate, pick the kernel, launch.


# The canonical view and its inverse (``_layout.to_canonical``/``from_canonical``) built
# from NumPy's indexing, which costs far less per call than ``as_strided``.


def canonical_view(array, nd, batched, data_format):
    if not batched:
        array = array[None]
    if data_format == "channels_last":
        array = np.moveaxis(array, -1, 1)
    return array[(slice(None), slice(None)) + (None,) * (3 - nd)]


def caller_view(y5, nd, batched, data_format):
    y = y5[(slice(None), slice(None)) + (0,) * (3 - nd)]
    if data_format == "channels_last":
        y = np.moveaxis(y, 1, -1)
    return y if batched else y[0]


def empty5(shape5, dtype, channels_last):
    """An uninitialised (N, C, D, H, W) array, with C fastest in memory if asked."""
    if channels_last:
        n, c, d, h, w = shape5
        return np.empty((n, d, h, w, c), dtype).transpose(0, 4, 1, 2, 3)
    return np.empty(shape5, dtype)


def value_range(array):
    return (int(array.min()), int(array.max())) if array.size else (0, -1)


def _cl(array):
    return array.transpose(0, 2, 3, 4, 1)


def _readable(x5):
    """The input as the kernel reads it and the name of its element loader."""
    if x5.dtype == np.float16:
        return x5.view(np.uint16), "half"
    return x5, "plain"


def _finished(out5, dtype):
    return out5.astype(dtype) if out5.dtype != dtype else out5


# Below this many elements touched, a parallel launch costs more than the work.
PARALLEL_MIN_WORK = 1 << 15


def _parallel(*arrays):
    return sum(a.size for a in arrays) >= PARALLEL_MIN_WORK


@functools.cache
def _table_builder(window_kind):
    window, cover = WINDOWS[window_kind]

    @compiled()
    def build(table, geometry):
        for o in range(geometry[1]):
            first, count, step, padded_count = window(geometry, o, 0.0)
            table[0, o] = first
            table[1, o] = count
            table[2, o] = step
            table[3, o] = padded_count
        for i in range(geometry[0]):
            table[4, i], table[5, i] = cover(geometry, i, 0.0)

    return build


@functools.lru_cache(maxsize=512)
def _tables(window_kind, geometry):
    """Read-only window tables of the three dims (memoised: shapes repeat)."""
    length = max(max(g[0], g[1]) for g in geometry)
    tables = np.zeros((3, 6, length), np.int64)
    build = _table_builder(window_kind)
    for table, g in zip(tables, geometry):
        build(table, g)
    tables.flags.writeable = False
    return tuple(tables)


def _windows_for(window_kind, geometry):
    """``(kernel window kind, per-dim arguments)``: fixed and adaptive windows run from
    tables, fractional windows (a different set per plane) from their formula."""
    if window_kind.startswith("fractional"):
        return window_kind, geometry
    return "table", _tables(window_kind, geometry)


def _global_view(x5, geometry):
    """A global window over planes whose (D, H, W) memory is one run, as a single long
    row ``(N, C, 1, 1, D*H*W)`` and its geometry; None when that does not apply."""
    if any(g[1] != 1 for g in geometry) or x5.shape[3] * x5.shape[2] == 1:
        return None
    expected = x5.strides[4] * x5.shape[4]
    for size, stride in zip(x5.shape[3:1:-1], x5.strides[3:1:-1]):
        if size > 1:
            if stride != expected:
                return None
            expected = stride * size
    length = x5.shape[2] * x5.shape[3] * x5.shape[4]
    # the planes are one run each, so this reshape is a view
    flat = x5.reshape(tuple(x5.shape[:2]) + (1, 1, length))
    return flat, ((1, 1, 0, 0, 0, 0), (1, 1, 0, 0, 0, 0), (length, 1, 0, 0, 0, 0))


_NO_SAMPLES = np.zeros((1, 1, 3))
_NO_SAMPLES.flags.writeable = False


def _as_rows(flat5):
    """The (N, C, 1, 1, L) view of global planes as a 2-d (N * C, L) view, when the
    memory allows one (N and C merge); None otherwise."""
    n, c, _, _, length = flat5.shape
    if n > 1 and flat5.strides[0] != flat5.strides[1] * c:
        return None
    return flat5.reshape(n * c, length)


def max_reduce(x5, geometry, window_kind, samples, channels_last, magnitude="",
               with_indices=True):
    """Max pooling over ``window_kind`` windows: ``(values, int64 indices or None)``.

    ``magnitude="abs"`` (``"negabs"``) pools ``|x|`` (``-|x|``) instead of x.
    """
    shape = tuple(x5.shape[:2]) + tuple(g[1] for g in geometry)
    compute = compute_dtype(x5.dtype)
    out5 = empty5(shape, compute, channels_last)
    idx5 = empty5(shape if with_indices else (1,) * 5, np.int64, channels_last)
    if out5.size:
        flat = _global_view(x5, geometry) if window_kind == "adaptive" else None
        if flat is not None:
            x5, geometry = flat
        x_read, load_kind = _readable(x5)
        load_kind += "_" + magnitude if magnitude else ""
        kind, per_dim = _windows_for(window_kind, geometry)
        if samples is None:
            samples = _NO_SAMPLES
        # fractional windows differ per plane: no channels-last kernel for them
        layout_cl = channels_last and kind == "table"
        kernel = max_kernel(kind, layout_cl, load_kind, with_indices, _parallel(x5, out5))
        arrays = (x_read, out5, idx5)
        kernel(*(map(_cl, arrays) if layout_cl else arrays), *per_dim, samples,
               lowest(compute))
    return _finished(out5, x5.dtype), (idx5 if with_indices else None)


def sum_reduce(x5, geometry, window_kind, mode, channels_last, count_include_pad=True,
               divisor_override=0, norm_type=1.0):
    """Average-type pooling (``mode`` in ``SUM_MODES``) over ``window_kind`` windows."""
    shape = tuple(x5.shape[:2]) + tuple(g[1] for g in geometry)
    compute = compute_dtype(x5.dtype)
    out5 = empty5(shape, compute, channels_last)
    if out5.size:
        flat = _global_view(x5, geometry) if window_kind == "adaptive" else None
        if flat is not None:
            x5, geometry = flat
            planes = _as_rows(x5) if not channels_last else None
            if planes is not None:
                planes_read, load_kind = _readable(planes)
                rows_out = out5.reshape(-1)  # contiguous (N, C, 1, 1, 1): a view
                global_sum_kernel(load_kind, mode, _parallel(x5, out5))(
                    planes_read, rows_out, compute.type(0), compute.type(norm_type))
                return _finished(out5, x5.dtype)
        x_read, load_kind = _readable(x5)
        kind, per_dim = _windows_for(window_kind, geometry)
        parallel = _parallel(x5, out5)
        kernel = sum_kernel(kind, channels_last, load_kind, mode, parallel)
        arrays = (x_read, out5)
        # channels-first kernels deal rows out in chunks, each with a scratch line
        rows = out5.size // out5.shape[4]
        chunks = 1 if channels_last or not parallel else min(rows, 8 * get_num_threads())
        scratch = np.empty((chunks, x5.shape[4]), compute)
        kernel(*(map(_cl, arrays) if channels_last else arrays), *per_dim, compute.type(0),
               bool(count_include_pad), int(divisor_override), compute.type(norm_type),
               scratch)
    return _finished(out5, x5.dtype)


def unpool(x5, idx5, out_spatial, channels_last):
    """Max unpooling: zeros with ``x`` scattered to ``idx`` in each (n, c) plane."""
    out5 = empty5(tuple(x5.shape[:2]) + tuple(out_spatial), x5.dtype, channels_last)
    if out5.size:
        # only copies values: move float16 as its bits
        bits = np.uint16 if x5.dtype == np.float16 else x5.dtype
        unpool_kernel(x5.view(bits), idx5, out5.view(bits))
    return out5


def to_host(array):
    return np.asarray(array)


def from_host(array):
    return array


def _grad_buffers(x5, channels_last):
    compute = compute_dtype(x5.dtype)
    return empty5(tuple(x5.shape), compute, channels_last), compute


def sum_backward(grad5, x5, out5, geometry, window_kind, mode, channels_last,
                 count_include_pad=True, divisor_override=0, norm_type=1.0):
    """Gradient of average-type pooling; ``out5`` is the forward result (LP only)."""
    grad_in, compute = _grad_buffers(x5, channels_last)
    if grad_in.size:
        grad_read, load_kind = _readable(grad5)
        x_read, _ = _readable(x5)
        # LP reads the forward result in the compute dtype; avg never reads it
        out_read = out5.astype(compute, copy=False) if mode == "lp" else grad_read
        kind, per_dim = _windows_for(window_kind, geometry)
        parallel = _parallel(grad5, grad_in)
        contributions = empty5(tuple(grad5.shape), compute, channels_last)
        contribution_kernel(kind, load_kind, mode, parallel)(
            grad_read, out_read, contributions, *per_dim, bool(count_include_pad),
            int(divisor_override), compute.type(norm_type))
        kernel = sum_backward_kernel(kind, channels_last, load_kind, mode, parallel)
        arrays = (contributions, x_read, grad_in)
        kernel(*(map(_cl, arrays) if channels_last else arrays), *per_dim, compute.type(0),
               compute.type(norm_type))
    return _finished(grad_in, x5.dtype)


def _windows_hold_winners(window_kind, geometry):
    """Whether every output's index lies in its own window: always for adaptive windows,
    and for fixed windows without dilation (with dilation a window can miss the input)."""
    return window_kind == "adaptive" or all(g[5] == 1 for g in geometry)


def max_backward(grad5, idx5, x5, geometry, window_kind, channels_last):
    """Gradient of max-type pooling from the forward's indices.

    ``window_kind=None`` (windows unknown) uses the per-plane ordered scatter.
    """
    grad_in, compute = _grad_buffers(x5, channels_last)
    if grad_in.size:
        grad_read, load_kind = _readable(grad5)
        zero = compute.type(0)
        if window_kind is None or (
                not channels_last and _windows_hold_winners(window_kind, geometry)
                and grad_in.shape[0] * grad_in.shape[1] >= 4 * get_num_threads()):
            # (N, C, plane) views: each plane of grad_in is one run in memory
            flat = [a.reshape(a.shape[0], a.shape[1], -1) for a in (grad_read, idx5, grad_in)]
            plane_scatter_kernel(load_kind, _parallel(grad5, grad_in))(*flat, zero)
        else:
            kind, per_dim = _windows_for(window_kind, geometry)
            kernel = max_backward_kernel(kind, channels_last, load_kind,
                                         _parallel(grad5, grad_in))
            arrays = (grad_read, idx5, grad_in)
            kernel(*(map(_cl, arrays) if channels_last else arrays), *per_dim, zero)
    return _finished(grad_in, x5.dtype)


def unpool_backward(grad5, idx5, x5, channels_last):
    """Gradient of max unpooling: each input position reads its index's gradient."""
    grad_in = empty5(tuple(x5.shape), x5.dtype, channels_last)
    if grad_in.size:
        bits = np.uint16 if x5.dtype == np.float16 else x5.dtype
        unpool_backward_kernel(grad5.view(bits), idx5, grad_in.view(bits))
    return grad_in


def lp_extreme_backward(grad5, x5, geometry, negate, channels_last):
    """Gradient of LP pooling with p = +inf (max |x|) or -inf (min |x|, ``negate``):
    the window's first extreme element receives grad_out * sign(x)."""
    _, idx5 = max_reduce(x5, geometry, "fixed", None, channels_last,
                         "negabs" if negate else "abs")
    grad_in = max_backward(grad5, idx5, x5, geometry, "fixed", channels_last)
    grad_in *= np.sign(x5)
    return grad_in
