"""Backend dispatch and the canonical (N, C, D, H, W) view of an input.

Every op runs on a 5-d view: the batch dim is added for unbatched inputs, the channel
dim is moved to position 1 for ``data_format="channels_last"``, and missing spatial
dims are inserted as size-1 dims (1d and 2d are views of 3d). Only shapes and strides
change, never the data, so the kernels read the caller's memory in place.
"""

import numpy as np

from numbapool import _params


def backend_for(x, op):
    """``(backend, array)``: NumPy arrays and array-likes run on the CPU, CUDA arrays on the GPU."""
    # Numba's CUDA simulator arrays (NUMBA_ENABLE_CUDASIM) have no __cuda_array_interface__
    if hasattr(x, "__cuda_array_interface__") or getattr(x, "__cuda_ndarray__", False):
        from numbapool import _cuda

        return _cuda.adopt(x)
    from numbapool import _cpu

    if isinstance(x, np.ndarray):
        return _cpu, x
    if isinstance(x, (str, bytes, dict, set)) or x is None or np.isscalar(x):
        raise TypeError(f"{op} expects an array, got {type(x).__name__} {x!r:.60}")
    try:
        array = np.asarray(x)
    except Exception as error:
        raise TypeError(f"{op} expects an array, got {type(x).__name__}: {error}") from None
    if array.dtype == object:
        raise TypeError(f"{op} expects a numeric array, got {type(x).__name__} of objects")
    return _cpu, array


def is_channels_last(shape5, strides5):
    """True when C is the fastest-moving of the non-trivial dims (PyTorch's channels_last)."""
    spatial = [abs(st) for size, st in zip(shape5[2:], strides5[2:]) if size > 1]
    return shape5[1] > 1 and bool(spatial) and abs(strides5[1]) < min(spatial)


def to_canonical(shape, strides, nd, batched, data_format):
    """Shape and strides of the (N, C, D, H, W) view of a caller's array."""
    shape, strides = tuple(shape), tuple(strides)
    if not batched:
        shape, strides = (1,) + shape, (0,) + strides
    if data_format == "channels_last":
        shape = (shape[0], shape[-1]) + shape[1:-1]
        strides = (strides[0], strides[-1]) + strides[1:-1]
    missing = 3 - nd
    return shape[:2] + (1,) * missing + shape[2:], strides[:2] + (0,) * missing + strides[2:]


def from_canonical(shape5, strides5, nd, batched, data_format):
    """The inverse of ``to_canonical``: a 5-d result in the caller's convention."""
    shape, strides = list(shape5), list(strides5)
    del shape[2 : 5 - nd], strides[2 : 5 - nd]
    if data_format == "channels_last":
        shape.append(shape.pop(1))
        strides.append(strides.pop(1))
    if not batched:
        del shape[0], strides[0]
    return tuple(shape), tuple(strides)


class Prepared:
    """An input as the kernels see it, and the way back to the caller's shape."""

    def __init__(self, x, nd, data_format, op, integers_allowed):
        self.op = op
        self.nd = nd
        self.data_format = _params.check_data_format(data_format)
        self.backend, array = backend_for(x, op)
        self.dtype = _params.check_dtype(array.dtype, op, integers_allowed)
        if array.ndim not in (nd + 1, nd + 2):
            raise ValueError(
                f"{op} expects a {nd + 1}-d (unbatched) or {nd + 2}-d (batched) input, "
                f"got shape {tuple(array.shape)}"
            )
        self.batched = array.ndim == nd + 2
        self.x5 = self._to5(array)
        self.spatial = _params.spatial_sizes(self.x5.shape, nd, array.shape)
        self.channels_last = is_channels_last(self.x5.shape, self.x5.strides)

    def _to5(self, array):
        return self.backend.canonical_view(array, self.nd, self.batched, self.data_format)

    def geometry5(self, geometry):
        """Per-dim geometries padded to (D, H, W) with trivial size-1 dims."""
        return ((1, 1, 1, 1, 0, 1),) * (3 - self.nd) + tuple(geometry)

    def restore(self, y5):
        """A 5-d result seen in the caller's shape convention (a view, no copy)."""
        return self.backend.caller_view(y5, self.nd, self.batched, self.data_format)

    def canonical(self, array, name, spatial=None):
        """Another array (indices, gradients) of the caller's convention as a 5-d view.

        It must have the input's N and C and, unless ``spatial`` is None, those
        canonical (D, H, W) sizes.
        """
        backend, array = backend_for(array, self.op)
        if backend is not self.backend:
            raise TypeError(f"{self.op}: {name} must live on the same device as the input")
        rank = self.nd + (2 if self.batched else 1)
        array5 = self._to5(array) if array.ndim == rank else None
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
