"""Where every pooling window starts and ends: the one place these formulas live.

Every function here is ``jitable`` (``numbapool._jit``), so the CPU kernels (``@njit``)
and the CUDA kernels (``numba.cuda.jit``) compile the same source. All index arithmetic is int64.

One spatial dimension of an op is a ``Geometry``; the three of a canonical
(N, C, D, H, W) view are a ``Dims``. Adaptive windows use only ``size`` and ``out``,
fractional windows ``size``, ``out`` and ``kernel``.

A kind of window (``WindowKind``) is three functions:

- ``window(dim, o, sample) -> (first, count, step, padded_count)``: the in-bounds taps of
  output ``o`` are ``first + t * step`` for ``t < count``; ``padded_count`` is the window's
  length when padding counts (the ``count_include_pad`` divisor);
- ``cover(dim, i, sample) -> (lo, hi)``: the half-open range of outputs whose windows may
  hold input position ``i`` (the gather backward walks it in increasing order);
- ``sample(samples, n, c, k)``: the random sample that places the windows of dim ``k`` in
  plane (n, c); only fractional windows have one, the others return 0.0.

``dim`` is a ``Geometry``, or for ``TABLE`` windows a table precomputed from one.
"""

import functools
import math
from collections import namedtuple

from numbapool._jit import jitable, overloaded


Geometry = namedtuple("Geometry", "size out kernel stride pad dilation")
"""One spatial dimension of an op: input size, output size and the window parameters."""

Dims = namedtuple("Dims", "depth height width")
"""The (D, H, W) dimensions of a canonical view: geometries or window tables."""

TRIVIAL = Geometry(1, 1, 1, 1, 0, 1)
"""A size-1 dimension that a 1d or 2d op adds to reach (D, H, W)."""


WindowKind = namedtuple("WindowKind", "name window cover sample per_plane")
"""A kind of window: its jitable ``window``, ``cover`` and ``sample`` functions, and
whether its windows differ per (n, c) plane (fractional windows do)."""


def cast_like(value, like):
    """``value`` converted to the numeric type of ``like`` (float32 stays float32)."""
    return type(like)(value)


@overloaded(cast_like)
def _cast_like_overload(value, like):
    target = like

    def impl(value, like):
        return target(value)

    return impl


@jitable
def no_sample(samples, n, c, k):
    return 0.0


@jitable
def plane_sample(samples, n, c, k):
    return samples[n, c, k]


@jitable
def fixed_span(dim, o):
    """Output ``o``'s window ``[start, stop)`` with padding and dilation: its first tap
    and one past its last (either may lie in the padding, or past it under ceil_mode)."""
    start = o * dim.stride - dim.pad
    return start, start + (dim.kernel - 1) * dim.dilation + 1


@jitable
def fixed_window(dim, o, sample):
    start, span_stop = fixed_span(dim, o)
    first = start
    if first < 0:
        # first tap at or after 0 (PyTorch reports it as the index even if the
        # window has no tap inside the input)
        first += ((dim.dilation - 1 - first) // dim.dilation) * dim.dilation
    stop = min(span_stop, dim.size)
    count = 0
    if stop > first:
        count = (stop - first + dim.dilation - 1) // dim.dilation
    padded_count = min(start + dim.kernel, dim.size + dim.pad) - start
    return first, count, dim.dilation, padded_count


@jitable
def fixed_cover(dim, i, sample):
    lowest_start = i + dim.pad - (dim.kernel - 1) * dim.dilation
    lo = 0
    if lowest_start > 0:
        lo = (lowest_start + dim.stride - 1) // dim.stride
    hi = min((i + dim.pad) // dim.stride + 1, dim.out)
    return lo, hi


@jitable
def adaptive_window(dim, o, sample):
    start = (o * dim.size) // dim.out
    stop = ((o + 1) * dim.size + dim.out - 1) // dim.out
    return start, stop - start, 1, stop - start


@jitable
def adaptive_cover(dim, i, sample):
    return (i * dim.out) // dim.size, ((i + 1) * dim.out + dim.size - 1) // dim.size


FIXED = WindowKind("fixed", fixed_window, fixed_cover, no_sample, False)
ADAPTIVE = WindowKind("adaptive", adaptive_window, adaptive_cover, no_sample, False)


@jitable
def truncated(value, top):
    """``int(value)`` for a float in [0, top]; 0 below (and for NaN), ``top`` above."""
    if not value >= 0:
        return 0
    if value >= top:
        return top
    return int(value)


@functools.cache
def fractional(rounded):
    """Fractional windows placed with arithmetic in the sample's float type, each
    intermediate passed through ``rounded`` (the element type's ``rounding``: exact, or
    an emulation of float16 / bfloat16 arithmetic)."""

    @jitable
    def window(dim, o, sample):
        last = dim.size - dim.kernel
        start = last
        if o < dim.out - 1:
            # float64 arithmetic on a float32 sample can round across an integer and
            # choose a different window than PyTorch, so stay in the sample's type
            alpha = rounded(rounded(cast_like(last, sample))
                            / rounded(cast_like(dim.out - 1, sample)))
            shifted = rounded(rounded(cast_like(o, sample)) + sample)
            start = (truncated(rounded(shifted * alpha), dim.size)
                     - truncated(rounded(sample * alpha), dim.size))
            # rounding can push a start past the last window (PyTorch asserts there, and
            # its windows would read past the input): the last window it is
            start = min(max(start, 0), last)
        return start, dim.kernel, 1, dim.kernel

    @jitable
    def cover(dim, i, sample):
        # window starts never decrease with o: binary-search the outputs whose start
        # lies in (i - kernel, i]
        lo = 0
        hi = dim.out
        while lo < hi:
            mid = (lo + hi) // 2
            if window(dim, mid, sample)[0] <= i - dim.kernel:
                lo = mid + 1
            else:
                hi = mid
        first = lo
        hi = dim.out
        while lo < hi:
            mid = (lo + hi) // 2
            if window(dim, mid, sample)[0] <= i:
                lo = mid + 1
            else:
                hi = mid
        return first, lo

    return WindowKind("fractional", window, cover, plane_sample, True)


# Precomputed windows. A table is an int64 array of 6 rows for one dimension: rows 0-3
# hold each output's (first, count, step, padded_count), rows 4-5 each input position's
# cover range, evaluated once from the formulas above. Kernels handed tables call these
# lookups in place of the formulas, trading integer divisions for loads.


@jitable
def table_window(table, o, sample):
    return table[0, o], table[1, o], table[2, o], table[3, o]


@jitable
def table_cover(table, i, sample):
    return table[4, i], table[5, i]


TABLE = WindowKind("table", table_window, table_cover, no_sample, False)


# Rounding of fractional window arithmetic to the element type's precision: a float32
# operation on operands of lower precision followed by this rounding gives the correctly
# rounded result of that precision, which is how PyTorch's CPU kernels compute in float16
# and bfloat16.


@jitable
def exact(value):
    return value


def _rounding(significant_bits, lowest_exponent, overflow):
    """Round to nearest (ties to even) with ``significant_bits`` of precision, spacing no
    finer than 2**lowest_exponent (subnormals), and +-inf from ``overflow`` up."""

    @jitable
    def rounded(value):
        magnitude = abs(float(value))
        if magnitude == 0.0 or magnitude != magnitude or magnitude == math.inf:
            return value
        if magnitude >= overflow:
            return cast_like(math.copysign(math.inf, value), value)
        exponent = math.frexp(magnitude)[1]
        step = math.ldexp(1.0, max(exponent - significant_bits, lowest_exponent))
        units = magnitude / step
        whole = math.floor(units)
        if units - whole > 0.5 or (units - whole == 0.5 and whole % 2 == 1):
            whole += 1
        return cast_like(math.copysign(whole * step, value), value)

    return rounded


# float16: 11 significant bits, smallest subnormal 2**-24, 65520 rounds to inf
to_half_precision = _rounding(11, -24, 65520.0)
# bfloat16: 8 significant bits, smallest subnormal 2**-133, largest finite (2 - 2**-7) * 2**127
to_bfloat16_precision = _rounding(8, -133, (2.0 - 2.0**-8) * 2.0**127)
