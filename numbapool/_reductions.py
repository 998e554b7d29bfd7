"""What a pooling window computes, and its gradient: max, max |x|, min |x|, mean, p-norm.

A ``Reduction`` is a description plus jitable parts, compiled for the CPU and for CUDA
from this source (``parts()``). Kernels walk a window's taps and call the parts:

- ``prepare(value, norm)``: an element (already loaded in the compute type) as the
  reduction sees it: x, |x|, -|x| or |x|**p;
- *selecting* reductions (max-type) keep one element: ``takes_over`` is the scan rule
  (SPEC: ties keep the first maximum, a NaN always takes over), ``merged_wins`` the same
  rule made order-free for merging partial maxima by their indices;
- *summing* reductions add: ``add(acc, value)``;
- ``finish(acc, count, padded_count, options)``: the output from the accumulator;
- the gradient of input x is ``factor(x, norm) * sum over covering outputs o of
  term(grad[o], out[o], count(o), padded_count(o), options)`` for summing reductions, and
  the sum of grad[o] over the outputs whose index is x for selecting ones (times
  ``factor`` when ``scaled``).

``Options`` carries the per-call scalars: ``count_include_pad``, ``divisor_override`` (0:
none) and the LP ``norm`` p in the compute type.
"""

import functools
import math
from collections import namedtuple

import numpy as np
from numba import types

from numbapool._jit import jitable, overloaded
from numbapool._windows import cast_like

Options = namedtuple("Options", "count_include_pad divisor_override norm")

Parts = namedtuple("Parts", "prepare add finish term factor")

NO_INDEX = -1
"""The index of a partial maximum that has seen no element."""


@jitable
def takes_over(value, best):
    """The max scan rule: ties keep the first maximum, a NaN takes over (the last NaN)."""
    return value > best or value != value


@jitable
def merged_wins(value, at, best, best_at):
    """Whether the partial maximum (value, at) of one set of taps replaces (best, best_at)
    of another: ``takes_over`` made order-free by comparing indices, which grow in scan
    order. ``at == NO_INDEX``: that set had no taps."""
    if at < 0:
        return False
    if best_at < 0:
        return True
    if value != value:
        return best == best or at > best_at
    return value > best or (value == best and at < best_at)


@jitable
def avg_divisor(count, padded_count, options):
    if options.divisor_override != 0:
        return options.divisor_override
    if options.count_include_pad:
        return padded_count
    return count


def divided(value, divisor):
    """``value / divisor`` in value's type: a float division, or for integers (int64
    average pooling) the integer division truncating toward zero of C++ and PyTorch."""
    if isinstance(value, (int, np.integer)):
        quotient = value // divisor
        return quotient + 1 if quotient < 0 and quotient * divisor != value else quotient
    return value / type(value)(divisor)


@overloaded(divided)
def _divided_overload(value, divisor):
    if isinstance(value, types.Integer):

        def impl(value, divisor):
            quotient = value // divisor
            if quotient < 0 and quotient * divisor != value:
                quotient += 1
            return quotient

        return impl

    def impl(value, divisor):
        return value / cast_like(divisor, value)

    return impl


@jitable
def sign_of(value):
    """sign(x), with sign(0) = 0 and sign(NaN) = NaN."""
    if value > 0:
        return cast_like(1, value)
    if value < 0:
        return cast_like(-1, value)
    return value


class Reduction:
    """One reduction: its name, its kind and its jitable parts (module docstring)."""

    def __init__(self, name, *, selects, finishes, scaled, needs_output, build):
        self.name = name
        self.selects = selects          # keeps one element (max-type, has indices)
        self.finishes = finishes        # finish() changes the accumulator
        self.scaled = scaled            # the gradient is multiplied by factor(x)
        self.needs_output = needs_output  # the gradient reads the forward's output
        self._build = build

    def initial(self, element):
        """Where the accumulator starts: the lowest value (selecting) or zero."""
        return element.lowest if self.selects else element.compute.type(0)

    @functools.cache
    def parts(self):
        """The jitable parts. They are calls, as every jitable function here is: LLVM
        inlines them, and a CPU kernel's fastmath flags reach them, since Numba compiles
        a callee with its caller's. (Numba's IR inlining, ``inline="always"``, compiled
        each part twice more than a call does and took a fifth of a kernel's compile
        time; numba-cuda cannot compile it at all.)"""
        return self._build(jitable)

    def __repr__(self):
        return f"Reduction({self.name})"


def _selecting(negate, magnitude):
    """Max of x, of |x| (LP p = inf), or min of |x| as -max(-|x|) (LP p = -inf)."""

    def build(jitable):
        @jitable
        def prepare(value, norm):
            if magnitude:
                return -abs(value) if negate else abs(value)
            return value

        @jitable
        def finish(acc, count, padded_count, options):
            return -acc if negate else acc

        @jitable
        def factor(x, norm):
            return sign_of(x)

        return Parts(prepare, None, finish, None, factor)

    return build


def _mean(jitable):
    @jitable
    def prepare(value, norm):
        return value

    @jitable
    def add(acc, value):
        return acc + value

    @jitable
    def finish(acc, count, padded_count, options):
        return divided(acc, avg_divisor(count, padded_count, options))

    @jitable
    def term(grad, out, count, padded_count, options):
        return divided(grad, avg_divisor(count, padded_count, options))

    return Parts(prepare, add, finish, term, None)


def _p_norm(known):
    """The p-norm's parts. ``known`` is p for parts built for one p (1 or 2, the usual LP
    pooling), whose powers then compile to products and a square root with no branch on
    p: LLVM versions every loop on such a branch, which took a tenth of an LP kernel's
    compile time. ``known=0``: p is the norm of each call."""

    def build(jitable):
        @jitable
        def p_of(norm):
            return norm if known == 0 else cast_like(known, norm)

        @jitable
        def power(base, exponent):
            # pow() costs ten times the rest of a window's work (LP pooling ran at a fifth
            # of average pooling's speed); the exponents that p = 1 and p = 2 need are
            # computed directly
            if exponent == 1:
                return base
            if exponent == 2:
                return base * base
            if exponent == -1:
                return cast_like(1, base) / base
            if exponent == 0.5:
                return math.sqrt(base)
            return base ** exponent

        @jitable
        def prepare(value, norm):
            return power(abs(value), p_of(norm))

        @jitable
        def add(acc, value):
            return acc + value

        @jitable
        def finish(acc, count, padded_count, options):
            return power(acc, cast_like(1, acc) / p_of(options.norm))

        @jitable
        def term(grad, out, count, padded_count, options):
            # d out / d window sum = out ** (1 - p) / p, and d sum / d x = p |x| ** (p - 1)
            p = p_of(options.norm)
            if out == 0:
                return cast_like(0, p)
            return grad * power(out, cast_like(1, p) - p)

        @jitable
        def factor(x, norm):
            p = p_of(norm)
            if x == 0:
                return cast_like(0, p)
            magnitude = power(abs(x), p - cast_like(1, p))
            return magnitude if x > 0 else -magnitude

        return Parts(prepare, add, finish, term, factor)

    return build


MAX = Reduction("max", selects=True, finishes=False, scaled=False, needs_output=False,
                build=_selecting(False, False))
ABS_MAX = Reduction("abs_max", selects=True, finishes=False, scaled=True, needs_output=False,
                    build=_selecting(False, True))
ABS_MIN = Reduction("abs_min", selects=True, finishes=True, scaled=True, needs_output=False,
                    build=_selecting(True, True))
MEAN = Reduction("mean", selects=False, finishes=True, scaled=False, needs_output=False,
                 build=_mean)
P_NORM = Reduction("p_norm", selects=False, finishes=True, scaled=True, needs_output=True,
                   build=_p_norm(0))
P_NORMS = {p: Reduction(f"p_norm_{p}", selects=False, finishes=True, scaled=True,
                        needs_output=True, build=_p_norm(p)) for p in (1, 2)}
"""The p-norms with p = 1 and p = 2 built in."""


def lp(norm):
    """The reduction of LP pooling with p = ``norm``: the p-norm (with p built in for 1
    and 2), max |x| or min |x|."""
    if norm == math.inf:
        return ABS_MAX
    if norm == -math.inf:
        return ABS_MIN
    return P_NORMS.get(norm, P_NORM)
