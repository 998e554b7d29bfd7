"""PyTorch's pooling functions for NumPy arrays (CPU) and CUDA arrays (GPU).

Every function takes PyTorch's arguments, with PyTorch's names, order and defaults, and
returns the same kind of array it was given. Inputs may be batched ``(N, C, *spatial)``
or unbatched ``(C, *spatial)``; ``data_format="channels_last"`` takes Keras/Flax-style
``(N, *spatial, C)`` arrays instead. Any strides work, and an input whose memory is
channels-last gives an output whose memory is channels-last.
"""

import math

import numpy as np

from numbapool import _params
from numbapool._layout import Prepared

_SHAPES = {
    1: ("(N, C, L) or (C, L)", "(N, L, C)"),
    2: ("(N, C, H, W) or (C, H, W)", "(N, H, W, C)"),
    3: ("(N, C, D, H, W) or (C, D, H, W)", "(N, D, H, W, C)"),
}

_COMMON_DOC = """
    x : array of shape {first}; with ``data_format="channels_last"``, {last}.
        A NumPy array (or array-like) runs on the CPU, an array with
        ``__cuda_array_interface__`` (CuPy, Numba) on the GPU.
    data_format : "channels_first" (default) or "channels_last", keyword only."""


def _publish(implementation, name, nd, summary, params, returns):
    first, last = _SHAPES[nd]
    implementation.__name__ = implementation.__qualname__ = name
    implementation.__module__ = __name__
    implementation.__doc__ = (
        f"{summary}\n\n    Parameters\n    ----------"
        + _COMMON_DOC.format(first=first, last=last)
        + params
        + f"\n\n    Returns\n    -------\n    {returns}\n"
    )
    return implementation


def _pair(inp, out5, idx5, return_indices):
    out = inp.restore(out5)
    return (out, inp.restore(idx5)) if return_indices else out


def _max_reduce(inp, geometry, window_kind, samples, return_indices):
    """Max pooling through the backend; indices are only computed when asked for."""
    out5, idx5 = inp.backend.max_reduce(inp.x5, inp.geometry5(geometry), window_kind, samples,
                                        inp.channels_last, with_indices=bool(return_indices))
    return _pair(inp, out5, idx5, return_indices)


# --- max pooling ------------------------------------------------------------------------


def _max_pool(nd, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
              data_format):
    inp = Prepared(x, nd, data_format, f"max_pool{nd}d", integers_allowed=True)
    geometry = _params.fixed_geometry(inp.spatial, kernel_size, stride, padding, dilation,
                                      ceil_mode)
    return _max_reduce(inp, geometry, "fixed", None, return_indices)


def _define_max_pool(nd):
    def max_pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                 return_indices=False, *, data_format="channels_first"):
        return _max_pool(nd, x, kernel_size, stride, padding, dilation, ceil_mode,
                         return_indices, data_format)

    return _publish(max_pool, f"max_pool{nd}d", nd,
                    f"{nd}-d max pooling, exactly as ``torch.nn.functional.max_pool{nd}d``.", """
    kernel_size, stride, padding, dilation : int or tuple of {nd} ints
        Window size, step (default: kernel_size), implicit -inf padding on both sides
        (at most half the effective kernel), spacing between window taps.
    ceil_mode : bool
        Round the output size up, keeping only windows that start inside the input
        or the left padding.
    return_indices : bool
        Also return the int64 position of each maximum, flattened over the spatial
        dims of its (n, c) plane (the input to ``max_unpool{nd}d``).""".replace("{nd}", str(nd)),
                    "The pooled array, and the indices if ``return_indices``. Ties keep the "
                    "first maximum; a NaN in a window wins (the last NaN's index).")


# --- average pooling --------------------------------------------------------------------


def _avg_pool(nd, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override, data_format):
    inp = Prepared(x, nd, data_format, f"avg_pool{nd}d", integers_allowed=False)
    geometry = _params.fixed_geometry(inp.spatial, kernel_size, stride, padding, 1, ceil_mode)
    if nd == 3 and any(size < kernel for size, _, kernel, *_ in geometry):
        # PyTorch's avg_pool3d (only 3d) requires the unpadded input to hold a kernel
        raise ValueError(f"avg_pool3d: input size {inp.spatial} is smaller than kernel size "
                         f"{tuple(g[2] for g in geometry)}")
    override = _params.avg_divisor_override(divisor_override)
    if not isinstance(count_include_pad, (bool, np.bool_)):
        raise TypeError(f"count_include_pad must be a bool, got {count_include_pad!r}")
    out5 = inp.backend.sum_reduce(inp.x5, inp.geometry5(geometry), "fixed", "avg",
                                  inp.channels_last, count_include_pad, override)
    return inp.restore(out5)


def _define_avg_pool(nd):
    def avg_pool(x, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None, *,
                 data_format="channels_first"):
        return _avg_pool(nd, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                         divisor_override, data_format)

    return _publish(avg_pool, f"avg_pool{nd}d", nd,
                    f"{nd}-d average pooling, as ``torch.nn.functional.avg_pool{nd}d``.", """
    kernel_size, stride, padding : int or tuple
        Window size, step (default: kernel_size), implicit zero padding (at most half
        the kernel).
    ceil_mode : bool
        Round the output size up (see ``max_pool``).
    count_include_pad : bool
        Count the padding in the divisor (windows are still clipped to the padding).
    divisor_override : int, optional
        A fixed non-zero divisor instead of the window size.""",
                    "The pooled array, of the input's float dtype (float16 is summed in "
                    "float32).")


# --- adaptive pooling -------------------------------------------------------------------


def _adaptive_avg_pool(nd, x, output_size, data_format):
    inp = Prepared(x, nd, data_format, f"adaptive_avg_pool{nd}d", integers_allowed=False)
    geometry = _params.adaptive_geometry(inp.spatial, output_size)
    out5 = inp.backend.sum_reduce(inp.x5, inp.geometry5(geometry), "adaptive", "avg",
                                  inp.channels_last, False)
    return inp.restore(out5)


def _adaptive_max_pool(nd, x, output_size, return_indices, data_format):
    inp = Prepared(x, nd, data_format, f"adaptive_max_pool{nd}d", integers_allowed=True)
    geometry = _params.adaptive_geometry(inp.spatial, output_size)
    return _max_reduce(inp, geometry, "adaptive", None, return_indices)


_ADAPTIVE_SIZE_DOC = """
    output_size : int or tuple of {nd} ints or None
        The output's spatial size; a ``None`` entry keeps that input size. Output
        ``o`` covers ``[floor(o * in / out), ceil((o + 1) * in / out))``, so windows
        may overlap and differ in size, and ``out > in`` is allowed."""


def _define_adaptive_avg_pool(nd):
    def adaptive_avg_pool(x, output_size, *, data_format="channels_first"):
        return _adaptive_avg_pool(nd, x, output_size, data_format)

    return _publish(adaptive_avg_pool, f"adaptive_avg_pool{nd}d", nd,
                    f"{nd}-d adaptive average pooling, as "
                    f"``torch.nn.functional.adaptive_avg_pool{nd}d``.",
                    _ADAPTIVE_SIZE_DOC.replace("{nd}", str(nd)),
                    "The pooled array; each output is the mean of its own window. "
                    "``output_size=1`` is global average pooling.")


def _define_adaptive_max_pool(nd):
    def adaptive_max_pool(x, output_size, return_indices=False, *,
                          data_format="channels_first"):
        return _adaptive_max_pool(nd, x, output_size, return_indices, data_format)

    return _publish(adaptive_max_pool, f"adaptive_max_pool{nd}d", nd,
                    f"{nd}-d adaptive max pooling, as "
                    f"``torch.nn.functional.adaptive_max_pool{nd}d``.",
                    _ADAPTIVE_SIZE_DOC.replace("{nd}", str(nd)) + """
    return_indices : bool
        Also return the int64 flat index of each maximum within its (n, c) plane.""",
                    "The pooled array, and the indices if ``return_indices``.")


# --- LP pooling -------------------------------------------------------------------------


def _lp_pool(nd, x, norm_type, kernel_size, stride, ceil_mode, data_format):
    inp = Prepared(x, nd, data_format, f"lp_pool{nd}d", integers_allowed=False)
    p = _params.lp_norm(norm_type)
    geometry = _params.fixed_geometry(inp.spatial, kernel_size, stride, 0, 1, ceil_mode)
    mode = "absmax" if p == math.inf else "absmin" if p == -math.inf else "lp"
    out5 = inp.backend.sum_reduce(inp.x5, inp.geometry5(geometry), "fixed", mode,
                                  inp.channels_last, norm_type=p)
    return inp.restore(out5)


def _define_lp_pool(nd):
    def lp_pool(x, norm_type, kernel_size, stride=None, ceil_mode=False, *,
                data_format="channels_first"):
        return _lp_pool(nd, x, norm_type, kernel_size, stride, ceil_mode, data_format)

    return _publish(lp_pool, f"lp_pool{nd}d", nd,
                    f"{nd}-d power-average pooling: ``(sum over the window of |x| ** p) ** "
                    f"(1 / p)``.\n\n    Unlike ``torch.nn.functional.lp_pool{nd}d``, which "
                    "raises x (not |x|) to the power p\n    and rescales windows cut by "
                    "ceil_mode, this is the p-norm of the window's\n    in-bounds elements. "
                    "Elsewhere the results agree.", """
    norm_type : float
        p, non-zero; ``inf`` gives max |x| and ``-inf`` min |x|.
    kernel_size, stride : int or tuple
        Window size and step (default: kernel_size); no padding.
    ceil_mode : bool
        Round the output size up (see ``max_pool``).""",
                    "The pooled array, of the input's float dtype.")


# --- fractional max pooling -------------------------------------------------------------


def _sample_dtype(dtype):
    return np.dtype(np.float64 if dtype == np.float64 or dtype.kind in "iu" else np.float32)


def _fractional_samples(inp, random_samples, rng, nd):
    """(N, C, 3) samples driving (D, H, W), in the dtype the window arithmetic uses."""
    n, c = inp.x5.shape[:2]
    dtype = _sample_dtype(inp.dtype)
    op = inp.op
    if random_samples is None:
        if rng is None:
            rng = np.random.default_rng()
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"{op}: rng must be a numpy.random.Generator, got {rng!r}")
        samples = rng.random((n, c, nd), dtype=dtype)
        if inp.dtype == np.float16:
            # half samples, as PyTorch draws them, kept below 1
            samples = np.minimum(samples.astype(np.float16), np.float16(1) - np.float16(2**-11))
    else:
        samples = inp.backend.to_host(random_samples)
        if samples.dtype.kind != "f":
            raise TypeError(f"{op}: random_samples must be a float array, got {samples.dtype}")
        if samples.shape != (n, c, nd):
            raise ValueError(
                f"{op}: random_samples must have shape {(n, c, nd)}, got {samples.shape}"
            )
        samples = samples.astype(np.float16 if inp.dtype == np.float16 else dtype, copy=False)
        if samples.size and not (samples.min() >= 0 and samples.max() < 1):
            raise ValueError(f"{op}: random_samples must lie in [0, 1), got values "
                             f"from {samples.min()} to {samples.max()}")
    samples3 = np.zeros((n, c, 3), dtype)
    # PyTorch's order: in 2d, sample 0 drives W and sample 1 drives H; in 3d, D, H, W
    samples3[:, :, 3 - nd:] = samples[:, :, ::-1] if nd == 2 else samples
    return inp.backend.from_host(samples3)


def _fractional_max_pool(nd, x, kernel_size, output_size, output_ratio, return_indices,
                         random_samples, rng, data_format):
    inp = Prepared(x, nd, data_format, f"fractional_max_pool{nd}d", integers_allowed=True)
    geometry = _params.fractional_geometry(inp.spatial, kernel_size, output_size, output_ratio)
    samples3 = _fractional_samples(inp, random_samples, rng, nd)
    # PyTorch places float16 windows with float16 arithmetic
    kind = "fractional_half" if inp.dtype == np.float16 else "fractional"
    return _max_reduce(inp, geometry, kind, samples3, return_indices)


def _define_fractional_max_pool(nd):
    def fractional_max_pool(x, kernel_size, output_size=None, output_ratio=None,
                            return_indices=False, random_samples=None, rng=None, *,
                            data_format="channels_first"):
        return _fractional_max_pool(nd, x, kernel_size, output_size, output_ratio,
                                    return_indices, random_samples, rng, data_format)

    return _publish(fractional_max_pool, f"fractional_max_pool{nd}d", nd,
                    f"{nd}-d fractional max pooling, as "
                    f"``torch.nn.functional.fractional_max_pool{nd}d``.", f"""
    kernel_size : int or tuple of {nd} ints
    output_size : int or tuple of {nd} ints, or output_ratio : float or tuple in (0, 1)
        Exactly one of the two: the output size, or its ratio to the input size.
    return_indices : bool
        Also return the int64 flat index of each maximum within its (n, c) plane.
    random_samples : float array of shape (N, C, {nd}) in [0, 1), optional
        The samples that place the windows (PyTorch's ``_random_samples``; in 2d,
        sample 0 drives W and sample 1 drives H). Drawn from ``rng`` when omitted.
    rng : numpy.random.Generator, optional
        Source of the samples (default: a fresh ``numpy.random.default_rng()``).""",
                    "The pooled array, and the indices if ``return_indices``.")


# --- max unpooling ----------------------------------------------------------------------


def _indices(inp, indices, spatial, plane_spatial):
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


def _max_unpool(nd, x, indices, kernel_size, stride, padding, output_size, data_format):
    inp = Prepared(x, nd, data_format, f"max_unpool{nd}d", integers_allowed=True)
    geometry = _params.unpool_geometry(inp.spatial, kernel_size, stride, padding, output_size)
    out_spatial = _out_spatial(inp.geometry5(geometry))
    idx5 = _indices(inp, indices, inp.x5.shape[2:], out_spatial)
    return inp.restore(inp.backend.unpool(inp.x5, idx5, out_spatial, inp.channels_last))


def _define_max_unpool(nd):
    def max_unpool(x, indices, kernel_size, stride=None, padding=0, output_size=None, *,
                   data_format="channels_first"):
        return _max_unpool(nd, x, indices, kernel_size, stride, padding, output_size,
                           data_format)

    return _publish(max_unpool, f"max_unpool{nd}d", nd,
                    f"{nd}-d max unpooling, the partial inverse of ``max_pool{nd}d``, as "
                    f"``torch.nn.functional.max_unpool{nd}d``.", f"""
    indices : integer array of x's shape
        Flat positions within each output (n, c) plane, as ``max_pool{nd}d`` returns.
    kernel_size, stride, padding : int or tuple
        The pooling's arguments; they give the default output size
        ``(in - 1) * stride + kernel_size - 2 * padding``.
    output_size : sequence of {nd} ints (optionally led by N and C), optional
        Another output size, strictly within ``stride`` of the default.""",
                    "A zero-filled array with each x value at its index (the last one wins "
                    "where indices repeat).")


# --- backward ---------------------------------------------------------------------------
#
# Each F_backward(grad_output, x, [indices,] *F's arguments) returns the gradient of F with
# respect to x, with x's shape, dtype and memory layout. Every input element sums, in a
# fixed order, the outputs whose windows hold it: bitwise reproducible, no atomics.


def _gradient(inp, grad_output, spatial):
    """grad_output as a 5-d view, checked against the forward output's shape and dtype."""
    grad5 = inp.canonical(grad_output, "grad_output", spatial)
    if grad5.dtype != inp.dtype:
        raise TypeError(f"{inp.op}: grad_output must have the input's dtype {inp.dtype}, "
                        f"got {grad5.dtype}")
    return grad5


def _out_spatial(geometry5):
    return tuple(g[1] for g in geometry5)


def _max_pool_backward(nd, grad_output, x, indices, kernel_size, stride, padding, dilation,
                       ceil_mode, data_format):
    inp = Prepared(x, nd, data_format, f"max_pool{nd}d_backward", integers_allowed=False)
    geometry = inp.geometry5(_params.fixed_geometry(inp.spatial, kernel_size, stride, padding,
                                                    dilation, ceil_mode))
    spatial = _out_spatial(geometry)
    grad5 = _gradient(inp, grad_output, spatial)
    # a window with no tap inside the input (dilation and padding) reports an index
    # that may lie off the plane; its output is a constant -inf and passes no gradient
    idx5 = _indices(inp, indices, spatial, None)
    return inp.restore(inp.backend.max_backward(grad5, idx5, inp.x5, geometry, "fixed",
                                                inp.channels_last))


def _avg_pool_backward(nd, grad_output, x, kernel_size, stride, padding, ceil_mode,
                       count_include_pad, divisor_override, data_format):
    inp = Prepared(x, nd, data_format, f"avg_pool{nd}d_backward", integers_allowed=False)
    geometry = inp.geometry5(_params.fixed_geometry(inp.spatial, kernel_size, stride, padding,
                                                    1, ceil_mode))
    override = _params.avg_divisor_override(divisor_override)
    grad5 = _gradient(inp, grad_output, _out_spatial(geometry))
    return inp.restore(inp.backend.sum_backward(grad5, inp.x5, None, geometry, "fixed", "avg",
                                                inp.channels_last, bool(count_include_pad),
                                                override))


def _adaptive_geometry_from_gradient(inp, grad_output):
    grad5 = _gradient(inp, grad_output, None)
    geometry = _params.adaptive_geometry(inp.spatial, tuple(grad5.shape[5 - inp.nd:]))
    return grad5, inp.geometry5(geometry)


def _adaptive_avg_pool_backward(nd, grad_output, x, data_format):
    inp = Prepared(x, nd, data_format, f"adaptive_avg_pool{nd}d_backward",
                   integers_allowed=False)
    grad5, geometry = _adaptive_geometry_from_gradient(inp, grad_output)
    return inp.restore(inp.backend.sum_backward(grad5, inp.x5, None, geometry, "adaptive",
                                                "avg", inp.channels_last, False))


def _adaptive_max_pool_backward(nd, grad_output, x, indices, data_format):
    inp = Prepared(x, nd, data_format, f"adaptive_max_pool{nd}d_backward",
                   integers_allowed=False)
    grad5, geometry = _adaptive_geometry_from_gradient(inp, grad_output)
    idx5 = _indices(inp, indices, grad5.shape[2:], inp.x5.shape[2:])
    return inp.restore(inp.backend.max_backward(grad5, idx5, inp.x5, geometry, "adaptive",
                                                inp.channels_last))


def _lp_pool_backward(nd, grad_output, x, norm_type, kernel_size, stride, ceil_mode,
                      data_format):
    inp = Prepared(x, nd, data_format, f"lp_pool{nd}d_backward", integers_allowed=False)
    p = _params.lp_norm(norm_type)
    geometry = inp.geometry5(_params.fixed_geometry(inp.spatial, kernel_size, stride, 0, 1,
                                                    ceil_mode))
    grad5 = _gradient(inp, grad_output, _out_spatial(geometry))
    backend = inp.backend
    if math.isinf(p):
        grad = backend.lp_extreme_backward(grad5, inp.x5, geometry, p < 0, inp.channels_last)
    else:
        out5 = backend.sum_reduce(inp.x5, geometry, "fixed", "lp", inp.channels_last,
                                  norm_type=p)
        grad = backend.sum_backward(grad5, inp.x5, out5, geometry, "fixed", "lp",
                                    inp.channels_last, norm_type=p)
    return inp.restore(grad)


def _fractional_max_pool_backward(nd, grad_output, x, indices, kernel_size, output_size,
                                  output_ratio, data_format):
    inp = Prepared(x, nd, data_format, f"fractional_max_pool{nd}d_backward",
                   integers_allowed=False)
    geometry = _params.fractional_geometry(inp.spatial, kernel_size, output_size, output_ratio)
    spatial = _out_spatial(inp.geometry5(geometry))
    grad5 = _gradient(inp, grad_output, spatial)
    idx5 = _indices(inp, indices, spatial, inp.x5.shape[2:])
    # the windows depend on samples the caller no longer has: gather per plane instead
    return inp.restore(inp.backend.max_backward(grad5, idx5, inp.x5, None, None,
                                                inp.channels_last))


def _max_unpool_backward(nd, grad_output, x, indices, kernel_size, stride, padding,
                         output_size, data_format):
    inp = Prepared(x, nd, data_format, f"max_unpool{nd}d_backward", integers_allowed=False)
    geometry = _params.unpool_geometry(inp.spatial, kernel_size, stride, padding, output_size)
    spatial = _out_spatial(inp.geometry5(geometry))
    grad5 = _gradient(inp, grad_output, spatial)
    idx5 = _indices(inp, indices, inp.x5.shape[2:], spatial)
    return inp.restore(inp.backend.unpool_backward(grad5, idx5, inp.x5, inp.channels_last))


_GRAD_DOC = """
    grad_output : array
        Gradient with respect to the forward's output (its shape, x's dtype).
    x : array
        The forward's input."""


def _publish_backward(implementation, forward, extra=""):
    name = forward.__name__ + "_backward"
    implementation.__name__ = implementation.__qualname__ = name
    implementation.__module__ = __name__
    implementation.__doc__ = (
        f"Gradient of ``{forward.__name__}`` with respect to its input.\n\n"
        f"    Takes ``grad_output, x``{extra}, then {forward.__name__}'s own arguments\n"
        f"    (see its docstring), and returns grad_input with x's shape, dtype and memory\n"
        f"    layout. Deterministic: bitwise the same for any thread count.\n\n"
        f"    Parameters\n    ----------" + _GRAD_DOC +
        ("\n    indices : integer array\n        The indices the forward returned."
         if extra else "") + "\n"
    )
    return implementation


def _define_backwards(nd):
    def max_pool_backward(grad_output, x, indices, kernel_size, stride=None, padding=0,
                          dilation=1, ceil_mode=False, *, data_format="channels_first"):
        return _max_pool_backward(nd, grad_output, x, indices, kernel_size, stride, padding,
                                  dilation, ceil_mode, data_format)

    def avg_pool_backward(grad_output, x, kernel_size, stride=None, padding=0,
                          ceil_mode=False, count_include_pad=True, divisor_override=None, *,
                          data_format="channels_first"):
        return _avg_pool_backward(nd, grad_output, x, kernel_size, stride, padding, ceil_mode,
                                  count_include_pad, divisor_override, data_format)

    def adaptive_avg_pool_backward(grad_output, x, *, data_format="channels_first"):
        return _adaptive_avg_pool_backward(nd, grad_output, x, data_format)

    def adaptive_max_pool_backward(grad_output, x, indices, *, data_format="channels_first"):
        return _adaptive_max_pool_backward(nd, grad_output, x, indices, data_format)

    def lp_pool_backward(grad_output, x, norm_type, kernel_size, stride=None, ceil_mode=False,
                         *, data_format="channels_first"):
        return _lp_pool_backward(nd, grad_output, x, norm_type, kernel_size, stride, ceil_mode,
                                 data_format)

    def fractional_max_pool_backward(grad_output, x, indices, kernel_size, output_size=None,
                                     output_ratio=None, *, data_format="channels_first"):
        return _fractional_max_pool_backward(nd, grad_output, x, indices, kernel_size,
                                             output_size, output_ratio, data_format)

    def max_unpool_backward(grad_output, x, indices, kernel_size, stride=None, padding=0,
                            output_size=None, *, data_format="channels_first"):
        return _max_unpool_backward(nd, grad_output, x, indices, kernel_size, stride, padding,
                                    output_size, data_format)

    forwards = globals()
    pairs = [(max_pool_backward, "max_pool", ", indices"),
             (avg_pool_backward, "avg_pool", ""),
             (adaptive_avg_pool_backward, "adaptive_avg_pool", ""),
             (adaptive_max_pool_backward, "adaptive_max_pool", ", indices"),
             (lp_pool_backward, "lp_pool", ""),
             (fractional_max_pool_backward, "fractional_max_pool", ", indices"),
             (max_unpool_backward, "max_unpool", ", indices")]
    return {f"{family}{nd}d_backward": _publish_backward(fn, forwards[f"{family}{nd}d"], extra)
            for fn, family, extra in pairs if f"{family}{nd}d" in forwards}


max_pool1d, max_pool2d, max_pool3d = (_define_max_pool(nd) for nd in (1, 2, 3))
avg_pool1d, avg_pool2d, avg_pool3d = (_define_avg_pool(nd) for nd in (1, 2, 3))
adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d = (
    _define_adaptive_avg_pool(nd) for nd in (1, 2, 3)
)
adaptive_max_pool1d, adaptive_max_pool2d, adaptive_max_pool3d = (
    _define_adaptive_max_pool(nd) for nd in (1, 2, 3)
)
lp_pool1d, lp_pool2d, lp_pool3d = (_define_lp_pool(nd) for nd in (1, 2, 3))
fractional_max_pool2d, fractional_max_pool3d = (_define_fractional_max_pool(nd) for nd in (2, 3))
max_unpool1d, max_unpool2d, max_unpool3d = (_define_max_unpool(nd) for nd in (1, 2, 3))

for _nd in (1, 2, 3):
    globals().update(_define_backwards(_nd))

__all__ = [
    name
    for name in dir()
    if not name.startswith("_") and name not in ("math", "np", "Prepared")
]
