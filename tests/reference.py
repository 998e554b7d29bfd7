"""Slow, obviously-correct NumPy reference for the PyTorch pooling family.

Written from /work/shared/SPEC.md, independently of numbapool's kernels: plain Python loops over
windows, Python-int window bounds, float64 accumulation. Inputs are batched channels-first arrays
(N, C, *spatial) with 1-3 spatial dims; parameters are already-normalised tuples of length nd.
Indices are int64, flattened per (n, c) plane over the spatial dims in unpadded coordinates.
"""
from itertools import product

import numpy as np


# ---------------------------------------------------------------------------- helpers

def _flat(pos, shape):
    """Row-major flat index of `pos` in `shape` (unchecked, like PyTorch's index arithmetic)."""
    f = 0
    for p, s in zip(pos, shape):
        f = f * s + p
    return f


def _lowest(dtype):
    """Initial running maximum: -inf for floats, the smallest value for integers."""
    return np.iinfo(dtype).min if dtype.kind in "iu" else dtype.type(-np.inf)


def _argmax(plane, axes, first):
    """SPEC max rule over the taps `product(*axes)` scanned row-major.

    Starts at (lowest, flat(first)) and takes a tap when `v > best or isnan(v)`: ties keep the
    first maximum, any NaN wins and the last NaN gives the index.
    """
    best, idx = _lowest(plane.dtype), _flat(first, plane.shape)
    for pos in product(*axes):
        v = plane[pos]
        if v > best or np.isnan(v):
            best, idx = v, _flat(pos, plane.shape)
    return best, idx


def _planes(shape):
    """Every (n, c, o) with o an output position tuple, for an (N, C, *spatial) shape."""
    for pos in np.ndindex(*shape):
        yield pos[0], pos[1], pos[2:]


def _adaptive_range(o, in_size, out_size):
    """Input range of adaptive output o: [floor(o*in/out), ceil((o+1)*in/out))."""
    return range(o * in_size // out_size, -(-(o + 1) * in_size // out_size))


def _avg_window(o, spatial, kernel, stride, padding, count_include_pad, divisor_override):
    """In-bounds ranges (one per dim) of avg window o, and its divisor."""
    ranges, pool_size, count = [], 1, 1
    for d, size in enumerate(spatial):
        start = o[d] * stride[d] - padding[d]
        end = min(start + kernel[d], size + padding[d])   # clipped to the right padding
        pool_size *= end - start
        start, end = max(start, 0), min(end, size)
        ranges.append(range(start, end))
        count *= end - start
    if divisor_override is not None:
        return ranges, divisor_override
    return ranges, (pool_size if count_include_pad else count)


def _lp_ranges(o, spatial, kernel, stride):
    """In-bounds ranges of LP window o (no padding, no dilation; ceil_mode may overhang)."""
    return [range(o[d] * stride[d], min(o[d] * stride[d] + kernel[d], spatial[d]))
            for d in range(len(spatial))]


def _fixed_out_shape(x, kernel, stride, padding, dilation, ceil_mode):
    return x.shape[:2] + tuple(
        output_size_fixed(x.shape[2 + d], kernel[d], stride[d], padding[d], dilation[d], ceil_mode)
        for d in range(x.ndim - 2))


# ---------------------------------------------------------------------------- forward

def output_size_fixed(in_size, kernel, stride, pad, dilation, ceil_mode):
    """Output length of one dim of max / avg / lp pooling (SPEC, including the ceil_mode rule)."""
    eff_k = dilation * (kernel - 1) + 1
    out = (in_size + 2 * pad - eff_k + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= in_size + pad:
        out -= 1   # the last window must start inside the input or the left padding
    return out


def max_pool(x, kernel, stride, padding, dilation, ceil_mode):
    """Max pooling: (values in x's dtype, int64 indices)."""
    out_shape = _fixed_out_shape(x, kernel, stride, padding, dilation, ceil_mode)
    out, idx = np.empty(out_shape, x.dtype), np.empty(out_shape, np.int64)
    spatial = x.shape[2:]
    for n, c, o in _planes(out_shape):
        axes, first = [], []
        for d, size in enumerate(spatial):
            start = o[d] * stride[d] - padding[d]
            taps = (start + t * dilation[d] for t in range(kernel[d]))
            axes.append([i for i in taps if 0 <= i < size])
            while start < 0:            # PyTorch's initial index: first tap >= 0 of each dim
                start += dilation[d]
            first.append(start)
        out[(n, c) + o], idx[(n, c) + o] = _argmax(x[n, c], axes, first)
    return out, idx


def _int64_mean(values, divisor):
    """PyTorch's int64 average: an int64 sum (wrapping around past 2**63), divided
    truncating toward zero."""
    total = (sum(int(v) for v in values) + 2**63) % 2**64 - 2**63
    quotient = abs(total) // abs(divisor)
    return quotient if (total < 0) == (divisor < 0) else -quotient


def avg_pool(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """Average pooling with PyTorch's divisor rules (sum and divide in float64; int64 as
    PyTorch's integer kernel)."""
    out_shape = _fixed_out_shape(x, kernel, stride, padding, (1,) * (x.ndim - 2), ceil_mode)
    integer = x.dtype.kind in "iu"
    out = np.empty(out_shape, x.dtype if integer else np.float64)
    for n, c, o in _planes(out_shape):
        ranges, div = _avg_window(o, x.shape[2:], kernel, stride, padding,
                                  count_include_pad, divisor_override)
        window = [x[(n, c) + p] for p in product(*ranges)]
        if integer:
            out[(n, c) + o] = _int64_mean(window, div)
        else:
            out[(n, c) + o] = sum(float(v) for v in window) / div
    return out.astype(x.dtype)


def adaptive_avg_pool(x, output_size):
    """Adaptive average pooling: each window divides by its own element count."""
    spatial = x.shape[2:]
    out = np.empty(x.shape[:2] + tuple(output_size), np.float64)
    for n, c, o in _planes(out.shape):
        ranges = [_adaptive_range(o[d], spatial[d], output_size[d]) for d in range(len(o))]
        block = [float(x[(n, c) + p]) for p in product(*ranges)]
        out[(n, c) + o] = sum(block) / len(block)
    return out.astype(x.dtype)


def adaptive_max_pool(x, output_size):
    """Adaptive max pooling: (values, int64 indices), max-pooling rules."""
    spatial = x.shape[2:]
    out_shape = x.shape[:2] + tuple(output_size)
    out, idx = np.empty(out_shape, x.dtype), np.empty(out_shape, np.int64)
    for n, c, o in _planes(out_shape):
        axes = [_adaptive_range(o[d], spatial[d], output_size[d]) for d in range(len(o))]
        out[(n, c) + o], idx[(n, c) + o] = _argmax(x[n, c], axes, [a.start for a in axes])
    return out, idx


def lp_pool(x, norm_type, kernel, stride, ceil_mode):
    """numbapool's LP pooling: (sum of |x|**p over the in-bounds window) ** (1/p).

    p = +inf / -inf give the max / min of |x|.
    """
    p = float(norm_type)
    out_shape = _fixed_out_shape(x, kernel, stride, (0,) * (x.ndim - 2), (1,) * (x.ndim - 2),
                                 ceil_mode)
    out = np.empty(out_shape, np.float64)
    for n, c, o in _planes(out_shape):
        ranges = _lp_ranges(o, x.shape[2:], kernel, stride)
        a = np.abs(x[n, c][np.ix_(*ranges)].astype(np.float64))   # the window, row-major
        if p == np.inf:
            out[(n, c) + o] = a.max()
        elif p == -np.inf:
            out[(n, c) + o] = a.min()
        else:
            with np.errstate(divide="ignore", over="ignore"):
                out[(n, c) + o] = np.sum(a ** p) ** (1.0 / p)
    return out.astype(x.dtype)


def fractional_intervals(sample, in_size, out_size, kernel, float_dtype):
    """Window starts of fractional max pooling for one dim.

    alpha and the products are computed in `float_dtype` (a NumPy scalar type), so that rounding
    picks the same windows as PyTorch's CPU kernel, which computes in the input's dtype.
    """
    ft = float_dtype
    seq = []
    if out_size > 1:
        alpha = ft(in_size - kernel) / ft(out_size - 1)
        u = ft(sample)
        seq = [int((ft(i) + u) * alpha) - int(u * alpha) for i in range(out_size - 1)]
    # SPEC: a start that rounding pushes past in_size - kernel is clamped there
    return [min(start, in_size - kernel) for start in seq] + [in_size - kernel]


def fractional_max_pool(x, kernel, output_size, samples):
    """Fractional max pooling (2d or 3d): (values, int64 indices).

    samples: (N, C, nd); in 2d sample[..., 0] drives W and sample[..., 1] drives H, in 3d
    samples 0, 1, 2 drive D, H, W.
    """
    nd = x.ndim - 2
    sample_of_dim = (1, 0) if nd == 2 else (0, 1, 2)
    ft = x.dtype.type   # PyTorch's CPU kernel does this arithmetic in the input's own dtype
    out_shape = x.shape[:2] + tuple(output_size)
    out, idx = np.empty(out_shape, x.dtype), np.empty(out_shape, np.int64)
    for n, c in np.ndindex(*x.shape[:2]):
        starts = [fractional_intervals(samples[n, c, sample_of_dim[d]], x.shape[2 + d],
                                       output_size[d], kernel[d], ft) for d in range(nd)]
        for o in np.ndindex(*output_size):
            axes = [range(starts[d][o[d]], starts[d][o[d]] + kernel[d]) for d in range(nd)]
            out[(n, c) + o], idx[(n, c) + o] = _argmax(x[n, c], axes, [a.start for a in axes])
    return out, idx


def max_unpool(x, indices, output_spatial_size):
    """Zero-filled output, out[n, c, indices[n, c, j]] = x[n, c, j] for j increasing (last wins)."""
    out = np.zeros(x.shape[:2] + tuple(output_spatial_size), x.dtype)
    flat = out.reshape(x.shape[0], x.shape[1], -1)   # a view of the fresh array
    for n, c in np.ndindex(*x.shape[:2]):
        for v, i in zip(x[n, c].ravel(), indices[n, c].ravel()):
            flat[n, c, i] = v
    return out


# ---------------------------------------------------------------------------- backward

def max_backward(grad_out, x, idx):
    """Gradient of max / adaptive max / fractional max: scatter-add grad_out at the indices.

    A max_pool window with no in-bounds tap has an index that may lie off the plane (IndexError
    here; PyTorch's backward writes out of bounds there) or alias another element.
    """
    grad = np.zeros((x.shape[0], x.shape[1], int(np.prod(x.shape[2:]))), np.float64)
    for n, c, o in _planes(grad_out.shape):
        grad[n, c, idx[(n, c) + o]] += float(grad_out[(n, c) + o])
    return grad.reshape(x.shape).astype(x.dtype)


def avg_pool_backward(grad_out, x, kernel, stride, padding, ceil_mode, count_include_pad,
                      divisor_override):
    """Gradient of avg_pool: each window spreads grad_out / divisor over its in-bounds elements."""
    grad = np.zeros(x.shape, np.float64)
    for n, c, o in _planes(grad_out.shape):
        ranges, div = _avg_window(o, x.shape[2:], kernel, stride, padding,
                                  count_include_pad, divisor_override)
        for p in product(*ranges):
            grad[(n, c) + p] += float(grad_out[(n, c) + o]) / div
    return grad.astype(x.dtype)


def adaptive_avg_pool_backward(grad_out, x):
    """Gradient of adaptive_avg_pool (output size = grad_out's spatial shape)."""
    spatial, out_size = x.shape[2:], grad_out.shape[2:]
    grad = np.zeros(x.shape, np.float64)
    for n, c, o in _planes(grad_out.shape):
        ranges = [_adaptive_range(o[d], spatial[d], out_size[d]) for d in range(len(o))]
        count = int(np.prod([len(r) for r in ranges]))
        for p in product(*ranges):
            grad[(n, c) + p] += float(grad_out[(n, c) + o]) / count
    return grad.astype(x.dtype)


def lp_pool_backward(grad_out, x, norm_type, kernel, stride, ceil_mode):
    """Gradient of lp_pool.

    Finite p: d out / d x = S**(1/p - 1) * |x|**(p-1) * sign(x) with S the window's sum of |x|**p;
    zero for a window with S == 0, and zero at x == 0 (sign(0) = 0, also when p < 1).
    p = +inf / -inf: the first element of maximal / minimal |x| gets grad_out * sign(x).
    """
    p = float(norm_type)
    grad = np.zeros(x.shape, np.float64)
    for n, c, o in _planes(grad_out.shape):
        ranges = _lp_ranges(o, x.shape[2:], kernel, stride)
        block = x[n, c][np.ix_(*ranges)].astype(np.float64)
        a, g = np.abs(block), float(grad_out[(n, c) + o])
        gblock = np.zeros_like(block)
        if np.isinf(p):
            j = int(np.argmax(a) if p > 0 else np.argmin(a))   # first occurrence, row-major
            gblock.flat[j] = g * np.sign(block.flat[j])
        else:
            with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
                s = np.sum(a ** p)
                if s != 0:
                    gblock = np.where(block == 0, 0.0,
                                      g * s ** (1.0 / p - 1.0) * a ** (p - 1.0) * np.sign(block))
        grad[n, c][np.ix_(*ranges)] += gblock
    return grad.astype(x.dtype)


def max_unpool_backward(grad_out, x, indices):
    """Gradient of max_unpool: grad_in[n, c, j] = grad_out_flat[n, c, indices[n, c, j]]."""
    g = grad_out.reshape(grad_out.shape[0], grad_out.shape[1], -1).astype(np.float64)
    grad = np.zeros((x.shape[0], x.shape[1], int(np.prod(x.shape[2:]))), np.float64)
    for n, c in np.ndindex(*x.shape[:2]):
        for j, i in enumerate(indices[n, c].ravel()):
            grad[n, c, j] = g[n, c, i]
    return grad.reshape(x.shape).astype(x.dtype)
