"""examples/tour.ipynb: it runs from top to bottom in a fresh kernel without an error, its
PyTorch comparisons pass where torch is installed, and the stored file (as committed) carries
the outputs of a clean run, so that it reads on a code host.

To re-execute the notebook and store its outputs after changing it:

    python tests/test_notebook.py --update
"""

import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import pytest

import numbapool

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "tour.ipynb"
CELL_TIMEOUT = 300  # seconds; a cold Numba cache compiles every kernel the notebook uses
HAVE_TORCH = importlib.util.find_spec("torch") is not None

# cells whose printed text depends on neither PyTorch, the GPU nor the clock: a fresh run
# prints what the stored notebook shows
_VARYING = ("torch", "cupy", "perf_counter", "median_time")


def _code_cells(notebook):
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def _text(cell):
    """The cell's printed text (stdout and stderr)."""
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            text = output["text"]
            parts.append(text if isinstance(text, str) else "".join(text))
    return "".join(parts)


def _source(cell):
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def _errors(notebook):
    return [(n, _source(cell).splitlines()[:1], output.get("ename"), output.get("evalue"))
            for n, cell in enumerate(_code_cells(notebook))
            for output in cell.get("outputs", []) if output["output_type"] == "error"]


def _images(notebook):
    return sum("image/png" in output.get("data", {})
               for cell in _code_cells(notebook) for output in cell.get("outputs", []))


def execute(notebook):
    """Run ``notebook`` (an nbformat node, changed in place) in a fresh kernel of this
    interpreter, with examples/ as the working directory, importing the numbapool that this
    process imports."""
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    # no kernel_dirs: "python3" is then ipykernel's own spec for sys.executable, never a
    # kernelspec installed for some other interpreter
    manager = AsyncKernelManager(kernel_name="python3",
                                 kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))
    package_root = str(Path(numbapool.__file__).resolve().parent.parent)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", os.pathsep.join(
            [package_root, *filter(None, [os.environ.get("PYTHONPATH")])]))
        client = nbclient.NotebookClient(
            notebook, km=manager, timeout=CELL_TIMEOUT, startup_timeout=120,
            kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}})
        client.execute()
    return notebook


@pytest.fixture(scope="module")
def stored():
    with open(NOTEBOOK, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def executed():
    """The notebook run afresh, with a last cell that reports the kernel's interpreter and
    numbapool."""
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(
        "import sys, numbapool\nprint(sys.executable)\nprint(numbapool.__file__)"))
    start = time.perf_counter()
    execute(notebook)
    print(f"tour.ipynb executed in {time.perf_counter() - start:.1f} s")
    return notebook


def test_stored_notebook_carries_the_outputs_of_a_clean_run(stored):
    cells = _code_cells(stored)
    assert cells
    counts = [cell.get("execution_count") for cell in cells]
    assert counts == list(range(1, len(cells) + 1)), \
        f"not executed top to bottom in one kernel: execution counts {counts}"
    empty = [n for n, cell in enumerate(cells) if not cell.get("outputs")]
    assert not empty, f"code cells {empty} have no stored output"
    assert not _errors(stored), f"stored errors: {_errors(stored)}"
    assert _images(stored) >= 3, "the window pictures are missing"
    text = "".join(_text(cell) for cell in cells)
    assert "matches PyTorch" in text, "the stored run did not compare with PyTorch"
    assert "Traceback" not in text


def test_notebook_runs_without_errors(executed):
    cells = _code_cells(executed)
    assert not _errors(executed), f"cells raised: {_errors(executed)}"
    assert all(cell.get("execution_count") for cell in cells)
    assert _images(executed) >= 3, "plot_windows drew no pictures"


def test_kernel_is_this_interpreter_and_this_numbapool(executed):
    executable, package = _text(_code_cells(executed)[-1]).split()
    assert os.path.samefile(executable, sys.executable)
    assert os.path.samefile(package, numbapool.__file__)


def test_comparisons_with_pytorch_ran(executed):
    text = "".join(_text(cell) for cell in _code_cells(executed))
    if HAVE_TORCH:
        # the 4x4 layers, fractional pooling, the gradients and the model
        assert text.count("matches PyTorch") >= 5 + 1
        assert "match PyTorch's autograd" in text
        assert "first-layer gradients: match PyTorch" in text
        assert "ratio" in text
    else:
        assert "comparison skipped" in text
        assert "matches PyTorch" not in text


def test_stored_outputs_are_current(stored, executed):
    """Cells that print the same on every machine print what the stored notebook shows
    (else re-run it: python tests/test_notebook.py --update)."""
    old, new = _code_cells(stored), _code_cells(executed)[:-1]
    assert [_source(c) for c in old] == [_source(c) for c in new]
    compared = 0
    for n, (before, after) in enumerate(zip(old, new)):
        if any(word in _source(before) for word in _VARYING):
            continue
        assert _text(after) == _text(before), f"code cell {n} prints something else now"
        compared += 1
    assert compared >= 5


def _update():
    """Execute the notebook and store it with its outputs."""
    import nbformat

    notebook = execute(nbformat.read(NOTEBOOK, as_version=4))
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)  # per-run timestamps
    nbformat.validate(notebook)
    nbformat.write(notebook, NOTEBOOK)
    print(f"wrote {NOTEBOOK} ({NOTEBOOK.stat().st_size} bytes)")


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit(__doc__)
    _update()
