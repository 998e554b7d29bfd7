"""The host side of every op, written once over a backend (``numbapool._backend``).

``Prepared`` turns a caller's array into the canonical view, its element type and its
backend; the functions below allocate results, choose the views kernels read (the
element type's storage, whole planes as rows for global pooling) and launch the
backend's kernels for one algorithm each:

- ``pool``: every forward but unpooling (max, avg, adaptive, LP, fractional);
- ``pool_gradient``: their gradients where the windows are known;
- ``scatter_gradient``: max-type gradients where they are not (fractional pooling after
  the fact), from the indices alone;
- ``unpool`` and ``unpool_gradient``.
"""

import math

import numpy as np

from numbapool import _elements, _params
from numbapool._dispatch import backend_for
from numbapool._layout import from_canonical, is_channels_last
from numbapool._reductions import Options
from numbapool._windows import ADAPTIVE, TRIVIAL, Dims, Geometry


class Prepared:
    """An input as the kernels see it, and the way back to the caller's shape."""

    def __init__(self, x, nd, data_format, op, integers=frozenset(),
                 empty_channels_unbatched=False, empty_channels_batched=False):
        """``x`` for ``op`` of rank ``nd``: ``op`` takes the integer dtypes in
        ``integers``, and an input without channels when unbatched or batched as the two
        flags say (PyTorch's rules differ between families)."""
        self.op = op
        self.nd = nd
        self.data_format = _params.check_data_format(data_format)
        self.backend, array = backend_for(x, op)
        self.element = _elements.element(array.dtype, op, integers)
        self.dtype = self.element.dtype
        if array.ndim not in (nd + 1, nd + 2):
            raise ValueError(
                f"{op} expects a {nd + 1}-d (unbatched) or {nd + 2}-d (batched) input, "
                f"got shape {tuple(array.shape)}"
            )
        self.batched = array.ndim == nd + 2
        self.x5 = self.backend.canonical(array, nd, self.batched, self.data_format)
        self.spatial = _params.spatial_sizes(
            self.x5.shape, nd, array.shape,
            empty_channels_batched if self.batched else empty_channels_unbatched)
        self.channels_last = is_channels_last(self.x5.shape, self.x5.strides)

    def compute_as(self, element):
        """Compute with another element type than the input's (``_elements.read_as_float``)."""
        self.element = element

    def dims(self, geometry):
        """The op's per-dim geometries padded to (D, H, W) with trivial size-1 dims."""
        return Dims(*((TRIVIAL,) * (3 - self.nd) + tuple(geometry)))

    def options(self, count_include_pad=True, divisor_override=0, norm=1.0):
        """The per-call scalars of the kernels, typed as they compute."""
        return Options(bool(count_include_pad), int(divisor_override),
                       self.element.compute.type(norm))

    def restore(self, y5):
        """A 5-d result seen in the caller's shape convention (a view, no copy)."""
        return self.backend.restore(y5, self.nd, self.batched, self.data_format)

    def check_size(self, shape5, dtype):
        """A ValueError naming the shape where a result of it could not exist."""
        shape5 = tuple(int(n) for n in shape5)
        if math.prod(shape5) * np.dtype(dtype).itemsize >= 2 ** 63:
            spatial = shape5[5 - self.nd:]
            raise ValueError(f"{self.op}: the result would have spatial size {spatial} "
                             f"for {shape5[0]} x {shape5[1]} planes, more bytes than an "
                             "array can hold")
        return shape5

    def empty(self, shape5, dtype):
        """An uninitialised result in the input's memory order, on its device; a
        ValueError naming the shape where it could not exist."""
        return self.backend.empty(self.check_size(shape5, dtype), dtype, self.channels_last,
                                  self.x5)

    def canonical(self, array, name, spatial=None):
        """Another array (indices, gradients) of the caller's convention as a 5-d view.

        It must have the input's N and C and, unless ``spatial`` is None, those
        canonical (D, H, W) sizes.
        """
        backend, array = backend_for(array, self.op)
        if backend is not self.backend:
            raise TypeError(f"{self.op}: {name} must live on the same device as the input")
        rank = self.nd + (2 if self.batched else 1)
        array5 = (backend.canonical(array, self.nd, self.batched, self.data_format)
                  if array.ndim == rank else None)
        expected5 = tuple(self.x5.shape[:2]) + (
            tuple(spatial) if spatial is not None else tuple(self.x5.shape[2:]))
        if array5 is None or array5.shape[:2] != self.x5.shape[:2] or (
                spatial is not None and tuple(array5.shape) != expected5):
            expected, _ = from_canonical(expected5, (0,) * 5, self.nd, self.batched,
                                         self.data_format)
            if spatial is None:
                expected = f"{rank}-d with the input's batch and channel sizes"
            raise ValueError(
                f"{self.op}: {name} must have shape {expected}, got {tuple(array.shape)}"
            )
        return array5


def checked_gradient(inp, grad_output, spatial):
    """grad_output as a 5-d view, checked against the forward output's shape and dtype."""
    grad5 = inp.canonical(grad_output, "grad_output", spatial)
    if grad5.dtype != inp.dtype:
        raise TypeError(f"{inp.op}: grad_output must have the input's dtype {inp.dtype}, "
                        f"got {grad5.dtype}")
    return grad5


def checked_indices(inp, indices, spatial, plane_spatial):
    """Indices of shape ``spatial`` (canonical) pointing into planes of ``plane_spatial``
    (``None``: any value is safe, the kernel only compares them)."""
    idx5 = inp.canonical(indices, "indices", spatial)
    if idx5.dtype.kind not in "iu":
        raise TypeError(f"{inp.op}: indices must be an integer array, got dtype {idx5.dtype}")
    if plane_spatial is None:
        return idx5
    plane = math.prod(plane_spatial)
    lowest, highest = inp.backend.value_range(idx5)
    if lowest < 0 or highest >= plane:
        bad = lowest if lowest < 0 else highest
        raise ValueError(f"{inp.op}: Found an invalid max index: {bad} (each plane has "
                         f"{plane} elements)")
    return idx5


def checked_window_indices(inp, idx5, geometry, windows):
    """Indices of a max-type forward, each one its output's window can report: a gradient
    from indices of another call would otherwise depend on which kernel computes it."""
    dims = inp.dims(geometry)
    # every window step is 1 (no dilation; adaptive windows are runs): checks need no division
    unit_steps = windows is ADAPTIVE or all(dim.dilation == 1 for dim in dims)
    if idx5.size and inp.backend.indices_outside_windows(idx5, dims, windows, unit_steps,
                                                         inp.x5.shape[2:]):
        raise ValueError(f"{inp.op}: indices must come from the forward with these arguments "
                         "and input size; some lie outside their output's window")
    return idx5


def _result(backend, shape5, element, channels_last, like):
    """A result array and its view for the kernels: the element type for kernels that
    store it, else the type values are added in (and kept in, where a sum is carried in
    a wider type)."""
    if backend.writes_elements:
        result = backend.empty(shape5, element.dtype, channels_last, like)
        return result, backend.retype(result, element.stored)
    result = backend.empty(shape5, element.value, channels_last, like)
    return result, result


def _finished(backend, result, element):
    """A result of the value type as the element type."""
    if result.dtype == element.dtype:
        return result
    return backend.cast(result, element.dtype, element)


def pool_plan(inp, geometry, windows, reduction, options, samples=None, with_indices=False):
    """Pooling over ``windows`` as ``plan(x5) -> (values, int64 indices or None)``, 5-d
    arrays, for ``inp.x5`` or any array of its type, shape, strides and dtype.

    The plan holds no array of this call but ``samples``; ``plan.replayable`` says
    whether a later call may run it again (not with samples, which are drawn per call).
    """
    backend, element, channels_last = inp.backend, inp.element, inp.channels_last
    dims = inp.dims(geometry)
    x5 = inp.x5
    shape = tuple(x5.shape[:2]) + tuple(dim.out for dim in dims)
    merged = None
    if windows is ADAPTIVE and all(dim.out == 1 for dim in dims) and \
            x5.shape[2] * x5.shape[3] > 1 and 0 not in shape:
        # global pooling: each plane as one row, when its memory is one run
        merged = backend.merged_planes(x5)
    merge = merged is not None   # the plan keeps whether, not this call's view
    if merge:
        x5 = merged
        dims = Dims(TRIVIAL, TRIVIAL, Geometry(x5.shape[4], 1, 0, 0, 0, 0))
    if not reduction.selects and backend.sums_carry(dims, windows, channels_last):
        element = element.carrying()
        options = options._replace(norm=element.compute.type(options.norm))
    inp.check_size(shape, element.value)
    reduce = None
    if math.prod(shape):
        reduce = backend.window_reducer(backend.retype(x5, element.storage), shape, dims,
                                        windows, reduction, element, options, samples,
                                        with_indices, channels_last)

    # what a call repeats is looked up once here: plans replay on tiny inputs, where
    # each attribute lookup and call shows
    merged_planes, empty, no_indices, retype = (backend.merged_planes, backend.empty,
                                                backend.no_indices, backend.retype)
    storage = element.storage

    def plan(x5):
        if merge:
            x5 = merged_planes(x5)
        out5, out_view = _result(backend, shape, element, channels_last, x5)
        idx5 = empty(shape, np.int64, channels_last, x5) if with_indices else no_indices(x5)
        if reduce is not None:
            reduce(retype(x5, storage), out_view, idx5)
        return _finished(backend, out5, element), (idx5 if with_indices else None)

    plan.replayable = samples is None
    return plan


def pool(inp, geometry, windows, reduction, options, samples=None, with_indices=False):
    """Pool over ``windows``: ``(values, int64 indices or None)`` as 5-d arrays."""
    return pool_plan(inp, geometry, windows, reduction, options, samples,
                     with_indices)(inp.x5)


def pool_gradient(inp, grad5, geometry, windows, reduction, options, idx5=None):
    """The gradient of ``pool`` with respect to its input. Selecting reductions read the
    forward's indices (computed here when ``idx5`` is None); summing ones that need it
    read the forward's output."""
    backend, element = inp.backend, inp.element
    if reduction.selects and idx5 is None:
        _, idx5 = pool(inp, geometry, windows, reduction, options, with_indices=True)
    out5 = None
    if reduction.needs_output:
        out5, _ = pool(inp, geometry, windows, reduction, options)
    grad_in, grad_in_view = _result(backend, inp.x5.shape, element, inp.channels_last, inp.x5)
    if grad_in.size:
        grad = backend.retype(grad5, element.storage)
        # arrays a reduction does not read are passed as grad, for their type alone
        backend.gather_gradient(
            grad, grad if idx5 is None else idx5,
            grad if out5 is None else backend.retype(out5, element.storage),
            backend.retype(inp.x5, element.storage), grad_in_view, inp.dims(geometry),
            windows, reduction, element, options, inp.channels_last)
    return _finished(backend, grad_in, element)


def scatter_gradient(inp, grad5, idx5):
    """A max-type gradient from the indices alone: each plane's gradients added at their
    indices in increasing output order (the gather's sums), in the compute type."""
    backend, element = inp.backend, inp.element
    grad_in = inp.empty(inp.x5.shape, element.compute)
    if grad_in.size:
        backend.scatter_planes(*backend.planes_as_rows(
            backend.retype(grad5, element.storage), idx5, grad_in), element, True,
            inp.channels_last)
    return _finished(backend, grad_in, element)


def unpool(inp, idx5, out_spatial):
    """Max unpooling: zeros with each value of x at its index (the last one wins)."""
    backend, element = inp.backend, inp.element
    out5 = inp.empty(tuple(inp.x5.shape[:2]) + tuple(out_spatial), element.dtype)
    if out5.size:
        # values are only moved: float16 and bfloat16 as their bits
        backend.scatter_planes(*backend.planes_as_rows(
            backend.retype(inp.x5, element.storage), idx5,
            backend.retype(out5, element.storage)), element, False, inp.channels_last)
    return out5


def unpool_gradient(inp, grad5, idx5):
    """The gradient of max unpooling: each input position reads its index's gradient."""
    backend, element = inp.backend, inp.element
    grad_in = inp.empty(inp.x5.shape, element.dtype)
    if grad_in.size:
        backend.gather_by_index(*backend.planes_as_rows(
            backend.retype(grad5, element.storage), idx5,
            backend.retype(grad_in, element.storage)), inp.channels_last)
    return grad_in
