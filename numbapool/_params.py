"""Argument checking and normalisation: every error numbapool raises comes from here.

The functions turn user arguments into plain hashable tuples; an op's spatial
dimensions become ``_windows.Geometry`` tuples, which the kernels trust completely.
Element types are checked by ``_elements.element``.

Sizes are Python ints or NumPy integers, nothing else (no bools, no floats), every time.
Kernels compute window bounds, divisors and flat indices in int64: the checks below keep
every size and every quantity derived from them below ``LIMIT``, so no sum or product a
kernel forms can wrap around.
"""

import functools
import math
import numbers

import numpy as np

from numbapool._windows import Geometry

LIMIT = 2**61
"""Sizes, window spans and strides stay below this; window volumes and planes below
``2 * LIMIT``. Sums of two such values fit in int64."""


def _key(value):
    """A cache key that tells ``1`` from ``True`` and ``np.int8(1)``, also inside tuples
    (equal values hash alike, so a plain key would let one stand for the other)."""
    if type(value) in (tuple, list):
        return type(value), tuple(_key(item) for item in value)
    return type(value), value


def _value(key):
    kind, value = key
    return kind(_value(item) for item in value) if kind in (tuple, list) else value


def memoised(validator):
    """Cache a pure validator's result by its arguments and their types (shapes and sizes
    repeat from call to call); unhashable arguments are simply not cached. Errors are
    never cached: a bad call raises every time."""

    @functools.lru_cache(maxsize=1024)
    def cached(key):
        return validator(*map(_value, key))

    @functools.wraps(validator)
    def validate(*args):
        key = tuple(map(_key, args))
        try:
            return cached(key)
        except TypeError as error:
            if "unhashable" not in str(error):
                raise
            return validator(*args)

    return validate


DATA_FORMATS = ("channels_first", "channels_last")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_sequence(value):
    return isinstance(value, (tuple, list)) or (isinstance(value, np.ndarray)
                                                and value.ndim == 1)


def check_data_format(data_format):
    if data_format not in DATA_FORMATS:
        raise ValueError(
            f"data_format must be 'channels_first' or 'channels_last', got {data_format!r}"
        )
    return data_format


def check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def int_tuple(value, nd, name, allow_none=False, single=False):
    """An int or a sequence of ``nd`` ints (``None`` entries kept if allowed) as a tuple;
    with ``single``, a sequence of one int also stands for every dim (as PyTorch's max,
    avg and LP pooling take it)."""
    if _is_int(value) or (allow_none and value is None):
        return (None if value is None else int(value),) * nd
    if _is_sequence(value):
        if single and len(value) == 1 and nd > 1:
            return int_tuple(value[0], nd, name, allow_none)
        if len(value) != nd:
            raise ValueError(f"{name} must be an int or a tuple of {nd} ints, got {value!r}")
        for item in value:
            if not (_is_int(item) or (allow_none and item is None)):
                raise TypeError(f"{name} must contain ints, got {item!r} in {value!r}")
        return tuple(None if item is None else int(item) for item in value)
    raise TypeError(f"{name} must be an int or a tuple of {nd} ints, got {value!r}")


def spatial_sizes(shape5, nd, caller_shape, empty_channels=False):
    """The ``nd`` spatial sizes of a canonical shape; only the batch dim may be 0, and the
    channel dim where ``empty_channels``."""
    if 0 in tuple(shape5[2 if empty_channels else 1:]):
        allowed = "batch and channel dims" if empty_channels else "batch dim"
        raise ValueError(
            f"expected non-empty channel and spatial dims (only the {allowed} may be 0), "
            f"got input shape {tuple(caller_shape)}"
        )
    return tuple(int(s) for s in shape5[-nd:])


def _positive(values, name):
    if any(v <= 0 for v in values):
        raise ValueError(f"{name} must be > 0, got {values}")


def _bounded(values, name, limit=LIMIT):
    if any(v >= limit for v in values):
        raise ValueError(f"{name} {values} is too large: numbapool computes window bounds in "
                         f"int64 and needs each below {limit} (2**{limit.bit_length() - 1})")


def pooled_size(size, kernel, stride, pad, dilation, ceil_mode):
    """Output length of fixed-window pooling along one dimension."""
    span = dilation * (kernel - 1) + 1
    out = (size + 2 * pad - span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1  # the last window must start inside the input or the left padding
    return out


@memoised
def fixed_geometry(sizes, kernel_size, stride, padding, dilation, ceil_mode):
    """Geometries of max/avg/LP pooling; raises on every invalid combination."""
    nd = len(sizes)
    kernel = int_tuple(kernel_size, nd, "kernel_size", single=True)
    if stride is None or (_is_sequence(stride) and len(stride) == 0):
        strides = kernel
    else:
        strides = int_tuple(stride, nd, "stride", single=True)
    pads = int_tuple(padding, nd, "padding", single=True)
    dilations = int_tuple(dilation, nd, "dilation", single=True)
    ceil_mode = check_bool(ceil_mode, "ceil_mode")
    _positive(kernel, "kernel_size")
    _positive(strides, "stride")
    _positive(dilations, "dilation")
    if any(p < 0 for p in pads):
        raise ValueError(f"padding must be >= 0, got {pads}")
    for values, name in ((kernel, "kernel_size"), (strides, "stride"), (pads, "padding"),
                         (dilations, "dilation")):
        _bounded(values, name)
    _bounded(tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilations)),
             "the window span dilation * (kernel_size - 1) + 1 =")
    # the average's divisor: the product of padded window lengths
    _bounded((math.prod(min(k, s + 2 * p) for k, s, p in zip(kernel, sizes, pads)),),
             "the window volume", 2 * LIMIT)
    # PyTorch 2.13 bounds the padding by half the kernel, not the dilated span
    if any(p > k // 2 for p, k in zip(pads, kernel)):
        raise ValueError(
            f"pad should be at most half of kernel size, got padding={pads} "
            f"for kernel_size={kernel}"
        )
    outs = tuple(
        pooled_size(*args, ceil_mode) for args in zip(sizes, kernel, strides, pads, dilations)
    )
    if any(o < 1 for o in outs):
        raise ValueError(
            f"Output size is too small: input spatial size {sizes} gives output size {outs}"
        )
    return tuple(Geometry(*dim) for dim in zip(sizes, outs, kernel, strides, pads, dilations))


def avg_divisor_override(divisor_override):
    """0 stands for 'no override' in the kernels."""
    if divisor_override is None:
        return 0
    if not _is_int(divisor_override):
        raise TypeError(f"divisor_override must be an int or None, got {divisor_override!r}")
    if divisor_override == 0:
        raise ValueError("divisor_override must be non-zero, got 0")
    _bounded((abs(int(divisor_override)),), "divisor_override")
    return int(divisor_override)


def lp_norm(norm_type, compute):
    """p as a float: +-inf, or a non-zero number whose value and reciprocal are finite in
    the ``compute`` dtype (float32: magnitudes from about 2.9e-39 to 3.4e38)."""
    if not isinstance(norm_type, numbers.Real) or isinstance(norm_type, (bool, np.bool_)):
        raise TypeError(f"norm_type must be a real number, got {norm_type!r}")
    norm = float(norm_type)
    if math.isinf(norm):
        return norm
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        p = compute.type(norm)
        inverse = compute.type(1) / p if p != 0 else compute.type(np.inf)
    if not (np.isfinite(p) and p != 0 and np.isfinite(inverse) and inverse != 0):
        info = np.finfo(compute)
        raise ValueError(
            f"norm_type must be +-inf or a non-zero number whose value and reciprocal are "
            f"finite in {compute} (magnitudes from {1 / float(info.max):.3g} to "
            f"{float(info.max):.3g}), got {norm_type!r}")
    return norm


@memoised
def adaptive_geometry(sizes, output_size):
    """Geometries of adaptive pooling; a ``None`` entry keeps that input size."""
    nd = len(sizes)
    outs = int_tuple(output_size, nd, "output_size", allow_none=True)
    outs = tuple(size if out is None else out for size, out in zip(sizes, outs))
    if any(o < 0 for o in outs):
        raise ValueError(f"output_size must be >= 0, got {output_size!r}")
    _bounded(outs, "output_size")
    # window bounds are computed from o * size
    _bounded(tuple(size * out for size, out in zip(sizes, outs)), "output_size * input size",
             2 * LIMIT)
    return tuple(Geometry(size, out, 0, 0, 0, 0) for size, out in zip(sizes, outs))


@memoised
def fractional_geometry(sizes, kernel_size, output_size, output_ratio):
    """Geometries of fractional max pooling (PyTorch's size checks); ``output_size`` wins
    when both it and ``output_ratio`` are given, as in PyTorch's functional."""
    nd = len(sizes)
    kernel = int_tuple(kernel_size, nd, "kernel_size")
    _positive(kernel, "kernel_size")
    if output_size is None and output_ratio is None:
        raise ValueError(
            "fractional max pooling needs output_size or output_ratio, got neither"
        )
    if output_size is not None:
        outs = int_tuple(output_size, nd, "output_size")
    else:
        ratios = output_ratio if _is_sequence(output_ratio) else (output_ratio,) * nd
        if len(ratios) != nd or not all(
            isinstance(r, numbers.Real) and not isinstance(r, (bool, np.bool_)) for r in ratios
        ):
            raise TypeError(f"output_ratio must be a number or a tuple of {nd}, "
                            f"got {output_ratio!r}")
        if not all(0 < r < 1 for r in ratios):
            raise ValueError(f"output_ratio must be between 0 and 1 (exclusive), "
                             f"got {output_ratio!r}")
        outs = tuple(int(size * r) for size, r in zip(sizes, ratios))
    if any(o < 0 for o in outs):
        raise ValueError(f"output_size must be >= 0, got {outs}")
    for size, out, k in zip(sizes, outs, kernel):
        too_large = out + k - 1 > size if nd == 2 else (k > size or out + k - 1 >= size)
        if too_large:
            raise ValueError(
                f"fractional max pooling: output_size {outs} with kernel_size {kernel} is too "
                f"large for input size {sizes}"
            )
    return tuple(Geometry(size, out, k, 0, 0, 0) for size, out, k in zip(sizes, outs, kernel))


def _spatial_output_size(output_size, nd, data_format):
    """The spatial entries of an unpooling output_size: ``nd`` of them, optionally with
    the batch and channel entries in the caller's data_format."""
    if not _is_sequence(output_size) or len(output_size) not in (nd, nd + 1, nd + 2):
        raise ValueError(
            f"output_size must be a sequence of {nd} spatial sizes (optionally with the N "
            f"and C sizes of the data_format), got {output_size!r}"
        )
    sizes = tuple(output_size)
    extra = len(sizes) - nd
    if data_format == "channels_last":  # (N, *spatial, C) or (*spatial, C)
        return sizes[extra - 1:-1] if extra else sizes
    return sizes[extra:]  # (N, C, *spatial) or (C, *spatial)


@memoised
def unpool_geometry(sizes, kernel_size, stride, padding, output_size, data_format):
    """Geometries of max unpooling: ``out`` of each dim is the unpooled size."""
    nd = len(sizes)
    kernel = int_tuple(kernel_size, nd, "kernel_size")
    strides = kernel if stride is None else int_tuple(stride, nd, "stride")
    pads = int_tuple(padding, nd, "padding")
    _positive(kernel, "kernel_size")
    _positive(strides, "stride")
    if any(p < 0 for p in pads):
        raise ValueError(f"padding must be >= 0, got {pads}")
    for values, name in ((kernel, "kernel_size"), (strides, "stride"), (pads, "padding")):
        _bounded(values, name)
    defaults = tuple((i - 1) * s + k - 2 * p for i, k, s, p in zip(sizes, kernel, strides, pads))
    if output_size is None:
        outs = defaults
    else:
        outs = int_tuple(_spatial_output_size(output_size, nd, data_format), nd,
                         "output_size")
        for out, default, s in zip(outs, defaults, strides):
            if not default - s < out < default + s:
                raise ValueError(
                    f"invalid output_size {tuple(output_size)}: each spatial size must lie "
                    f"strictly between {tuple(d - s for d, s in zip(defaults, strides))} and "
                    f"{tuple(d + s for d, s in zip(defaults, strides))}"
                )
    if any(o < 0 for o in outs):
        raise ValueError(f"max_unpool output size {outs} is negative for input size {sizes}")
    _bounded(outs, "the unpooled size")
    _bounded((math.prod(outs),), "the unpooled plane", 2 * LIMIT)
    return tuple(Geometry(*dim) for dim in zip(sizes, outs, kernel, strides, pads, (1,) * nd))
