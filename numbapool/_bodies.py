"""Kernel bodies written once and compiled for both targets.

A body computes one output (forward) or one input element (backward) of the canonical
(N, C, D, H, W) view; the CPU drives it with ``prange`` loops and CUDA with the thread
index. Bodies are built by memoised factories from a window kind, a reduction's parts
and an element loader, all jitable, so each combination compiles to straight-line code.

Also here: the flat-index encoding of positions within an (n, c) plane and the split of
a flat row or thread number into its position, which every kernel uses.
"""

import functools

import numpy as np

from numbapool._jit import jitable
from numbapool._reductions import takes_over


@jitable
def flat_index(d, h, w, height, width):
    """Position (d, h, w) in a plane of (*, height, width) as one int64 (SPEC indices)."""
    return (d * height + h) * width + w


@jitable
def unflat_index(at, height, width):
    """The (d, h, w) of a flat index in a plane of (*, height, width)."""
    if at < width:  # within the first row, and every index of a plane seen as one row
        return 0, 0, at
    return at // (height * width), (at // width) % height, at % width


@jitable(always_inline=True)
def split_row(row, second, third, fourth):
    """The (a, b, c, d) position of flat index ``row`` over a grid (*, second, third, fourth).

    Dims of size 1 (pooled away, or added for 1d and 2d) skip their integer divisions,
    which cost more than a short row's work.
    """
    row = np.int64(row)  # a parallel loop's index may be unsigned: keep integer arithmetic
    d = 0
    if fourth != 1:
        d = row % fourth
        row //= fourth
    c = 0
    if third != 1:
        c = row % third
        row //= third
    if second == 1:
        return row, 0, c, d
    return row // second, row % second, c, d


@functools.cache
def position(channels_last):
    """``position(t, shape) -> (n, c, d, h, w)`` of flat number t of a 5-d shape, W fastest
    (channels-first) or C fastest (channels-last): consecutive numbers touch consecutive
    addresses of that memory order."""
    if channels_last:

        @jitable
        def position_cl(t, shape):
            n, d, h, w = split_row(t // shape[1], shape[2], shape[3], shape[4])
            return n, t % shape[1], d, h, w

        return position_cl

    @jitable
    def position_cf(t, shape):
        n, c, d, h = split_row(t // shape[4], shape[1], shape[2], shape[3])
        return n, c, d, h, t % shape[4]

    return position_cf


@functools.cache
def window_reducer(windows, reduction, load):
    """``reduce_window(x, n, c, od, oh, ow, dims, samples, initial, options)
    -> (value, index)``: output (od, oh, ow) of plane (n, c) and, for selecting
    reductions, the flat index of the element it kept (else the window's first tap)."""
    window, sample = windows.window, windows.sample
    parts = reduction.parts()
    prepare, add, finish = parts.prepare, parts.add, parts.finish
    selects = reduction.selects

    @jitable
    def reduce_window(x, n, c, od, oh, ow, dims, samples, initial, options):
        height, width = x.shape[3], x.shape[4]
        d0, nd, sd, pd = window(dims.depth, od, sample(samples, n, c, 0))
        h0, nh, sh, ph = window(dims.height, oh, sample(samples, n, c, 1))
        w0, nw, sw, pw = window(dims.width, ow, sample(samples, n, c, 2))
        acc = initial
        at = flat_index(d0, h0, w0, height, width)
        for a in range(nd):
            d = d0 + a * sd
            for b in range(nh):
                h = h0 + b * sh
                for e in range(nw):
                    w = w0 + e * sw
                    value = prepare(load(x[n, c, d, h, w]), options.norm)
                    if selects:
                        if takes_over(value, acc):
                            acc = value
                            at = flat_index(d, h, w, height, width)
                    else:
                        acc = add(acc, value)
        return finish(acc, nd * nh * nw, pd * ph * pw, options), at

    return reduce_window


@functools.cache
def gradient_gatherer(windows, reduction, load):
    """``gather_gradient(grad, idx, out, x, n, c, d, h, w, dims, zero, options)``: the
    gradient of input element (d, h, w) of plane (n, c), summed over its covering
    outputs in increasing order (bitwise the same for any launch). Selecting reductions
    read ``idx`` (an output passes its gradient to the element it kept), summing ones
    the window sizes and, when ``needs_output``, ``out``."""
    window, cover = windows.window, windows.cover
    parts = reduction.parts()
    term, factor = parts.term, parts.factor
    selects, scaled, needs_output = reduction.selects, reduction.scaled, reduction.needs_output

    @jitable
    def gather_gradient(grad, idx, out, x, n, c, d, h, w, dims, zero, options):
        od_lo, od_hi = cover(dims.depth, d, 0.0)
        oh_lo, oh_hi = cover(dims.height, h, 0.0)
        ow_lo, ow_hi = cover(dims.width, w, 0.0)
        at = flat_index(d, h, w, x.shape[3], x.shape[4])
        acc = zero
        for od in range(od_lo, od_hi):
            if not selects:
                _, nd, _, pd = window(dims.depth, od, 0.0)
            for oh in range(oh_lo, oh_hi):
                if not selects:
                    _, nh, _, ph = window(dims.height, oh, 0.0)
                for ow in range(ow_lo, ow_hi):
                    if selects:
                        if idx[n, c, od, oh, ow] == at:
                            acc += load(grad[n, c, od, oh, ow])
                    else:
                        _, nw, _, pw = window(dims.width, ow, 0.0)
                        out_value = zero
                        if needs_output:
                            out_value = load(out[n, c, od, oh, ow])
                        acc += term(load(grad[n, c, od, oh, ow]), out_value, nd * nh * nw,
                                    pd * ph * pw, options)
        if scaled:
            acc = acc * factor(load(x[n, c, d, h, w]), options.norm)
        return acc

    return gather_gradient


@functools.cache
def row_writer(accumulate, load):
    """``put(values, out, n, c, j, at)``: value ``j`` of row (n, c) of ``values`` written
    (``accumulate=False``) or added at position ``at`` of row (n, c) of ``out``, both
    (N, C, 1, 1, L) views; nothing where ``at`` lies outside the row."""

    @jitable
    def put(values, out, n, c, j, at):
        if 0 <= at < out.shape[4]:
            if accumulate:
                out[n, c, 0, 0, at] += load(values[n, c, 0, 0, j])
            else:
                out[n, c, 0, 0, at] = values[n, c, 0, 0, j]

    return put


@functools.cache
def plane_scatterer(accumulate, load, lanes):
    """``scatter_plane(values, idx, out, n, c, lane, zero)``: zero plane (n, c) of ``out``,
    then write (``accumulate=False``: the last one wins) or add each value of the plane
    at its index, in increasing value order. ``lane`` of ``lanes`` handles the positions
    ``at % lanes == lane``, so each position has one writer and keeps that order; indices
    outside the plane are skipped. Max unpooling, and max-type gradients when the windows
    are unknown (fractional pooling after the fact)."""
    put = row_writer(accumulate, load)

    @jitable
    def scatter_plane(values, idx, out, n, c, lane, zero):
        depth, height, width = out.shape[2], out.shape[3], out.shape[4]
        first = 0 if lanes == 1 else lane  # constants where one thread owns the plane
        if depth * height == 1 and values.shape[2] * values.shape[3] == 1:
            # planes seen as rows: no index to split (the common case, and the fast one)
            for at in range(first, width, lanes):
                out[n, c, 0, 0, at] = zero
            for j in range(values.shape[4]):
                at = np.int64(idx[n, c, 0, 0, j])
                if lanes == 1 or at % lanes == lane:
                    put(values, out, n, c, j, at)
            return
        if lanes == 1:
            for d in range(depth):
                for h in range(height):
                    for w in range(width):
                        out[n, c, d, h, w] = zero
        else:
            for at in range(lane, depth * height * width, lanes):
                d, h, w = unflat_index(at, height, width)
                out[n, c, d, h, w] = zero
        for jd in range(values.shape[2]):
            for jh in range(values.shape[3]):
                for jw in range(values.shape[4]):
                    at = np.int64(idx[n, c, jd, jh, jw])
                    if 0 <= at < depth * height * width and (lanes == 1 or at % lanes == lane):
                        d, h, w = unflat_index(at, height, width)
                        if accumulate:
                            out[n, c, d, h, w] += load(values[n, c, jd, jh, jw])
                        else:
                            out[n, c, d, h, w] = values[n, c, jd, jh, jw]

    return scatter_plane


@functools.cache
def reporter(unit_steps):
    """``reported(at, d0, nd, sd, h0, nh, sh, w0, nw, sw, height, width)``: whether flat
    index ``at`` is one a max-type forward can report for an output whose window has the
    taps ``first + t * step``, ``t < count``, per dim: one of them, or for a window without
    taps (dilation and padding) its first, as PyTorch reports. ``unit_steps``: every step
    is 1 (no dilation), and the check needs no division."""

    @jitable
    def on_tap(i, first, count, step):
        along = i - first
        inside = (along >= 0) & (along <= (count - 1) * step)
        if unit_steps:
            return inside
        return inside & (along % step == 0)

    @jitable
    def reported(at, d0, nd, sd, h0, nh, sh, w0, nw, sw, height, width):
        if nd * nh * nw == 0:
            return at == flat_index(d0, h0, w0, height, width)
        # split ``at`` by multiplying with reciprocals, not dividing: exact for indices
        # below 2**51, and any larger one lands outside the window all the same
        row = np.int64((at + 0.5) * (1.0 / width))
        d = np.int64((row + 0.5) * (1.0 / height))
        return (on_tap(d, d0, nd, sd) & on_tap(row - d * height, h0, nh, sh)
                & on_tap(at - row * width, w0, nw, sw))

    return reported


@jitable
def gather_by_index(grad, idx, n, c, d, h, w):
    """``grad[plane, idx[j]]`` for input element j = (d, h, w) of plane (n, c): the
    gradient of max unpooling."""
    od, oh, ow = unflat_index(np.int64(idx[n, c, d, h, w]), grad.shape[3], grad.shape[4])
    return grad[n, c, od, oh, ow]
