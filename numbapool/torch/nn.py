"""PyTorch's pooling layers computed by numbapool.

Each class subclasses its ``torch.nn`` namesake, so constructor, attributes, buffers,
``state_dict`` and repr are PyTorch's own; only ``forward`` differs: it calls the
matching ``numbapool.torch`` function with the layer's attributes.
"""

import inspect

import torch

import numbapool.torch as _functions
from numbapool import _ops

__all__ = []


def _forward(function):
    """``forward(input, *args)``: the layer's attributes fill the function's parameters
    they name (``kernel_size``, ``stride``, ...); the call gives the rest, in order (for
    unpooling ``indices`` and ``output_size``)."""
    parameters = list(inspect.signature(function).parameters)[1:]

    def forward(self, input, *args, **kwargs):
        stored = {name: getattr(self, name) for name in parameters if hasattr(self, name)}
        given = [name for name in parameters if name not in stored]
        if len(args) > len(given):
            raise TypeError(f"{type(self).__name__}.forward() takes at most "
                            f"{len(given) + 1} positional arguments ({len(args) + 1} given)")
        return function(input, **stored, **dict(zip(given, args)), **kwargs)

    return forward


def _layer(op, nd):
    name = op.layer_name(nd)
    function = getattr(_functions, op.function_name(nd))
    base = getattr(torch.nn, name)
    return type(name, (base,), {
        "__module__": __name__,
        "__doc__": f"``torch.nn.{name}`` computed by numbapool "
                   f"(``numbapool.torch.{op.function_name(nd)}``).",
        "forward": _forward(function),
    })


_LAYERS = {op.layer_name(nd): _layer(op, nd) for op in _ops.OPS for nd in op.dims}
globals().update(_LAYERS)
__all__ += list(_LAYERS)
