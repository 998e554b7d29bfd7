"""The benchmark's cases, shared by ``python -m numbapool bench`` (CPU), ``bench/gpu.py``
(CUDA) and ``bench/twins.py``: what to run, on which shape and memory layout, and how to
call numbapool and PyTorch on the same memory.

``build(case, xp=numpy)`` works for NumPy arrays (and the CPU build of PyTorch) and for
CuPy arrays (and PyTorch's CUDA tensors, which read them through
``__cuda_array_interface__`` without a copy).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

import numbapool as npl

LAYOUTS = ("cf", "cl")


@dataclass(frozen=True)
class Case:
    """One benchmark case.

    ``op`` is the forward function's name, the same in numbapool and
    ``torch.nn.functional``; ``kwargs`` are its arguments after the input.
    ``shape`` is the logical (N, C, *spatial) shape. ``layout`` is "cf"
    (contiguous, channels first) or "cl" (a channels-last array seen through a
    transpose, so C is fastest in memory, as PyTorch's ``channels_last``). A
    "backward" case times ``numbapool.<op>_backward`` against PyTorch's autograd of
    ``op``.
    """

    name: str
    op: str
    shape: tuple[int, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    layout: str = "cf"
    kind: str = "forward"

    @property
    def id(self) -> str:
        return f"{self.name}-{'x'.join(map(str, self.shape))}-{self.layout}"

    @property
    def functions(self) -> tuple[str, ...]:
        """Names of the numbapool functions the case needs."""
        if self.kind == "backward":
            return (self.op, self.op + "_backward")
        return (self.op,)


def _both_layouts(name, op, shape, kind="forward", **kwargs) -> list[Case]:
    return [Case(name, op, shape, kwargs, layout, kind) for layout in LAYOUTS]


IMAGE = (16, 64, 112, 112)
FEATURES = (32, 256, 56, 56)
WIDE = (128, 2048, 7, 7)

CASES: list[Case] = [
    *_both_layouts("global_avg", "adaptive_avg_pool2d", FEATURES, output_size=1),
    *_both_layouts("global_avg", "adaptive_avg_pool2d", WIDE, output_size=1),
    *_both_layouts("adaptive_avg7", "adaptive_avg_pool2d", FEATURES, output_size=7),
    *_both_layouts("adaptive_avg7", "adaptive_avg_pool2d", (64, 512, 13, 13), output_size=7),
    *_both_layouts("max2s2", "max_pool2d", IMAGE, kernel_size=2, stride=2),
    *_both_layouts("max3s2p1", "max_pool2d", IMAGE, kernel_size=3, stride=2, padding=1),
    *_both_layouts("avg3s2p1", "avg_pool2d", IMAGE, kernel_size=3, stride=2, padding=1),
    *_both_layouts("adaptive_max2", "adaptive_max_pool2d", WIDE, output_size=2),
    *_both_layouts("max3d_2", "max_pool3d", (4, 32, 32, 64, 64), kernel_size=2),
    *_both_layouts("max1d_3s1", "max_pool1d", (64, 64, 4096), kernel_size=3, stride=1),
    *_both_layouts("lp2_3s2", "lp_pool2d", IMAGE, norm_type=2, kernel_size=3, stride=2),
    # fixed samples (drawn by build) so that both place the same windows
    *_both_layouts("fractional_max3", "fractional_max_pool2d", IMAGE, kernel_size=3,
                   output_ratio=(0.5, 0.5)),
    # the shape is the unpooled output's; the input is max_pool2d's (values, indices)
    *_both_layouts("max_unpool2", "max_unpool2d", IMAGE, kernel_size=2),
    *_both_layouts("tiny_global_avg", "adaptive_avg_pool2d", (1, 64, 7, 7), output_size=1),
    *_both_layouts("tiny_max2", "max_pool2d", (1, 64, 7, 7), kernel_size=2),
    *_both_layouts("max3s2p1_bwd", "max_pool2d", IMAGE, "backward",
                   kernel_size=3, stride=2, padding=1),
    *_both_layouts("adaptive_avg7_bwd", "adaptive_avg_pool2d", FEATURES, "backward",
                   output_size=7),
    *_both_layouts("global_avg_bwd", "adaptive_avg_pool2d", FEATURES, "backward",
                   output_size=1),
]

# Inputs so small that the time is the fixed cost of a call.
OVERHEAD_CASES: list[Case] = [
    Case("overhead_max2", "max_pool2d", (1, 1, 4, 4), {"kernel_size": 2}),
    Case("overhead_global_avg", "adaptive_avg_pool2d", (1, 1, 4, 4), {"output_size": 1}),
]


@dataclass
class Bench:
    """Zero-argument callables that run a case, and the arrays its kernel must read."""

    numbapool: Callable[[], Any]
    torch: Callable[[], Any] | None
    reads: tuple[Any, ...]


def make_input(shape, layout="cf", dtype=np.float32, seed=0, xp=np):
    """Random array of logical shape (N, C, *spatial) in the given memory layout, made
    with the array module ``xp`` (NumPy or CuPy)."""
    rng = np.random.default_rng(seed)
    if layout == "cf":
        return xp.asarray(rng.standard_normal(shape, dtype=dtype))
    n, c, *spatial = shape
    x = xp.asarray(rng.standard_normal((n, *spatial, c), dtype=dtype))
    return x.transpose(0, x.ndim - 1, *range(1, x.ndim - 1))


def missing_function(case: Case) -> str | None:
    """Name of a numbapool function the case needs that does not exist, else None."""
    return next((f for f in case.functions if getattr(npl, f, None) is None), None)


def _tensor(torch, array):
    """The same memory as a tensor: NumPy arrays on the CPU, device arrays on the GPU."""
    if isinstance(array, np.ndarray):
        return torch.from_numpy(array)
    return torch.as_tensor(array, device="cuda")


def _autograd(torch, output, input, grad_output):
    return torch.autograd.grad(output, input, grad_output, retain_graph=True)[0]


def _forward_arguments(case: Case, x, dtype, xp):
    """The arrays a forward case passes (``x``; unpooling: max pooling's values and
    indices of ``x``) and its keyword arguments (fractional pooling: with samples)."""
    kwargs = dict(case.kwargs)
    if case.op.startswith("max_unpool"):
        pool = getattr(npl, case.op.replace("unpool", "pool"))
        return pool(x, return_indices=True, **kwargs), kwargs
    if case.op.startswith("fractional"):
        n, c, *spatial = case.shape
        samples = np.random.default_rng(2).random((n, c, len(spatial)), dtype=dtype)
        kwargs["_random_samples"] = xp.asarray(samples)
    return (x,), kwargs


def build(case: Case, dtype=np.float32, torch=None, xp=np) -> Bench:
    """Set up a case on arrays of ``xp``; pass the ``torch`` module to also get the
    PyTorch callable.

    Both callables return their result (for backward: the input gradient), and
    PyTorch works on the same memory as numbapool, so channels-last inputs reach
    it with channels-last strides.
    """
    x = make_input(case.shape, case.layout, dtype, xp=xp)
    forward = getattr(npl, case.op)
    torch_forward = getattr(torch.nn.functional, case.op) if torch is not None else None
    if case.kind == "forward":
        arrays, kwargs = _forward_arguments(case, x, dtype, xp)
        torch_call = None
        if torch_forward is not None:
            torch_call = partial(torch_forward, *(_tensor(torch, a) for a in arrays),
                                 **{k: _tensor(torch, v) if hasattr(v, "shape") else v
                                    for k, v in kwargs.items()})
        return Bench(partial(forward, *arrays, **kwargs), torch_call, arrays)

    with_indices = "max" in case.op
    if with_indices:
        y, indices = forward(x, **case.kwargs, return_indices=True)
    else:
        y, indices = forward(x, **case.kwargs), None
    grad = xp.empty_like(y)  # keeps y's memory layout, as autograd's grad_output would have
    grad[...] = xp.asarray(np.random.default_rng(1).standard_normal(y.shape, dtype=dtype))
    backward = getattr(npl, case.op + "_backward")
    # The backward functions infer output_size from grad_output.
    kwargs = {k: v for k, v in case.kwargs.items() if k != "output_size"}
    args = (grad, x, indices) if with_indices else (grad, x)
    torch_gradient = None
    if torch_forward is not None:
        xt = _tensor(torch, x).requires_grad_()
        yt = torch_forward(xt, **case.kwargs)
        torch_gradient = partial(_autograd, torch, yt, xt, _tensor(torch, grad))

    reads = (grad, indices) if with_indices else (grad,)
    return Bench(partial(backward, *args, **kwargs), torch_gradient, reads)


def moved_bytes(bench: Bench, result) -> int:
    """Bytes an ideal kernel moves: each array it must read once, each result written once.

    Forward reads the input; backward reads grad_output (and the indices for max
    pooling) but not the input, whose shape is all it needs. Results include
    int64 indices where the call returns them, and the input gradient for backward.
    """
    outputs = result if isinstance(result, tuple) else (result,)
    return sum(a.nbytes for a in (*bench.reads, *outputs))
