"""The element types numbapool computes with: one row per dtype, read by everything else.

A row (``Element``) says how kernels read and write arrays of that dtype and how they
compute with it:

- ``storage``: the dtype kernels read. float16 and bfloat16 are moved as their uint16 bits
  (Numba's CPU target has neither type) and ``load`` turns bits into ``compute`` values;
- ``stored`` and ``store``: how kernels that write results in the element type (CUDA's)
  write a ``compute`` value: float16 through the hardware's own conversion, bfloat16 as
  the bits of the nearest value;
- ``compute``: arithmetic and accumulation (float32 for the 16-bit floats);
- ``lowest``: where a running maximum starts;
- ``sample`` and ``rounding``: fractional pooling places its windows with arithmetic in the
  input's float type, as PyTorch does. Samples are drawn in ``sample``, handed to kernels in
  ``sample_compute``, and every step of the window arithmetic goes through ``rounding``
  (float16 and bfloat16 arithmetic emulated in float32; integer inputs use float64);
- ``largest_sample``: the largest value below 1 that ``sample`` holds.

bfloat16 is ``ml_dtypes.bfloat16`` (the NumPy bfloat16 of JAX and others). numbapool never
imports ml_dtypes: an array of that dtype can only arrive from a program that has.
"""

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from numbapool import _windows
from numbapool._jit import jitable


@jitable
def load_plain(value):
    return value


@jitable
def store_plain(value):
    return value


def _bits_loader(exponent_bits, mantissa_bits):
    """A loader of IEEE-style binary floats given as their bits, as float32 (exactly)."""
    bias = (1 << (exponent_bits - 1)) - 1
    all_ones = (1 << exponent_bits) - 1

    @jitable
    def load(bits):
        bits = np.int64(bits)
        exponent = (bits >> mantissa_bits) & all_ones
        mantissa = bits & ((1 << mantissa_bits) - 1)
        if exponent == 0:  # zero or subnormal
            magnitude = math.ldexp(float(mantissa), 1 - bias - mantissa_bits)
        elif exponent == all_ones:
            magnitude = math.inf if mantissa == 0 else math.nan
        else:
            magnitude = math.ldexp(float(mantissa + (1 << mantissa_bits)),
                                   int(exponent - bias - mantissa_bits))
        if bits >> (exponent_bits + mantissa_bits):
            magnitude = -magnitude
        return np.float32(magnitude)

    return load


load_half_bits = _bits_loader(5, 10)
load_bfloat16_bits = _bits_loader(8, 7)


@jitable
def store_bfloat16_bits(value):
    """The uint16 bits of the bfloat16 nearest to ``value`` (ties to even)."""
    rounded = float(_windows.to_bfloat16_precision(np.float32(value)))
    sign = 0x8000 if math.copysign(1.0, rounded) < 0 else 0
    magnitude = abs(rounded)
    if magnitude != magnitude:
        return np.uint16(sign | 0x7FC0)
    if magnitude == math.inf:
        return np.uint16(sign | 0x7F80)
    if magnitude < 2.0**-126:  # subnormal (or zero): units of 2**-133
        return np.uint16(sign | int(magnitude * 2.0**133))
    mantissa, exponent = math.frexp(magnitude)  # magnitude = mantissa * 2**exponent
    return np.uint16(sign | ((exponent + 126) << 7) | (int(mantissa * 256.0) - 128))


@dataclass(frozen=True)
class Element:
    """How kernels read, compute and write one dtype (see the module docstring)."""

    dtype: np.dtype
    storage: np.dtype
    compute: np.dtype
    load: object
    stored: np.dtype
    store: object
    sample: np.dtype
    sample_compute: np.dtype
    rounding: object
    largest_sample: float
    value: Optional[np.dtype] = None  # what ``load`` returns: the compute type, unless summing()

    def __post_init__(self):
        if self.value is None:
            object.__setattr__(self, "value", self.compute)

    @property
    def is_float(self) -> bool:
        return self.compute.kind == "f"

    @property
    def lowest(self):
        """Where a running maximum starts: -inf, or an integer type's smallest value."""
        if self.is_float:
            return self.compute.type(-np.inf)
        return self.compute.type(np.iinfo(self.compute).min)

    @property
    def windows(self):
        """The fractional window kind for this type's arithmetic."""
        return _windows.fractional(self.rounding)

    def carrying(self):
        """This type as it sums windows too long to sum in float32 (a float32 sum of k
        terms drifts with k): kernels add runs of values in the ``value`` type and carry
        each run's sum in float64, so that a mean of any length keeps float32's
        precision."""
        if self.is_float and self.compute != np.float64:
            return dataclasses.replace(self, compute=np.dtype(np.float64))
        return self

    @property
    def carries(self) -> bool:
        """Whether sums are carried in a wider type than the values are added in."""
        return self.compute != self.value


EXACT_TAPS = 64
"""Up to this many values added one after another stay within 1e-6 of their sum in
float32: the longest run a kernel adds in float32. (The bound of 64 float32 units
needs contrived data; sums of 64 constant, uniform or normal values stay within 6e-7,
of 128 constants only within 9.7e-7.)"""

EXACT_RUN = 1024
"""Up to this many contiguous values stay within 1e-6 too when a vectorised loop adds
them (each of its 32 or more partial sums takes at most 32)."""


def _plain(dtype, sample):
    dtype, sample = np.dtype(dtype), np.dtype(sample)
    return Element(dtype, dtype, dtype, load_plain, dtype, store_plain, sample, sample,
                   _windows.exact, 1.0 - float(np.finfo(sample).epsneg))


def _bits(dtype, load, stored, store, rounding, significant_bits):
    """A 16-bit float moved as its bits and computed in float32."""
    return Element(dtype, np.dtype(np.uint16), np.dtype(np.float32), load, np.dtype(stored),
                   store, dtype, np.dtype(np.float32), rounding, 1.0 - 2.0**-significant_bits)


_FLOATS = {np.dtype(np.float16): _bits(np.dtype(np.float16), load_half_bits, np.float16,
                                       store_plain, _windows.to_half_precision, 11),
           np.dtype(np.float32): _plain(np.float32, np.float32),
           np.dtype(np.float64): _plain(np.float64, np.float64)}
# integer inputs place fractional windows in float64, as PyTorch's integer kernels do
_INTEGERS = {np.dtype(t): _plain(t, np.float64)
             for t in (np.int8, np.int16, np.int32, np.int64,
                       np.uint8, np.uint16, np.uint32, np.uint64)}

INTEGERS = frozenset(_INTEGERS)
"""Every integer dtype (max-type families take them all)."""

INT64 = frozenset({np.dtype(np.int64)})
"""The one integer dtype PyTorch averages (avg and LP pooling)."""


@jitable
def load_as_float64(value):
    return np.float64(value)


def read_as_float(element, result):
    """``element`` (an integer type) read into float64 arithmetic, with results of dtype
    ``result``: LP pooling of int64 input (float32 results, as PyTorch gives)."""
    return Element(np.dtype(result), element.storage, np.dtype(np.float64),
                   load_as_float64, np.dtype(result), store_plain, element.sample,
                   element.sample_compute, element.rounding, element.largest_sample)


def _bfloat16(dtype):
    # CUDA kernels store bits; the CPU converts float32 results with NumPy (ml_dtypes)
    return _bits(dtype, load_bfloat16_bits, np.uint16, store_bfloat16_bits,
                 _windows.to_bfloat16_precision, 8)


def is_bfloat16(dtype) -> bool:
    return dtype.name == "bfloat16" and dtype.itemsize == 2 and dtype.kind == "V"


def element(dtype, op, integers=frozenset()):
    """The row of ``dtype``; a TypeError naming it when ``op`` cannot take it (``op``
    takes the float types and the integer dtypes in ``integers``)."""
    dtype = np.dtype(dtype)
    found = _FLOATS.get(dtype)
    if found is None and is_bfloat16(dtype):
        found = _FLOATS.setdefault(dtype, _bfloat16(dtype))
    if found is None and dtype in integers:
        found = _INTEGERS[dtype]
    if found is not None:
        return found
    allowed = "float16, bfloat16, float32, float64"
    if integers == INTEGERS:
        allowed += " or an integer dtype"
    elif integers:
        allowed += " or " + ", ".join(sorted(str(t) for t in integers))
        if dtype in INTEGERS:
            allowed += f" (the integer dtype{'s' if len(integers) > 1 else ''} PyTorch " \
                       f"takes here)"
    raise TypeError(f"{op} does not support dtype {dtype}; expected {allowed}")
