"""Measure the CPU twins against the shared kernel bodies they stand in for.

    python bench/twins.py [--cases SUBSTRING] [--repeat 3] [--out bench/results]

numbapool's kernel bodies (``numbapool._bodies``) compute one output (forward) or one
input element (backward) and run on both targets; the CPU backend replaces them with
twins (row, column-sum and channels-last loops) where those are faster. This script
keeps that choice honest: for every case of the CPU benchmark it times the shipped CPU
path and the shared bodies driven by plain ``prange`` loops over the same arrays, in the
same process, alternating, and reports the median of each and their ratio. A JSON record
goes to ``<out>/<date>-twins-<host>.json``.
"""

import argparse
import functools
import json
import math
import os
import platform
import re
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numba  # noqa: E402
from numba import njit, prange  # noqa: E402

from numbapool import _bodies, _cpu, _plans  # noqa: E402
from numbapool._bodies import split_row  # noqa: E402
from numbapool._windows import Dims  # noqa: E402
from numbapool.benchmark import CASES, build  # noqa: E402


# The shared bodies in prange loops over rows, with C innermost on channels-last memory
# (the order its addresses run in), as the package drives them where it uses them.


@functools.cache
def _reduce_loop(windows, reduction, load, with_indices, channels_last):
    reduce_window = _bodies.window_reducer(windows, reduction, load)

    @njit(parallel=True)
    def kernel(x, out, idx, dim_d, dim_h, dim_w, samples, initial, options):
        n_batch, channels, out_d, out_h, out_w = out.shape
        row_channels = 1 if channels_last else channels
        for row in prange(n_batch * row_channels * out_d * out_h):
            n, c0, od, oh = split_row(row, row_channels, out_d, out_h)
            for ow in range(out_w):
                for c in range(c0, channels if channels_last else c0 + 1):
                    value, at = reduce_window(x, n, c, od, oh, ow,
                                              Dims(dim_d, dim_h, dim_w), samples, initial,
                                              options)
                    out[n, c, od, oh, ow] = value
                    if with_indices:
                        idx[n, c, od, oh, ow] = at

    return kernel


@functools.cache
def _gather_loop(windows, reduction, load, channels_last):
    gather_gradient = _bodies.gradient_gatherer(windows, reduction, load)

    @njit(parallel=True)
    def kernel(grad, idx, out, x, grad_in, dim_d, dim_h, dim_w, zero, options):
        n_batch, channels, depth, height, width = grad_in.shape
        row_channels = 1 if channels_last else channels
        for row in prange(n_batch * row_channels * depth * height):
            n, c0, d, h = split_row(row, row_channels, depth, height)
            for w in range(width):
                for c in range(c0, channels if channels_last else c0 + 1):
                    grad_in[n, c, d, h, w] = gather_gradient(
                        grad, idx, out, x, n, c, d, h, w, Dims(dim_d, dim_h, dim_w), zero,
                        options)

    return kernel


def _shared_reducer(self, x, out_shape, dims, windows, reduction, element, options,
                    samples, with_indices, channels_last):
    windows, dims = _cpu._windows_for(windows, dims, x.nbytes)
    kernel = _reduce_loop(windows, reduction, element.load, with_indices, channels_last)
    samples = _cpu._NO_SAMPLES if samples is None else samples
    return lambda x, out, idx: kernel(x, out, idx, *dims, samples, reduction.initial(element),
                                      options)


def _shared_gather(self, grad, idx, out, x, grad_in, dims, windows, reduction, element,
                   options, channels_last):
    windows, dims = _cpu._windows_for(windows, dims, grad_in.nbytes)
    kernel = _gather_loop(windows, reduction, element.load, channels_last)
    kernel(grad, idx, out, x, grad_in, *dims, element.compute.type(0), options)


def _median_ms(fn, calls):
    fn()
    fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="", help="only cases whose id contains this")
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds")
    parser.add_argument("--calls", type=int, default=11, help="timed calls per round")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = parser.parse_args(argv)

    shipped = (_cpu.CpuBackend.window_reducer, _cpu.CpuBackend.gather_gradient)
    shared = (_shared_reducer, _shared_gather)
    print(f"numba threads: {numba.get_num_threads()}")
    print(f"{'case':44} {'cpu path ms':>12} {'shared ms':>10} {'shared/cpu':>11}")
    records = []
    for case in CASES:
        if args.cases not in case.id or math.prod(case.shape) < _cpu.PARALLEL_MIN_WORK:
            continue
        call = build(case).numbapool
        times = {"cpu": [], "shared": []}
        for _ in range(args.repeat):
            for label, methods in (("cpu", shipped), ("shared", shared)):
                _cpu.CpuBackend.window_reducer, _cpu.CpuBackend.gather_gradient = methods
                _plans.clear()   # a forward's plan keeps the reducer it was made with
                times[label].append(_median_ms(call, args.calls))
        _cpu.CpuBackend.window_reducer, _cpu.CpuBackend.gather_gradient = shipped
        cpu, body = statistics.median(times["cpu"]), statistics.median(times["shared"])
        records.append({"id": case.id, "cpu_ms": cpu, "shared_ms": body,
                        "shared_over_cpu": body / cpu})
        print(f"{case.id:44} {cpu:12.3f} {body:10.3f} {body / cpu:11.2f}", flush=True)
    host = re.sub(r"[^A-Za-z0-9_-]+", "-", platform.node().split(".")[0]) or "host"
    out = Path(args.out) / f"{datetime.now():%Y-%m-%d-%H%M%S}-twins-{host}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "date": datetime.now().isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
        "numba": numba.__version__, "numba_threads": numba.get_num_threads(),
        "method": "median over rounds of the median of --calls calls; shipped CPU path "
                  "and shared bodies alternate in one process",
        "cases": records}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
