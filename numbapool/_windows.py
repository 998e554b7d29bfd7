"""Where every pooling window starts and ends: the one place these formulas live.

Each function is ``register_jitable``, so the CPU kernels (``@njit``) and the CUDA
kernels (``numba.cuda.jit``) compile the same source. All index arithmetic is int64.

A spatial dimension is described by a geometry tuple of six ints
``(size, out, kernel, stride, pad, dilation)``; adaptive windows use only ``size`` and
``out``, fractional windows ``size``, ``out`` and ``kernel``.

Window functions share one signature, ``window(geometry, o, sample)``, and return
``(first, count, step, padded_count)``: the in-bounds taps of output ``o`` are
``first + t * step`` for ``t < count``; ``padded_count`` is the window's length when
padding counts (the ``count_include_pad`` divisor). ``sample`` is the fractional
pooling random sample; the other kinds ignore it.

Cover functions, ``cover(geometry, i, sample)``, return the half-open range
``[lo, hi)`` of outputs whose windows may contain input position ``i``; the gather
backward walks that range in increasing order.
"""

import math

from numba.extending import overload, register_jitable


def cast_like(value, like):
    """``value`` converted to the numeric type of ``like`` (float32 stays float32)."""
    return type(like)(value)


@overload(cast_like)
def _cast_like_overload(value, like):
    target = like

    def impl(value, like):
        return target(value)

    return impl


@register_jitable
def fixed_window(geometry, o, sample):
    size, out, kernel, stride, pad, dilation = geometry
    start = o * stride - pad
    first = start
    if first < 0:
        # first tap at or after 0 (PyTorch reports it as the index even if the
        # window has no tap inside the input)
        first += ((dilation - 1 - first) // dilation) * dilation
    stop = min(start + (kernel - 1) * dilation + 1, size)
    count = 0
    if stop > first:
        count = (stop - first + dilation - 1) // dilation
    padded_count = min(start + kernel, size + pad) - start
    return first, count, dilation, padded_count


@register_jitable
def fixed_cover(geometry, i, sample):
    size, out, kernel, stride, pad, dilation = geometry
    lowest_start = i + pad - (kernel - 1) * dilation
    lo = 0
    if lowest_start > 0:
        lo = (lowest_start + stride - 1) // stride
    hi = min((i + pad) // stride + 1, out)
    return lo, hi


@register_jitable
def adaptive_window(geometry, o, sample):
    size = geometry[0]
    out = geometry[1]
    start = (o * size) // out
    stop = ((o + 1) * size + out - 1) // out
    return start, stop - start, 1, stop - start


@register_jitable
def adaptive_cover(geometry, i, sample):
    size = geometry[0]
    out = geometry[1]
    return (i * out) // size, ((i + 1) * out + size - 1) // size


@register_jitable
def exact(value):
    return value


@register_jitable
def to_half_precision(value):
    """``value`` rounded to the nearest float16 (ties to even), kept in its own type.

    A float32 operation on float16 operands followed by this rounding gives the
    correctly rounded float16 result, which is how PyTorch's CPU kernel computes in half.
    """
    magnitude = abs(float(value))
    if magnitude == 0.0 or magnitude != magnitude or magnitude == math.inf:
        return value
    if magnitude >= 65520.0:  # rounds past float16's largest finite value
        return cast_like(math.copysign(math.inf, value), value)
    exponent = math.frexp(magnitude)[1]
    step = math.ldexp(1.0, max(exponent - 11, -24))  # float16's spacing at this magnitude
    units = magnitude / step
    whole = math.floor(units)
    if units - whole > 0.5 or (units - whole == 0.5 and whole % 2 == 1):
        whole += 1
    return cast_like(math.copysign(whole * step, value), value)


def _fractional(rounded):
    """Fractional window and cover functions computing in the sample's float type,
    each intermediate passed through ``rounded`` (float16 emulation or nothing)."""

    @register_jitable
    def window(geometry, o, sample):
        size = geometry[0]
        out = geometry[1]
        kernel = geometry[2]
        start = size - kernel
        if o < out - 1:
            # float64 arithmetic on a float32 sample can round across an integer and
            # choose a different window than PyTorch, so stay in the sample's type
            alpha = rounded(
                rounded(cast_like(size - kernel, sample)) / rounded(cast_like(out - 1, sample))
            )
            shifted = rounded(rounded(cast_like(o, sample)) + sample)
            start = int(rounded(shifted * alpha)) - int(rounded(sample * alpha))
        return start, kernel, 1, kernel

    @register_jitable
    def cover(geometry, i, sample):
        # window starts never decrease with o: binary-search the outputs whose start
        # lies in (i - kernel, i]
        out = geometry[1]
        kernel = geometry[2]
        lo = 0
        hi = out
        while lo < hi:
            mid = (lo + hi) // 2
            if window(geometry, mid, sample)[0] <= i - kernel:
                lo = mid + 1
            else:
                hi = mid
        first = lo
        hi = out
        while lo < hi:
            mid = (lo + hi) // 2
            if window(geometry, mid, sample)[0] <= i:
                lo = mid + 1
            else:
                hi = mid
        return first, lo

    return window, cover


fractional_window, fractional_cover = _fractional(exact)
fractional_half_window, fractional_half_cover = _fractional(to_half_precision)


# Precomputed windows. A table is an int64 array of 6 rows for one dimension: rows 0-3
# hold each output's (first, count, step, padded_count), rows 4-5 each input position's
# cover range, evaluated once from the formulas above. Kernels handed tables call these
# lookups in place of the formulas, trading integer divisions for loads.


@register_jitable
def table_window(table, o, sample):
    return table[0, o], table[1, o], table[2, o], table[3, o]


@register_jitable
def table_cover(table, i, sample):
    return table[4, i], table[5, i]

