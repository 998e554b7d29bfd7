"""The docstrings: every public function and layer documents what a user needs, and its
example runs and prints what PyTorch prints.

Each example runs twice: as written (numbapool), and with PyTorch in numbapool's place
(``TorchAsNumbapool``: the same calls on tensors, gradients by autograd). Both must print
the docstring's expected results, which ``python tests/test_docs.py --write`` takes from
PyTorch into ``numbapool/_examples.py``.
"""

import doctest
import functools
import inspect
import pprint
import sys
from pathlib import Path

import numpy as np
import pytest

import numbapool
import numbapool.nn
import numbapool.plot
from numbapool import _inspection, _ops

OPTIONS = doctest.NORMALIZE_WHITESPACE
LAYERS = {op.layer_name(nd): (op, nd) for op in _ops.OPS for nd in op.dims}
FUNCTIONS = {op.function_name(nd) + suffix: (op, nd) for op in _ops.OPS for nd in op.dims
             for suffix in ("", "_backward")}
OTHERS = {
    "numbapool": numbapool,
    "windows": numbapool.windows,
    "PoolingWindows": _inspection.PoolingWindows,
    "PoolingWindows.region": _inspection.PoolingWindows.region,
    "plot_windows": numbapool.plot.plot_windows,
}


def public(name):
    if name in FUNCTIONS:
        return getattr(numbapool, name)
    if name in LAYERS:
        return getattr(numbapool.nn, name)
    return OTHERS[name]


class _Recorder(doctest.DocTestRunner):
    """Runs examples, keeping what each printed (``printed[source]``)."""

    def __init__(self):
        super().__init__(optionflags=OPTIONS, verbose=False)
        self.printed = {}

    def report_success(self, out, test, example, got):
        self.printed[example.source] = got

    def report_failure(self, out, test, example, got):
        self.printed[example.source] = got
        super().report_failure(out, test, example, got)


def run_examples(name, globs=None, drop=()):
    """Run the docstring examples of ``name`` (examples whose source is in ``drop``
    skipped); return the runner's results, what failed, and what each example printed."""
    test = doctest.DocTestParser().get_doctest(public(name).__doc__ or "", dict(globs or {}),
                                               name, None, 0)
    test.examples = [e for e in test.examples if e.source.strip() not in drop]
    runner = _Recorder()
    report = []
    result = runner.run(test, out=report.append, clear_globs=True)
    return result, "".join(report), runner.printed


@pytest.mark.parametrize("name", [*FUNCTIONS, *LAYERS, *OTHERS])
def test_example_runs(name):
    result, report, _ = run_examples(name)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0, report


# ---------------------------------------------------------------------------------------
# PyTorch in numbapool's place


def _tensor(value):
    import torch

    return torch.from_numpy(value.copy()) if isinstance(value, np.ndarray) else value


def _array(value):
    if isinstance(value, tuple):
        return tuple(_array(v) for v in value)
    return value.detach().numpy()


class TorchAsNumbapool:
    """``npl`` for an example, computed by PyTorch: ``npl.<function>`` calls
    ``torch.nn.functional.<function>``, ``npl.<function>_backward`` differentiates it with
    autograd, ``npl.nn.<Layer>`` wraps ``torch.nn.<Layer>``; arrays in and out."""

    def __init__(self):
        self._samples = {}   # fractional pooling: a function's last samples
        self.nn = _TorchLayers()

    def __getattr__(self, name):
        if name.endswith("_backward"):
            return functools.partial(self._backward, name[:-len("_backward")])
        return functools.partial(self._forward, name)

    def _forward(self, name, *args, **kwargs):
        import torch.nn.functional as F

        if "random_samples" in kwargs:
            kwargs["_random_samples"] = kwargs.pop("random_samples")
        if "_random_samples" in kwargs:
            self._samples[name] = kwargs["_random_samples"]
        return _array(getattr(F, name)(*map(_tensor, args),
                                       **{k: _tensor(v) for k, v in kwargs.items()}))

    def _backward(self, name, *args, **kwargs):
        import torch.nn.functional as F

        op, nd = FUNCTIONS[name]
        arguments = inspect.signature(getattr(numbapool, name + "_backward")).bind(
            *args, **kwargs).arguments
        if op.name.startswith("adaptive"):   # numbapool's backward reads it off grad_output
            arguments["output_size"] = arguments["grad_output"].shape[-nd:]
        forward = {p.name: _tensor(arguments[p.name]) for p in op.forward_params()
                   if p.name in arguments}
        if name in self._samples:
            forward["_random_samples"] = _tensor(self._samples[name])
        x = _tensor(arguments["input"]).requires_grad_()
        out = getattr(F, name)(x, **forward)
        (out[0] if isinstance(out, tuple) else out).backward(_tensor(arguments["grad_output"]))
        return _array(x.grad)


class _TorchLayers:
    def __getattr__(self, name):
        import torch

        return functools.partial(_TorchLayer, getattr(torch.nn, name))


class _TorchLayer:
    def __init__(self, cls, *args, **kwargs):
        self.module = cls(*map(_tensor, args), **{k: _tensor(v) for k, v in kwargs.items()})

    def __repr__(self):
        return repr(self.module)

    def __call__(self, input, *rest):
        self.input = _tensor(input).requires_grad_()
        out = self.module(self.input, *map(_tensor, rest))
        self.output = out[0] if isinstance(out, tuple) else out
        return _array(out)

    def backward(self, grad_output):
        self.output.backward(_tensor(grad_output))
        return _array(self.input.grad)


def run_with_torch(name):
    return run_examples(name, {"npl": TorchAsNumbapool()}, drop=("import numbapool as npl",))


@pytest.mark.parametrize("name", [*FUNCTIONS, *LAYERS])
def test_example_prints_pytorchs_result(name):
    pytest.importorskip("torch")
    result, report, _ = run_with_torch(name)
    assert result.attempted > 0
    assert result.failed == 0, f"PyTorch prints otherwise:\n{report}"


def examples_from_torch():
    """``numbapool/_examples.py``'s ``OUTPUTS``, as PyTorch prints them."""
    outputs = {}
    for name, (op, nd) in FUNCTIONS.items():
        _, _, printed = run_with_torch(name)
        last = list(printed.values())[-1].strip()
        outputs.setdefault(op.function_name(nd), {})[
            "backward" if name.endswith("_backward") else "forward"] = last
    for name, (op, nd) in LAYERS.items():
        _, _, printed = run_with_torch(name)
        outputs[op.function_name(nd)]["repr"] = printed["pool\n"].strip()
    return outputs


# ---------------------------------------------------------------------------------------
# What each docstring says


SECTIONS = ("Parameters", "Dtypes", "Differences from PyTorch", "Example")


@pytest.mark.parametrize("name", [*FUNCTIONS, *LAYERS])
def test_docstring_documents_every_argument(name):
    obj = public(name)
    doc = obj.__doc__
    for section in (*SECTIONS, "Shapes" if name in LAYERS else "Returns"):
        assert f"    {section}\n    {'-' * len(section)}\n" in doc, (name, section)
    signature = inspect.signature(obj.__init__ if name in LAYERS else obj)
    for parameter in signature.parameters:
        if parameter != "self":
            assert f"\n    {parameter}" in doc, (name, parameter)


def test_help_of_a_layer_is_more_than_a_line():
    doc = inspect.getdoc(numbapool.nn.MaxPool2d)
    assert "kernel_size" in doc and "ceil_mode" in doc and ">>> pool" in doc
    assert len(doc.splitlines()) > 30


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    path = Path(numbapool.__file__).with_name("_examples.py")
    path.write_text(
        '"""What the docstring examples print, as PyTorch prints it (written by '
        '``python tests/test_docs.py\n--write``; ``numbapool._docs`` puts them in the '
        'docstrings)."""\n\nOUTPUTS = ' + pprint.pformat(examples_from_torch(), width=88)
        + "\n")
    print(f"wrote {path}")
