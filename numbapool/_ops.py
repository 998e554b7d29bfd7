"""The op table: one row per pooling family, and what each family computes.

A row (``Op``) names a family and its PyTorch parameters with their defaults, in
PyTorch's order; from it come

- the public functions ``{name}{nd}d`` and ``{name}{nd}d_backward`` of
  ``numbapool.functional``, with real signatures and docstrings (``functions()``);
- the layer classes ``{layer}{nd}d`` of ``numbapool.nn``: constructor signature,
  attributes, repr and ``.backward`` (``numbapool.nn``);
- the lists tests and benchmarks iterate over (``OPS``, ``function_names()``).

What a family computes is its ``forward`` and ``backward``: they check the family's
arguments (``numbapool._params``) and run the host driver (``numbapool._driver``) with the
family's windows and reduction. Adding a family that needs no new kernel is a row here
and its two functions.
"""

import collections.abc
import sys
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from numbapool import _docs, _driver, _elements, _params, _plans, _reductions, _windows
from numbapool._driver import (
    Prepared,
    checked_gradient,
    checked_indices,
    checked_window_indices,
)

REQUIRED = object()
"""The default of a parameter that has none."""


@dataclass(frozen=True)
class Param:
    """One parameter after the input: PyTorch's name and default, whether the forward
    function and the ``*_backward`` function take it, whether it is keyword-only
    (numbapool's own additions), and its docstring entry."""

    name: str
    default: object = REQUIRED
    forward: bool = True
    backward: bool = True
    keyword_only: bool = False
    doc: str = ""
    type: str = "Any"   # its annotation in the type stubs (numbapool._stubs)


@dataclass(frozen=True)
class LayerParam:
    """One constructor parameter of a layer: PyTorch's name and default, and how the
    layer stores it (``store(value, arguments, nd)``; as given by default)."""

    name: str
    default: object = REQUIRED
    store: object = None
    keyword_only: bool = False


@dataclass(frozen=True)
class Example:
    """A family's docstring example (``numbapool._docs``): the input is ``x =
    np.arange(size ** nd)`` of shape ``(1, 1, size, ..., size)``; ``{nd}`` in the texts is
    the rank."""

    size: int
    arguments: str                  # after the arrays, for the function and the layer
    arrays: str = "x"               # the forward's array arguments
    setup: str = ""                 # a line run before the call
    show: str = "{}.ravel().tolist()"   # how a result is printed
    backward_arguments: Optional[str] = None  # when the backward takes fewer arguments
    backward_show: Optional[str] = None       # how a gradient is printed, if not as a result


@dataclass(frozen=True)
class Op:
    """A pooling family (module docstring)."""

    name: str              # functions {name}{nd}d and {name}{nd}d_backward
    layer: str             # layers {layer}{nd}d
    dims: tuple
    summary: str           # first docstring line; {nd} is the rank
    params: tuple          # Param, in PyTorch's functional order
    layer_params: tuple    # LayerParam, in PyTorch's constructor order
    repr_fields: tuple     # what a layer's repr shows, as PyTorch's does
    integers: frozenset    # the integer dtypes it takes, as PyTorch does
    returns: str           # the Returns entry of the docstring
    output_shape: str      # the output's shape, in the docstring
    example: Example
    forward: object        # forward(inp, *forward params) -> caller's result
    backward: object       # backward(inp, grad_output, *backward params) -> grad_input
    differences: str = ""  # where it differs from PyTorch, beyond taking arrays
    gradient_reads_input: bool = False  # (not just its shape): layers keep a copy
    layer_params_by_dim: dict = field(default_factory=dict)  # nd -> layer_params override
    # PyTorch takes an input without channels: unbatched for some families, and batched
    # in the ranks listed (adaptive average pooling 1d and 2d)
    empty_channels_unbatched: bool = False
    empty_channels_batched: tuple = ()

    def function_name(self, nd):
        return f"{self.name}{nd}d"

    def layer_name(self, nd):
        return f"{self.layer}{nd}d"

    def forward_params(self):
        return [p for p in self.params if p.forward]

    def backward_params(self):
        return [p for p in self.params if p.backward]

    def prepared(self, x, nd, data_format, name, integers):
        """The input of function ``name`` (forward, or backward without integers)."""
        return Prepared(x, nd, data_format, name, integers, self.empty_channels_unbatched,
                        nd in self.empty_channels_batched)

    def constructor_params(self, nd):
        return self.layer_params_by_dim.get(nd, self.layer_params)


# ---------------------------------------------------------------------------------------
# What each family computes


def _pooled(inp, plan, return_indices=False):
    """The caller's result of a pooling forward: ``plan`` (``_driver.pool_plan``) run on
    the input, seen in the caller's convention. The same as a function of the caller's
    array is offered as the call's plan (``numbapool._plans``)."""
    backend, nd, batched, data_format = inp.backend, inp.nd, inp.batched, inp.data_format
    canonical, restore = backend.canonical, backend.restore

    def replay(x, x5=None):
        out5, idx5 = plan(canonical(x, nd, batched, data_format) if x5 is None else x5)
        out = restore(out5, nd, batched, data_format)
        return (out, restore(idx5, nd, batched, data_format)) if return_indices else out

    _plans.offer(replay if plan.replayable else None)
    return replay(None, inp.x5)


def _spatial_out(inp, geometry):
    return tuple(dim.out for dim in inp.dims(geometry))


def _max_pool(inp, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    geometry = _params.fixed_geometry(inp.spatial, kernel_size, stride, padding, dilation,
                                      ceil_mode)
    return _pooled(inp, _driver.pool_plan(inp, geometry, _windows.FIXED, _reductions.MAX,
                                          inp.options(), with_indices=bool(return_indices)),
                   return_indices)


def _max_pool_backward(inp, grad_output, indices, kernel_size, stride, padding, dilation,
                       ceil_mode):
    geometry = _params.fixed_geometry(inp.spatial, kernel_size, stride, padding, dilation,
                                      ceil_mode)
    spatial = _spatial_out(inp, geometry)
    grad5 = checked_gradient(inp, grad_output, spatial)
    # a window with no tap inside the input (dilation and padding) reports an index
    # that may lie off the plane; its output is a constant -inf and passes no gradient
    idx5 = checked_window_indices(inp, checked_indices(inp, indices, spatial, None), geometry,
                                  _windows.FIXED)
    return inp.restore(_driver.pool_gradient(inp, grad5, geometry, _windows.FIXED,
                                             _reductions.MAX, inp.options(), idx5))


def _avg_options(inp, geometry, count_include_pad, divisor_override):
    if inp.nd == 3 and any(dim.size < dim.kernel for dim in geometry):
        # PyTorch's avg_pool3d (only 3d) requires the unpadded input to hold a kernel
        raise ValueError(f"avg_pool3d: input size {inp.spatial} is smaller than kernel size "
                         f"{tuple(dim.kernel for dim in geometry)}")
    override = _params.avg_divisor_override(divisor_override)
    return inp.options(_params.check_bool(count_include_pad, "count_include_pad"), override)


def _avg_pool(inp, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    geometry = _params.fixed_geometry(inp.spatial, kernel_size, stride, padding, 1, ceil_mode)
    options = _avg_options(inp, geometry, count_include_pad, divisor_override)
    return _pooled(inp, _driver.pool_plan(inp, geometry, _windows.FIXED, _reductions.MEAN,
                                          options))


def _avg_pool_backward(inp, grad_output, kernel_size, stride, padding, ceil_mode,
                       count_include_pad, divisor_override):
    geometry = _params.fixed_geometry(inp.spatial, kernel_size, stride, padding, 1, ceil_mode)
    options = _avg_options(inp, geometry, count_include_pad, divisor_override)
    grad5 = checked_gradient(inp, grad_output, _spatial_out(inp, geometry))
    return inp.restore(_driver.pool_gradient(inp, grad5, geometry, _windows.FIXED,
                                             _reductions.MEAN, options))


def _adaptive_avg_pool(inp, output_size):
    geometry = _params.adaptive_geometry(inp.spatial, output_size)
    return _pooled(inp, _driver.pool_plan(inp, geometry, _windows.ADAPTIVE, _reductions.MEAN,
                                          inp.options(False)))


def _adaptive_geometry_from_gradient(inp, grad_output):
    grad5 = checked_gradient(inp, grad_output, None)
    # PyTorch has no gradient of an empty output, but for an empty batch (an unbatched
    # input without channels counts as one)
    if 0 in tuple(grad5.shape[2:]) or (grad5.shape[1] == 0 and inp.batched):
        raise ValueError(f"{inp.op}: Expected grad_output to have non-zero size for non-batch "
                         f"dimensions, got shape {tuple(grad_output.shape)}")
    return grad5, _params.adaptive_geometry(inp.spatial, tuple(grad5.shape[5 - inp.nd:]))


def _adaptive_avg_pool_backward(inp, grad_output):
    grad5, geometry = _adaptive_geometry_from_gradient(inp, grad_output)
    return inp.restore(_driver.pool_gradient(inp, grad5, geometry, _windows.ADAPTIVE,
                                             _reductions.MEAN, inp.options(False)))


def _adaptive_max_pool(inp, output_size, return_indices):
    geometry = _params.adaptive_geometry(inp.spatial, output_size)
    return _pooled(inp, _driver.pool_plan(inp, geometry, _windows.ADAPTIVE, _reductions.MAX,
                                          inp.options(), with_indices=bool(return_indices)),
                   return_indices)


def _adaptive_max_pool_backward(inp, grad_output, indices):
    grad5, geometry = _adaptive_geometry_from_gradient(inp, grad_output)
    idx5 = checked_window_indices(inp, checked_indices(inp, indices, grad5.shape[2:], None),
                                  geometry, _windows.ADAPTIVE)
    return inp.restore(_driver.pool_gradient(inp, grad5, geometry, _windows.ADAPTIVE,
                                             _reductions.MAX, inp.options(), idx5))


def _lp_setup(inp, norm_type, kernel_size, stride, ceil_mode):
    if not inp.element.is_float:
        # int64: the exact p-norm, computed in float64, as float32 (PyTorch's dtype)
        inp.compute_as(_elements.read_as_float(inp.element, np.float32))
    norm = _params.lp_norm(norm_type, inp.element.compute)
    geometry = _params.fixed_geometry(inp.spatial, kernel_size, stride, 0, 1, ceil_mode)
    return geometry, _reductions.lp(norm), inp.options(norm=norm)


def _lp_pool(inp, norm_type, kernel_size, stride, ceil_mode):
    geometry, reduction, options = _lp_setup(inp, norm_type, kernel_size, stride, ceil_mode)
    return _pooled(inp, _driver.pool_plan(inp, geometry, _windows.FIXED, reduction, options))


def _lp_pool_backward(inp, grad_output, norm_type, kernel_size, stride, ceil_mode):
    geometry, reduction, options = _lp_setup(inp, norm_type, kernel_size, stride, ceil_mode)
    grad5 = checked_gradient(inp, grad_output, _spatial_out(inp, geometry))
    return inp.restore(_driver.pool_gradient(inp, grad5, geometry, _windows.FIXED, reduction,
                                             options))


def draw_samples(element, shape, rng, op):
    """Fractional pooling's samples in [0, 1), drawn as PyTorch draws them: in the
    element type's sample dtype (float16 samples for float16 input, ...)."""
    if rng is None:
        rng = np.random.default_rng()
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{op}: rng must be a numpy.random.Generator, got {rng!r}")
    drawn = np.float64 if element.sample == np.float64 else np.float32
    samples = rng.random(shape, dtype=drawn)
    if element.sample != drawn:
        # rounded to the sample type, kept below 1
        samples = np.minimum(samples.astype(element.sample),
                             np.array(element.largest_sample, element.sample))
    return samples


def _fractional_samples(inp, random_samples, rng):
    """(N, C, 3) samples driving (D, H, W), in the type the window arithmetic uses."""
    n, c = inp.x5.shape[:2]
    nd, element, op = inp.nd, inp.element, inp.op
    if random_samples is None:
        samples = draw_samples(element, (n, c, nd), rng, op)
    else:
        samples = inp.backend.to_host(random_samples)
        if samples.dtype.kind != "f" and not _elements.is_bfloat16(samples.dtype):
            raise TypeError(f"{op}: random_samples must be a float array, got {samples.dtype}")
        # as PyTorch: samples for more batches than the input has are fine, the first N
        # are used
        if samples.ndim != 3 or samples.shape[0] < n or samples.shape[1:] != (c, nd):
            raise ValueError(f"{op}: random_samples must have shape (N', {c}, {nd}) with "
                             f"N' >= {n}, got {samples.shape}")
        samples = samples[:n].astype(element.sample, copy=False)
        if samples.size and not (samples.min() >= 0 and samples.max() < 1):
            raise ValueError(f"{op}: random_samples must lie in [0, 1), got values "
                             f"from {samples.min()} to {samples.max()}")
    samples3 = np.zeros((n, c, 3), element.sample_compute)
    # PyTorch's order: in 2d, sample 0 drives W and sample 1 drives H; in 3d, D, H, W
    samples3[:, :, 3 - nd:] = samples[:, :, ::-1] if nd == 2 else samples
    return inp.backend.from_host(samples3, inp.x5)


def _fractional_max_pool(inp, kernel_size, output_size, output_ratio, return_indices,
                         _random_samples, random_samples, rng):
    geometry = _params.fractional_geometry(inp.spatial, kernel_size, output_size, output_ratio)
    if _random_samples is not None and random_samples is not None:
        raise TypeError(f"{inp.op}: give the samples as _random_samples or random_samples, "
                        "not both")
    samples3 = _fractional_samples(
        inp, random_samples if _random_samples is None else _random_samples, rng)
    # windows placed with the element type's arithmetic, as PyTorch places them
    return _pooled(inp, _driver.pool_plan(inp, geometry, inp.element.windows,
                                          _reductions.MAX, inp.options(), samples3,
                                          bool(return_indices)),
                   return_indices)


def _fractional_max_pool_backward(inp, grad_output, indices, kernel_size, output_size,
                                  output_ratio):
    geometry = _params.fractional_geometry(inp.spatial, kernel_size, output_size, output_ratio)
    spatial = _spatial_out(inp, geometry)
    grad5 = checked_gradient(inp, grad_output, spatial)
    idx5 = checked_indices(inp, indices, spatial, inp.x5.shape[2:])
    # the windows depend on samples the caller no longer has: scatter per plane instead
    return inp.restore(_driver.scatter_gradient(inp, grad5, idx5))


def _unpool_setup(inp, kernel_size, stride, padding, output_size):
    geometry = _params.unpool_geometry(inp.spatial, kernel_size, stride, padding, output_size,
                                       inp.data_format)
    return _spatial_out(inp, geometry)


def _max_unpool(inp, indices, kernel_size, stride, padding, output_size):
    out_spatial = _unpool_setup(inp, kernel_size, stride, padding, output_size)
    idx5 = checked_indices(inp, indices, inp.x5.shape[2:], out_spatial)
    return inp.restore(_driver.unpool(inp, idx5, out_spatial))


def _max_unpool_backward(inp, grad_output, indices, kernel_size, stride, padding,
                         output_size):
    spatial = _unpool_setup(inp, kernel_size, stride, padding, output_size)
    grad5 = checked_gradient(inp, grad_output, spatial)
    idx5 = checked_indices(inp, indices, inp.x5.shape[2:], spatial)
    return inp.restore(_driver.unpool_gradient(inp, grad5, idx5))


# ---------------------------------------------------------------------------------------
# The table


def _default_to_kernel(value, arguments, nd):
    """PyTorch's layers store ``stride=None`` as the kernel size."""
    return arguments["kernel_size"] if value is None else value


def _ntuple(value, nd):
    """PyTorch's ``_single``/``_pair``/``_triple``: an iterable becomes a tuple, a scalar
    is repeated ``nd`` times."""
    if isinstance(value, collections.abc.Iterable):
        return tuple(value)
    return (value,) * nd


def _as_ntuple(value, arguments, nd):
    return _ntuple(value, nd)


def _as_ntuple_or_none(value, arguments, nd):
    return None if value is None else _ntuple(value, nd)


def _stride_as_ntuple(value, arguments, nd):
    return _ntuple(arguments["kernel_size"] if value is None else value, nd)


_SIZES = "int or {nd}-tuple of ints"
_INDICES_DOC = "The indices the forward returned."
_KERNEL = Param("kernel_size", type="Size", doc=f"{_SIZES}: the window size.")
_STRIDE = Param("stride", None, type="Size | None", doc=f"{_SIZES}: the window step (default: kernel_size).")
_CEIL = Param("ceil_mode", False, type="bool", doc=(
    "Round the output size up, keeping only windows that start inside the input or the "
    "left padding."))
_RETURN_INDICES = Param("return_indices", False, backward=False, type="bool", doc=(
    "Also return the int64 position of each maximum, flattened over the spatial dims of "
    "its (n, c) plane (the input of ``max_unpool{nd}d``)."))
_INDICES = Param("indices", forward=False, type="ArrayT", doc=_INDICES_DOC)
_ADAPTIVE_SIZE = Param("output_size", backward=False, type="AdaptiveSize", doc=(
    "int, {nd}-tuple of ints or None: the output's spatial size; a ``None`` entry keeps "
    "that input size. Output ``o`` covers ``[floor(o * in / out), ceil((o + 1) * in / "
    "out))``, so windows may overlap and differ in size, and ``out > in`` is allowed."))

_DETERMINISTIC = ("Its backward is deterministic on the GPU too, where PyTorch's CUDA one is not "
                  "(it raises under ``torch.use_deterministic_algorithms(True)``).")
_DETERMINISTIC_3D = "In 3d, its" + _DETERMINISTIC[len("Its"):]

OPS = (
    Op("max_pool", "MaxPool", (1, 2, 3),
       "{nd}-d max pooling, exactly as ``torch.nn.functional.max_pool{nd}d``.",
       (_INDICES, _KERNEL, _STRIDE,
        Param("padding", 0, type="Size", doc=f"{_SIZES}: implicit -inf padding on both sides, at most "
                                "half the kernel."),
        Param("dilation", 1, type="Size", doc=f"{_SIZES}: the spacing between window taps."),
        _CEIL, _RETURN_INDICES),
       (LayerParam("kernel_size"), LayerParam("stride", None, _default_to_kernel),
        LayerParam("padding", 0), LayerParam("dilation", 1),
        LayerParam("return_indices", False), LayerParam("ceil_mode", False)),
       ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
       integers=_elements.INTEGERS,
       returns=("The pooled array, and the indices if ``return_indices``. Ties keep the "
                "first maximum; a NaN in a window wins (the last NaN's index)."),
       output_shape=("the input's, each spatial size ``in`` becoming ``floor((in + 2 * padding - "
                     "dilation * (kernel_size - 1) - 1) / stride) + 1``, " "rounded up with ``ceil_mode`` (a last window must start inside the input or the left padding)."),
       example=Example(3, "2, stride=1"),
       forward=_max_pool, backward=_max_pool_backward,
       differences=_DETERMINISTIC_3D),
    Op("avg_pool", "AvgPool", (1, 2, 3),
       "{nd}-d average pooling, as ``torch.nn.functional.avg_pool{nd}d``.",
       (_KERNEL, _STRIDE,
        Param("padding", 0, type="Size", doc=f"{_SIZES}: implicit zero padding, at most half the "
                                "kernel."),
        _CEIL,
        Param("count_include_pad", True, type="bool", doc=(
            "Count the padding in the divisor (windows are still clipped to the "
            "padding).")),
        Param("divisor_override", None, type="int | None", doc=(
            "A fixed non-zero int divisor instead of the window size."))),
       (LayerParam("kernel_size"), LayerParam("stride", None, _default_to_kernel),
        LayerParam("padding", 0), LayerParam("ceil_mode", False),
        LayerParam("count_include_pad", True), LayerParam("divisor_override", None)),
       ("kernel_size", "stride", "padding"),
       integers=_elements.INT64,
       returns=("The pooled array, of the input's dtype: 16-bit floats are summed in "
                "float32; int64 is summed in int64 and divided truncating toward zero, as "
                "PyTorch does."),
       output_shape=("the input's, each spatial size ``in`` becoming ``floor((in + 2 * padding - "
                     "kernel_size) / stride) + 1``, " "rounded up with ``ceil_mode`` (a last window must start inside the input or the left padding)."),
       example=Example(3, "2, stride=1"),
       forward=_avg_pool, backward=_avg_pool_backward,
       differences=_DETERMINISTIC_3D,
       # PyTorch's AvgPool1d has no divisor_override and stores its sizes as 1-tuples
       layer_params_by_dim={1: (
           LayerParam("kernel_size", REQUIRED, _as_ntuple),
           LayerParam("stride", None, _stride_as_ntuple),
           LayerParam("padding", 0, _as_ntuple), LayerParam("ceil_mode", False),
           LayerParam("count_include_pad", True))}),
    Op("adaptive_avg_pool", "AdaptiveAvgPool", (1, 2, 3),
       "{nd}-d adaptive average pooling, as ``torch.nn.functional.adaptive_avg_pool{nd}d``.",
       (_ADAPTIVE_SIZE,),
       (LayerParam("output_size"),),
       ("output_size",),
       integers=frozenset(),
       returns=("The pooled array; each output is the mean of its own window. "
                "``output_size=1`` is global average pooling."),
       output_shape="the input's, with ``output_size`` for the spatial sizes.",
       example=Example(3, "2", backward_arguments=""),
       forward=_adaptive_avg_pool, backward=_adaptive_avg_pool_backward,
       differences=_DETERMINISTIC,
       empty_channels_unbatched=True, empty_channels_batched=(1, 2)),
    Op("adaptive_max_pool", "AdaptiveMaxPool", (1, 2, 3),
       "{nd}-d adaptive max pooling, as ``torch.nn.functional.adaptive_max_pool{nd}d``.",
       (_INDICES, _ADAPTIVE_SIZE,
        Param("return_indices", False, backward=False, type="bool", doc=(
            "Also return the int64 flat index of each maximum within its (n, c) plane."))),
       (LayerParam("output_size"), LayerParam("return_indices", False)),
       ("output_size",),
       integers=_elements.INTEGERS,
       returns="The pooled array, and the indices if ``return_indices``.",
       output_shape="the input's, with ``output_size`` for the spatial sizes.",
       example=Example(3, "2", backward_arguments=""),
       forward=_adaptive_max_pool, backward=_adaptive_max_pool_backward,
       differences=_DETERMINISTIC,
       empty_channels_unbatched=True),
    Op("lp_pool", "LPPool", (1, 2, 3),
       "{nd}-d power-average pooling: ``(sum over the window of |x| ** p) ** (1 / p)``.",
       (Param("norm_type", type="float", doc="float: p, non-zero; ``inf`` gives max |x| and ``-inf`` "
                               "min |x|."),
        _KERNEL, _STRIDE, _CEIL),
       (LayerParam("norm_type"), LayerParam("kernel_size"), LayerParam("stride", None),
        LayerParam("ceil_mode", False)),
       ("norm_type", "kernel_size", "stride", "ceil_mode"),
       integers=_elements.INT64,
       returns=("The pooled array, of the input's float dtype; float32 for int64 input (the "
                "exact p-norm, computed in float64)."),
       output_shape=("the input's, each spatial size ``in`` becoming ``floor((in - kernel_size) / "
                     "stride) + 1`` (rounded up with ``ceil_mode``)."),
       example=Example(3, "2, 2, stride=1", show="{}.round(4).ravel().tolist()"),
       forward=_lp_pool, backward=_lp_pool_backward, gradient_reads_input=True,
       differences=("Unlike ``torch.nn.functional.lp_pool{nd}d``, which raises x (not |x|) to the "
              "power p and rescales windows cut by ceil_mode, this is the p-norm of the "
              "window's in-bounds elements. Elsewhere the results agree.")),
    Op("fractional_max_pool", "FractionalMaxPool", (2, 3),
       "{nd}-d fractional max pooling, as "
       "``torch.nn.functional.fractional_max_pool{nd}d``.",
       (_INDICES,
        Param("kernel_size", type="Size", doc=f"{_SIZES}: the window size."),
        Param("output_size", None, type="Size | None", doc=(
            "int or {nd}-tuple of ints: the output size; give it or ``output_ratio``.")),
        Param("output_ratio", None, type="Ratio | None", doc=(
            "float or {nd}-tuple of floats in (0, 1): the output size's ratio to the input "
            "size.")),
        _RETURN_INDICES,
        Param("_random_samples", None, backward=False, type="Any", doc=(
            "float array of shape (N', C, {nd}) in [0, 1) with N' >= N (1 for an unbatched "
            "input; the first N are used), optional: the samples that place the windows (in "
            "2d, sample 0 drives W and sample 1 drives H). Drawn from ``rng`` when "
            "omitted.")),
        Param("random_samples", None, backward=False, keyword_only=True, doc=(
            "the same as ``_random_samples``, by numbapool's name for it.")),
        Param("rng", None, backward=False, keyword_only=True, type="np.random.Generator | None", doc=(
            "numpy.random.Generator, optional: the source of the samples (default: a "
            "fresh ``numpy.random.default_rng()``)."))),
       (LayerParam("kernel_size", REQUIRED, _as_ntuple),
        LayerParam("output_size", None, _as_ntuple_or_none),
        LayerParam("output_ratio", None, _as_ntuple_or_none),
        LayerParam("return_indices", False), LayerParam("_random_samples", None),
        LayerParam("rng", None, keyword_only=True)),
       (),  # PyTorch prints these layers with an empty extra_repr
       integers=_elements.INTEGERS,
       returns="The pooled array, and the indices if ``return_indices``.",
       output_shape=("the input's, with ``output_size`` (or ``floor(in * output_ratio)``) for "
                     "the spatial sizes."),
       example=Example(4, "2, output_size=2, _random_samples=np.full((1, 1, {nd}), 0.5)",
                       backward_arguments="2, output_size=2",
                       backward_show="np.flatnonzero({}).tolist()"),
       forward=_fractional_max_pool, backward=_fractional_max_pool_backward,
       differences=("Without samples, numbapool draws them from a NumPy generator "
                    "(``rng``), so a seed places other windows than ``torch.manual_seed`` "
                    "does; give ``random_samples`` (or use ``numbapool.torch``) for "
                    "PyTorch's windows. " + _DETERMINISTIC),
       empty_channels_unbatched=True),
    Op("max_unpool", "MaxUnpool", (1, 2, 3),
       "{nd}-d max unpooling, the partial inverse of ``max_pool{nd}d``, as "
       "``torch.nn.functional.max_unpool{nd}d``.",
       (Param("indices", type="ArrayT", doc=("integer array of x's shape: flat positions within each "
                              "output (n, c) plane, as ``max_pool{nd}d`` returns.")),
        Param("kernel_size", type="Size", doc=(f"{_SIZES}: the pooling's window size; with stride and "
                                  "padding it gives the default output size "
                                  "``(in - 1) * stride + kernel_size - 2 * padding``.")),
        Param("stride", None, type="Size | None", doc=f"{_SIZES}: the pooling's step (default: kernel_size)."),
        Param("padding", 0, type="Size", doc=f"{_SIZES}: the pooling's padding."),
        Param("output_size", None, type="Sequence[int] | None", doc=(
            "sequence of {nd} ints (optionally led by N and C), optional: another output "
            "size, strictly within ``stride`` of the default."))),
       (LayerParam("kernel_size", REQUIRED, _as_ntuple),
        LayerParam("stride", None, _stride_as_ntuple),
        LayerParam("padding", 0, _as_ntuple)),
       ("kernel_size", "stride", "padding"),
       integers=_elements.INTEGERS,
       returns=("A zero-filled array with each input value at its index (the last one wins "
                "where indices repeat)."),
       output_shape=("the input's, each spatial size ``in`` becoming ``(in - 1) * stride - 2 * "
                     "padding + kernel_size``, or ``output_size``."),
       example=Example(4, "2", arrays="y, indices",
                       setup="y, indices = npl.max_pool{nd}d(x, 2, return_indices=True)",
                       show="np.flatnonzero({}).tolist()"),
       forward=_max_unpool, backward=_max_unpool_backward,
       differences=("Every index is checked: one outside its output plane is a ValueError, "
                    "on the GPU too."),
       empty_channels_unbatched=True),
)

BY_NAME = {op.name: op for op in OPS}


def function_names():
    """Every public function, forward and backward, in table order."""
    return [op.function_name(nd) + suffix for op in OPS for nd in op.dims
            for suffix in ("", "_backward")]


# ---------------------------------------------------------------------------------------
# Generated functions

def _signature(leading, params):
    """Source text of a parameter list after ``leading`` names (defaults are simple
    literals): PyTorch's parameters, then the keyword-only ones and data_format."""

    def text(p):
        return p.name if p.default is REQUIRED else f"{p.name}={p.default!r}"

    return ", ".join([*leading, *(text(p) for p in params if not p.keyword_only), "*",
                      *(text(p) for p in params if p.keyword_only),
                      "data_format='channels_first'"])


def _build(name, source, namespace):
    exec(compile(source, f"<numbapool.functional.{name}>", "exec"), namespace)
    function = namespace[name]
    function.__module__ = "numbapool.functional"
    return function


def has_dask_array(*arrays):
    """Whether one of ``arrays`` is a dask array, known without importing dask: a dask
    array exists only once ``dask.array`` is imported, and numbapool imports dask (in
    ``numbapool._lazy``) only when it is handed one."""
    dask_array = sys.modules.get("dask.array")
    if dask_array is not None:
        for array in arrays:
            if isinstance(array, dask_array.Array):
                return True
    return False


def _lazy_call(op, nd, name, arguments):
    """A call with a dask array: its lazy dask result (``numbapool._lazy``)."""
    from numbapool import _lazy

    return _lazy.call(op, nd, name, arguments)


_LAZY = {"_has_dask_array": has_dask_array, "_lazy_call": _lazy_call}


def _lazy_branch(nd, name, leading, params):
    """Source of a generated function's first lines: a call with a dask array among its
    arrays goes to ``numbapool._lazy`` with every argument by name (its locals), before
    anything could read the array."""
    arrays = leading + [p.name for p in params if p.name == "indices"]
    return (f"    if _has_dask_array({', '.join(arrays)}):\n"
            f"        return _lazy_call(_op, {nd}, {name!r}, locals())\n")


def _forward_function(op, nd):
    name = op.function_name(nd)
    params = op.forward_params()
    arguments = "".join(p.name + ", " for p in params) + "data_format"
    # a call whose signature has a plan runs it (numbapool._plans); else in full
    source = (f"def {name}({_signature(['input'], params)}):\n"
              f"{_lazy_branch(nd, name, ['input'], params)}"
              f"    signature, plan = _plans.lookup(input, ({arguments}))\n"
              f"    if plan is not None:\n"
              f"        return plan(input)\n"
              f"    return _plans.record(signature, _run, input, {arguments})\n")

    def run(x, *arguments):
        *arguments, data_format = arguments
        return op.forward(op.prepared(x, nd, data_format, name, op.integers), *arguments)

    function = _build(name, source, {"_run": run, "_op": op, "_plans": _plans.Plans(), **_LAZY})
    function.__doc__ = _docs.function_doc(op, nd)
    return function


def _backward_function(op, nd):
    forward_name = op.function_name(nd)
    name = forward_name + "_backward"
    params = op.backward_params()
    source = (f"def {name}({_signature(['grad_output', 'input'], params)}):\n"
              f"{_lazy_branch(nd, name, ['grad_output', 'input'], params)}"
              f"    return _backward(_op.prepared(input, {nd}, data_format, {name!r}, "
              f"frozenset()), grad_output, {''.join(p.name + ', ' for p in params)})\n")
    function = _build(name, source, {"_backward": op.backward, "_op": op, **_LAZY})
    function.__doc__ = _docs.backward_doc(op, nd)
    return function


def functions():
    """``{name: function}`` of every public function, generated from ``OPS``."""
    made = {}
    for op in OPS:
        for nd in op.dims:
            made[op.function_name(nd)] = _forward_function(op, nd)
            made[op.function_name(nd) + "_backward"] = _backward_function(op, nd)
    return made

