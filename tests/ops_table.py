"""One row per op family of numbapool's op table (``numbapool._ops.OPS``): sample arguments
and the independent reference (``tests/reference.py``) for its forward and backward.

``test_ops.py`` runs every row over every rank, element type, layout and the layer
class, and fails for a family of the op table that has no row here: adding a family is
one row in each table.
"""

from dataclasses import dataclass

import numpy as np

import reference as ref
from oracles import make_input


def _tuple(value, nd):
    return tuple(value) if isinstance(value, tuple) else (value,) * nd


@dataclass(frozen=True)
class Row:
    """``inputs(rng, nd, dtype) -> (arrays, kwargs)`` gives the forward's positional arrays
    and keyword arguments; ``forward(arrays, kwargs, nd)`` the expected result;
    ``backward(grad, arrays, kwargs, nd, indices)`` the expected gradient with respect
    to ``arrays[0]``; ``backward_drops`` the forward keywords the backward does not take;
    ``exact`` whether results must be bitwise equal (max-type values and indices)."""

    inputs: object
    forward: object
    backward: object
    backward_drops: tuple = ()
    exact: bool = False
    returns_indices: bool = False


SHAPES = {1: (2, 3, 11), 2: (2, 3, 9, 8), 3: (1, 2, 6, 5, 7)}


def _plain_input(rng, nd, dtype, specials=True, **kwargs):
    """A (N, C, *spatial) input; floats with NaN and +-inf sprinkled in, if ``specials``."""
    return (make_input(rng, SHAPES[nd], dtype,
                       specials=specials and np.dtype(dtype).kind not in "iu"),), kwargs


def _max_inputs(rng, nd, dtype):
    return _plain_input(rng, nd, dtype, kernel_size=3, stride=2, padding=1, dilation=1,
                        ceil_mode=True, return_indices=True)


def _max_forward(arrays, kw, nd):
    return ref.max_pool(arrays[0], *(_tuple(kw[k], nd) for k in ("kernel_size", "stride",
                                                                 "padding", "dilation")),
                        kw["ceil_mode"])


def _avg_inputs(rng, nd, dtype):
    return _plain_input(rng, nd, dtype, kernel_size=3, stride=2, padding=1, ceil_mode=True,
                        count_include_pad=False, divisor_override=None)


def _avg_args(kw, nd):
    return (*(_tuple(kw[k], nd) for k in ("kernel_size", "stride", "padding")),
            kw["ceil_mode"], kw["count_include_pad"], kw["divisor_override"])


def _adaptive_inputs(rng, nd, dtype):
    return _plain_input(rng, nd, dtype, output_size=(4, 3, 5)[-nd:])


def _adaptive_max_inputs(rng, nd, dtype):
    return _plain_input(rng, nd, dtype, output_size=(4, 3, 5)[-nd:], return_indices=True)


def _lp_inputs(rng, nd, dtype):
    # finite inputs: what NaN and inf do to the p-norm's gradient is its family test's
    return _plain_input(rng, nd, dtype, specials=False, norm_type=2.5, kernel_size=3,
                        stride=2, ceil_mode=True)


def _lp_args(kw, nd):
    return (kw["norm_type"], _tuple(kw["kernel_size"], nd), _tuple(kw["stride"], nd),
            kw["ceil_mode"])


def _lp_forward(x, kw, nd):
    if x.dtype.kind in "iu":  # int64: the p-norm in float64, returned as float32
        return ref.lp_pool(x.astype(np.float64), *_lp_args(kw, nd)).astype(np.float32)
    return ref.lp_pool(x, *_lp_args(kw, nd))


def _fractional_inputs(rng, nd, dtype):
    (x,), _ = _plain_input(rng, nd, dtype)
    sixteen_bits = np.dtype(dtype).itemsize == 2 and np.dtype(dtype).kind not in "iu"
    sample_type = dtype if sixteen_bits else np.float64
    samples = np.minimum(rng.random(x.shape[:2] + (nd,)).astype(sample_type),
                         sample_type(0.99))
    return (x,), dict(kernel_size=2, output_size=(3, 3, 2)[-nd:], return_indices=True,
                      random_samples=samples)


def _fractional_forward(arrays, kw, nd):
    x = arrays[0]
    # integer inputs place their windows in float64
    placed_as = x.astype(np.float64) if x.dtype.kind in "iu" else x
    _, idx = ref.fractional_max_pool(placed_as, _tuple(kw["kernel_size"], nd),
                                     kw["output_size"], kw["random_samples"])
    planes = x.reshape(x.shape[:2] + (-1,))
    values = np.take_along_axis(planes, idx.reshape(idx.shape[:2] + (-1,)), 2)
    return values.reshape(idx.shape), idx


def _unpool_inputs(rng, nd, dtype):
    (x,), _ = _plain_input(rng, nd, dtype)
    pooled, idx = ref.max_pool(x, (2,) * nd, (2,) * nd, (0,) * nd, (1,) * nd, False)
    return (pooled, idx), dict(kernel_size=2, stride=None, padding=0,
                               output_size=x.shape[2:])


def _max_backward(grad, arrays, kw, nd, indices):
    return ref.max_backward(grad, arrays[0], indices)


ROWS = {
    "max_pool": Row(
        _max_inputs, _max_forward, _max_backward, ("return_indices",), exact=True,
        returns_indices=True),
    "avg_pool": Row(
        _avg_inputs,
        lambda arrays, kw, nd: ref.avg_pool(arrays[0], *_avg_args(kw, nd)),
        lambda grad, arrays, kw, nd, indices: ref.avg_pool_backward(
            grad, arrays[0], *_avg_args(kw, nd))),
    "adaptive_avg_pool": Row(
        _adaptive_inputs,
        lambda arrays, kw, nd: ref.adaptive_avg_pool(arrays[0], kw["output_size"]),
        lambda grad, arrays, kw, nd, indices: ref.adaptive_avg_pool_backward(grad,
                                                                             arrays[0]),
        ("output_size",)),
    "adaptive_max_pool": Row(
        _adaptive_max_inputs,
        lambda arrays, kw, nd: ref.adaptive_max_pool(arrays[0], kw["output_size"]),
        _max_backward, ("output_size", "return_indices"), exact=True, returns_indices=True),
    "lp_pool": Row(
        _lp_inputs,
        lambda arrays, kw, nd: _lp_forward(arrays[0], kw, nd),
        lambda grad, arrays, kw, nd, indices: ref.lp_pool_backward(grad, arrays[0],
                                                                   *_lp_args(kw, nd))),
    "fractional_max_pool": Row(
        _fractional_inputs, _fractional_forward, _max_backward,
        ("return_indices", "random_samples"), exact=True, returns_indices=True),
    "max_unpool": Row(
        _unpool_inputs,
        lambda arrays, kw, nd: ref.max_unpool(arrays[0], arrays[1], kw["output_size"]),
        lambda grad, arrays, kw, nd, indices: ref.max_unpool_backward(grad, *arrays),
        exact=True),
}
