"""Type information: the stubs of the generated modules are current, mypy accepts the
package and calls as users write them (tests/typing_usage.py, whose inferred types are
asserted), and rejects wrong calls."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import numbapool
from numbapool import _stubs

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(numbapool.__file__).parent


@pytest.mark.parametrize("filename", list(_stubs.STUBS))
def test_stubs_are_current(filename):
    written = (PACKAGE / filename).read_text()
    assert written == _stubs.STUBS[filename](), (
        f"numbapool/{filename} is stale: run python -m numbapool._stubs")


def test_package_is_marked_typed():
    assert (PACKAGE / "py.typed").is_file()


def _mypy(tmp_path, *files):
    pytest.importorskip("mypy")
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy_cache"),
         "--config-file", str(ROOT / "pyproject.toml"), *files],
        cwd=ROOT, capture_output=True, text=True)


def test_mypy_accepts_the_package_and_typical_calls(tmp_path):
    result = _mypy(tmp_path)   # the files pyproject.toml names
    assert result.returncode == 0, result.stdout + result.stderr


def test_typical_calls_run():
    # the calls whose types mypy checks also run, with the results they are typed with
    env = {**os.environ, "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, str(ROOT / "tests" / "typing_usage.py")],
                            cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


WRONG = {   # a wrong call, and what mypy's report of it says
    'npl.max_pool2d(x, "2")': 'incompatible type "str"; expected "int | Sequence[int]"',
    'npl.max_pool2d(x, 2, data_format="nhwc")': "data_format",
    "npl.avg_pool2d(x, 2, divisor_override=1.5)": "divisor_override",
    "npl.adaptive_avg_pool2d(x, 7).no_such_attribute": "no_such_attribute",
    "npl.fractional_max_pool2d(x, 2, output_ratio=0.5, rng=0)": "rng",
    "numbapool.nn.MaxPool2d(2, strides=2)": "strides",
    "numbapool.nn.LPPool2d(2, 3)(x, x)": "No overload variant of \"__call__\"",
}


def test_mypy_rejects_wrong_calls(tmp_path):
    lines = list(WRONG)
    source = tmp_path / "wrong.py"
    source.write_text(textwrap.dedent("""\
        import numpy as np
        import numbapool as npl
        import numbapool.nn
        x = np.zeros((1, 2, 8, 8), np.float32)
        """) + "\n".join(lines) + "\n")
    result = _mypy(tmp_path, str(source))
    assert result.returncode == 1, result.stdout
    for number, line in enumerate(lines, start=5):
        reported = [r for r in result.stdout.splitlines() if f"wrong.py:{number}:" in r]
        assert reported and WRONG[line] in " ".join(reported), (line, result.stdout)
