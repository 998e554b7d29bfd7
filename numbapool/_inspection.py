"""Which input region feeds each output: the windows of a pooling call, as numbers.

``windows(function, input_size, *args)`` evaluates, in plain Python, the same window
functions (``numbapool._windows``) that the kernels compile, with the geometry the
function itself would derive from its arguments (and reject the same bad arguments).
"""

import inspect
import math
from collections import namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np
from numpy.typing import NDArray

from numbapool import _elements, _ops, _params, _reductions, _windows

Windows = namedtuple("Windows", "start stop step first count padded")
Windows.__doc__ = """The windows of one spatial dim, one int64 entry per output position.

- ``start``, ``stop``: the window ``[start, stop)`` in input coordinates, padding and
  dilation included (``start < 0`` reaches into the left padding, ``stop > size`` past
  the right end);
- ``step``: the distance between the window's taps (the dilation; 1 but for max pooling);
- ``first``, ``count``: the first tap inside the input and how many taps lie inside it
  (those the output reads: ``first + t * step`` for ``t < count``);
- ``padded``: the window's length counting padding but not what lies past it, which is
  what ``count_include_pad=True`` divides by.
"""


@dataclass(frozen=True)
class PoolingWindows:
    """The windows of a pooling call: ``dims`` holds one ``Windows`` per spatial dim (D, H,
    W order, as the input's); ``divisor`` is, for average pooling, the number each output's
    sum is divided by (an int64 array of the output's spatial shape), else None. An output
    at spatial position ``(o_1, ..., o_nd)`` reads, in every dim ``k``, the taps
    ``dims[k].first[o_k] + t * dims[k].step[o_k]`` for ``t < dims[k].count[o_k]``
    (``region`` lists them).

    >>> import numbapool as npl
    >>> w = npl.windows(npl.avg_pool1d, (5,), 3, 2, 1, count_include_pad=False)
    >>> w.output_size, w.dims[0].start.tolist(), w.dims[0].count.tolist()
    ((3,), [-1, 1, 3], [2, 3, 2])
    >>> w.divisor.tolist()
    [2, 3, 2]
    """

    function: str
    input_size: tuple[int, ...]
    output_size: tuple[int, ...]
    dims: tuple[Windows, ...]
    divisor: Optional[NDArray[np.int64]] = None

    def region(self, *output: int) -> tuple[range, ...]:
        """The input ranges that output position ``output`` reads, one per dim.

        >>> import numbapool as npl
        >>> npl.windows(npl.max_pool2d, (7, 7), 3, 2, 1, dilation=2).region(0, 1)
        (range(1, 5, 2), range(1, 7, 2))
        """
        if len(output) != len(self.dims):
            raise ValueError(f"{self.function}: give one index per spatial dim "
                             f"({len(self.dims)}), got {output}")
        ranges = []
        for dim, o, out in zip(self.dims, output, self.output_size):
            if not 0 <= o < out:
                raise ValueError(f"{self.function}: output index {output} is outside the "
                                 f"output size {self.output_size}")
            first, step = int(dim.first[o]), int(dim.step[o])
            ranges.append(range(first, first + int(dim.count[o]) * step, step))
        return tuple(ranges)


# Per family: the geometry (one ``Geometry`` per dim), the window kind, the per-dim samples
# and the average's divisor options, from the function's own arguments.


def _max_setup(spatial, nd, a, element):
    geometry = _params.fixed_geometry(spatial, a["kernel_size"], a["stride"], a["padding"],
                                      a["dilation"], a["ceil_mode"])
    return geometry, _windows.FIXED, None, None


def _avg_setup(spatial, nd, a, element):
    geometry = _params.fixed_geometry(spatial, a["kernel_size"], a["stride"], a["padding"], 1,
                                      a["ceil_mode"])
    options = _reductions.Options(_params.check_bool(a["count_include_pad"],
                                                     "count_include_pad"),
                                  _params.avg_divisor_override(a["divisor_override"]), 0.0)
    return geometry, _windows.FIXED, None, options


def _adaptive_setup(spatial, nd, a, element):
    return _params.adaptive_geometry(spatial, a["output_size"]), _windows.ADAPTIVE, None, None


def _adaptive_avg_setup(spatial, nd, a, element):
    geometry, kind, _, _ = _adaptive_setup(spatial, nd, a, element)
    return geometry, kind, None, _reductions.Options(False, 0, 0.0)


def _lp_setup(spatial, nd, a, element):
    _params.lp_norm(a["norm_type"], np.dtype(np.float64))
    geometry = _params.fixed_geometry(spatial, a["kernel_size"], a["stride"], 0, 1,
                                      a["ceil_mode"])
    return geometry, _windows.FIXED, None, None


def _fractional_setup(spatial, nd, a, element):
    geometry = _params.fractional_geometry(spatial, a["kernel_size"], a["output_size"],
                                           a["output_ratio"])
    given = a["_random_samples"] if a["_random_samples"] is not None else a["random_samples"]
    if given is None:
        raise ValueError(f"fractional windows depend on the samples: give random_samples "
                         f"({nd} numbers in [0, 1), one plane's, as the function takes them)")
    samples = np.asarray(given, dtype=np.float64)
    if samples.shape != (nd,) or not ((samples >= 0) & (samples < 1)).all():
        raise ValueError(f"random_samples must be {nd} numbers in [0, 1) (one plane's), "
                         f"got {given!r}")
    # PyTorch's order: in 2d, sample 0 drives W and sample 1 drives H
    ordered = samples[::-1] if nd == 2 else samples
    per_dim = [element.sample_compute.type(element.sample.type(s)) for s in ordered]
    return geometry, _windows.fractional(element.rounding), per_dim, None


def _unpool_setup(spatial, nd, a, element):
    # the pooling that unpooling inverts: its windows over the unpooled output, one per
    # input position (where that position's index may point)
    geometry = _params.unpool_geometry(spatial, a["kernel_size"], a["stride"], a["padding"],
                                       a["output_size"], "channels_first")
    pooled = tuple(g._replace(size=g.out, out=g.size) for g in geometry)
    return pooled, _windows.FIXED, None, None


SETUPS = {
    "max_pool": _max_setup, "avg_pool": _avg_setup, "adaptive_avg_pool": _adaptive_avg_setup,
    "adaptive_max_pool": _adaptive_setup, "lp_pool": _lp_setup,
    "fractional_max_pool": _fractional_setup, "max_unpool": _unpool_setup,
}

# arguments that do not move windows
_IGNORED = {"indices", "return_indices", "rng"}


def _resolve(function):
    name = function if isinstance(function, str) else getattr(function, "__name__", None)
    for op in _ops.OPS:
        for nd in op.dims:
            if name == op.function_name(nd):
                return op, nd
    raise ValueError(f"windows: {function!r} is not a numbapool pooling function (give one, "
                     f"e.g. numbapool.max_pool2d, or its name)")


def _signature(op):
    """The function's parameters that place windows, with its defaults."""
    params = [inspect.Parameter("input_size", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for p in op.forward_params():
        if p.name in _IGNORED:
            continue
        kind = (inspect.Parameter.KEYWORD_ONLY if p.keyword_only
                else inspect.Parameter.POSITIONAL_OR_KEYWORD)
        default = inspect.Parameter.empty if p.default is _ops.REQUIRED else p.default
        params.append(inspect.Parameter(p.name, kind, default=default))
    params.append(inspect.Parameter("dtype", inspect.Parameter.KEYWORD_ONLY,
                                    default="float32"))
    return inspect.Signature(params)


def windows(function: Union[Callable[..., Any], str], input_size: Union[int, Sequence[int]],
            *args: Any, **kwargs: Any) -> PoolingWindows:
    """The windows of ``function(x, *args, **kwargs)`` for an ``x`` of spatial size
    ``input_size``, as the kernels place them.

    ``function`` is a numbapool pooling function (``numbapool.max_pool2d``) or its name;
    the arguments are the function's own after the input (``indices`` and
    ``return_indices`` are not needed). Fractional max pooling needs ``random_samples``:
    the ``nd`` samples of one plane, in the function's order; ``dtype`` (default float32)
    is the input's, whose arithmetic places fractional windows. For max unpooling, the
    windows are those of the pooling it inverts, one per unpooling input position, over
    the unpooled output.

    >>> import numbapool as npl
    >>> w = npl.windows(npl.adaptive_avg_pool2d, (4, 4), (3, 4))
    >>> w.dims[0].start.tolist(), w.dims[0].stop.tolist()
    ([0, 1, 2], [2, 3, 4])
    >>> w.region(1, 2)
    (range(1, 3), range(2, 3))
    """
    op, nd = _resolve(function)
    name = op.function_name(nd)
    try:
        bound = _signature(op).bind(input_size, *args, **kwargs)
    except TypeError as error:
        raise TypeError(f"windows({name}, ...): {error}") from None
    bound.apply_defaults()
    arguments = bound.arguments
    spatial = _params.int_tuple(arguments.pop("input_size"), nd, "input_size")
    if any(size < 0 for size in spatial):
        raise ValueError(f"input_size must be >= 0, got {spatial}")
    element = _elements.element(np.dtype(arguments.pop("dtype")), name, op.integers)
    geometry, kind, samples, options = SETUPS[op.name](spatial, nd, arguments, element)
    dims = tuple(_dim_windows(kind, dim, 0.0 if samples is None else samples[k])
                 for k, dim in enumerate(geometry))
    output_size = tuple(dim.out for dim in geometry)
    divisor = None
    if options is not None:
        counts = math.prod(np.ix_(*(d.count for d in dims))) if dims else np.ones(())
        padded = math.prod(np.ix_(*(d.padded for d in dims))) if dims else np.ones(())
        divisor = np.vectorize(
            lambda count, pad: _reductions.avg_divisor(int(count), int(pad), options),
            otypes=[np.int64])(counts, padded)
    return PoolingWindows(name, spatial, output_size, dims, divisor)


def _dim_windows(kind, dim, sample):
    rows = []
    for o in range(dim.out):
        first, count, step, padded = kind.window(dim, o, sample)
        if kind is _windows.FIXED:
            start, stop = _windows.fixed_span(dim, o)
        else:  # adaptive and fractional windows have no padding or dilation
            start, stop = first, first + count
        rows.append((start, stop, step, first, count, padded))
    table = np.array(rows, dtype=np.int64).reshape(-1, len(Windows._fields))
    return Windows(*(np.ascontiguousarray(column) for column in table.T))
