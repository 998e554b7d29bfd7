"""Pieces every backend's kernels share, compiled for the CPU and for CUDA from this source.

The window table, element loaders (float16 arrives as its bits), the avg divisor, and the
per-mode pieces of sum-type reductions and their gradients. All are ``register_jitable``
or build ``register_jitable`` functions, so ``@njit`` and ``numba.cuda.jit`` kernels both
call them.
"""

import math

import numpy as np
from numba.extending import register_jitable

from numbapool import _windows

WINDOWS = {
    "fixed": (_windows.fixed_window, _windows.fixed_cover),
    "adaptive": (_windows.adaptive_window, _windows.adaptive_cover),
    "fractional": (_windows.fractional_window, _windows.fractional_cover),
    "fractional_half": (_windows.fractional_half_window, _windows.fractional_half_cover),
    "table": (_windows.table_window, _windows.table_cover),
}


@register_jitable
def load_plain(value):
    return value


@register_jitable
def load_half_bits(bits):
    """An IEEE half, given as its uint16 bits, as a float32 (exact)."""
    bits = np.int64(bits)
    exponent = (bits >> 10) & 0x1F
    mantissa = bits & 0x3FF
    if exponent == 0:
        magnitude = math.ldexp(float(mantissa), -24)
    elif exponent == 31:
        magnitude = math.inf if mantissa == 0 else math.nan
    else:
        magnitude = math.ldexp(float(mantissa + 1024), int(exponent - 25))
    if bits >> 15:
        magnitude = -magnitude
    return np.float32(magnitude)


def _magnitude_loader(read, negate):
    """``|read(v)|`` or ``-|read(v)|``: max pooling over it finds LP's +-inf winners."""

    @register_jitable
    def load(value):
        magnitude = abs(read(value))
        return -magnitude if negate else magnitude

    return load


# element loaders, by name: plain values, float16 bits, and +-|x| of either
LOADS = {"plain": load_plain, "half": load_half_bits}
for _name, _read in list(LOADS.items()):
    LOADS[_name + "_abs"] = _magnitude_loader(_read, False)
    LOADS[_name + "_negabs"] = _magnitude_loader(_read, True)


def compute_dtype(dtype):
    """The dtype kernels compute and accumulate in: float16 is read as its bits and
    computed in float32 (Numba has no float16 arithmetic on the CPU)."""
    return np.dtype(np.float32) if dtype == np.float16 else np.dtype(dtype)


def lowest(dtype):
    """Where a running maximum starts: -inf, or an integer dtype's smallest value."""
    if dtype.kind == "f":
        return dtype.type(-np.inf)
    return dtype.type(np.iinfo(dtype).min)


@register_jitable
def split_row(row, second, third, fourth):
    """The (a, b, c, d) position of flat index ``row`` over a grid (*, second, third, fourth).

    Kernels call this once per row; dims of size 1 (pooled away, or added for 1d and 2d)
    skip their integer divisions, which cost more than a short row's work.
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


# How a sum-type window is reduced and finished:
#   "avg"    sum(x) / divisor
#   "lp"     sum(|x| ** p) ** (1 / p)
#   "absmax" max(|x|)     (LP with p = +inf)
#   "absmin" min(|x|)     (LP with p = -inf)
SUM_MODES = ("avg", "lp", "absmax", "absmin")


@register_jitable
def avg_divisor(count, padded_count, count_include_pad, divisor_override):
    if divisor_override != 0:
        return divisor_override
    if count_include_pad:
        return padded_count
    return count


def sum_parts(mode, load, inline="always"):
    """Compile-time pieces of a sum-type reduction: ``(initial, transform, combine, finish)``.

    By default they are inlined into the kernel's IR, so the CPU kernel's fastmath flags
    (reassociation, which lets a reduction vectorise) apply to them; numba-cuda cannot
    compile IR-inlined overloads, so the CUDA backend asks for ``inline="never"``.

    A window reduces to ``finish(combine(...combine(initial, transform(x0))...))``;
    ``combine`` also merges two partial results (sums, or +-inf LP's extremes).
    """

    @register_jitable(inline=inline)
    def initial(zero):
        return _windows.cast_like(np.inf, zero) if mode == "absmin" else zero

    if mode in ("avg", "lp"):

        @register_jitable(inline=inline)
        def combine(acc, value):
            return acc + value

    elif mode == "absmax":

        @register_jitable(inline=inline)
        def combine(acc, value):
            return value if (value > acc or value != value) else acc

    else:

        @register_jitable(inline=inline)
        def combine(acc, value):
            return value if (value < acc or value != value) else acc

    if mode == "avg":

        @register_jitable(inline=inline)
        def transform(v, p):
            return load(v)

        @register_jitable(inline=inline)
        def finish(acc, count, padded_count, count_include_pad, divisor_override, p):
            divisor = avg_divisor(count, padded_count, count_include_pad, divisor_override)
            return acc / _windows.cast_like(divisor, acc)

    elif mode == "lp":

        @register_jitable(inline=inline)
        def transform(v, p):
            return abs(load(v)) ** p

        @register_jitable(inline=inline)
        def finish(acc, count, padded_count, count_include_pad, divisor_override, p):
            return acc ** (_windows.cast_like(1, acc) / p)

    else:

        @register_jitable(inline=inline)
        def transform(v, p):
            return abs(load(v))

        @register_jitable(inline=inline)
        def finish(acc, count, padded_count, count_include_pad, divisor_override, p):
            return acc

    return initial, transform, combine, finish


def gradient_parts(mode, inline="always"):
    """Compile-time pieces of a sum-type gradient: ``(contribution, factor)``, inlined.

    grad_in = factor(x) * sum over covering o of contribution(grad_out[o], o):
    avg: grad_out / divisor and 1; LP: grad_out * out ** (1 - p) (0 where the window
    sum is 0) and sign(x) * |x| ** (p - 1) (0 at x = 0).
    """
    if mode == "avg":

        @register_jitable(inline=inline)
        def contribution(grad, out_value, count, padded_count, count_include_pad,
                         divisor_override, p):
            divisor = avg_divisor(count, padded_count, count_include_pad, divisor_override)
            return grad / _windows.cast_like(divisor, grad)

        @register_jitable(inline=inline)
        def factor(x_value, p):
            return _windows.cast_like(1, p)

        return contribution, factor

    @register_jitable(inline=inline)
    def contribution(grad, out_value, count, padded_count, count_include_pad,
                     divisor_override, p):
        if out_value == 0:
            return _windows.cast_like(0, p)
        return grad * out_value ** (_windows.cast_like(1, p) - p)

    @register_jitable(inline=inline)
    def factor(x_value, p):
        if x_value == 0:
            return _windows.cast_like(0, p)
        magnitude = abs(x_value) ** (p - _windows.cast_like(1, p))
        return magnitude if x_value > 0 else -magnitude

    return contribution, factor
