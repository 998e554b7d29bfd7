"""Pooling layers with PyTorch's ``torch.nn`` constructors, on NumPy/CuPy arrays.

Each layer stores its arguments under PyTorch's attribute names, is called on an
array like a ``torch.nn`` module (``y = layer(x)``) and prints like one. Every
constructor also takes a keyword-only ``data_format``: ``"channels_first"`` (the
default, ``(N, C, *spatial)`` like PyTorch) or ``"channels_last"``
(``(N, *spatial, C)``). Unbatched inputs (``(C, *spatial)`` or ``(*spatial, C)``)
work too.

Layers are not autograd modules. Instead, each keeps what its gradient needs
from its most recent forward call, and ``layer.backward(grad_output)`` returns the
gradient with respect to that call's input::

    pool = MaxPool2d(2)
    y = pool(x)
    grad_x = pool.backward(grad_y)   # same shape as x

Only the last forward call is remembered, so call ``backward`` before reusing the
layer on another input.
"""

import collections.abc
import itertools

import numpy as np

from . import functional as F

__all__ = [
    "MaxPool1d", "MaxPool2d", "MaxPool3d",
    "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d",
    "LPPool1d", "LPPool2d", "LPPool3d",
    "FractionalMaxPool2d", "FractionalMaxPool3d",
    "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d",
]

_DATA_FORMATS = ("channels_first", "channels_last")


def _ntuple(value, n):
    """PyTorch's ``_single``/``_pair``/``_triple``: an iterable becomes a tuple,
    a scalar is repeated ``n`` times."""
    if isinstance(value, collections.abc.Iterable):
        return tuple(value)
    return tuple(itertools.repeat(value, n))


class _Pool:
    """Shared machinery: data_format, ``__call__``, ``__repr__`` and the
    saved-forward bookkeeping behind ``backward``.

    Subclasses set ``_kind`` (functional name without the ``Nd`` suffix), ``_nd``
    and ``_repr_fields`` and implement ``forward`` (calling ``_save``) and
    ``_backward``.
    """

    _kind = ""
    _nd = 0
    _repr_fields = ()

    def _init_format(self, data_format):
        if data_format not in _DATA_FORMATS:
            raise ValueError(
                f"data_format must be one of {_DATA_FORMATS}, got {data_format!r}"
            )
        self.data_format = data_format
        self._saved = None

    @property
    def _fn_name(self):
        return f"{self._kind}{self._nd}d"

    def _function(self, suffix=""):
        name = self._fn_name + suffix
        fn = getattr(F, name, None)
        if fn is None:
            raise NotImplementedError(f"numbapool.functional.{name} is not available")
        return fn

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self):
        """The text between the parentheses of ``repr(layer)`` (as in PyTorch)."""
        parts = [f"{name}={getattr(self, name)}" for name in self._repr_fields]
        if self.data_format != "channels_first":
            parts.append(f"data_format={self.data_format!r}")
        return ", ".join(parts)

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"

    def _save(self, **saved):
        self._saved = saved

    def backward(self, grad_output):
        """Gradient of the loss with respect to the input of the last forward call,
        given ``grad_output``, the gradient with respect to its output."""
        if self._saved is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() needs a forward pass first: "
                "call the layer on an input, then call backward(grad_output)"
            )
        return self._backward(self._function("_backward"), grad_output, **self._saved)

    def _backward(self, fn, grad_output, **saved):  # pragma: no cover - abstract
        raise NotImplementedError


# --------------------------------------------------------------------------- max


class _MaxPoolNd(_Pool):
    _kind = "max_pool"
    _repr_fields = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices=False, ceil_mode=False, *,
                 data_format="channels_first"):
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode
        self._init_format(data_format)

    def forward(self, input):
        """Max-pool ``input``; returns ``(output, indices)`` if ``return_indices``."""
        out, indices = self._function()(
            input, self.kernel_size, stride=self.stride, padding=self.padding,
            dilation=self.dilation, ceil_mode=self.ceil_mode, return_indices=True,
            data_format=self.data_format,
        )
        self._save(input=input, indices=indices)
        return (out, indices) if self.return_indices else out

    def _backward(self, fn, grad_output, input, indices):
        return fn(
            grad_output, input, indices, self.kernel_size, stride=self.stride,
            padding=self.padding, dilation=self.dilation, ceil_mode=self.ceil_mode,
            data_format=self.data_format,
        )


class MaxPool1d(_MaxPoolNd):
    """1-D max pooling over ``(N, C, L)`` inputs, like ``torch.nn.MaxPool1d``."""

    _nd = 1


class MaxPool2d(_MaxPoolNd):
    """2-D max pooling over ``(N, C, H, W)`` inputs, like ``torch.nn.MaxPool2d``."""

    _nd = 2


class MaxPool3d(_MaxPoolNd):
    """3-D max pooling over ``(N, C, D, H, W)`` inputs, like ``torch.nn.MaxPool3d``."""

    _nd = 3


# --------------------------------------------------------------------------- avg


class _AvgPoolNd(_Pool):
    _kind = "avg_pool"
    _repr_fields = ("kernel_size", "stride", "padding")

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None, *,
                 data_format="channels_first"):
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override
        self._init_format(data_format)

    def _options(self):
        options = dict(
            stride=self.stride, padding=self.padding, ceil_mode=self.ceil_mode,
            count_include_pad=self.count_include_pad, data_format=self.data_format,
        )
        if self.divisor_override is not None:
            options["divisor_override"] = self.divisor_override
        return options

    def forward(self, input):
        """Average-pool ``input``."""
        out = self._function()(input, self.kernel_size, **self._options())
        self._save(input=input)
        return out

    def _backward(self, fn, grad_output, input):
        return fn(grad_output, input, self.kernel_size, **self._options())


class AvgPool1d(_AvgPoolNd):
    """1-D average pooling over ``(N, C, L)`` inputs, like ``torch.nn.AvgPool1d``
    (which has no ``divisor_override``)."""

    _nd = 1
    divisor_override = None

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, *, data_format="channels_first"):
        # PyTorch's AvgPool1d stores its sizes as 1-tuples
        self.kernel_size = _ntuple(kernel_size, 1)
        self.stride = _ntuple(stride if stride is not None else kernel_size, 1)
        self.padding = _ntuple(padding, 1)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self._init_format(data_format)


class AvgPool2d(_AvgPoolNd):
    """2-D average pooling over ``(N, C, H, W)`` inputs, like ``torch.nn.AvgPool2d``."""

    _nd = 2


class AvgPool3d(_AvgPoolNd):
    """3-D average pooling over ``(N, C, D, H, W)`` inputs, like
    ``torch.nn.AvgPool3d``."""

    _nd = 3


# ---------------------------------------------------------------------- adaptive


class _AdaptiveAvgPoolNd(_Pool):
    _kind = "adaptive_avg_pool"
    _repr_fields = ("output_size",)

    def __init__(self, output_size, *, data_format="channels_first"):
        self.output_size = output_size
        self._init_format(data_format)

    def forward(self, input):
        """Average-pool ``input`` to ``output_size`` (``None`` keeps that size)."""
        out = self._function()(input, self.output_size, data_format=self.data_format)
        self._save(input=input)
        return out

    def _backward(self, fn, grad_output, input):
        return fn(grad_output, input, data_format=self.data_format)


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """1-D adaptive average pooling, like ``torch.nn.AdaptiveAvgPool1d``."""

    _nd = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """2-D adaptive average pooling, like ``torch.nn.AdaptiveAvgPool2d``."""

    _nd = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """3-D adaptive average pooling, like ``torch.nn.AdaptiveAvgPool3d``."""

    _nd = 3


class _AdaptiveMaxPoolNd(_Pool):
    _kind = "adaptive_max_pool"
    _repr_fields = ("output_size",)

    def __init__(self, output_size, return_indices=False, *,
                 data_format="channels_first"):
        self.output_size = output_size
        self.return_indices = return_indices
        self._init_format(data_format)

    def forward(self, input):
        """Max-pool ``input`` to ``output_size``; returns ``(output, indices)`` if
        ``return_indices``."""
        out, indices = self._function()(
            input, self.output_size, return_indices=True, data_format=self.data_format
        )
        self._save(input=input, indices=indices)
        return (out, indices) if self.return_indices else out

    def _backward(self, fn, grad_output, input, indices):
        return fn(grad_output, input, indices, data_format=self.data_format)


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """1-D adaptive max pooling, like ``torch.nn.AdaptiveMaxPool1d``."""

    _nd = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """2-D adaptive max pooling, like ``torch.nn.AdaptiveMaxPool2d``."""

    _nd = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """3-D adaptive max pooling, like ``torch.nn.AdaptiveMaxPool3d``."""

    _nd = 3


# ------------------------------------------------------------------------- power


class _LPPoolNd(_Pool):
    _kind = "lp_pool"
    _repr_fields = ("norm_type", "kernel_size", "stride", "ceil_mode")

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False, *,
                 data_format="channels_first"):
        self.norm_type = norm_type
        self.kernel_size = kernel_size
        self.stride = stride
        self.ceil_mode = ceil_mode
        self._init_format(data_format)

    def _args(self):
        return float(self.norm_type), self.kernel_size

    def forward(self, input):
        """Power-average pool ``input``: ``(sum over window of |x|**p) ** (1/p)``.

        Unlike PyTorch this uses ``|x|`` (PyTorch gives NaN or wrong signs for
        negative inputs) and, with ``ceil_mode``, sums only the in-bounds taps of a
        window that hangs past the input (PyTorch rescales it)."""
        out = self._function()(
            input, *self._args(), stride=self.stride, ceil_mode=self.ceil_mode,
            data_format=self.data_format,
        )
        self._save(input=input)
        return out

    def _backward(self, fn, grad_output, input):
        return fn(
            grad_output, input, *self._args(), stride=self.stride,
            ceil_mode=self.ceil_mode, data_format=self.data_format,
        )


class LPPool1d(_LPPoolNd):
    """1-D power-average pooling, like ``torch.nn.LPPool1d``."""

    _nd = 1


class LPPool2d(_LPPoolNd):
    """2-D power-average pooling, like ``torch.nn.LPPool2d``."""

    _nd = 2


class LPPool3d(_LPPoolNd):
    """3-D power-average pooling, like ``torch.nn.LPPool3d``."""

    _nd = 3


# -------------------------------------------------------------------- fractional


class _FractionalMaxPoolNd(_Pool):
    _kind = "fractional_max_pool"
    # PyTorch prints these layers with an empty extra_repr
    _repr_fields = ()

    def __init__(self, kernel_size, output_size=None, output_ratio=None,
                 return_indices=False, _random_samples=None, *, rng=None,
                 data_format="channels_first"):
        n = self._nd
        name = type(self).__name__
        if not all(k > 0 for k in _ntuple(kernel_size, n)):
            raise ValueError(f"kernel_size must be greater than 0, but got {kernel_size}")
        self.kernel_size = _ntuple(kernel_size, n)
        self.return_indices = return_indices
        self._random_samples = _random_samples
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {rng!r}")
        self.rng = rng
        # without a user generator, one fresh generator serves every call
        self._rng = rng if rng is not None else np.random.default_rng()
        self.output_size = _ntuple(output_size, n) if output_size is not None else None
        self.output_ratio = _ntuple(output_ratio, n) if output_ratio is not None else None
        if output_size is None and output_ratio is None:
            raise ValueError(
                f"{name} requires specifying either an output size, or a pooling ratio"
            )
        if output_size is not None and output_ratio is not None:
            raise ValueError("only one of output_size and output_ratio may be specified")
        if self.output_ratio is not None and not all(0 < r < 1 for r in self.output_ratio):
            raise ValueError(f"output_ratio must be between 0 and 1 (got {output_ratio})")
        self._init_format(data_format)

    def _draw_samples(self, input):
        """Random samples of shape ``(N, C, nd)`` in ``[0, 1)`` for ``input``."""
        n = self._nd
        batched = input.ndim == n + 2
        if self.data_format == "channels_first":
            channels = input.shape[1 if batched else 0]
        else:
            channels = input.shape[-1]
        shape = (input.shape[0] if batched else 1, channels, n)
        # the dtype the window arithmetic uses: float64 for float64 (and integer)
        # inputs, float32 otherwise; drawn as the functional would draw them, so a
        # layer and the function given equal generators place equal windows
        dtype = np.dtype(input.dtype)
        dtype = np.float64 if dtype == np.float64 or dtype.kind in "iu" else np.float32
        # host (NumPy) samples also serve GPU inputs: the functional copies them over
        return self._rng.random(shape, dtype=dtype)

    def forward(self, input):
        """Fractional max-pool ``input``; returns ``(output, indices)`` if
        ``return_indices``. Fresh random samples are drawn on every call (from
        ``rng``, or the layer's own generator) unless the layer was built with
        ``_random_samples``."""
        if not hasattr(input, "shape"):
            input = np.asarray(input)
        samples = self._random_samples
        if samples is None:
            samples = self._draw_samples(input)
        out, indices = self._function()(
            input, self.kernel_size, output_size=self.output_size,
            output_ratio=self.output_ratio, return_indices=True,
            random_samples=samples, data_format=self.data_format,
        )
        self._save(input=input, indices=indices, out_shape=out.shape)
        self.last_random_samples = samples
        return (out, indices) if self.return_indices else out

    def _backward(self, fn, grad_output, input, indices, out_shape):
        # the output size the forward produced (also when built from output_ratio)
        n = self._nd
        if self.data_format == "channels_last":
            spatial = out_shape[-1 - n:-1]
        else:
            spatial = out_shape[-n:]
        return fn(
            grad_output, input, indices, self.kernel_size, output_size=tuple(spatial),
            data_format=self.data_format,
        )


class FractionalMaxPool2d(_FractionalMaxPoolNd):
    """2-D fractional max pooling (Graham, 2014), like ``torch.nn.FractionalMaxPool2d``.

    Give exactly one of ``output_size`` or ``output_ratio`` (each in ``(0, 1)``).
    ``rng`` (a ``numpy.random.Generator``) makes the random window placement
    reproducible; the samples used by the last call are in ``last_random_samples``.
    """

    _nd = 2


class FractionalMaxPool3d(_FractionalMaxPoolNd):
    """3-D fractional max pooling, like ``torch.nn.FractionalMaxPool3d``; see
    :class:`FractionalMaxPool2d`."""

    _nd = 3


# ------------------------------------------------------------------------ unpool


class _MaxUnpoolNd(_Pool):
    _kind = "max_unpool"
    _repr_fields = ("kernel_size", "stride", "padding")

    def __init__(self, kernel_size, stride=None, padding=0, *,
                 data_format="channels_first"):
        n = self._nd
        self.kernel_size = _ntuple(kernel_size, n)
        self.stride = _ntuple(stride if stride is not None else kernel_size, n)
        self.padding = _ntuple(padding, n)
        self._init_format(data_format)

    def forward(self, input, indices, output_size=None):
        """Scatter ``input`` to the positions ``indices`` (from a max pool with
        ``return_indices=True``); zeros elsewhere. ``output_size`` picks the output
        size when several are possible (as in PyTorch)."""
        out = self._function()(
            input, indices, self.kernel_size, stride=self.stride, padding=self.padding,
            output_size=output_size, data_format=self.data_format,
        )
        self._save(input=input, indices=indices, output_size=output_size)
        return out

    def _backward(self, fn, grad_output, input, indices, output_size):
        return fn(
            grad_output, input, indices, self.kernel_size, stride=self.stride,
            padding=self.padding, output_size=output_size, data_format=self.data_format,
        )


class MaxUnpool1d(_MaxUnpoolNd):
    """Partial inverse of :class:`MaxPool1d`, like ``torch.nn.MaxUnpool1d``."""

    _nd = 1


class MaxUnpool2d(_MaxUnpoolNd):
    """Partial inverse of :class:`MaxPool2d`, like ``torch.nn.MaxUnpool2d``."""

    _nd = 2


class MaxUnpool3d(_MaxUnpoolNd):
    """Partial inverse of :class:`MaxPool3d`, like ``torch.nn.MaxUnpool3d``."""

    _nd = 3
