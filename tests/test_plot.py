"""numbapool.plot: pictures of windows and of benchmark runs, and a clear error without
matplotlib."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import numbapool as npl

pytest.importorskip("matplotlib")
import matplotlib  # noqa: E402

matplotlib.use("Agg")
from numbapool.plot import plot_benchmark, plot_windows  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PNG = b"\x89PNG"


@pytest.mark.parametrize("windows, outputs, drawn", [
    (npl.windows(npl.adaptive_avg_pool2d, (4, 4), (3, 4)), None, 3),
    (npl.windows(npl.adaptive_avg_pool2d, (13, 13), 7), None, 7),   # every diagonal window
    (npl.windows(npl.max_pool2d, (7, 7), 3, 2, 1, dilation=2), [(0, 0), (2, 1)], 2),
    (npl.windows(npl.avg_pool1d, (9,), 3, 2, 1, ceil_mode=True), [0, 4], 2),
])
def test_plot_windows(tmp_path, windows, outputs, drawn):
    ax = plot_windows(windows, outputs)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sum(label.startswith("output") for label in labels) == drawn
    # padding is drawn exactly when a window reaches into it
    reaches_out = any(d.start.min() < 0 or (d.stop > size).any()
                      for d, size in zip(windows.dims, windows.input_size))
    assert ("padding" in labels) == reaches_out
    path = tmp_path / "windows.png"
    ax.figure.savefig(path)
    assert path.read_bytes()[:4] == PNG


def test_plot_windows_refuses_3d():
    with pytest.raises(ValueError, match="1d and 2d"):
        plot_windows(npl.windows(npl.max_pool3d, (4, 4, 4), 2))


def test_bench_plot_of_a_saved_run(tmp_path):
    run = {"cases": [{"id": "a-cf", "ratio": 2.0}, {"id": "b-cl", "ratio": 0.5}],
           "versions": {"torch": "2.13.0"}, "numba_threads": 2, "order": "small-first"}
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps(run))
    picture = tmp_path / "ratios.png"
    proc = subprocess.run([sys.executable, "-m", "numbapool", "bench", "--current",
                           str(saved), "--plot", str(picture)], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert picture.read_bytes()[:4] == PNG
    figure = plot_benchmark(run)
    bars = figure.axes[0].patches
    assert [round(b.get_x() + b.get_width(), 6) for b in bars] == [2.0, 0.5]
    with pytest.raises(ValueError, match="no ratios"):
        plot_benchmark({"cases": [{"id": "a", "ratio": None}]})


def test_without_matplotlib_the_error_names_the_extra():
    code = ("import sys; sys.modules['matplotlib'] = None; sys.modules['matplotlib.pyplot'] "
            "= None\nimport numbapool as npl\nfrom numbapool.plot import plot_windows\n"
            "try:\n    plot_windows(npl.windows(npl.max_pool1d, (4,), 2))\n"
            "except ImportError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert 'pip install "numbapool[plot]"' in out


def test_docstring_example_runs():
    import doctest

    from numbapool import plot

    assert doctest.testmod(plot).failed == 0
