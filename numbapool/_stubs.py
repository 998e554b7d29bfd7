"""The type stubs of the generated modules, written from the op table.

``numbapool.functional`` and ``numbapool.nn`` are built at import from ``_ops.OPS``, so a
type checker cannot read their signatures from the source; ``functional.pyi`` and
``nn.pyi`` give them. ``python -m numbapool._stubs`` rewrites both; tests/test_typing.py
checks they are current and runs mypy over them.

A NumPy array (or nested sequences) in gives a NumPy array out; any other array type
(CuPy, Numba device arrays, dask) gives its own type back. Max-type functions return
``(output, indices)`` when ``return_indices`` is ``True``.
"""

from pathlib import Path

from numbapool import _ops

_HEADER = '''"""Type stubs of numbapool.{module}, written from the op table by numbapool._stubs
(do not edit: run ``python -m numbapool._stubs``)."""

from collections.abc import Sequence
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import NDArray

from numbapool._typing import (
    AdaptiveSize, ArrayT, DataFormat, Indices, NumPyInput, Ratio, Size,
)
'''

# (input type, result type, indices type) of the two input overloads
_INPUTS = (("NumPyInput", "NDArray[Any]", "Indices"), ("ArrayT", "ArrayT", "ArrayT"))
_DATA_FORMAT = "data_format: DataFormat = ..."


def _annotated(name, annotation, default):
    return f"{name}: {annotation}" + ("" if default is _ops.REQUIRED else " = ...")


def _param(p, array, literal=None):
    return _annotated(p.name, literal or p.type.replace("ArrayT", array), p.default)


def _def(name, params, result, overload=False):
    decorator = "@overload\n" if overload else ""
    return f"{decorator}def {name}({', '.join(params)}) -> {result}: ...\n"


def _forward(op, nd):
    name = op.function_name(nd)
    params = op.forward_params()
    has_indices = any(p.name == "return_indices" for p in params)
    text = later = ""  # the overloads taking any bool come last: a literal picks first
    for input_type, result, indices in _INPUTS:
        positional = [p for p in params if not p.keyword_only]
        keyword = [_param(p, result) for p in params if p.keyword_only]
        plain = [f"input: {input_type}", *(_param(p, result) for p in positional), "*",
                 *keyword, _DATA_FORMAT]
        if not has_indices:
            text += _def(name, plain, result, overload=True)
            continue
        pair = f"tuple[{result}, {indices}]"
        at = [p.name for p in positional].index("return_indices")

        def variant(literal, keyword_only):
            before = [_param(p, result) for p in positional[:at]]
            flag = _param(positional[at], result, literal)
            after = [_param(p, result) for p in positional[at + 1:]]
            if keyword_only:   # True by keyword: every later parameter is keyword-only too
                flag = flag.replace(" = ...", "")
                return [f"input: {input_type}", *before, "*", flag, *after, *keyword,
                        _DATA_FORMAT]
            return [f"input: {input_type}", *before, flag, *after, "*", *keyword,
                    _DATA_FORMAT]

        text += _def(name, variant("Literal[False]", False), result, overload=True)
        text += _def(name, variant("Literal[True]", True), pair, overload=True)
        later += _def(name, variant("bool", False), f"{result} | {pair}", overload=True)
    return text + later


def _backward(op, nd):
    params = ["grad_output: ArrayT", "input: Any",
              *(_param(p, "ArrayT") for p in op.backward_params() if not p.keyword_only),
              "*", _DATA_FORMAT]
    return _def(op.function_name(nd) + "_backward", params, "ArrayT")


def functional():
    """The text of ``functional.pyi``."""
    names = _ops.function_names()
    body = "\n".join(_forward(op, nd) + "\n" + _backward(op, nd)
                     for op in _ops.OPS for nd in op.dims)
    return (_HEADER.format(module="functional")
            + f"\n__all__ = {names!r}\n\n" + body)


def _layer(op, nd):
    name = op.layer_name(nd)
    by_name = {p.name: p for p in op.params}
    params = op.constructor_params(nd)

    def text(p):
        annotation = by_name[p.name].type if p.name in by_name else "Any"
        return _annotated(p.name, annotation.replace("ArrayT", "Any"), p.default)

    init = ["self", *(text(p) for p in params if not p.keyword_only), "*",
            *(text(p) for p in params if p.keyword_only), _DATA_FORMAT]
    attributes = "".join(f"    {p.name}: Any\n" for p in params)
    extra_inputs = (["indices: Any", "output_size: Sequence[int] | None = ..."]
                    if op.name == "max_unpool" else [])
    calls = ""
    for method in ("__call__", "forward"):
        if "return_indices" in by_name:  # (output, indices) if built with return_indices
            calls += f"    {_def(method, ['self', 'input: Any'], 'Any')}"
            continue
        for input_type, result, _ in _INPUTS:
            calls += (f"    @overload\n    "
                      f"{_def(method, ['self', f'input: {input_type}', *extra_inputs], result)}")
    extra = "    last_random_samples: Any\n" if op.name == "fractional_max_pool" else ""
    return (f"class {name}(_Pool):\n{attributes}{extra}"
            f"    {_def('__init__', init, 'None')}{calls}")


_POOL = '''
class _Pool:
    data_format: DataFormat
    @overload
    def backward(self, grad_output: NumPyInput) -> NDArray[Any]: ...
    @overload
    def backward(self, grad_output: ArrayT) -> ArrayT: ...
    def windows(self, input_size: int | Sequence[int], **kwargs: Any) -> PoolingWindows: ...
    def extra_repr(self) -> str: ...

'''


def nn():
    """The text of ``nn.pyi``."""
    names = [op.layer_name(nd) for op in _ops.OPS for nd in op.dims]
    return (_HEADER.format(module="nn")
            + "from numbapool._inspection import PoolingWindows\n"
            + f"\n__all__ = {names!r}\n" + _POOL
            + "\n".join(_layer(op, nd) for op in _ops.OPS for nd in op.dims))


STUBS = {"functional.pyi": functional, "nn.pyi": nn}


def write():
    folder = Path(__file__).parent
    for filename, render in STUBS.items():
        (folder / filename).write_text(render())
        print(f"wrote {folder / filename}")


if __name__ == "__main__":
    write()
