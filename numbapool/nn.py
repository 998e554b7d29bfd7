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
layer on another input. Changing the input in place between the two calls does not
change the gradient: only LP pooling's gradient reads the input's values, and its
layers keep a copy of them. The classes are generated from the op table
(``numbapool._ops.OPS``), like the functions of ``numbapool.functional``.
"""

import numpy as np

from numbapool import _docs, _elements, _ops
from numbapool import functional as F

_DATA_FORMATS = ("channels_first", "channels_last")


class _Pool:
    """What every layer shares: stored arguments, ``__call__``, ``__repr__``, and the
    saved forward behind ``backward``. A generated subclass sets ``_op`` (its row of the
    op table) and ``_nd``."""

    _op = None
    _nd = 0

    def _init(self, arguments, data_format):
        if data_format not in _DATA_FORMATS:
            raise ValueError(
                f"data_format must be one of {_DATA_FORMATS}, got {data_format!r}"
            )
        for param in self._op.constructor_params(self._nd):
            value = arguments[param.name]
            if param.store is not None:
                value = param.store(value, arguments, self._nd)
            setattr(self, param.name, value)
        self.data_format = data_format
        self._saved = None

    def _function(self, suffix=""):
        return getattr(F, self._op.function_name(self._nd) + suffix)

    def _arguments(self, params, **given):
        """The function's arguments from the layer's attributes, by name; ``given``
        first. Parameters the layer lacks keep the function's defaults."""
        arguments = {}
        for param in params:
            if param.name in given:
                arguments[param.name] = given[param.name]
            elif hasattr(self, param.name):
                arguments[param.name] = getattr(self, param.name)
        return arguments

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, input):
        """Pool ``input``; max-type layers return ``(output, indices)`` when built with
        ``return_indices=True``."""
        with_indices = hasattr(self, "return_indices")
        # the indices are always computed: backward needs them
        extra = {"return_indices": True} if with_indices else {}
        result = self._function()(input, **self._arguments(self._op.forward_params(),
                                                           **extra),
                                  data_format=self.data_format)
        if with_indices:
            out, indices = result
            self._save(input=input, indices=indices)
            return result if self.return_indices else out
        # LP's gradient reads the input's values: keep them as they are now (other layers
        # read only the input's shape and layout, which cannot change in place)
        self._save(input=_kept(input) if self._op.gradient_reads_input else input)
        return result

    def windows(self, input_size, **kwargs):
        """The windows this layer places over an input of spatial size ``input_size``
        (``numbapool.windows``; fractional layers need ``random_samples``, unpooling
        layers take ``output_size``)."""
        from numbapool._inspection import windows

        placed = [p for p in self._op.forward_params()
                  if p.name not in ("indices", "return_indices", "rng")]
        return windows(self._function(), input_size,
                       **{**self._arguments(placed), **kwargs})

    def extra_repr(self):
        """The text between the parentheses of ``repr(layer)`` (as in PyTorch)."""
        parts = [f"{name}={getattr(self, name)}" for name in self._op.repr_fields]
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
        saved = dict(self._saved)
        x = saved.pop("input")
        return self._function("_backward")(
            grad_output, x, **self._arguments(self._op.backward_params(), **saved),
            data_format=self.data_format)


def _kept(array):
    """A copy of ``array`` in its memory order (NumPy, CuPy), so that changing the array
    after the forward call does not change the gradient; Numba device arrays, which
    cannot copy themselves, are kept as they are."""
    try:
        return array.copy(order="K")
    except (AttributeError, TypeError):
        return array


class _FractionalPool(_Pool):
    """Fractional layers draw fresh samples on every call (from ``rng``, or the layer's
    own generator) unless built with ``_random_samples``; ``last_random_samples`` holds
    the samples of the last call."""

    def _init(self, arguments, data_format):
        super()._init(arguments, data_format)
        name = type(self).__name__
        if not all(k > 0 for k in self.kernel_size):
            raise ValueError(f"kernel_size must be greater than 0, but got "
                             f"{arguments['kernel_size']}")
        if self.output_size is None and self.output_ratio is None:
            raise ValueError(
                f"{name} requires specifying either an output size, or a pooling ratio"
            )
        if self.output_size is not None and self.output_ratio is not None:
            raise ValueError("only one of output_size and output_ratio may be specified")
        if self.output_ratio is not None and not all(0 < r < 1 for r in self.output_ratio):
            raise ValueError(f"output_ratio must be between 0 and 1 (got "
                             f"{arguments['output_ratio']})")
        if self.rng is not None and not isinstance(self.rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {self.rng!r}")
        # without a user generator, one fresh generator serves every call
        self._rng = self.rng if self.rng is not None else np.random.default_rng()

    def _draw_samples(self, input):
        """Samples of shape ``(N, C, nd)`` for ``input``, drawn as the functional draws
        them (so a layer and the function given equal generators place equal windows);
        host samples also serve GPU inputs."""
        nd = self._nd
        batched = input.ndim == nd + 2
        channels = input.shape[(1 if batched else 0) if self.data_format == "channels_first"
                               else -1]
        shape = (input.shape[0] if batched else 1, channels, nd)
        element = _elements.element(input.dtype, type(self).__name__, self._op.integers)
        return _ops.draw_samples(element, shape, self._rng, type(self).__name__)

    def forward(self, input):
        """Fractional max-pool ``input``; returns ``(output, indices)`` if
        ``return_indices``."""
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
        self.last_random_samples = samples
        # the output size the forward produced (also when built from output_ratio)
        spatial = (out.shape[-1 - self._nd:-1] if self.data_format == "channels_last"
                   else out.shape[-self._nd:])
        self._save(input=input, indices=indices, output_size=tuple(spatial),
                   output_ratio=None)
        return (out, indices) if self.return_indices else out


class _UnpoolLayer(_Pool):
    def forward(self, input, indices, output_size=None):
        """Scatter ``input`` to the positions ``indices`` (from a max pool with
        ``return_indices=True``); zeros elsewhere. ``output_size`` picks the output
        size when several are possible (as in PyTorch)."""
        out = self._function()(input, **self._arguments(self._op.forward_params(),
                                                         indices=indices,
                                                         output_size=output_size),
                               data_format=self.data_format)
        self._save(input=input, indices=indices, output_size=output_size)
        return out


_BASES = {"fractional_max_pool": _FractionalPool, "max_unpool": _UnpoolLayer}


def _constructor(op, nd):
    """``__init__`` with the layer's PyTorch signature, storing through ``_init``."""
    params = op.constructor_params(nd)
    positional = [p for p in params if not p.keyword_only]
    keyword = [p for p in params if p.keyword_only]

    def text(p):
        return p.name if p.default is _ops.REQUIRED else f"{p.name}={p.default!r}"

    names = ", ".join(f"{p.name!r}: {p.name}" for p in params)
    source = (f"def __init__(self, {''.join(text(p) + ', ' for p in positional)}*, "
              f"{''.join(text(p) + ', ' for p in keyword)}data_format='channels_first'):\n"
              f"    self._init({{{names}}}, data_format)\n")
    namespace = {}
    exec(compile(source, f"<numbapool.nn.{op.layer_name(nd)}>", "exec"), namespace)
    return namespace["__init__"]


def _layer(op, nd):
    name = op.layer_name(nd)
    doc = _docs.layer_doc(op, nd, op.constructor_params(nd))
    cls = type(name, (_BASES.get(op.name, _Pool),),
               {"_op": op, "_nd": nd, "__doc__": doc, "__module__": __name__,
                "__init__": _constructor(op, nd)})
    cls.__init__.__qualname__ = f"{name}.__init__"
    return cls


_LAYERS = {op.layer_name(nd): _layer(op, nd) for op in _ops.OPS for nd in op.dims}
globals().update(_LAYERS)
__all__ = list(_LAYERS)
