"""Pictures of pooling windows and of benchmark runs (matplotlib: ``pip install
"numbapool[plot]"``).

>>> import numbapool as npl
>>> from numbapool.plot import plot_windows
>>> ax = plot_windows(npl.windows(npl.adaptive_avg_pool2d, (4, 4), (3, 4)))
"""

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np

if TYPE_CHECKING:
    import os

    from numbapool._inspection import PoolingWindows


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError('numbapool.plot needs matplotlib: pip install "numbapool[plot]"') \
            from None
    return plt


def plot_windows(windows: "PoolingWindows", outputs: Optional[Iterable[Any]] = None,
                 ax: Any = None) -> Any:
    """Draw the input grid of a 1d or 2d pooling call and the windows of ``outputs``.

    ``windows`` is what ``numbapool.windows`` (or ``layer.windows``) returns; ``outputs``
    lists output positions (tuples; default: up to eight along the diagonal). Input cells
    are grey squares, the padding a hatched border, each window an outline in its own
    colour with a dot on every tap it reads (dilation shows as gaps). Returns the
    matplotlib Axes.

    >>> import matplotlib
    >>> matplotlib.use("Agg")      # no screen needed
    >>> import numbapool as npl
    >>> from numbapool.plot import plot_windows
    >>> ax = plot_windows(npl.windows(npl.adaptive_avg_pool2d, (13, 13), 7))
    >>> ax.figure.savefig("windows.png")   # doctest: +SKIP
    """
    plt = _pyplot()
    dims = windows.dims
    if len(dims) not in (1, 2):
        raise ValueError(f"plot_windows draws 1d and 2d windows; {windows.function} has "
                         f"{len(dims)} spatial dims")
    # rows and columns: a 1d call is one row
    rows, cols = (None, dims[0]) if len(dims) == 1 else dims
    height = 1 if rows is None else windows.input_size[0]
    width = windows.input_size[-1]
    if outputs is None:  # the diagonal shows overlaps (or gaps) along both dims
        outputs = [(i,) * len(dims) for i in range(min(8, *windows.output_size))]
    outputs = [tuple(int(i) for i in np.atleast_1d(o)) for o in outputs]
    if ax is None:
        _, ax = plt.subplots(figsize=(1 + 0.45 * width, 1 + 0.45 * height))

    def extent(dim, size):
        if dim is None:
            return 0, 1
        return min(0, int(dim.start.min())), max(size, int(dim.stop.max()))

    (top, bottom), (left, right) = extent(rows, height), extent(cols, width)
    ax.add_patch(plt.Rectangle((left, top), right - left, bottom - top, fill=False,
                               hatch="///", edgecolor="0.75", linewidth=0,
                               label="padding" if (left, top) != (0, 0) or
                               (right, bottom) != (width, height) else None))
    for r in range(height):
        for c in range(width):
            ax.add_patch(plt.Rectangle((c, r), 1, 1, facecolor="0.93", edgecolor="0.6"))
    colours = plt.get_cmap("tab10")
    for n, output in enumerate(outputs):
        colour = colours(n % 10)
        o_col = output[-1]
        o_row = output[0] if rows is not None else None
        r0, r1 = (0, 1) if rows is None else (rows.start[o_row], rows.stop[o_row])
        c0, c1 = cols.start[o_col], cols.stop[o_col]
        inset = 0.06 + 0.04 * (n % 4)  # neighbours' outlines stay apart where they overlap
        ax.add_patch(plt.Rectangle((c0 + inset, r0 + inset), c1 - c0 - 2 * inset,
                                   r1 - r0 - 2 * inset, fill=False, edgecolor=colour,
                                   linewidth=2, label=f"output {output[0] if len(output) == 1 else output}"))
        region = windows.region(*output)
        taps_r = [0] if rows is None else list(region[0])
        taps_c = list(region[-1])
        ys, xs = np.meshgrid(np.array(taps_r) + 0.5, np.array(taps_c) + 0.5, indexing="ij")
        ax.scatter(xs.ravel() + (n % 4 - 1.5) * 0.08, ys.ravel(), s=14, color=colour,
                   zorder=3)
    ax.set_xlim(left - 0.2, right + 0.2)
    ax.set_ylim(bottom + 0.2, top - 0.2)  # row 0 on top, as arrays print
    ax.set_aspect("equal")
    ax.set_xticks(np.arange(width) + 0.5, [str(c) for c in range(width)])
    ax.set_yticks(np.arange(height) + 0.5,
                  [str(r) for r in range(height)] if rows is not None else [""])
    size = "x".join(map(str, windows.input_size))
    out = "x".join(map(str, windows.output_size))
    ax.set_title(f"{windows.function}: input {size} -> output {out}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return ax


def plot_benchmark(run: dict[str, Any],
                   path: Union[str, "os.PathLike[str]", None] = None) -> Any:
    """A bar chart of a benchmark run's ratios to PyTorch (``python -m numbapool bench``'s
    JSON, as a dict), one bar per case and layout, with a line at 1.0 (parity). Saved to
    ``path`` when given; returns the Figure."""
    plt = _pyplot()
    records = [r for r in run.get("cases", []) if r.get("ratio")]
    if not records:
        raise ValueError("the run has no ratios to PyTorch to plot (was torch installed?)")
    labels = [r["id"] for r in records]
    ratios = [r["ratio"] for r in records]
    figure, ax = plt.subplots(figsize=(8, 0.8 + 0.28 * len(records)))
    colours = ["tab:green" if ratio >= 1 else "tab:red" for ratio in ratios]
    # bars grow from parity, left for slower, right for faster, on a log scale
    ax.barh(range(len(records)), [ratio - 1 for ratio in ratios], left=1, color=colours)
    for y, ratio in enumerate(ratios):
        ax.annotate(f"{ratio:.2f}", (ratio, y), xytext=(3 if ratio >= 1 else -3, 0),
                    textcoords="offset points", va="center", fontsize="x-small",
                    ha="left" if ratio >= 1 else "right")
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(range(len(records)), labels, fontsize="small")
    ax.invert_yaxis()
    ax.set_xscale("log")
    low, high = min(min(ratios), 0.5) / 1.5, max(max(ratios), 2) * 1.5
    ax.set_xlim(low, high)
    ticks = [t for t in (0.125, 0.25, 0.5, 1, 2, 4, 8, 16) if low <= t <= high]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("PyTorch time / numbapool time (> 1: numbapool faster)")
    threads = run.get("numba_threads")
    ax.set_title(f"numbapool vs PyTorch {run.get('versions', {}).get('torch', '')}, "
                 f"{threads} threads, order {run.get('order', 'table')}")
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=120)
    return figure
