"""The canonical (N, C, D, H, W) view of an input, as shape and stride arithmetic.

Every op runs on a 5-d view: the batch dim is added for unbatched inputs, the channel
dim is moved to position 1 for ``data_format="channels_last"``, and missing spatial
dims are inserted as size-1 dims (1d and 2d are views of 3d). Only shapes and strides
change, never the data, so kernels read the caller's memory in place. Backends build
their views from these functions; nothing here touches an array.
"""

import functools


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


def channels_last_strides(shape5, itemsize):
    """Strides of a C-fastest (N, C, D, H, W) array laid out as (N, D, H, W, C)."""
    n, c, d, h, w = shape5
    return (d * h * w * c * itemsize, itemsize, h * w * c * itemsize, w * c * itemsize,
            c * itemsize)


@functools.lru_cache(maxsize=256)   # global pooling asks again on every call
def merged_planes(shape5, strides5):
    """Shape and strides of the (N, C, 1, 1, D*H*W) view that sees each (n, c) plane as one
    row, or None when a plane's memory is not one run of equal steps."""
    step = expected = None
    for size, stride in zip(shape5[:1:-1], strides5[:1:-1]):  # W, H, D
        if size > 1:
            if step is None:
                step = stride
            elif stride != expected:
                return None
            expected = stride * size
    length = shape5[2] * shape5[3] * shape5[4]
    return tuple(shape5[:2]) + (1, 1, length), tuple(strides5[:2]) + (0, 0, step or 0)
