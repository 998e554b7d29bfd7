"""The docstrings of the generated functions and layers, written from their op-table row.

Each docstring has the row's summary, its arguments, the shapes, dtypes and layouts it
takes, what it returns, how it differs from PyTorch, and an example. The examples run as
doctests (tests/test_docs.py), and their printed results are PyTorch's: the test runs
each example with PyTorch in numbapool's place and checks it prints the same, and
``python tests/test_docs.py --write`` rewrites ``numbapool/_examples.py`` from PyTorch.
"""

import functools
import textwrap

from numbapool import _elements
from numbapool._examples import OUTPUTS

WIDTH = 88

SHAPES = {
    1: ("(N, C, L) or (C, L)", "(N, L, C)"),
    2: ("(N, C, H, W) or (C, H, W)", "(N, H, W, C)"),
    3: ("(N, C, D, H, W) or (C, D, H, W)", "(N, D, H, W, C)"),
}

_INPUT = """\
    input : array of shape {first},
        or {last} with ``data_format="channels_last"``. A NumPy array (or array-like)
        runs on the CPU, an array with ``__cuda_array_interface__`` (CuPy, Numba) on the
        GPU, and a dask array gives a lazy dask array."""

_DATA_FORMAT = """\
    data_format : "channels_first" (default) or "channels_last", keyword only
        Where the channels are: ``(N, C, *spatial)`` as in PyTorch, or ``(N, *spatial,
        C)`` as in Keras and Flax. Either way any strides are read in place, and an input
        whose memory is channels-last gives an output whose memory is channels-last."""

_FLOATS = "float16, bfloat16 (``ml_dtypes.bfloat16``), float32, float64"

_INTEGERS_DOC = {
    _elements.INTEGERS: " and every integer dtype (exactly, in the input's dtype)",
    _elements.INT64: " and int64",
    frozenset(): "",
}

_ARRAYS = ("Arrays in, arrays out: NumPy on the CPU, CuPy (or any "
           "``__cuda_array_interface__`` array) on the GPU, dask arrays lazily, where "
           "PyTorch takes tensors; ``data_format`` is numbapool's own.")

_FORWARD_MEMORY = """\
    Memory
    ------
    Besides the result (and int64 indices, if returned): on the CPU, 16-bit floats are
    computed into a float32 array of the result's shape, then converted, and sums of
    more than 64 float32 values are carried in float64 rows of scratch; windows are
    tabulated only for dims up to 4096 long (under 600 KB). The GPU stores the result's
    type directly."""

_BACKWARD_MEMORY = """\
    Memory
    ------
    Besides grad_input: on the CPU, 16-bit float gradients are added into a float32 array
    of the input's shape, then converted; average and LP gradients first scale
    grad_output into an array of its shape (LP also recomputes the forward's output). The
    GPU's check of indices takes one byte per index."""


def ranked(text, nd):
    """``text`` with ``{nd}`` replaced by the rank."""
    return text.replace("{nd}", str(nd))


def wrapped(text, nd, indent=4):
    """``text`` with ``{nd}`` replaced by the rank, filled to the docstring width."""
    return _filled(ranked(text, nd), indent)


@functools.cache
def _filled(text, indent):
    # most paragraphs recur in several functions' docstrings: filling each once took a
    # fifth of ``import numbapool``
    return textwrap.fill(text, width=WIDTH, initial_indent=" " * indent,
                         subsequent_indent=" " * indent)


def _section(title, body):
    return f"    {title}\n    {'-' * len(title)}\n{body}"


def _params(params, nd):
    return "\n".join(f"    {p.name}\n{wrapped(p.doc, nd, 8)}" for p in params)


def _dtypes(op, nd):
    return _section("Dtypes", wrapped(
        f"{_FLOATS}{_INTEGERS_DOC[op.integers]}. 16-bit floats are computed in float32 "
        "and returned in their own type.", nd))


def _differences(op, nd):
    text = f"{_ARRAYS} {op.differences}" if op.differences else _ARRAYS
    return _section("Differences from PyTorch", wrapped(text, nd))


# ---------------------------------------------------------------------------------------
# Examples: an input x = np.arange(size ** nd) of shape (1, 1, size, ..., size)


def _lines(source, output=None):
    """Doctest text: ``source`` lines as prompts, then the expected output (wrapped: the
    doctests compare with whitespace normalised)."""
    text = "".join(f"    >>> {line}\n" for line in source)
    if output is not None:
        text += textwrap.fill(output, width=WIDTH, initial_indent="    ",
                              subsequent_indent="    ", break_on_hyphens=False) + "\n"
    return text


def _start(op, nd):
    size = op.example.size
    shape = ", ".join(["1", "1", *[str(size)] * nd])
    setup = [ranked(op.example.setup, nd)] if op.example.setup else []
    return _lines(["import numpy as np", "import numbapool as npl",
                   f"x = np.arange({float(size ** nd)}).reshape({shape})", *setup])


def _show(op, expression, backward=False):
    example = op.example
    show = example.backward_show if backward and example.backward_show else example.show
    return show.format(expression)


def _with_indices(op):
    """Whether the backward takes indices the forward returns (max-type pooling)."""
    return any(p.name == "indices" and not p.forward for p in op.params)


def _backward_call(op, nd, grad):
    """The backward call of the example, given the gradient's name."""
    example = op.example
    indices = ", indices" if _with_indices(op) else ""
    arguments = example.arguments if example.backward_arguments is None \
        else example.backward_arguments
    arguments = ", ".join(filter(None, [grad, example.arrays + indices, arguments]))
    return ranked(f"npl.{op.function_name(nd)}_backward({arguments})", nd)


def _function_example(op, nd):
    outputs = OUTPUTS.get(op.function_name(nd), {})
    call = f"npl.{op.function_name(nd)}({op.example.arrays}, {op.example.arguments})"
    return _section("Example", _start(op, nd) + _lines(
        [_show(op, ranked(call, nd))], outputs.get("forward")))


def _backward_example(op, nd):
    outputs = OUTPUTS.get(op.function_name(nd), {})
    example = op.example
    result = "out, indices" if _with_indices(op) else "out"
    extra = ", return_indices=True" if _with_indices(op) else ""
    forward = ranked(f"{result} = npl.{op.function_name(nd)}({example.arrays}, "
                     f"{example.arguments}{extra})", nd)
    backward = _show(op, _backward_call(op, nd, "np.ones_like(out)"), backward=True)
    return _section("Example", _start(op, nd) + _lines([forward])
                    + _lines([backward], outputs.get("backward")))


def _layer_example(op, nd):
    outputs = OUTPUTS.get(op.function_name(nd), {})
    example = op.example
    construct = f"pool = npl.nn.{op.layer_name(nd)}({example.arguments})"
    return _section("Example", _start(op, nd)
                    + _lines([ranked(construct, nd), "pool"],
                             outputs.get("repr"))
                    + _lines([f"out = pool({example.arrays})", _show(op, "out")],
                             outputs.get("forward"))
                    + _lines([_show(op, "pool.backward(np.ones_like(out))", backward=True)],
                             outputs.get("backward")))


# ---------------------------------------------------------------------------------------
# The docstrings


def function_doc(op, nd):
    first, last = SHAPES[nd]
    return "\n\n".join([
        ranked(op.summary, nd),
        _section("Parameters", "\n".join([
            _INPUT.format(first=first, last=last), _params(op.forward_params(), nd),
            _DATA_FORMAT])),
        _section("Returns", wrapped(f"{op.returns} Shape: {op.output_shape}", nd)),
        _dtypes(op, nd), _differences(op, nd), _function_example(op, nd),
        _FORWARD_MEMORY]) + "\n"


def backward_doc(op, nd):
    name = op.function_name(nd)
    return "\n\n".join([
        f"Gradient of ``{name}`` with respect to its input.",
        wrapped(f"Takes ``grad_output, input``, then {name}'s arguments, and returns "
                "grad_input with input's shape, dtype and memory layout. Each input element "
                "sums, in a fixed order, the outputs whose windows hold it: the result is "
                "bitwise the same for any thread count or GPU launch (no atomics).", nd),
        _section("Parameters", "\n".join([
            "    grad_output : array\n        Gradient with respect to the forward's "
            "output (its shape, input's dtype).",
            "    input : array\n        The forward's input.",
            _params(op.backward_params(), nd), _DATA_FORMAT])),
        _section("Returns", "    grad_input: the gradient with respect to ``input``."),
        _dtypes(op, nd), _differences(op, nd), _backward_example(op, nd),
        _BACKWARD_MEMORY]) + "\n"


def layer_doc(op, nd, params):
    """The class docstring of layer ``op.layer_name(nd)`` with constructor ``params``."""
    function = op.function_name(nd)
    first, last = SHAPES[nd]
    by_name = {p.name: p for p in op.params}
    documented = [by_name[p.name] for p in params if p.name in by_name]
    calls = ("``layer(input, indices, output_size=None)``"
             if op.name == "max_unpool" else "``layer(input)``")
    return "\n\n".join([
        ranked(op.summary, nd).replace(
            f"torch.nn.functional.{function}", f"torch.nn.{op.layer_name(nd)}"),
        wrapped(f"A layer with PyTorch's constructor, attributes and repr; {calls} returns "
                f"``numbapool.{function}`` of its arguments, and ``layer.backward"
                "(grad_output)`` the gradient with respect to the input of the last call "
                "(``numbapool.nn`` explains what a layer keeps).", nd),
        _section("Parameters", "\n".join([_params(documented, nd), _DATA_FORMAT])),
        _section("Shapes", wrapped(
            f"Input {first}, or {last} with ``data_format=\"channels_last\"``. Output: "
            f"{op.output_shape}", nd)),
        _dtypes(op, nd), _differences(op, nd), _layer_example(op, nd)]) + "\n"
