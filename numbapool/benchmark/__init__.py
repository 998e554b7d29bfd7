"""Benchmark numbapool's kernels against PyTorch on the CPU.

Run ``python -m numbapool bench --help`` for the options. Each case is timed for
numbapool and, when torch is importable, for PyTorch on the same memory; a run is
saved as JSON that a later run can be compared with (``--compare``), which is how
CI can catch performance regressions. The cases live in ``numbapool.benchmark.cases``,
which ``bench/gpu.py`` shares.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import numba
import numpy as np

import numbapool as npl
from numbapool.benchmark.cases import (  # noqa: F401  (the case table is public here too)
    CASES,
    LAYOUTS,
    OVERHEAD_CASES,
    Bench,
    Case,
    build,
    make_input,
    missing_function,
    moved_bytes,
)

COMPILE_DTYPES = ("float32", "float64")


_MIN_SAMPLE_S = 1e-3
_MAX_SAMPLES = 200


def _clock(fn, n=1) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def sample_times(fns, budget_s, min_samples) -> list[list[float]]:
    """Seconds per call of each function, one list of samples per function, about
    ``budget_s`` in all.

    Two warm-up calls come first, so Numba's compile time is excluded (a first call
    compiles and runs the serial build, the repeat the parallel one). Samples
    alternate between the functions so that noise from other processes hits them
    alike (sample ``i`` of each ran back to back); calls shorter than a millisecond
    are batched per sample.
    """
    per_call = []
    for fn in fns:
        fn()
        fn()
        per_call.append(max(_clock(fn), 1e-9))
    inner = [math.ceil(_MIN_SAMPLE_S / t) for t in per_call]
    cost = sum(t * n for t, n in zip(per_call, inner))
    samples = min(_MAX_SAMPLES, max(min_samples, int(budget_s / cost)))
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(samples):
        for fn, n, ts in zip(fns, inner, times):
            ts.append(_clock(fn, n))
    return times


def median_times(fns, budget_s, min_samples) -> list[float]:
    """Median seconds per call of each function (``sample_times``)."""
    return [statistics.median(ts) for ts in sample_times(fns, budget_s, min_samples)]


def spread(values) -> float:
    """The relative spread of ``values``: interquartile range over median (0: no noise)."""
    if len(values) < 4:
        return 0.0
    q1, median, q3 = statistics.quantiles(values, n=4)
    return (q3 - q1) / median


def _parallel_copy():
    """A copy split into one contiguous slice per Numba thread (compiled on first use)."""
    from numba import njit, prange

    @njit(parallel=True)
    def copy(dst, src, parts):
        step = (src.size + parts - 1) // parts
        for part in prange(parts):
            start = part * step
            stop = min(src.size, start + step)
            dst[start:stop] = src[start:stop]

    return copy


def copy_bandwidths(nbytes=256 * 2**20, repeats=5) -> tuple[float, float]:
    """Bytes read plus written per second copying ``nbytes``: by a single-threaded
    ``np.copyto``, and by a copy spread over every Numba thread (one thread does not
    saturate the memory of a many-core machine)."""
    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    copy = _parallel_copy()
    parts = numba.get_num_threads()
    copy(dst, src, parts)   # compiles, and faults in dst's pages
    single = partial(np.copyto, dst, src)
    parallel = partial(copy, dst, src, parts)
    times = [[_clock(single), _clock(parallel)] for _ in range(repeats)]
    return tuple(2 * src.nbytes / statistics.median(ts) for ts in zip(*times))


def _import_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


PLACEMENTS = 3
"""How many times a case's arrays are allocated afresh while it is timed, its time
budget split among them. Where the arrays land in memory moves a kernel's time by
several percent (one allocation gave ratios 1.91-2.25 across six runs of the same
code), so one allocation per run would make two runs of the same code disagree."""


def _time_case(case: Case, torch, budget_s, min_samples) -> tuple[float, float | None, float]:
    """Median seconds per call of numbapool and of PyTorch (None without torch) over
    ``PLACEMENTS`` fresh builds of ``case``, and the noise seen: the spread of the paired
    ratios (PyTorch's time over numbapool's in back-to-back samples), or of numbapool's
    times without torch."""
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(PLACEMENTS):
        bench = build(case, torch=torch)
        fns = [bench.numbapool] if bench.torch is None else [bench.numbapool, bench.torch]
        times = sample_times(fns, budget_s / PLACEMENTS, min_samples)
        ours += times[0]
        theirs += times[-1] if bench.torch is not None else []
    if not theirs:
        return statistics.median(ours), None, spread(ours)
    return (statistics.median(ours), statistics.median(theirs),
            spread([t / o for o, t in zip(ours, theirs)]))


def _cpu_seconds():
    """(CPU seconds every process has used, this process's CPU seconds), from
    ``/proc/stat``; None where there is none (not Linux)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
    except OSError:
        return None
    # user nice system idle iowait irq softirq steal: all but idle and iowait are busy
    ticks = [int(v) for v in fields[:8]]
    busy = sum(ticks) - ticks[3] - ticks[4]
    own = os.times()
    return busy / os.sysconf("SC_CLK_TCK"), own.user + own.system


def busy_elsewhere(before, after, wall_s) -> float | None:
    """The share of the machine's CPUs that other processes used between two
    ``_cpu_seconds`` readings ``wall_s`` apart (0: only this benchmark ran)."""
    if before is None or after is None or wall_s <= 0:
        return None
    others = (after[0] - before[0]) - (after[1] - before[1])
    return max(0.0, others / (wall_s * (os.cpu_count() or 1)))


def run_case(case: Case, torch, bandwidth, budget_s, min_samples) -> dict:
    """Time one case; the numbers are in the returned record."""
    bench = build(case)
    nbytes = moved_bytes(bench, bench.numbapool())
    before, start = _cpu_seconds(), time.perf_counter()
    t_npl, t_torch, noise = _time_case(case, torch, budget_s, min_samples)
    elsewhere = busy_elsewhere(before, _cpu_seconds(), time.perf_counter() - start)
    return {
        "id": case.id,
        "name": case.name,
        "op": case.op,
        "kind": case.kind,
        "layout": case.layout,
        "shape": list(case.shape),
        "kwargs": case.kwargs,
        "numbapool_ms": t_npl * 1e3,
        "torch_ms": None if t_torch is None else t_torch * 1e3,
        "ratio": None if t_torch is None else t_torch / t_npl,
        "bytes": nbytes,
        "roofline": nbytes / t_npl / bandwidth,
        "noise": noise,
        "busy_elsewhere": elsewhere,
    }


def _fmt(value, spec, scale=1.0) -> str:
    return "-" if value is None else format(value * scale, spec)


def _row(record) -> str:
    case = record["id"].removesuffix("-" + record["layout"])
    return (f"{case:36} {record['layout']:>6} {record['numbapool_ms']:13.3f} "
            f"{_fmt(record['torch_ms'], '.3f'):>9} {_fmt(record['ratio'], '.2f'):>6} "
            f"{_fmt(record['roofline'], '.1f', 100):>8} {_fmt(record.get('noise'), '.0f', 100):>6}")


_HEADER = (f"{'case':36} {'layout':>6} {'numbapool ms':>13} {'torch ms':>9} {'ratio':>6} "
           f"{'roofline':>8} {'noise':>6}")


def geomean(values) -> float | None:
    values = [v for v in values if v]
    return math.exp(statistics.fmean(map(math.log, values))) if values else None


def _available(cases):
    for case in cases:
        name = missing_function(case)
        if name is None:
            yield case
        else:
            print(f"skip {case.id}: numbapool.{name} does not exist yet")


def run_overhead(cases, torch, budget_s, min_samples) -> list[dict]:
    """Median microseconds per call on tiny inputs, numbapool vs PyTorch."""
    records = []
    for case in _available(cases):
        t_npl, t_torch, _ = _time_case(case, torch, budget_s, min_samples)
        records.append({"id": case.id, "numbapool_us": t_npl * 1e6,
                        "torch_us": None if t_torch is None else t_torch * 1e6})
        print(f"{case.id:36} numbapool {t_npl * 1e6:8.1f} us   torch {_fmt(t_torch, '8.1f', 1e6)} us")
    return records


def _probe(case_id: str, dtype: str, import_s: float) -> None:
    """Run in a fresh interpreter by ``compile_times``: print first-call seconds as JSON."""
    case = next(c for c in CASES if c.id == case_id)
    small = replace(case, shape=(1, 2) + (8,) * (len(case.shape) - 2), layout="cf")
    first = {}
    for layout in LAYOUTS:
        # build() runs the forward for backward cases; only the timed call counts.
        first[layout] = _clock(build(replace(small, layout=layout), dtype=np.dtype(dtype)).numbapool)
    print(json.dumps({"import_s": import_s, "first_call_s": first["cf"], "first_call_cl_s": first["cl"]}))


_PROBE_CODE = (
    "import sys, time; t = time.perf_counter(); import numbapool.benchmark as b; "
    "b._probe(sys.argv[1], sys.argv[2], time.perf_counter() - t)"
)


def compile_times(cases) -> list[dict]:
    """First-call (compile) seconds per op and dtype, each in a fresh interpreter.

    A fresh process has a cold in-memory dispatcher cache, and an empty
    NUMBA_CACHE_DIR keeps Numba's on-disk cache from hiding the compile. The
    channels-last first call comes after the channels-first one, so it shows the
    extra compile a second memory layout costs.
    """
    per_op: dict = {}
    for case in _available(cases):
        per_op.setdefault((case.op, case.kind), case)
    # The child must import this numbapool even when it is not installed.
    pythonpath = os.pathsep.join(filter(None, [str(Path(npl.__path__[0]).parent), os.environ.get("PYTHONPATH")]))
    records = []
    print(f"{'op':32} {'dtype':8} {'import s':>9} {'first call s':>13} {'first cl call s':>16}")
    for (op, kind), case in per_op.items():
        label = op if kind == "forward" else op + "_backward"
        for dtype in COMPILE_DTYPES:
            with tempfile.TemporaryDirectory() as cache_dir:
                env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, PYTHONPATH=pythonpath)
                proc = subprocess.run([sys.executable, "-c", _PROBE_CODE, case.id, dtype],
                                      env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{label:32} {dtype:8} failed:\n{proc.stderr[-2000:]}")
                continue
            record = {"op": label, "dtype": dtype, **json.loads(proc.stdout.splitlines()[-1])}
            records.append(record)
            print(f"{label:32} {dtype:8} {record['import_s']:9.2f} {record['first_call_s']:13.2f} "
                  f"{record['first_call_cl_s']:16.2f}")
    return records


def _processor() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


def _threading_layer() -> str | None:
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run
        return None


def run(cases, overhead_cases=(), *, quick=False, compile=False, order="table",
        budget_s=None) -> dict:
    """Time ``cases`` and ``overhead_cases`` (printing as it goes); return the JSON-ready run.

    ``budget_s`` is the timing per case in seconds (default 0.6, or 0.1 when ``quick``)."""
    torch = _import_torch()
    if torch is None:
        print("torch is not importable: timing numbapool only")
    else:
        # Same thread count on both sides, so the ratio compares kernels, not thread pools.
        torch.set_num_threads(numba.get_num_threads())
    default_budget_s, min_samples, repeats = (0.1, 3, 3) if quick else (0.6, 5, 7)
    budget_s = budget_s or default_budget_s

    single, parallel = copy_bandwidths(repeats=repeats)
    bandwidth = max(single, parallel)
    print(f"memory bandwidth (copy, read + write): {single / 1e9:.1f} GB/s with one thread, "
          f"{parallel / 1e9:.1f} GB/s with {numba.get_num_threads()}")
    print(f"numba threads: {numba.get_num_threads()}\n")

    print(_HEADER)
    records = []
    failed = {}
    for case in _available(cases):
        try:
            records.append(run_case(case, torch, bandwidth, budget_s, min_samples))
        except Exception as e:  # one unsupported case should not cost the rest of the run
            failed[case.id] = f"{type(e).__name__}: {e}"
            print(f"FAILED {case.id}: {failed[case.id]}")
            continue
        print(_row(records[-1]), flush=True)
    ratio_geomean = geomean(r["ratio"] for r in records)
    print(f"\ngeometric mean of ratios (torch / numbapool, >1: numbapool faster): "
          f"{_fmt(ratio_geomean, '.3f')}")
    print("roofline: bytes moved / time / copy bandwidth; multi-threaded kernels and "
          "cache-resident inputs can exceed 100%")
    print("noise: interquartile spread of the ratios of back-to-back samples, in % of "
          "their median\n")

    if overhead_cases:
        print("per-call overhead on tiny inputs (median per call):")
    overhead = run_overhead(overhead_cases, torch, budget_s, min_samples)
    result = {
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": _processor(),
            "cpu_count": os.cpu_count(),
            "node": platform.node(),
        },
        "versions": {
            "python": platform.python_version(),
            "numbapool": getattr(npl, "__version__", None),
            "numpy": np.__version__,
            "numba": numba.__version__,
            "torch": None if torch is None else torch.__version__,
        },
        "numba_threads": numba.get_num_threads(),
        "threading_layer": _threading_layer(),
        "torch_threads": None if torch is None else torch.get_num_threads(),
        "quick": quick,
        "order": order,
        "bandwidth_bytes_per_s": bandwidth,
        "bandwidth_method": ("the faster median of a single-threaded np.copyto and a copy "
                             "over every Numba thread, of 256 MiB float64; (read + write) / "
                             "time"),
        "bandwidth_single_thread_bytes_per_s": single,
        "bandwidth_parallel_bytes_per_s": parallel,
        "ratio_geomean": ratio_geomean,
        "budget_s": budget_s,
        "min_samples": min_samples,
        "cases": records,
        "failed": failed,
        "overhead": overhead,
    }
    if compile:
        print()
        result["compile_times"] = compile_times(cases)
    return result


def _in_fresh_process(work):
    """``work()``'s JSON-ready result, computed in a forked child of this process, or in
    this process where there is no ``fork`` or a parallel kernel already started Numba's
    threads (a forked copy of a running OpenMP pool can hang)."""
    if not hasattr(os, "fork") or _threading_layer() is not None:
        return work()
    read_end, write_end = os.pipe()
    sys.stdout.flush()   # or the child prints the parent's buffered lines again
    pid = os.fork()
    if pid == 0:   # the child: run, send the result, and leave without cleanup
        os.close(read_end)
        status = 0
        try:
            payload = json.dumps({"result": work()})
        except BaseException as e:  # noqa: BLE001  (reported by the parent)
            payload, status = json.dumps({"error": f"{type(e).__name__}: {e}"}), 1
        with os.fdopen(write_end, "w") as f:
            f.write(payload)
        sys.stdout.flush()
        os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end) as f:
        reply = json.loads(f.read() or '{"error": "the process died"}')
    os.waitpid(pid, 0)
    if "error" in reply:
        raise RuntimeError(f"a benchmark process failed: {reply['error']}")
    return reply["result"]


def _merit(record: dict) -> float:
    """How fast a case ran, higher is faster: the ratio to PyTorch, else the roofline
    fraction, else (a tiny-input record without PyTorch) calls per microsecond."""
    if record.get("ratio"):
        return record["ratio"]
    if record.get("torch_us"):
        return record["torch_us"] / record["numbapool_us"]
    return record.get("roofline") or 1 / record["numbapool_us"]


def _median_record(records: list[dict], key) -> dict:
    """A copy of the record with the median ``key(record)``: of an even count the upper
    one, so of two that agree, the better."""
    return dict(sorted(records, key=key)[len(records) // 2])


def merge_runs(runs: list[dict]) -> dict:
    """One run from several runs of the same cases: per case, the record with the median
    ``_merit`` (the upper one of an even count), every run's figure kept under
    ``per_process``."""
    merged = dict(runs[0])
    for part in ("cases", "overhead"):
        by_run = [{r["id"]: r for r in run.get(part, [])} for run in runs]
        merged[part] = []
        for case_id in by_run[0]:
            records = [found[case_id] for found in by_run if case_id in found]
            chosen = _median_record(records, _merit)
            chosen["per_process"] = [_merit(r) for r in records]
            merged[part].append(chosen)
    merged["processes"] = len(runs)
    merged["ratio_geomean"] = geomean(r.get("ratio") for r in merged["cases"])
    merged["failed"] = {k: v for run in runs for k, v in run.get("failed", {}).items()}
    return merged


@dataclass(frozen=True)
class Regression:
    """A case whose ``metric`` (higher is better) fell from ``baseline`` to ``current``."""

    case: str
    metric: str
    baseline: float
    current: float

    @property
    def slowdown(self) -> float:
        return self.baseline / self.current


def _by_id(run: dict) -> dict[str, dict]:
    return {record["id"]: record for record in run.get("cases", [])}


def _comparable_metric(old: dict, new: dict) -> str | None:
    # The ratio to PyTorch measured in the same run cancels the machine's speed;
    # the roofline fraction cancels its memory bandwidth.
    for metric in ("ratio", "roofline"):
        if (old.get(metric) or 0) > 0 and (new.get(metric) or 0) > 0:
            return metric
    return None


def compare(baseline: dict, current: dict, max_slowdown: float) -> list[Regression]:
    """Cases that got slower than in ``baseline`` by more than ``max_slowdown`` times.

    Compares the ratio to PyTorch when both runs have it, else the roofline
    fraction. Cases missing from either run are not compared (see ``unmatched``).
    """
    old_cases = _by_id(baseline)
    regressions = []
    for case_id, new in _by_id(current).items():
        old = old_cases.get(case_id)
        if old is None:
            continue
        metric = _comparable_metric(old, new)
        if metric and old[metric] / new[metric] > max_slowdown:
            regressions.append(Regression(case_id, metric, old[metric], new[metric]))
    return regressions


def unmatched(baseline: dict, current: dict) -> tuple[list[str], list[str]]:
    """Case ids only in the baseline, and only in the current run."""
    old, new = _by_id(baseline), _by_id(current)
    return [i for i in old if i not in new], [i for i in new if i not in old]


REMEASURES = 2
"""How many more times ``--compare`` may time a case that looks slower before failing it."""

BUSY_ELSEWHERE = 0.15
"""The share of the machine's CPUs that other processes may use while a case is timed
before ``--compare`` calls its slowdown inconclusive instead of a regression."""


def settle(baseline: dict, current: dict, max_slowdown: float, remeasure,
           attempts: int = REMEASURES) -> tuple[list[Regression], list[Regression]]:
    """The regressions that stay after re-measuring, and the inconclusive ones.

    Each case that looks slower is timed again (``remeasure(case_id)`` returns a new
    record) until most of its ``1 + attempts`` measurements agree, and its median
    measurement counts. One disturbed measurement cannot fail a case, and one lucky
    measurement cannot pass a real slowdown (the best of three would: it sits a whole
    noise width above the typical one). A case still slower while other processes took
    more than ``BUSY_ELSEWHERE`` of the CPUs in every measurement is inconclusive:
    numbapool's and PyTorch's thread pools suffer differently from a competing process,
    so even the ratio moves. ``current``'s records are updated."""
    records = _by_id(current)
    majority = (1 + attempts) // 2 + 1
    busy = {}   # case -> whether every measurement ran while the machine was busy
    for suspect in compare(baseline, current, max_slowdown):
        case_id = suspect.case
        tries: list[dict] = [records[case_id]]
        verdicts = [True]   # whether each measurement is slower than the limit
        while (max(verdicts.count(True), verdicts.count(False)) < majority
               and len(tries) <= attempts):
            print(f"re-measuring {case_id} ({suspect.metric} "
                  f"{suspect.baseline:.3g} -> {tries[-1][suspect.metric]:.3g})", flush=True)
            tries.append(remeasure(case_id))
            verdicts.append(bool(compare(baseline, {"cases": [tries[-1]]}, max_slowdown)))
        shares = [r.get("busy_elsewhere") for r in tries]
        busy[case_id] = all(s is not None and s > BUSY_ELSEWHERE for s in shares)
        median = _median_record(tries, lambda r, metric=suspect.metric: r.get(metric) or 0)
        median["measurements"] = [r.get(suspect.metric) for r in tries]
        records[case_id].clear()
        records[case_id].update(median)
    regressions: list[Regression] = []
    inconclusive: list[Regression] = []
    for r in compare(baseline, current, max_slowdown):
        (inconclusive if busy.get(r.case) else regressions).append(r)
    return regressions, inconclusive


def _noise_line(run: dict) -> str:
    noises = [(r["noise"], r["id"]) for r in run.get("cases", []) if r.get("noise") is not None]
    if not noises:
        return "no noise figures (a run saved before they were recorded)"
    largest, case_id = max(noises)
    median = statistics.median(n for n, _ in noises)
    return f"median {median:.0%}, largest {largest:.0%} ({case_id})"


def _report_comparison(baseline: dict, current: dict, max_slowdown: float, baseline_path,
                       remeasure=None) -> int:
    only_old, only_new = unmatched(baseline, current)
    if only_old:
        print(f"not in this run (not compared): {', '.join(only_old)}")
    if only_new:
        print(f"not in the baseline (not compared): {', '.join(only_new)}")
    inconclusive: list[Regression] = []
    if remeasure is None:
        regressions = compare(baseline, current, max_slowdown)
    else:
        regressions, inconclusive = settle(baseline, current, max_slowdown, remeasure)
    print(f"noise seen: baseline {_noise_line(baseline)}; this run {_noise_line(current)}")
    records = _by_id(current)

    def measured(r):
        record = records[r.case]
        tries = record.get("measurements")
        again = (f", measured {len(tries)} times: "
                 f"{', '.join(format(m, '.3g') for m in tries)}" if tries else "")
        return (f"{r.case}: {r.metric} {r.baseline:.3g} -> {r.current:.3g} "
                f"({r.slowdown:.2f}x slower, limit {max_slowdown:.2f}x{again}")

    for r in inconclusive:
        print(f"INCONCLUSIVE {measured(r)}; other processes used "
              f"{records[r.case]['busy_elsewhere']:.0%} of the CPUs meanwhile, in every "
              "measurement, so it does not fail the comparison)")
    for r in regressions:
        print(f"REGRESSION {measured(r)})")
    if not regressions:
        print(f"no case slower than {baseline_path} by more than {max_slowdown:.2f}x"
              + (" on a quiet machine" if inconclusive else ""))
        # How near the limit the run came says how much a verdict can be trusted.
        closest = max(compare(baseline, current, 0.0), key=lambda r: r.slowdown, default=None)
        if closest is not None:
            print(f"closest: {closest.case}: {closest.metric} {closest.baseline:.3g} -> "
                  f"{closest.current:.3g} ({closest.slowdown:.2f}x)")
    return 1 if regressions else 0


def ordered(cases, order):
    """``cases`` in the table's order, or by input size, smallest or largest first."""
    if order == "table":
        return list(cases)
    return sorted(cases, key=lambda case: math.prod(case.shape), reverse=order == "large-first")


def results_folder() -> Path | None:
    """``bench/results`` of the numbapool checkout this package runs from, or None for an
    installed package (a user's current folder is never the default)."""
    folder = Path(npl.__file__).resolve().parent.parent / "bench" / "results"
    return folder if folder.is_dir() else None


def _results_path() -> Path:
    folder = results_folder()
    if folder is None:
        raise SystemExit("--save-results needs a numbapool checkout (bench/results next to "
                         "the package); give --out PATH instead")
    host = re.sub(r"[^A-Za-z0-9_-]+", "-", platform.node().split(".")[0]) or "host"
    return folder / f"{datetime.now():%Y-%m-%d-%H%M%S}-{host}-cpu.json"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m numbapool bench",
        description="Time numbapool's pooling kernels against PyTorch (ratio > 1: numbapool is faster).",
    )
    p.add_argument("--quick", action="store_true", help="fewer repeats per case")
    p.add_argument("--budget", type=float, metavar="SECONDS",
                   help="timing per case (default 0.6, 0.1 with --quick); more time spreads "
                        "the samples over more of the machine's slow drifts")
    p.add_argument("--cases", metavar="SUBSTRING", help="only cases whose id contains SUBSTRING (e.g. global_avg, _bwd, -cl)")
    p.add_argument("--order", choices=("table", "small-first", "large-first"), default="table",
                   help="the order cases run in (default: the case table's); kernels compile "
                        "on first use, so the order decides which build a cache holds first")
    p.add_argument("--processes", type=int, default=1, metavar="N",
                   help="time the cases in N fresh processes, one after another, and keep "
                        "each case's median (default 1); where a process's memory and threads "
                        "land moves a case's ratio by several percent for the whole process")
    p.add_argument("--threads", type=int, help="threads for numba and torch (default: numba's default)")
    p.add_argument("--out", "--save", metavar="PATH", type=Path,
                   help="write the run's JSON to PATH (default: no file)")
    p.add_argument("--save-results", action="store_true",
                   help="write the run's JSON to bench/results/<date>-<host>-cpu.json of the "
                        "numbapool checkout")
    p.add_argument("--compile-times", action="store_true",
                   help="also measure first-call compile time per op and dtype, in fresh processes")
    p.add_argument("--compare", metavar="BASELINE", type=Path,
                   help="exit 1 if a case got slower than in this saved run by more than --max-slowdown")
    p.add_argument("--max-slowdown", type=float, default=1.15, metavar="FACTOR", help="default: 1.15")
    p.add_argument("--current", metavar="RUN", type=Path,
                   help="with --compare or --plot: use this saved run instead of "
                        "benchmarking now")
    p.add_argument("--plot", metavar="FILE.png", type=Path,
                   help="draw the run's ratios to PyTorch as a bar chart (needs matplotlib)")
    return p


def main(argv=None) -> int:
    """Command line entry point; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.current and not (args.compare or args.plot):
        parser.error("--current needs --compare or --plot")
    if args.budget is not None and not args.budget > 0:
        parser.error(f"--budget must be a positive number of seconds, got {args.budget}")
    if args.processes < 1:
        parser.error(f"--processes must be 1 or more, got {args.processes}")
    if args.current:
        current = json.loads(args.current.read_text())
    else:
        cases = ordered([c for c in CASES if not args.cases or args.cases in c.id], args.order)
        overhead = [c for c in OVERHEAD_CASES if not args.cases or args.cases in c.id]

        def measure(compile):
            if args.threads:
                numba.set_num_threads(args.threads)   # starts the thread pool: not before a fork
            return run(cases, overhead, quick=args.quick, compile=compile, order=args.order,
                       budget_s=args.budget)

        if args.processes == 1:
            current = measure(args.compile_times)
        else:
            runs = []
            for number in range(1, args.processes + 1):
                print(f"=== process {number} of {args.processes}", flush=True)
                runs.append(_in_fresh_process(partial(measure, args.compile_times and number == 1)))
            current = merge_runs(runs)
            print(f"=== each case's median over {args.processes} processes:\n{_HEADER}")
            for record in current["cases"]:
                print(_row(record))
            print(f"\ngeometric mean of ratios: {_fmt(current['ratio_geomean'], '.3f')}")
        for out in filter(None, (args.out, _results_path() if args.save_results else None)):
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(current, indent=1) + "\n")
            print(f"\nwrote {out}")
    if args.plot:
        from numbapool.plot import plot_benchmark

        plot_benchmark(current, args.plot)
        print(f"drew {args.plot}")
    if args.compare:
        baseline = json.loads(args.compare.read_text())
        remeasure = None if args.current else partial(_remeasure, current)
        return _report_comparison(baseline, current, args.max_slowdown, args.compare,
                                  remeasure)
    return 0


def _remeasure(run: dict, case_id: str) -> dict:
    """Time case ``case_id`` of ``run`` again, with twice the time."""
    case = next(c for c in CASES if c.id == case_id)
    return run_case(case, _import_torch(), run["bandwidth_bytes_per_s"], 2 * run["budget_s"],
                    2 * run["min_samples"])
