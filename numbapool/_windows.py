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
def fractional_window(geometry, o, sample):
    size = geometry[0]
    out = geometry[1]
    kernel = geometry[2]
    start = size - kernel
    if o < out - 1:
        # in the sample's own float type: float64 arithmetic on a float32 sample can
        # round across an integer and choose a different window than PyTorch
        alpha = cast_like(size - kernel, sample) / cast_like(out - 1, sample)
        start = int((cast_like(o, sample) + sample) * alpha) - int(sample * alpha)
    return start, kernel, 1, kernel


@register_jitable
def fractional_cover(geometry, i, sample):
    # window starts never decrease with o: binary-search the outputs whose start
    # lies in (i - kernel, i]
    out = geometry[1]
    kernel = geometry[2]
    lo = 0
    hi = out
    while lo < hi:
        mid = (lo + hi) // 2
        if fractional_window(geometry, mid, sample)[0] <= i - kernel:
            lo = mid + 1
        else:
            hi = mid
    first = lo
    hi = out
    while lo < hi:
        mid = (lo + hi) // 2
        if fractional_window(geometry, mid, sample)[0] <= i:
            lo = mid + 1
        else:
            hi = mid
    return first, lo
