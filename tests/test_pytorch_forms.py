"""What PyTorch 2.13 accepts, numbapool accepts, and the same way (live PyTorch).

The argument forms, dtypes and empty shapes of PyTorch's own pooling tests: one-element
tuples, int64 average and LP pooling, unbatched inputs without channels, the gradient of
an empty output, fractional pooling's extra samples and both sizes, and every function's
and layer's argument names and order.
"""

import ast
import inspect
import math
import re

import numpy as np
import pytest

import numbapool as npl
import reference as ref
from numbapool import _ops
from oracles import INTS, assert_close, assert_exact, assert_exact_pair, make_input, torch_call

torch = pytest.importorskip("torch")
F = torch.nn.functional

SHAPES = {1: (2, 3, 9), 2: (2, 3, 9, 8), 3: (2, 3, 6, 7, 5)}


def raises_like_torch(call, torch_call_):
    """numbapool raises ValueError or TypeError where PyTorch raises."""
    with pytest.raises(Exception):
        torch_call_()
    with pytest.raises((ValueError, TypeError)):
        call()


# --- 1. one-element tuples -------------------------------------------------------------


@pytest.mark.parametrize("nd", [2, 3])
@pytest.mark.parametrize("kernel,stride,padding,dilation", [
    ((3,), (1,), (1,), (2,)), ((2,), (2,), (0,), (1,)), ((3,), 2, (1,), 1),
    ((3,), None, 1, (1,)),
])
def test_one_element_tuples_for_every_dim(nd, kernel, stride, padding, dilation):
    x = make_input(np.random.default_rng(nd), SHAPES[nd], np.float32, specials=True)
    args = (kernel, stride, padding)
    assert_exact_pair(getattr(npl, f"max_pool{nd}d")(x, *args, dilation, False, True),
                      torch_call(f"max_pool{nd}d", x, *args, dilation, False, True))
    assert_close(getattr(npl, f"avg_pool{nd}d")(x, *args),
                 torch_call(f"avg_pool{nd}d", x, *args), np.float32)
    # LP: PyTorch takes a one-element stride; its kernel it cannot unpack (a difference
    # the README lists): numbapool's equals the kernel written out
    positive = np.abs(x[:, :, :6])
    k = kernel[0]
    got = getattr(npl, f"lp_pool{nd}d")(positive, 2.0, k, stride)
    assert_close(got, torch_call(f"lp_pool{nd}d", positive, 2.0, (k,) * nd, stride),
                 np.float32)
    assert_exact(getattr(npl, f"lp_pool{nd}d")(positive, 2.0, kernel, stride), got)


@pytest.mark.parametrize("op,args", [
    ("max_pool2d", ((3, 2, 1),)), ("avg_pool3d", ((2, 2),)), ("max_unpool2d", None),
    ("fractional_max_pool2d", None), ("adaptive_avg_pool2d", ((3,),)),
    ("adaptive_max_pool2d", ((3,),)),
])
def test_sizes_pytorch_rejects_are_rejected(op, args):
    x = make_input(np.random.default_rng(0), (1, 2, 8, 8, 8)[: 5 if op.endswith("3d") else 4],
                   np.float32)
    if op == "max_unpool2d":
        y, idx = npl.max_pool2d(x, 2, return_indices=True)
        raises_like_torch(lambda: npl.max_unpool2d(y, idx, (2,)),
                          lambda: F.max_unpool2d(torch.from_numpy(y), torch.from_numpy(idx),
                                                 (2,)))
        return
    if op == "fractional_max_pool2d":
        raises_like_torch(lambda: npl.fractional_max_pool2d(x, (2,), output_size=3),
                          lambda: F.fractional_max_pool2d(torch.from_numpy(x), (2,),
                                                          output_size=3))
        return
    raises_like_torch(lambda: getattr(npl, op)(x, *args),
                      lambda: getattr(F, op)(torch.from_numpy(x), *args))


# --- 2. integer average and LP pooling -------------------------------------------------


AVG_CONFIGS = [  # kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
    (2, None, 0, False, True, None), (3, 2, 1, True, True, None),
    (3, 1, 1, False, False, None), (3, 2, 1, True, False, 3), (2, 1, 1, False, True, -3),
]


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("config", AVG_CONFIGS)
@pytest.mark.parametrize("values", ["small", "full range"])
def test_int64_average_pooling_matches_pytorch(nd, config, values):
    rng = np.random.default_rng(nd)
    if values == "small":  # negative sums: the division truncates toward zero
        x = rng.integers(-50, 50, SHAPES[nd], dtype=np.int64)
    else:  # sums wrap around past 2**63, as PyTorch's int64 sums do
        x = make_input(rng, SHAPES[nd], np.int64)
    kernel, stride, padding, ceil_mode, count_include_pad, divisor_override = config
    if nd == 1 and divisor_override is not None:
        torch_args = None  # PyTorch's avg_pool1d has no divisor_override
    else:
        torch_args = (kernel, stride, padding, ceil_mode, count_include_pad) + (
            (divisor_override,) if nd > 1 else ())
    got = getattr(npl, f"avg_pool{nd}d")(x, kernel, stride, padding, ceil_mode,
                                         count_include_pad, divisor_override)
    assert got.dtype == np.int64
    k, s, p = ((v if v is not None else kernel,) * nd for v in (kernel, stride, padding))
    assert_exact(got, ref.avg_pool(x, k, s, p, ceil_mode, count_include_pad,
                                   divisor_override))
    if torch_args:
        assert_exact(got, torch_call(f"avg_pool{nd}d", x, *torch_args))


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("norm_type", [1, 2, 3.5, math.inf, -math.inf])
def test_int64_lp_pooling_is_the_exact_norm_in_float32(nd, norm_type):
    x = np.random.default_rng(nd).integers(-20, 20, SHAPES[nd], dtype=np.int64)
    got = getattr(npl, f"lp_pool{nd}d")(x, norm_type, 2)
    assert got.dtype == np.float32
    if math.isfinite(norm_type):  # PyTorch's dtype too (it has no max_pool for int64)
        assert torch_call(f"lp_pool{nd}d", x, norm_type, 2).dtype == np.float32
    expected = ref.lp_pool(x.astype(np.float64), norm_type, (2,) * nd, (2,) * nd, False)
    # (PyTorch's values differ: its integer average truncates before it rescales, even
    # for p = 1, which the README lists)
    assert_close(got, expected.astype(np.float32), np.float32)
    with pytest.raises(TypeError, match="int64"):
        getattr(npl, f"lp_pool{nd}d_backward")(got.astype(np.int64), x, norm_type, 2)


@pytest.mark.parametrize("dtype", [t for t in INTS if t != np.int64] + [np.bool_])
@pytest.mark.parametrize("op", ["avg_pool2d", "lp_pool2d"])
def test_narrower_integers_are_a_type_error_naming_int64(dtype, op):
    x = np.zeros((1, 2, 4, 4), dtype)
    args = (2,) if op == "avg_pool2d" else (2, 2)
    with pytest.raises(TypeError, match=f"dtype {np.dtype(dtype)}.*int64"):
        getattr(npl, op)(x, *args)
    if dtype != np.bool_:  # PyTorch's LP pooling takes bool
        with pytest.raises(Exception):
            getattr(F, op)(torch.from_numpy(x), *args)


# --- 3. unbatched inputs without channels ----------------------------------------------


EMPTY_CHANNEL_CALLS = {
    "adaptive_avg_pool": (lambda f, x: f(x, 2)),
    "adaptive_max_pool": (lambda f, x: f(x, 2, True)),
    "fractional_max_pool": (lambda f, x: f(x, 2, output_size=2, return_indices=True)),
    "max_unpool": (lambda f, x: f(x, np.zeros(x.shape, np.int64) if isinstance(x, np.ndarray)
                                  else torch.zeros(x.shape, dtype=torch.int64), 2)),
    "max_pool": (lambda f, x: f(x, 2)),
    "avg_pool": (lambda f, x: f(x, 2)),
    "lp_pool": (lambda f, x: f(x, 2, 2)),
}


@pytest.mark.parametrize("family", list(EMPTY_CHANNEL_CALLS))
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("batched", [False, True])
def test_inputs_without_channels_as_pytorch(family, nd, batched):
    if family == "fractional_max_pool" and nd == 1:
        return
    shape = ((2,) if batched else ()) + (0,) + (6, 7, 5)[:nd]
    x = np.zeros(shape, np.float32)
    call = EMPTY_CHANNEL_CALLS[family]
    ours = getattr(npl, f"{family}{nd}d")
    theirs = getattr(F, f"{family}{nd}d")
    try:
        expected = call(theirs, torch.from_numpy(x))
    except RuntimeError:
        with pytest.raises(ValueError, match="non-empty"):
            call(ours, x)
        return
    got = call(ours, x)
    expected = expected if isinstance(expected, tuple) else (expected,)
    got = got if isinstance(got, tuple) else (got,)
    for g, e in zip(got, expected):
        assert g.shape == tuple(e.shape) and g.dtype == e.detach().numpy().dtype


# --- 4. the gradient of an empty output --------------------------------------------------


@pytest.mark.parametrize("family", ["adaptive_avg_pool", "adaptive_max_pool"])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_empty_output_has_no_gradient(family, nd):
    x = make_input(np.random.default_rng(0), SHAPES[nd], np.float32)
    size = (0,) + (2,) * (nd - 1)
    backward = getattr(npl, f"{family}{nd}d_backward")
    forward = getattr(npl, f"{family}{nd}d")
    result = forward(x, size, **({"return_indices": True} if "max" in family else {}))
    out, extra = (result[0], result[1:]) if isinstance(result, tuple) else (result, ())
    xt = torch.from_numpy(x).requires_grad_()
    yt = getattr(F, f"{family}{nd}d")(xt, size)
    with pytest.raises(RuntimeError, match="non-zero size"):
        torch.autograd.grad(yt, xt, torch.zeros_like(yt))
    with pytest.raises(ValueError, match="non-zero size for non-batch dimensions"):
        backward(np.zeros(out.shape, np.float32), x, *extra)
    # an empty batch, and an unbatched input without channels, give empty gradients
    for empty in (np.zeros((0,) + x.shape[1:], np.float32), np.zeros((0,) + x.shape[2:],
                                                                     np.float32)):
        result = forward(empty, 2, **({"return_indices": True} if "max" in family else {}))
        out, extra = (result[0], result[1:]) if isinstance(result, tuple) else (result, ())
        assert backward(np.zeros(out.shape, np.float32), empty, *extra).shape == empty.shape


# --- 5. fractional pooling's arguments ----------------------------------------------------


@pytest.mark.parametrize("nd", [2, 3])
def test_fractional_takes_samples_for_more_batches_and_both_sizes(nd):
    rng = np.random.default_rng(nd)
    x = make_input(rng, (2, 3) + (9, 8, 7)[:nd], np.float32, specials=True)
    samples = rng.random((5, 3, nd)).astype(np.float32)
    fn, theirs = getattr(npl, f"fractional_max_pool{nd}d"), getattr(F,
                                                                    f"fractional_max_pool{nd}d")
    expected = theirs(torch.from_numpy(x), 2, output_size=3, return_indices=True,
                      _random_samples=torch.from_numpy(samples))
    expected = tuple(t.numpy() for t in expected)
    assert_exact_pair(fn(x, 2, 3, return_indices=True, _random_samples=samples), expected)
    assert_exact_pair(fn(x, 2, 3, None, True, samples), expected)  # PyTorch's positions
    assert_exact_pair(fn(x, 2, 3, return_indices=True, random_samples=samples), expected)
    # output_size wins over output_ratio, as in PyTorch's functional
    both = theirs(torch.from_numpy(x), 2, output_size=3, output_ratio=0.5,
                  return_indices=True, _random_samples=torch.from_numpy(samples))
    assert_exact_pair(fn(x, 2, 3, 0.5, True, samples), tuple(t.numpy() for t in both))
    # an unbatched input is one batch: samples for four are fine
    one = theirs(torch.from_numpy(x[0]), 2, output_size=3, return_indices=True,
                 _random_samples=torch.from_numpy(samples[:4]))
    assert_exact_pair(fn(x[0], 2, 3, None, True, samples[:4]), tuple(t.numpy() for t in one))
    with pytest.raises(ValueError, match="N' >= 2"):
        fn(x, 2, 3, _random_samples=samples[:1])
    with pytest.raises(TypeError, match="not both"):
        fn(x, 2, 3, _random_samples=samples, random_samples=samples)
    # the layer keeps PyTorch's rule: exactly one of the two
    with pytest.raises(ValueError, match="only one"):
        getattr(npl.nn, f"FractionalMaxPool{nd}d")(2, output_size=3, output_ratio=0.5)


# --- 6. argument names and order -----------------------------------------------------------


def torch_parameters(name):
    """``[(name, default)]`` of ``torch.nn.functional.<name>``, from its signature (the
    ``_with_indices`` function behind PyTorch's boolean dispatch) or, for a builtin, from
    the signature line of its docstring."""
    function = getattr(F, name + "_with_indices", getattr(F, name))
    try:
        parameters = inspect.signature(function).parameters.values()
        return [(p.name, p.default) for p in parameters]
    except ValueError:
        line = re.search(rf"{name}\((.*?)\)", function.__doc__).group(1)
        found = []
        for item in line.split(", "):
            key, _, default = item.partition("=")
            found.append((key, ast.literal_eval(default) if default else inspect.Parameter.empty))
        return found


FUNCTIONS = [(op, nd) for op in _ops.OPS for nd in op.dims]


@pytest.mark.parametrize("op,nd", FUNCTIONS, ids=[op.function_name(nd) for op, nd in FUNCTIONS])
def test_argument_names_and_order_are_pytorchs(op, nd):
    name = op.function_name(nd)
    theirs = torch_parameters(name)
    ours = list(inspect.signature(getattr(npl, name)).parameters.values())
    assert [(p.name, p.default) for p in ours[:len(theirs)]] == theirs
    for extra in ours[len(theirs):]:  # numbapool's own come after PyTorch's
        assert extra.kind is inspect.Parameter.KEYWORD_ONLY or extra.name == "divisor_override"
    # the gradient: grad_output, then the forward's input, indices and arguments
    backward = list(inspect.signature(getattr(npl, name + "_backward")).parameters)
    forward_only = {"return_indices", "_random_samples"} | (
        {"output_size"} if op.name.startswith("adaptive") else set())
    takes_indices = ["indices"] if "max_pool" in op.name else []
    expected = ["grad_output", theirs[0][0], *takes_indices,
                *(p for p, _ in theirs[1:] if p not in forward_only)]
    assert backward[:len(expected)] == expected
    layer = getattr(npl.nn, op.layer_name(nd))
    torch_layer = getattr(torch.nn, op.layer_name(nd))
    assert list(inspect.signature(layer.forward).parameters) == list(
        inspect.signature(torch_layer.forward).parameters)
    assert getattr(npl, name)(input=np.ones((1, 2) + (8,) * nd, np.float32),
                              **_first_arguments(op, nd)) is not None


def _first_arguments(op, nd):
    """Arguments after the input that make a call of family ``op`` valid."""
    return {"max_pool": {"kernel_size": 2}, "avg_pool": {"kernel_size": 2},
            "adaptive_avg_pool": {"output_size": 2}, "adaptive_max_pool": {"output_size": 2},
            "lp_pool": {"norm_type": 2, "kernel_size": 2},
            "fractional_max_pool": {"kernel_size": 2, "output_size": 3},
            "max_unpool": {"indices": np.zeros((1, 2) + (8,) * nd, np.int64),
                           "kernel_size": 2}}[op.name]


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("norm_type", [math.inf, -math.inf])
def test_lp_pooling_with_infinite_p_is_pytorchs(nd, norm_type):
    # max |x| and min |x|: where PyTorch agrees with the p-norm, negative inputs included
    x = make_input(np.random.default_rng(nd), SHAPES[nd], np.float32)
    args = (norm_type, 2, 2) if nd == 1 else (norm_type, (2,) * nd, 1)
    assert_exact(getattr(npl, f"lp_pool{nd}d")(x, *args),
                 torch_call(f"lp_pool{nd}d", x, *args))
