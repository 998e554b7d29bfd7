"""numbapool inside PyTorch models: the pooling functions as autograd operations on tensors.

``numbapool.torch.<op>`` has the signature of ``torch.nn.functional.<op>`` and
``numbapool.torch.nn.<Layer>`` is ``torch.nn.<Layer>`` (same constructor, attributes,
state and repr) computing with numbapool::

    import numbapool.torch as nptorch
    y = nptorch.adaptive_avg_pool2d(x, 7)          # x: a torch.Tensor; y too
    y.sum().backward()                              # x.grad from numbapool's backward
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), nptorch.nn.MaxPool2d(2))

What you get over PyTorch's own ops:

- gradients that are bitwise the same on every run and thread count, also on CUDA, where
  PyTorch refuses several pooling backwards under ``torch.use_deterministic_algorithms(True)``;
- LP pooling as the p-norm of the window, ``|x|`` included (PyTorch raises ``x`` itself to
  the power p, which is wrong for negative inputs and odd or fractional p).

Tensors are handed over without copying: CPU tensors as NumPy views (``channels_last``
memory stays channels-last), CUDA tensors through ``__cuda_array_interface__``, with
PyTorch's current stream named so that numbapool queues its kernels behind PyTorch's work
(no synchronisation). Every op is an ``autograd.Function`` of numbapool's forward and
``*_backward``; second derivatives are not provided (a clear error). Fractional max pooling
draws its samples with ``torch.rand`` as PyTorch does, so ``torch.manual_seed`` gives
PyTorch's windows. Supported devices: CPU and CUDA (the GPU needs numbapool's GPU extra);
dtypes as numbapool's (bfloat16 needs ``ml_dtypes``).

Importing this module imports torch; ``import numbapool`` alone never does.
"""

import functools
import inspect

import numpy as np
import torch

from numbapool import _ops
from numbapool import functional as _functional

__all__ = []  # filled below with every forward function of numbapool.functional


# ---------------------------------------------------------------------------------------
# Tensors to arrays and back


class _CudaTensorView:
    """A CUDA tensor presented through ``__cuda_array_interface__`` version 3 with
    PyTorch's current stream named (PyTorch's own interface names none, which would put
    numbapool's kernels on the default stream, unordered with PyTorch's work)."""

    def __init__(self, tensor):
        self.tensor = tensor  # keeps the memory alive while numbapool holds the view
        interface = dict(tensor.__cuda_array_interface__)
        stream = torch.cuda.current_stream(tensor.device).cuda_stream
        # the interface's 0 means "no stream given"; PyTorch's legacy default stream is 1
        interface.update(version=3, stream=stream if stream else 1)
        self.__cuda_array_interface__ = interface


def _array(tensor, name="input"):
    """The array numbapool computes on for ``tensor``, sharing its memory."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"numbapool.torch: {name} must be a torch.Tensor, got "
                        f"{type(tensor).__name__}")
    tensor = tensor.detach()
    if tensor.device.type == "cpu":
        if tensor.dtype == torch.bfloat16:
            return tensor.view(torch.int16).numpy().view(_bfloat16_dtype())
        return tensor.resolve_conj().resolve_neg().numpy()
    if tensor.device.type == "cuda":
        return _CudaTensorView(tensor)
    raise TypeError(f"numbapool.torch: {name} is on device {tensor.device}; numbapool "
                    "computes on CPU and CUDA tensors")


@functools.cache
def _bfloat16_dtype():
    try:
        import ml_dtypes
    except ImportError:
        raise TypeError('numbapool.torch: bfloat16 tensors need ml_dtypes '
                        '(pip install "numbapool[bfloat16]")') from None
    return np.dtype(ml_dtypes.bfloat16)


def _tensor(array, like):
    """A tensor of numbapool's result ``array`` (no copy), on ``like``'s device."""
    if isinstance(array, np.ndarray):
        if array.dtype.name == "bfloat16":
            return torch.from_numpy(array.view(np.int16)).view(torch.bfloat16)
        return torch.from_numpy(array)
    return torch.as_tensor(array, device=like.device)


# ---------------------------------------------------------------------------------------
# One autograd operation per call


class _Call:
    """One call of a numbapool op: its table row and rank and the bound arguments (PyTorch's
    names), and what its backward needs to be given."""

    def __init__(self, op, nd, arguments):
        self.op, self.nd, self.arguments = op, nd, arguments
        self.with_indices = "return_indices" in arguments

    def forward(self, x):
        arguments = {name: _argument(value, name) for name, value in self.arguments.items()}
        if self.with_indices:
            arguments["return_indices"] = True  # backward needs them
        return getattr(_functional, self.op.function_name(self.nd))(x, **arguments)

    def backward(self, grad_output, x, indices):
        arguments = {}
        for param in self.op.backward_params():
            if param.name == "indices":
                arguments["indices"] = indices
            else:
                arguments[param.name] = _argument(self.arguments[param.name], param.name)
        function = getattr(_functional, self.op.function_name(self.nd) + "_backward")
        return function(grad_output, x, **arguments)


def _argument(value, name):
    """A tensor argument (indices, samples) as an array; other values as given."""
    return _array(value, name) if isinstance(value, torch.Tensor) else value


class _Pooling(torch.autograd.Function):
    """A numbapool forward with numbapool's ``*_backward`` as its gradient. Returns the
    output and, for max-type ops, the indices (not differentiable)."""

    @staticmethod
    def forward(ctx, input, call):
        result = call.forward(_array(input))
        ctx.call = call
        if call.with_indices:
            output, indices = (_tensor(part, input) for part in result)
            ctx.mark_non_differentiable(indices)
            ctx.save_for_backward(input, indices)
            return output, indices
        # unpooling's indices are an argument, kept for its backward
        given = call.arguments.get("indices")
        ctx.save_for_backward(input, given)
        return _tensor(result, input)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output, *unused_indices_gradient):
        input, indices = ctx.saved_tensors
        grad = ctx.call.backward(_array(grad_output, "grad_output"), _array(input),
                                 None if indices is None else _array(indices, "indices"))
        return _tensor(grad, input), None


# ---------------------------------------------------------------------------------------
# The functions


def _torch_signature(function):
    """``function``'s signature as PyTorch's: without numbapool's keyword-only additions
    (``data_format``: a tensor's memory format says it; ``rng``, ``random_samples``)."""
    signature = inspect.signature(function)
    kept = [p for p in signature.parameters.values() if p.kind != p.KEYWORD_ONLY]
    return signature.replace(parameters=kept)


def _fractional_samples(input, nd):
    """Samples drawn as ``torch.nn.functional.fractional_max_pool{nd}d`` draws them."""
    batches = 1 if input.dim() == nd + 1 else input.size(0)
    dtype = input.dtype if input.is_floating_point() else torch.float64
    return torch.rand(batches, input.size(-nd - 1), nd, dtype=dtype, device=input.device)


def _function(op, nd):
    name = op.function_name(nd)
    signature = _torch_signature(getattr(_functional, name))

    def pool(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        input = arguments.pop("input")
        if not isinstance(input, torch.Tensor):
            raise TypeError(f"numbapool.torch.{name}: input must be a torch.Tensor, got "
                            f"{type(input).__name__}")
        if op.name == "fractional_max_pool" and arguments["_random_samples"] is None \
                and input.dim() in (nd + 1, nd + 2):
            arguments["_random_samples"] = _fractional_samples(input, nd)
        call = _Call(op, nd, arguments)
        result = _Pooling.apply(input, call)
        if call.with_indices and not arguments["return_indices"]:
            return result[0]
        return result

    pool.__name__ = pool.__qualname__ = name
    pool.__module__ = __name__
    pool.__signature__ = signature
    pool.__doc__ = (f"``torch.nn.functional.{name}`` computed by ``numbapool.{name}``, "
                    f"differentiable (its gradient is ``numbapool.{name}_backward``).\n\n"
                    f"    Arguments as PyTorch's; see ``help(numbapool.{name})`` for each, "
                    "and this module's docstring\n    for devices, streams and "
                    "differences.\n")
    return pool


def _functions():
    return {op.function_name(nd): _function(op, nd) for op in _ops.OPS for nd in op.dims}


globals().update(_functions())
__all__ += [op.function_name(nd) for op in _ops.OPS for nd in op.dims]

from numbapool.torch import nn  # noqa: E402  (nn builds on the functions above)

__all__.append("nn")
