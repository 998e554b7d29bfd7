"""Tests for the layer classes in numbapool.nn.

Worked examples use values from the PyTorch documentation; the rest compare each
layer with numbapool.functional and, when torch is installed, with torch.nn.
"""

import inspect

import numpy as np
import pytest

import numbapool.functional as F
import numbapool.nn as nn

ALL_CLASSES = [
    f"{family}{d}d"
    for family in ("MaxPool", "AvgPool", "AdaptiveAvgPool", "AdaptiveMaxPool", "LPPool",
                   "MaxUnpool")
    for d in (1, 2, 3)
] + ["FractionalMaxPool2d", "FractionalMaxPool3d"]

X4 = np.arange(1, 17, dtype=np.float32).reshape(1, 1, 4, 4)


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _nd(name):
    return int(name[-2])


def _fname(name):
    """Functional name for a class name: MaxPool2d -> max_pool2d."""
    out = ""
    for i, ch in enumerate(name[:-2]):
        if ch.isupper() and i:
            out += "_"
        out += ch.lower()
    return out.replace("l_p_", "lp_") + name[-2:]


def _to_last(a, nd):
    return np.moveaxis(np.asarray(a), -nd - 1, -1)


def _input(name, shape, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    if name.startswith("LPPool"):
        # a non-integer power of a negative number is nan in PyTorch too
        x = np.abs(x) + 0.1
    return x


def _check_close(actual, expected, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol,
                               atol=atol)


# ------------------------------------------------------------------ worked examples


def test_doc_max_pool2d():
    np.testing.assert_array_equal(nn.MaxPool2d(2, 2)(X4)[0, 0], [[6, 8], [14, 16]])


def test_doc_avg_pool2d():
    np.testing.assert_array_equal(nn.AvgPool2d(2, 2)(X4)[0, 0],
                                  [[3.5, 5.5], [11.5, 13.5]])


def test_doc_adaptive_max_pool2d():
    np.testing.assert_array_equal(
        nn.AdaptiveMaxPool2d((3, 4))(X4)[0, 0],
        [[5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]],
    )


def test_doc_adaptive_avg_pool2d():
    np.testing.assert_array_equal(nn.AdaptiveAvgPool2d((1, 1))(X4)[0, 0], [[8.5]])


def test_doc_lp_pool2d():
    _check_close(nn.LPPool2d(1, 2, 2)(X4)[0, 0], [[14, 22], [46, 54]])


def test_doc_max_pool2d_7x7_floor():
    x = np.arange(49, dtype=np.float32).reshape(1, 1, 7, 7)
    np.testing.assert_array_equal(
        nn.MaxPool2d(2, 2)(x)[0, 0], [[8, 10, 12], [22, 24, 26], [36, 38, 40]]
    )


@pytest.mark.parametrize("size", [32, 16, 8])
def test_global_average_pool_shape(size):
    x = np.ones((1, 64, size, size), np.float32)
    assert nn.AdaptiveAvgPool2d(1)(x).shape == (1, 64, 1, 1)


@pytest.mark.parametrize("output_size, in_shape, out_shape", [
    ((4, 4), (2, 128, 32, 32), (2, 128, 4, 4)),
    ((1, 7), (2, 64, 10, 20), (2, 64, 1, 7)),
])
def test_adaptive_avg_pool_shapes(output_size, in_shape, out_shape):
    x = np.random.default_rng(0).standard_normal(in_shape).astype(np.float32)
    assert nn.AdaptiveAvgPool2d(output_size)(x).shape == out_shape


def test_adaptive_avg_equals_fixed_avg_when_divisible():
    x = np.random.default_rng(0).standard_normal((1, 64, 32, 32)).astype(np.float32)
    a = nn.AdaptiveAvgPool2d(2)(x)
    b = nn.AvgPool2d(16, 16)(x)
    assert a.shape == b.shape == (1, 64, 2, 2)
    _check_close(a, b)


# ------------------------------------------------------------- signatures and repr


def _params(cls):
    return [(p.name, p.default, p.kind)
            for p in inspect.signature(cls.__init__).parameters.values()]


@pytest.mark.parametrize("name", ALL_CLASSES)
def test_signature_matches_torch(name, torch):
    ours = _params(getattr(nn, name))
    theirs = _params(getattr(torch.nn, name))
    assert ours[:len(theirs)] == theirs
    extra = {p[0]: p for p in ours[len(theirs):]}
    expected_extra = {"data_format"} | ({"rng"} if name.startswith("Fractional") else set())
    assert set(extra) == expected_extra
    for pname, default, kind in extra.values():
        assert kind is inspect.Parameter.KEYWORD_ONLY
    assert extra["data_format"][1] == "channels_first"
    if "rng" in extra:
        assert extra["rng"][1] is None


def test_unpool_call_signature():
    params = list(inspect.signature(nn.MaxUnpool2d.__call__).parameters)
    forward = inspect.signature(nn.MaxUnpool2d.forward).parameters
    assert list(forward) == ["self", "input", "indices", "output_size"]
    assert forward["output_size"].default is None
    assert params[0] == "self"


REPR_CASES = [
    ("MaxPool1d", (3,), {}),
    ("MaxPool2d", (3,), dict(stride=2, padding=1)),
    ("MaxPool2d", ((2, 3),), dict(stride=(1, 2), dilation=2, return_indices=True,
                                  ceil_mode=True)),
    ("MaxPool3d", (2,), dict(padding=1, ceil_mode=True)),
    ("AvgPool1d", (3,), {}),
    ("AvgPool1d", (3,), dict(stride=2, padding=1, ceil_mode=True,
                             count_include_pad=False)),
    ("AvgPool2d", (3,), dict(stride=2)),
    ("AvgPool2d", ((3, 2),), dict(padding=(1, 0), divisor_override=4)),
    ("AvgPool3d", (2,), dict(stride=1, padding=1)),
    ("AdaptiveAvgPool1d", (5,), {}),
    ("AdaptiveAvgPool2d", (7,), {}),
    ("AdaptiveAvgPool2d", ((None, 7),), {}),
    ("AdaptiveAvgPool3d", ((1, 2, 3),), {}),
    ("AdaptiveMaxPool1d", (5,), dict(return_indices=True)),
    ("AdaptiveMaxPool2d", ((3, 4),), {}),
    ("AdaptiveMaxPool3d", (2,), {}),
    ("LPPool1d", (2, 3), {}),
    ("LPPool2d", (1.5, (2, 3)), dict(stride=2, ceil_mode=True)),
    ("LPPool3d", (3, 2), {}),
    ("FractionalMaxPool2d", (3,), dict(output_ratio=0.5)),
    ("FractionalMaxPool3d", (2,), dict(output_size=(4, 5, 6), return_indices=True)),
    ("MaxUnpool1d", (2,), {}),
    ("MaxUnpool2d", (3,), dict(stride=2, padding=1)),
    ("MaxUnpool3d", ((2, 2, 1),), {}),
]


@pytest.mark.parametrize("name, args, kwargs", REPR_CASES)
def test_repr_matches_torch(name, args, kwargs, torch):
    assert repr(getattr(nn, name)(*args, **kwargs)) == \
        repr(getattr(torch.nn, name)(*args, **kwargs))


@pytest.mark.parametrize("name, args, kwargs", REPR_CASES)
def test_attributes_match_torch(name, args, kwargs, torch):
    ours = getattr(nn, name)(*args, **kwargs)
    theirs = getattr(torch.nn, name)(*args, **kwargs)
    for attr in ("kernel_size", "stride", "padding", "dilation", "return_indices",
                 "ceil_mode", "count_include_pad", "divisor_override", "output_size",
                 "output_ratio", "norm_type"):
        if hasattr(theirs, attr):
            assert getattr(ours, attr) == getattr(theirs, attr), attr


def test_repr_examples():
    assert repr(nn.AdaptiveAvgPool2d(7)) == "AdaptiveAvgPool2d(output_size=7)"
    assert repr(nn.MaxPool2d(3, 2, 1)) == \
        "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)"


def test_repr_data_format():
    assert repr(nn.AdaptiveAvgPool2d(7, data_format="channels_last")) == \
        "AdaptiveAvgPool2d(output_size=7, data_format='channels_last')"
    assert repr(nn.FractionalMaxPool2d(2, output_size=3, data_format="channels_last")) \
        == "FractionalMaxPool2d(data_format='channels_last')"
    assert "data_format" not in repr(nn.MaxPool2d(2, data_format="channels_first"))


def test_bad_data_format():
    with pytest.raises(ValueError, match="data_format"):
        nn.MaxPool2d(2, data_format="NHWC")


@pytest.mark.parametrize("name", ["FractionalMaxPool2d", "FractionalMaxPool3d"])
@pytest.mark.parametrize("kwargs", [
    {}, dict(output_size=2, output_ratio=0.5), dict(output_ratio=1.0),
    dict(output_ratio=0.0),
])
def test_fractional_constructor_errors(name, kwargs, torch):
    with pytest.raises(ValueError):
        getattr(torch.nn, name)(2, **kwargs)
    with pytest.raises(ValueError):
        getattr(nn, name)(2, **kwargs)


# ----------------------------------------------------------------------- forward

# (class, constructor args, constructor kwargs, input shape); every kwarg name is
# also the functional's keyword for it
FORWARD_CASES = [
    ("MaxPool1d", (3,), dict(stride=2, padding=1), (2, 3, 11)),
    ("MaxPool1d", (2,), dict(dilation=2, ceil_mode=True), (2, 3, 10)),
    ("MaxPool2d", (3,), dict(stride=2, padding=1), (2, 3, 9, 8)),
    ("MaxPool2d", ((2, 3),), dict(stride=(1, 2), dilation=(2, 1), ceil_mode=True,
                                  return_indices=True), (2, 3, 9, 8)),
    ("MaxPool3d", (2,), dict(stride=2, padding=1, ceil_mode=True), (1, 2, 5, 6, 7)),
    ("MaxPool3d", ((3, 2, 2),), dict(stride=1, dilation=(1, 2, 1),
                                     return_indices=True), (1, 2, 5, 6, 7)),
    ("AvgPool1d", (3,), dict(stride=2, padding=1, count_include_pad=False), (2, 3, 11)),
    ("AvgPool1d", (2,), dict(ceil_mode=True), (2, 3, 11)),
    ("AvgPool2d", (3,), dict(stride=2, padding=1), (2, 3, 9, 8)),
    ("AvgPool2d", ((3, 2),), dict(stride=(2, 1), padding=(1, 0), ceil_mode=True,
                                  count_include_pad=False), (2, 3, 9, 8)),
    ("AvgPool2d", (2,), dict(divisor_override=3), (2, 3, 9, 8)),
    ("AvgPool3d", (3,), dict(stride=2, padding=1, ceil_mode=True,
                             count_include_pad=False), (1, 2, 5, 6, 7)),
    ("AvgPool3d", (2,), dict(divisor_override=5), (1, 2, 5, 6, 7)),
    ("AdaptiveAvgPool1d", (4,), {}, (2, 3, 11)),
    ("AdaptiveAvgPool2d", (5,), {}, (2, 3, 9, 8)),
    ("AdaptiveAvgPool2d", ((3, None),), {}, (2, 3, 9, 8)),
    ("AdaptiveAvgPool3d", ((2, 3, 4),), {}, (1, 2, 5, 6, 7)),
    ("AdaptiveMaxPool1d", (4,), {}, (2, 3, 11)),
    ("AdaptiveMaxPool2d", ((3, 5),), dict(return_indices=True), (2, 3, 9, 8)),
    ("AdaptiveMaxPool2d", (4,), {}, (2, 3, 9, 8)),
    ("AdaptiveMaxPool3d", (3,), {}, (1, 2, 5, 6, 7)),
    ("LPPool1d", (2, 3), dict(stride=2), (2, 3, 11)),
    ("LPPool2d", (2, 3), dict(stride=2, ceil_mode=True), (2, 3, 9, 8)),
    ("LPPool2d", (1.5, (2, 3)), {}, (2, 3, 9, 8)),
    ("LPPool3d", (3, 2), {}, (1, 2, 5, 6, 7)),
]


def _case_id(case):
    name, args, kwargs, _ = case
    return name + "-" + "-".join(map(str, args)) + "".join(
        f"-{k}={v}" for k, v in kwargs.items())


def _lp_reference(torch, nd, norm_type, kernel_size, stride=None, ceil_mode=False):
    """The p-norm numbapool documents, (sum over in-bounds window of |x|**p) ** (1/p).

    PyTorch's LPPool computes avg_pool(x**p) * prod(kernel), which differs when a
    ceil_mode window hangs past the input (and for negative inputs).
    """
    k = tuple(kernel_size) if isinstance(kernel_size, tuple) else (kernel_size,) * nd
    s = k if stride is None else (tuple(stride) if isinstance(stride, tuple) else (stride,) * nd)
    one = (1,) * (3 - nd)

    def module(xt):
        x5 = xt.reshape(xt.shape[:2] + one + xt.shape[2:])
        y = torch.nn.functional.avg_pool3d(x5.abs() ** norm_type, one + k, one + s,
                                           ceil_mode=ceil_mode, divisor_override=1)
        y = y ** (1.0 / norm_type)
        return y.reshape(y.shape[:2] + y.shape[5 - nd:])

    return module


def _torch_module(torch, name, args, kwargs):
    """torch.nn's layer for a case, or the documented p-norm where PyTorch's LPPool
    deliberately differs (ceil_mode)."""
    if name.startswith("LPPool") and kwargs.get("ceil_mode"):
        return _lp_reference(torch, _nd(name), *args, **kwargs)
    return getattr(torch.nn, name)(*args, **kwargs)


def _torch_out(torch, name, args, kwargs, x):
    out = _torch_module(torch, name, args, kwargs)(torch.from_numpy(x))
    if isinstance(out, tuple):
        return tuple(t.detach().numpy() for t in out)
    return out.detach().numpy()


@pytest.mark.parametrize("case", FORWARD_CASES, ids=_case_id)
def test_forward_matches_functional(case):
    name, args, kwargs, shape = case
    x = _input(name, shape)
    out = getattr(nn, name)(*args, **kwargs)(x)
    expected = getattr(F, _fname(name))(x, *args, **kwargs)
    if kwargs.get("return_indices"):
        assert isinstance(out, tuple) and len(out) == 2
        np.testing.assert_array_equal(out[0], expected[0])
        np.testing.assert_array_equal(out[1], expected[1])
    else:
        assert not isinstance(out, tuple)
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("case", FORWARD_CASES, ids=_case_id)
def test_forward_matches_torch(case, torch):
    name, args, kwargs, shape = case
    x = _input(name, shape)
    out = getattr(nn, name)(*args, **kwargs)(x)
    expected = _torch_out(torch, name, args, kwargs, x)
    if kwargs.get("return_indices"):
        _check_close(out[0], expected[0])
        np.testing.assert_array_equal(out[1], expected[1])
    else:
        _check_close(out, expected)


@pytest.mark.parametrize("case", FORWARD_CASES, ids=_case_id)
def test_forward_channels_last(case):
    name, args, kwargs, shape = case
    nd = _nd(name)
    x = _input(name, shape)
    first = getattr(nn, name)(*args, **kwargs)(x)
    layer = getattr(nn, name)(*args, **kwargs, data_format="channels_last")
    last = layer(np.ascontiguousarray(_to_last(x, nd)))
    if kwargs.get("return_indices"):
        _check_close(last[0], _to_last(first[0], nd))
        np.testing.assert_array_equal(last[1], _to_last(first[1], nd))
    else:
        _check_close(last, _to_last(first, nd))


@pytest.mark.parametrize("case", FORWARD_CASES, ids=_case_id)
def test_forward_unbatched(case):
    name, args, kwargs, shape = case
    x = _input(name, shape)
    batched = getattr(nn, name)(*args, **kwargs)(x[:1])
    unbatched = getattr(nn, name)(*args, **kwargs)(x[0])
    if kwargs.get("return_indices"):
        _check_close(unbatched[0], batched[0][0])
        np.testing.assert_array_equal(unbatched[1], batched[1][0])
    else:
        _check_close(unbatched, batched[0])


def test_lp_pool_is_the_documented_p_norm():
    # numbapool uses |x| (PyTorch's x**p gives wrong signs / NaN for negative inputs)
    x = np.array([[[-1.0, 2.0, -3.0, 4.0]]], np.float32)
    _check_close(nn.LPPool1d(1, 2)(x), [[[3.0, 7.0]]])
    _check_close(nn.LPPool1d(2, 2)(x), [[[np.sqrt(5.0), 5.0]]])
    # ceil_mode: a window hanging past the input sums its in-bounds taps only
    y = np.arange(1, 6, dtype=np.float32).reshape(1, 1, 5)
    _check_close(nn.LPPool1d(1, 2, ceil_mode=True)(y), [[[3.0, 7.0, 5.0]]])


def test_lp_pool_matches_torch_without_ceil(torch):
    x = _input("LPPool2d", (2, 3, 9, 8))
    ours = nn.LPPool2d(2, 3, stride=2, ceil_mode=True)(x)
    reference = _torch_out(torch, "LPPool2d", (2, 3), dict(stride=2, ceil_mode=True), x)
    _check_close(ours, reference)
    # where no window hangs past the input, torch's own LPPool agrees
    full = nn.LPPool2d(2, 3, stride=2)(x)
    _check_close(full, ours[:, :, :full.shape[2], :full.shape[3]])


def test_seed_224_to_7():
    x = np.random.default_rng(0).standard_normal((1, 4, 224, 224)).astype(np.float32)
    a = nn.AdaptiveAvgPool2d(output_size=(7, 7))(x)
    b = nn.AvgPool2d(kernel_size=32, stride=32)(x)
    assert a.shape == b.shape == (1, 4, 7, 7)
    _check_close(a, b)


def test_float64_passes_through():
    x = np.random.default_rng(0).standard_normal((1, 2, 6, 6))
    assert nn.MaxPool2d(2)(x).dtype == np.float64
    assert nn.AvgPool2d(2)(x).dtype == np.float64


# -------------------------------------------------------------------- fractional


FRACTIONAL_CASES = [
    ("FractionalMaxPool2d", (3,), dict(output_size=5), (2, 3, 11, 10)),
    ("FractionalMaxPool2d", ((2, 3),), dict(output_ratio=(0.5, 0.6),
                                            return_indices=True), (2, 3, 11, 10)),
    ("FractionalMaxPool3d", (2,), dict(output_size=(3, 4, 2)), (1, 2, 6, 7, 5)),
    ("FractionalMaxPool3d", (2,), dict(output_ratio=0.5, return_indices=True),
     (1, 2, 6, 7, 5)),
]


def _fractional_torch(torch, name, args, kwargs, x, samples):
    layer = getattr(torch.nn, name)(*args, **kwargs,
                                    _random_samples=torch.from_numpy(samples))
    return layer, layer(torch.from_numpy(x))


@pytest.mark.parametrize("case", FRACTIONAL_CASES, ids=_case_id)
def test_fractional_samples(case):
    name, args, kwargs, shape = case
    x = _input(name, shape)
    layer = getattr(nn, name)(*args, **kwargs, rng=np.random.default_rng(0))
    layer(x)
    samples = layer.last_random_samples
    assert samples.shape == (shape[0], shape[1], _nd(name))
    assert samples.dtype == np.float32
    assert ((samples >= 0) & (samples < 1)).all()
    layer(x.astype(np.float64))
    assert layer.last_random_samples.dtype == np.float64
    layer(x[0])
    assert layer.last_random_samples.shape == (1, shape[1], _nd(name))
    layer((x * 10).astype(np.int32))
    assert layer.last_random_samples.dtype == np.float64  # as the functional draws


@pytest.mark.parametrize("case", FRACTIONAL_CASES, ids=_case_id)
def test_fractional_matches_functional(case):
    name, args, kwargs, shape = case
    x = _input(name, shape)
    layer = getattr(nn, name)(*args, **kwargs, rng=np.random.default_rng(1))
    out = layer(x)
    expected = getattr(F, _fname(name))(
        x, *args, **kwargs, random_samples=layer.last_random_samples)
    if kwargs.get("return_indices"):
        np.testing.assert_array_equal(out[0], expected[0])
        np.testing.assert_array_equal(out[1], expected[1])
    else:
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("case", FRACTIONAL_CASES, ids=_case_id)
def test_fractional_matches_torch(case, torch):
    name, args, kwargs, shape = case
    x = _input(name, shape)
    layer = getattr(nn, name)(*args, **kwargs, rng=np.random.default_rng(2))
    out = layer(x)
    _, expected = _fractional_torch(torch, name, args, kwargs, x,
                                    layer.last_random_samples)
    if kwargs.get("return_indices"):
        _check_close(out[0], expected[0].numpy())
        np.testing.assert_array_equal(out[1], expected[1].numpy())
    else:
        _check_close(out, expected.numpy())


@pytest.mark.parametrize("case", FRACTIONAL_CASES, ids=_case_id)
def test_fractional_channels_last(case):
    name, args, kwargs, shape = case
    nd = _nd(name)
    x = _input(name, shape)
    samples = np.random.default_rng(3).random((shape[0], shape[1], nd), np.float32)
    first = getattr(nn, name)(*args, **kwargs, _random_samples=samples)(x)
    last = getattr(nn, name)(*args, **kwargs, _random_samples=samples,
                             data_format="channels_last")(
        np.ascontiguousarray(_to_last(x, nd)))
    if kwargs.get("return_indices"):
        np.testing.assert_array_equal(last[0], _to_last(first[0], nd))
        np.testing.assert_array_equal(last[1], _to_last(first[1], nd))
    else:
        np.testing.assert_array_equal(last, _to_last(first, nd))


def test_fractional_rng_reproducible_and_fresh():
    x = _input("FractionalMaxPool2d", (2, 3, 16, 16))
    a = nn.FractionalMaxPool2d(2, output_ratio=0.6, rng=np.random.default_rng(7))
    b = nn.FractionalMaxPool2d(2, output_ratio=0.6, rng=np.random.default_rng(7))
    ya, yb = a(x), b(x)
    np.testing.assert_array_equal(ya, yb)
    np.testing.assert_array_equal(a.last_random_samples, b.last_random_samples)
    first = a.last_random_samples
    a(x)
    assert not np.array_equal(first, a.last_random_samples)  # fresh samples per call


@pytest.mark.parametrize("case", FRACTIONAL_CASES, ids=_case_id)
def test_fractional_rng_draws_like_functional(case):
    # a layer and the function given equal generators place equal windows
    name, args, kwargs, shape = case
    x = _input(name, shape)
    out = getattr(nn, name)(*args, **kwargs, rng=np.random.default_rng(11))(x)
    expected = getattr(F, _fname(name))(x, *args, **kwargs, rng=np.random.default_rng(11))
    if kwargs.get("return_indices"):
        np.testing.assert_array_equal(out[1], expected[1])
        out, expected = out[0], expected[0]
    np.testing.assert_array_equal(out, expected)


def test_fractional_rng_must_be_generator():
    with pytest.raises(TypeError, match="Generator"):
        nn.FractionalMaxPool2d(2, output_size=3, rng=np.random.RandomState(0))


def test_fractional_fixed_samples_reused():
    x = _input("FractionalMaxPool2d", (2, 3, 16, 16))
    samples = np.random.default_rng(0).random((2, 3, 2), np.float32)
    layer = nn.FractionalMaxPool2d(3, output_size=7, _random_samples=samples)
    y1 = layer(x)
    y2 = layer(x)
    np.testing.assert_array_equal(y1, y2)
    assert layer.last_random_samples is samples


# ------------------------------------------------------------------------ unpool


UNPOOL_CASES = [
    ("MaxUnpool1d", (2,), {}, (2, 3, 10), None),
    ("MaxUnpool1d", (3,), dict(stride=2, padding=1), (2, 3, 11), None),
    ("MaxUnpool2d", (2,), {}, (2, 3, 8, 6), None),
    ("MaxUnpool2d", (2,), dict(stride=2), (2, 3, 9, 7), (9, 7)),
    ("MaxUnpool2d", ((3, 2),), dict(stride=(2, 1), padding=(1, 0)), (2, 3, 9, 7), None),
    ("MaxUnpool3d", (2,), {}, (1, 2, 4, 6, 4), None),
    ("MaxUnpool3d", (2,), {}, (1, 2, 5, 6, 5), (5, 6, 5)),
]


def _unpool_case_id(case):
    return _case_id(case[:4]) + ("" if case[4] is None else f"-out={case[4]}")


def _pooled(name, args, kwargs, shape):
    x = _input(name, shape)
    pool = getattr(nn, name.replace("MaxUnpool", "MaxPool"))(
        *args, **kwargs, return_indices=True)
    return pool(x)


@pytest.mark.parametrize("case", UNPOOL_CASES, ids=_unpool_case_id)
def test_unpool_matches_functional(case):
    name, args, kwargs, shape, output_size = case
    y, idx = _pooled(name, args, kwargs, shape)
    out = getattr(nn, name)(*args, **kwargs)(y, idx, output_size)
    expected = getattr(F, _fname(name))(y, idx, *args, **kwargs, output_size=output_size)
    np.testing.assert_array_equal(out, expected)
    if output_size is not None:
        assert out.shape[-_nd(name):] == tuple(output_size)


@pytest.mark.parametrize("case", UNPOOL_CASES, ids=_unpool_case_id)
def test_unpool_matches_torch(case, torch):
    name, args, kwargs, shape, output_size = case
    y, idx = _pooled(name, args, kwargs, shape)
    out = getattr(nn, name)(*args, **kwargs)(y, idx, output_size=output_size)
    expected = getattr(torch.nn, name)(*args, **kwargs)(
        torch.from_numpy(y), torch.from_numpy(np.asarray(idx)), output_size=output_size)
    np.testing.assert_array_equal(out, expected.numpy())


@pytest.mark.parametrize("case", UNPOOL_CASES, ids=_unpool_case_id)
def test_unpool_channels_last(case):
    name, args, kwargs, shape, output_size = case
    nd = _nd(name)
    y, idx = _pooled(name, args, kwargs, shape)
    first = getattr(nn, name)(*args, **kwargs)(y, idx, output_size)
    layer = getattr(nn, name)(*args, **kwargs, data_format="channels_last")
    last = layer(np.ascontiguousarray(_to_last(y, nd)),
                 np.ascontiguousarray(_to_last(idx, nd)), output_size)
    np.testing.assert_array_equal(last, _to_last(first, nd))


def test_unpool_doc_example():
    # torch.nn.MaxUnpool2d docs: 4x4 input 1..16, pool 2 and unpool 2
    pool = nn.MaxPool2d(2, stride=2, return_indices=True)
    unpool = nn.MaxUnpool2d(2, stride=2)
    y, idx = pool(X4)
    np.testing.assert_array_equal(
        unpool(y, idx)[0, 0],
        [[0, 0, 0, 0], [0, 6, 0, 8], [0, 0, 0, 0], [0, 14, 0, 16]],
    )


# ---------------------------------------------------------------------- backward


def test_backward_before_forward_raises():
    for name, args, kwargs, _ in FORWARD_CASES[:1] + FRACTIONAL_CASES[:1]:
        layer = getattr(nn, name)(*args, **kwargs)
        with pytest.raises(RuntimeError, match="forward"):
            layer.backward(np.zeros((1, 1, 1, 1), np.float32))
    with pytest.raises(RuntimeError, match="forward"):
        nn.MaxUnpool2d(2).backward(np.zeros((1, 1, 2, 2), np.float32))


def test_indices_requested_internally():
    # the layer keeps indices for backward even when the user did not ask for them
    layer = nn.MaxPool2d(2)
    out = layer(X4)
    assert not isinstance(out, tuple)
    assert layer._saved["indices"] is not None


def _torch_grad(torch, module, x, grad_out, *extra):
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    out = module(xt, *extra)
    if isinstance(out, tuple):
        out = out[0]
    out.backward(torch.from_numpy(np.ascontiguousarray(grad_out)))
    return xt.grad.numpy()


def _grad_like(out, seed=5):
    out = out[0] if isinstance(out, tuple) else out
    return np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)


@pytest.mark.parametrize("case", FORWARD_CASES, ids=_case_id)
def test_backward_matches_torch(case, torch):
    name, args, kwargs, shape = case
    x = _input(name, shape)
    layer = getattr(nn, name)(*args, **kwargs)
    g = _grad_like(layer(x))
    grad = layer.backward(g)
    assert grad.shape == x.shape
    expected = _torch_grad(torch, _torch_module(torch, name, args, kwargs), x, g)
    _check_close(grad, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", FORWARD_CASES, ids=_case_id)
def test_backward_channels_last(case):
    name, args, kwargs, shape = case
    nd = _nd(name)
    x = _input(name, shape)
    first = getattr(nn, name)(*args, **kwargs)
    g = _grad_like(first(x))
    expected = first.backward(g)
    last = getattr(nn, name)(*args, **kwargs, data_format="channels_last")
    last(np.ascontiguousarray(_to_last(x, nd)))
    grad = last.backward(np.ascontiguousarray(_to_last(g, nd)))
    _check_close(grad, _to_last(expected, nd))


@pytest.mark.parametrize("case", FORWARD_CASES, ids=_case_id)
def test_backward_matches_functional(case):
    name, args, kwargs, shape = case
    x = _input(name, shape)
    layer = getattr(nn, name)(*args, **kwargs)
    out = layer(x)
    g = _grad_like(out)
    grad = layer.backward(g)
    fname = _fname(name)
    fkwargs = {k: v for k, v in kwargs.items() if k != "return_indices"}
    if "Max" in name:
        _, idx = getattr(F, fname)(x, *args, **fkwargs, return_indices=True)
        if name.startswith("Adaptive"):
            expected = getattr(F, fname + "_backward")(g, x, idx)
        else:
            expected = getattr(F, fname + "_backward")(g, x, idx, *args, **fkwargs)
    elif name.startswith("Adaptive"):
        expected = getattr(F, fname + "_backward")(g, x)
    else:
        expected = getattr(F, fname + "_backward")(g, x, *args, **fkwargs)
    np.testing.assert_array_equal(grad, expected)


@pytest.mark.parametrize("case", FORWARD_CASES, ids=_case_id)
def test_backward_unbatched(case):
    name, args, kwargs, shape = case
    x = _input(name, shape)
    batched = getattr(nn, name)(*args, **kwargs)
    g = _grad_like(batched(x[:1]))
    expected = batched.backward(g)
    unbatched = getattr(nn, name)(*args, **kwargs)
    unbatched(x[0])
    grad = unbatched.backward(g[0])
    assert grad.shape == x[0].shape
    _check_close(grad, expected[0])


def test_backward_uses_last_forward():
    layer = nn.MaxPool2d(2)
    x1 = _input("MaxPool2d", (1, 2, 6, 6), seed=1)
    x2 = _input("MaxPool2d", (1, 2, 4, 4), seed=2)
    layer(x1)
    layer(x2)
    g = np.ones((1, 2, 2, 2), np.float32)
    grad = layer.backward(g)
    assert grad.shape == x2.shape
    fresh = nn.MaxPool2d(2)
    fresh(x2)
    np.testing.assert_array_equal(grad, fresh.backward(g))


@pytest.mark.parametrize("case", FRACTIONAL_CASES, ids=_case_id)
def test_fractional_backward_matches_torch(case, torch):
    name, args, kwargs, shape = case
    x = _input(name, shape)
    layer = getattr(nn, name)(*args, **kwargs, rng=np.random.default_rng(4))
    g = _grad_like(layer(x))
    grad = layer.backward(g)
    assert grad.shape == x.shape
    module = getattr(torch.nn, name)(
        *args, **kwargs, _random_samples=torch.from_numpy(layer.last_random_samples))
    _check_close(grad, _torch_grad(torch, module, x, g))


@pytest.mark.parametrize("case", FRACTIONAL_CASES, ids=_case_id)
def test_fractional_backward_channels_last(case):
    name, args, kwargs, shape = case
    nd = _nd(name)
    x = _input(name, shape)
    samples = np.random.default_rng(3).random((shape[0], shape[1], nd), np.float32)
    first = getattr(nn, name)(*args, **kwargs, _random_samples=samples)
    g = _grad_like(first(x))
    expected = first.backward(g)
    last = getattr(nn, name)(*args, **kwargs, _random_samples=samples,
                             data_format="channels_last")
    last(np.ascontiguousarray(_to_last(x, nd)))
    grad = last.backward(np.ascontiguousarray(_to_last(g, nd)))
    _check_close(grad, _to_last(expected, nd))


@pytest.mark.parametrize("case", UNPOOL_CASES, ids=_unpool_case_id)
def test_unpool_backward_matches_torch(case, torch):
    name, args, kwargs, shape, output_size = case
    y, idx = _pooled(name, args, kwargs, shape)
    layer = getattr(nn, name)(*args, **kwargs)
    g = _grad_like(layer(y, idx, output_size))
    grad = layer.backward(g)
    assert grad.shape == y.shape
    module = getattr(torch.nn, name)(*args, **kwargs)
    expected = _torch_grad(torch, module, y, g, torch.from_numpy(np.asarray(idx)),
                           output_size)
    np.testing.assert_array_equal(grad, expected)


@pytest.mark.parametrize("case", UNPOOL_CASES, ids=_unpool_case_id)
def test_unpool_backward_channels_last(case):
    name, args, kwargs, shape, output_size = case
    nd = _nd(name)
    y, idx = _pooled(name, args, kwargs, shape)
    first = getattr(nn, name)(*args, **kwargs)
    g = _grad_like(first(y, idx, output_size))
    expected = first.backward(g)
    last = getattr(nn, name)(*args, **kwargs, data_format="channels_last")
    last(np.ascontiguousarray(_to_last(y, nd)), np.ascontiguousarray(_to_last(idx, nd)),
         output_size)
    grad = last.backward(np.ascontiguousarray(_to_last(g, nd)))
    np.testing.assert_array_equal(grad, _to_last(expected, nd))
