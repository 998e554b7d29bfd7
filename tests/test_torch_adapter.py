"""numbapool.torch: PyTorch's functions and layers computed by numbapool, as autograd ops.

Checked against PyTorch itself: gradcheck in float64 for every op and rank, values,
indices and gradients equal to PyTorch's ops (channels_last too), the layers' constructor,
state and repr, a small model trained with either layer, and, on a CUDA machine, the same
on the GPU with PyTorch's current stream.
"""

import copy
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nt = pytest.importorskip("numbapool.torch")

from numbapool import _ops  # noqa: E402

F = torch.nn.functional

# one spatial shape per rank (odd sizes, so windows are cut by the edges)
SPATIAL = {1: (11,), 2: (9, 8), 3: (6, 7, 5)}

# (function, args after the input, kwargs); the family's typical and awkward arguments
CASES = []
for nd in (1, 2, 3):
    CASES += [
        (f"max_pool{nd}d", (3, 2, 1), {}),
        (f"max_pool{nd}d", (2,), {"dilation": 2, "ceil_mode": True}),
        (f"avg_pool{nd}d", (3, 2, 1), {}),
        (f"avg_pool{nd}d", (3, 2, 1), {"ceil_mode": True, "count_include_pad": False}),
        (f"adaptive_avg_pool{nd}d", ((3, 4, 2)[:nd],), {}),
        (f"adaptive_max_pool{nd}d", ((4, 3, 2)[:nd],), {}),
        (f"lp_pool{nd}d", (2, 2), {}),
        (f"lp_pool{nd}d", (3.0, 3, 2), {}),
        (f"max_unpool{nd}d", (2,), {}),
    ]
    if nd != 1:
        CASES.append((f"fractional_max_pool{nd}d", (2,), {"output_size": 3}))
CASES.append(("avg_pool2d", (3, 2, 1), {"divisor_override": 5}))


def _id(case):
    name, args, kwargs = case
    return f"{name}-{args}-{kwargs}".replace(" ", "")


def _nd(name):
    return int(name[-2])


def _inputs(name, args, kwargs, dtype=torch.float64, batch=(2, 3), seed=0):
    """The tensor arguments of a call: the input (distinct values, so no max ties), plus
    the indices of unpooling and the samples of fractional pooling."""
    generator = torch.Generator().manual_seed(seed)
    nd = _nd(name)
    x = torch.randn(*batch, *SPATIAL[nd], dtype=dtype, generator=generator)
    if name.startswith("lp_pool"):
        x = x.abs() + 0.5  # PyTorch's LP pooling is only right for positive inputs
    extra = {}
    if name.startswith("max_unpool"):
        # non-overlapping windows: every index once, so the gradient is well defined
        x, extra["indices"] = F.__dict__[f"max_pool{nd}d"](x, args[0], return_indices=True)
        extra["output_size"] = SPATIAL[nd]  # the odd sizes, not the default even ones
    if name.startswith("fractional"):
        extra["_random_samples"] = torch.rand(batch[0] if len(batch) == 2 else 1,
                                              batch[-1], nd, dtype=dtype,
                                              generator=generator)
    return x, extra


def _call(module, name, x, args, kwargs, extra):
    if name.startswith("max_unpool"):
        return getattr(module, name)(x, extra["indices"], *args, **kwargs,
                                     output_size=extra["output_size"])
    return getattr(module, name)(x, *args, **kwargs,
                                 **extra)


def test_every_function_and_layer_is_there():
    names = {op.function_name(nd) for op in _ops.OPS for nd in op.dims}
    assert names <= set(nt.__all__)
    assert {op.function_name(nd) for op in _ops.OPS for nd in op.dims} == \
        {case[0] for case in CASES}
    for op in _ops.OPS:
        for nd in op.dims:
            layer = getattr(nt.nn, op.layer_name(nd))
            assert issubclass(layer, getattr(torch.nn, op.layer_name(nd)))


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_gradcheck_float64(case):
    name, args, kwargs = case
    x, extra = _inputs(name, args, kwargs)
    x.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda t: _call(nt, name, t, args, kwargs, extra), (x,), eps=1e-6, atol=1e-7)


def _memory_format(nd):
    return {2: torch.channels_last, 3: torch.channels_last_3d}.get(nd)


@pytest.mark.parametrize("case, layout", [
    (case, layout) for case in CASES for layout in ("contiguous", "channels_last", "unbatched")
    if layout != "channels_last" or _nd(case[0]) > 1  # PyTorch's formats are 2d and 3d
], ids=lambda value: value if isinstance(value, str) else _id(value))
def test_same_as_pytorch(case, layout):
    """Outputs, indices and input gradients equal PyTorch's (max-type bitwise), with the
    memory format kept."""
    name, args, kwargs = case
    nd = _nd(name)
    batch = (3,) if layout == "unbatched" else (2, 3)
    x, extra = _inputs(name, args, kwargs, batch=batch)
    if layout == "channels_last":
        x = x.to(memory_format=_memory_format(nd))
    x_torch = x.detach().clone(memory_format=torch.preserve_format).requires_grad_()
    x_ours = x.detach().clone(memory_format=torch.preserve_format).requires_grad_()
    if name.startswith(("max_pool", "adaptive_max", "fractional")):
        kwargs = {**kwargs, "return_indices": True}
    theirs = _call(F, name, x_torch, args, kwargs, extra)
    ours = _call(nt, name, x_ours, args, kwargs, extra)
    theirs_out, ours_out = (r[0] if isinstance(r, tuple) else r for r in (theirs, ours))
    exact = name.startswith(("max", "adaptive_max", "fractional"))
    compare = torch.testing.assert_close if not exact else \
        (lambda a, b: torch.testing.assert_close(a, b, rtol=0, atol=0))
    compare(ours_out, theirs_out)
    if isinstance(theirs, tuple):
        assert torch.equal(ours[1], theirs[1])
    if layout == "channels_last":
        assert ours_out.is_contiguous(memory_format=_memory_format(nd))
    grad = torch.randn(theirs_out.shape, dtype=x.dtype,
                       generator=torch.Generator().manual_seed(1))
    theirs_out.backward(grad)
    ours_out.backward(grad)
    compare(x_ours.grad, x_torch.grad)
    if layout == "channels_last":
        assert x_ours.grad.is_contiguous(memory_format=_memory_format(nd))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16,
                                   torch.int64])
def test_dtypes(dtype):
    if dtype == torch.bfloat16:
        pytest.importorskip("ml_dtypes")
    x = (torch.randn(2, 3, 9, 8) * 10).to(dtype)
    ours, ours_idx = nt.max_pool2d(x, 3, 2, 1, return_indices=True)
    theirs, theirs_idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    assert ours.dtype == dtype and torch.equal(ours, theirs) and torch.equal(ours_idx,
                                                                             theirs_idx)
    if dtype.is_floating_point:
        x = x.requires_grad_()
        grad = torch.autograd.grad(nt.adaptive_avg_pool2d(x, 3).sum(), x)[0]
        assert grad.dtype == dtype
        torch.testing.assert_close(
            grad, torch.autograd.grad(F.adaptive_avg_pool2d(x, 3).sum(), x)[0])


def test_tensors_are_not_copied():
    x = torch.randn(2, 3, 8, 8).to(memory_format=torch.channels_last)
    view = nt._array(x)
    assert view.ctypes.data == x.data_ptr() and view.strides == tuple(
        s * x.element_size() for s in x.stride())


def test_gradient_of_a_broadcast_gradient():
    """``y.sum()`` hands the backward a stride-0 gradient; it is read in place."""
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64, requires_grad=True)
    nt.avg_pool2d(x, 3, 2, 1).mean().backward()
    expected = torch.autograd.grad(F.avg_pool2d(x, 3, 2, 1).mean(), x)[0]
    torch.testing.assert_close(x.grad, expected)


def test_fractional_samples_come_from_torch_random():
    """Without samples, the windows are the ones PyTorch draws after the same seed."""
    x = torch.randn(2, 3, 11, 10)
    torch.manual_seed(7)
    theirs = F.fractional_max_pool2d(x, 2, output_ratio=(0.5, 0.5), return_indices=True)
    torch.manual_seed(7)
    ours = nt.fractional_max_pool2d(x, 2, output_ratio=(0.5, 0.5), return_indices=True)
    assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])
    torch.manual_seed(7)
    layer_ours = nt.nn.FractionalMaxPool3d(2, output_size=(1, 4, 3))(x[None])
    torch.manual_seed(7)
    layer_theirs = torch.nn.FractionalMaxPool3d(2, output_size=(1, 4, 3))(x[None])
    assert torch.equal(layer_ours, layer_theirs)


def test_layers_are_pytorchs():
    """Constructor, attributes, state and repr are PyTorch's; forward runs numbapool."""
    pairs = [
        (nt.nn.MaxPool2d(3, 2, 1, return_indices=True), torch.nn.MaxPool2d(3, 2, 1,
                                                                          return_indices=True)),
        (nt.nn.AvgPool1d(3, ceil_mode=True), torch.nn.AvgPool1d(3, ceil_mode=True)),
        (nt.nn.AdaptiveAvgPool3d((2, None, 3)), torch.nn.AdaptiveAvgPool3d((2, None, 3))),
        (nt.nn.LPPool2d(2, 3), torch.nn.LPPool2d(2, 3)),
        (nt.nn.FractionalMaxPool2d(2, output_ratio=0.5),
         torch.nn.FractionalMaxPool2d(2, output_ratio=0.5)),
        (nt.nn.MaxUnpool3d(2), torch.nn.MaxUnpool3d(2)),
    ]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
        assert ours.state_dict().keys() == theirs.state_dict().keys()
    x = torch.randn(2, 4, 6, 6, 6)
    y, idx = F.max_pool3d(x, 2, return_indices=True)
    assert torch.equal(nt.nn.MaxUnpool3d(2)(y, idx, x.shape), F.max_unpool3d(y, idx, 2,
                                                                             output_size=x.shape))
    with pytest.raises(TypeError, match="positional"):
        nt.nn.MaxUnpool3d(2)(y, idx, x.shape, 4)


def _model(pool):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.Sigmoid(), pool, torch.nn.Flatten(),
        torch.nn.LazyLinear(4)).double()
    model(torch.zeros(1, 3, 12, 12, dtype=torch.float64))  # initialise the lazy layer
    return model


def _losses(model, steps=8):
    data = torch.randn(8, 3, 12, 12, dtype=torch.float64,
                       generator=torch.Generator().manual_seed(3))
    target = torch.randint(0, 4, (8,), generator=torch.Generator().manual_seed(4))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    torch.manual_seed(5)  # fractional pooling draws its samples from here
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(data), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("layer, args", [
    ("MaxPool2d", (3, 2, 1)), ("AvgPool2d", (3, 2, 1)), ("AdaptiveAvgPool2d", ((3, 4),)),
    ("AdaptiveMaxPool2d", (3,)), ("LPPool2d", (2, 2)),
    ("FractionalMaxPool2d", (2,)),
], ids=lambda value: value if isinstance(value, str) else None)
def test_training_gives_pytorchs_loss_curve(layer, args):
    """A conv-pool-linear model trained a few steps with numbapool's layer follows the
    loss curve of the same model with PyTorch's (LP too: its inputs are positive here)."""
    kwargs = {"output_size": 5} if layer.startswith("Fractional") else {}
    theirs = _model(getattr(torch.nn, layer)(*args, **kwargs))
    ours = copy.deepcopy(theirs)
    ours[2] = getattr(nt.nn, layer)(*args, **kwargs)
    theirs_losses, ours_losses = _losses(theirs), _losses(ours)
    assert theirs_losses[-1] < theirs_losses[0]  # it does learn
    np.testing.assert_allclose(ours_losses, theirs_losses, rtol=1e-12)


def test_lp_pool_of_negative_inputs_is_the_norm():
    """PyTorch's LP pooling raises x (not |x|) to the power p; numbapool's is the norm."""
    x = -torch.arange(1.0, 17.0, dtype=torch.float64).reshape(1, 1, 4, 4)
    ours = nt.lp_pool2d(x, 3, 2)
    expected = F.lp_pool2d(x.abs(), 3, 2)
    torch.testing.assert_close(ours, expected)
    assert not torch.allclose(F.lp_pool2d(x, 3, 2).nan_to_num(), expected)


def test_bad_inputs():
    with pytest.raises(TypeError, match="torch.Tensor"):
        nt.max_pool2d(np.zeros((1, 1, 4, 4)), 2)
    with pytest.raises(TypeError, match="meta"):
        nt.max_pool2d(torch.empty(1, 1, 4, 4, device="meta"), 2)
    with pytest.raises(ValueError, match="kernel_size"):
        nt.max_pool2d(torch.zeros(1, 1, 4, 4), 0)
    with pytest.raises(TypeError):
        nt.max_pool2d(torch.zeros(1, 1, 4, 4), 2, data_format="channels_last")
    with pytest.raises(ValueError, match="invalid max index"):
        nt.max_unpool2d(torch.ones(1, 1, 2, 2), torch.full((1, 1, 2, 2), 99), 2)


def test_second_derivative_is_refused():
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    grad = torch.autograd.grad(nt.max_pool2d(x, 2).pow(2).sum(), x, create_graph=True)[0]
    with pytest.raises(RuntimeError):
        torch.autograd.grad(grad.sum(), x)


def test_importing_numbapool_does_not_import_torch():
    code = ("import sys, numpy as np, numbapool; numbapool.max_pool2d(np.ones((1, 1, 4, 4), "
            "np.float32), 2); assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------------
# CUDA (runs where PyTorch sees a GPU and numba-cuda is installed)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA GPU (PyTorch CUDA build and a device)")


@needs_cuda
def test_cuda_same_as_pytorch():
    """Every case of the table on the GPU (channels-last memory where PyTorch has it):
    PyTorch CUDA's values, and the gradients PyTorch computes on the CPU (PyTorch 2.11's
    CUDA backward of channels-last avg_pool2d with padding ignores the padding,
    pytorch/pytorch#188344)."""
    for name, args, kwargs in CASES:
        nd = _nd(name)
        x, extra_cpu = _inputs(name, args, kwargs, dtype=torch.float32)
        if _memory_format(nd) is not None:
            x = x.to(memory_format=_memory_format(nd))
        extra = {k: v.cuda() if isinstance(v, torch.Tensor) else v
                 for k, v in extra_cpu.items()}
        x_cpu, x_torch, x_ours = (x.clone().requires_grad_(), x.cuda().requires_grad_(),
                                  x.cuda().requires_grad_())
        theirs, ours = (_call(module, name, t, args, kwargs, extra)
                        for module, t in ((F, x_torch), (nt, x_ours)))
        assert ours.device == x_ours.device, name
        torch.testing.assert_close(ours, theirs, msg=name)
        grad = torch.randn_like(theirs)
        reference = _call(F, name, x_cpu, args, kwargs, extra_cpu)
        reference.backward(grad.cpu())
        ours.backward(grad)
        torch.testing.assert_close(x_ours.grad.cpu(), x_cpu.grad, msg=name)


@needs_cuda
def test_cuda_work_follows_pytorchs_current_stream():
    """On a side stream, with no synchronisation: numbapool's kernels are queued behind
    PyTorch's producer and PyTorch's consumer behind them."""
    stream = torch.cuda.Stream()
    a = torch.randn(2048, 2048, device="cuda")
    with torch.cuda.stream(stream):
        x = a
        for _ in range(50):  # keeps the stream busy long after the host moved on
            x = (x @ a) / 2048
        image = x.reshape(16, 64, 64, 64)
        y = nt.max_pool2d(image, 2)
        total = y.sum()
    stream.synchronize()
    assert torch.equal(y, F.max_pool2d(image, 2))
    assert total.item() == F.max_pool2d(image, 2).sum().item()


@needs_cuda
def test_cuda_deterministic_where_pytorch_refuses():
    x = torch.randn(4, 8, 13, 13, device="cuda", requires_grad=True)
    torch.use_deterministic_algorithms(True)
    try:
        with pytest.raises(RuntimeError):
            F.adaptive_avg_pool2d(x, 5).sum().backward()
        grads = [torch.autograd.grad(nt.adaptive_avg_pool2d(x, 5).sum(), x)[0]
                 for _ in range(3)]
    finally:
        torch.use_deterministic_algorithms(False)
    assert all(torch.equal(grads[0], g) for g in grads)
