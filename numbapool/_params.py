"""Argument checking and normalisation: every error numbapool raises comes from here.

The functions turn user arguments into plain hashable tuples; an op's spatial
dimensions become ``_windows.Geometry`` tuples, which the kernels trust completely.
Element types are checked by ``_elements.element``.
"""

import functools
import math
import numbers

import numpy as np

from numbapool._windows import Geometry


def memoised(validator):
    """Cache a pure validator's result for hashable arguments (shapes and sizes repeat
    from call to call); lists and other unhashable arguments are simply not cached.
    Errors are never cached: a bad call raises every time."""
    cached = functools.lru_cache(maxsize=1024, typed=True)(validator)

    @functools.wraps(validator)
    def validate(*args):
        try:
            return cached(*args)
        except TypeError as error:
            if "unhashable" not in str(error):
                raise
            return validator(*args)

    return validate


DATA_FORMATS = ("channels_first", "channels_last")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_data_format(data_format):
    if data_format not in DATA_FORMATS:
        raise ValueError(
            f"data_format must be 'channels_first' or 'channels_last', got {data_format!r}"
        )
    return data_format


def int_tuple(value, nd, name, allow_none=False, single=False):
    """An int or a sequence of ``nd`` ints (``None`` entries kept if allowed) as a tuple;
    with ``single``, a sequence of one int also stands for every dim (as PyTorch's max,
    avg and LP pooling take it)."""
    if _is_int(value) or (allow_none and value is None):
        return (None if value is None else int(value),) * nd
    if isinstance(value, (tuple, list)):
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
    strides = kernel if stride is None or stride == () or stride == [] else int_tuple(
        stride, nd, "stride", single=True
    )
    pads = int_tuple(padding, nd, "padding", single=True)
    dilations = int_tuple(dilation, nd, "dilation", single=True)
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"ceil_mode must be a bool, got {ceil_mode!r}")
    _positive(kernel, "kernel_size")
    _positive(strides, "stride")
    _positive(dilations, "dilation")
    if any(p < 0 for p in pads):
        raise ValueError(f"padding must be >= 0, got {pads}")
    # PyTorch 2.13 bounds the padding by half the kernel, not the dilated span
    if any(p > k // 2 for p, k in zip(pads, kernel)):
        raise ValueError(
            f"pad should be at most half of kernel size, got padding={pads} "
            f"for kernel_size={kernel}"
        )
    outs = tuple(
        pooled_size(*args, bool(ceil_mode)) for args in zip(sizes, kernel, strides, pads, dilations)
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
    return int(divisor_override)


def lp_norm(norm_type):
    if not isinstance(norm_type, numbers.Real) or isinstance(norm_type, (bool, np.bool_)):
        raise TypeError(f"norm_type must be a real number, got {norm_type!r}")
    norm_type = float(norm_type)
    if norm_type == 0 or math.isnan(norm_type):
        raise ValueError(f"norm_type must be non-zero and not NaN, got {norm_type}")
    return norm_type


@memoised
def adaptive_geometry(sizes, output_size):
    """Geometries of adaptive pooling; a ``None`` entry keeps that input size."""
    nd = len(sizes)
    outs = int_tuple(output_size, nd, "output_size", allow_none=True)
    outs = tuple(size if out is None else out for size, out in zip(sizes, outs))
    if any(o < 0 for o in outs):
        raise ValueError(f"output_size must be >= 0, got {output_size!r}")
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
        ratios = output_ratio if isinstance(output_ratio, (tuple, list)) else (output_ratio,) * nd
        if len(ratios) != nd or not all(
            isinstance(r, numbers.Real) and not isinstance(r, bool) for r in ratios
        ):
            raise TypeError(f"output_ratio must be a number or a tuple of {nd}, got {output_ratio!r}")
        if not all(0 < r < 1 for r in ratios):
            raise ValueError(f"output_ratio must be between 0 and 1 (exclusive), got {output_ratio!r}")
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


@memoised
def unpool_geometry(sizes, kernel_size, stride, padding, output_size):
    """Geometries of max unpooling: ``out`` of each dim is the unpooled size."""
    nd = len(sizes)
    kernel = int_tuple(kernel_size, nd, "kernel_size")
    strides = kernel if stride is None else int_tuple(stride, nd, "stride")
    pads = int_tuple(padding, nd, "padding")
    _positive(kernel, "kernel_size")
    _positive(strides, "stride")
    if any(p < 0 for p in pads):
        raise ValueError(f"padding must be >= 0, got {pads}")
    defaults = tuple((i - 1) * s + k - 2 * p for i, k, s, p in zip(sizes, kernel, strides, pads))
    if output_size is None:
        outs = defaults
    else:
        if not isinstance(output_size, (tuple, list)) or len(output_size) not in (nd, nd + 1, nd + 2):
            raise ValueError(
                f"output_size must be a sequence of {nd} spatial sizes (optionally led by N and C), "
                f"got {output_size!r}"
            )
        outs = int_tuple(tuple(output_size)[-nd:], nd, "output_size")
        for out, default, s in zip(outs, defaults, strides):
            if not default - s < out < default + s:
                raise ValueError(
                    f"invalid output_size {tuple(output_size)}: each spatial size must lie "
                    f"strictly between {tuple(d - s for d, s in zip(defaults, strides))} and "
                    f"{tuple(d + s for d, s in zip(defaults, strides))}"
                )
    if any(o < 0 for o in outs):
        raise ValueError(f"max_unpool output size {outs} is negative for input size {sizes}")
    return tuple(Geometry(*dim) for dim in zip(sizes, outs, kernel, strides, pads, (1,) * nd))
