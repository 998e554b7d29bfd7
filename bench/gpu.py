"""Benchmark numbapool's GPU backend against PyTorch (cuDNN) on the same CuPy memory.

    python bench/gpu.py [--repeat 7] [--calls 10] [--only SUBSTRING] [--out bench/results]

Needs a CUDA GPU, CuPy and numba-cuda (``pip install "numbapool[cuda13]"``, or
``[cuda12]``); PyTorch with CUDA for the comparison (cases still run without it). The cases are the CPU benchmark's
(``numbapool.benchmark.cases``), float32, on channels-first and channels-last memory;
backward cases time numbapool's ``*_backward`` against PyTorch's autograd. Times come
from CUDA events around ``--calls`` back-to-back calls (so launch overhead counts when
it exceeds the kernel), median of ``--repeat`` runs; the ratio is PyTorch's time over
numbapool's (> 1: numbapool is faster), as on the CPU. The roofline is the
device-to-device copy bandwidth (bytes read + written per second by cudaMemcpy of a
large buffer); each case reports the bytes it must move at least over its time as a
fraction of it. A JSON record goes to ``<out>/<date>-gpu-<device>.json``.
"""

import argparse
import json
import platform
import re
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

# run as a script from a checkout: import the numbapool next to this file
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numbapool as npl  # noqa: E402
from numbapool.benchmark.cases import CASES, build, moved_bytes  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
    if not torch.cuda.is_available():
        torch = None
except ImportError:
    torch = None


def event_ms(run, repeat, calls):
    """Median milliseconds per call of ``run()`` on the current stream."""
    import cupy

    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    run()  # compile, allocate
    run()
    cupy.cuda.get_current_stream().synchronize()
    times = []
    for _ in range(repeat):
        start.record()
        for _ in range(calls):
            run()
        end.record()
        end.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, end) / calls)
    return statistics.median(times)


def copy_bandwidth(repeat):
    """Bytes read + written per second by a large device-to-device cudaMemcpy."""
    import cupy

    n = 1 << 28  # 1 GiB of float32
    src = cupy.ones(n, cupy.float32)
    dst = cupy.empty_like(src)
    stream = cupy.cuda.get_current_stream().ptr
    kind = cupy.cuda.runtime.memcpyDeviceToDevice

    def run():
        cupy.cuda.runtime.memcpyAsync(dst.data.ptr, src.data.ptr, src.nbytes, kind, stream)

    ms = event_ms(run, repeat, 3)
    return 2 * src.nbytes / (ms * 1e-3)


def result_bytes(result):
    results = result if isinstance(result, tuple) else (result,)
    return sum(r.nbytes for r in results)


def overhead_us(repeat):
    """Wall-clock microseconds per call on a (1, 64, 7, 7) input, numbapool on CuPy and
    PyTorch on CUDA, each call's launch included (the GPU time is a few microseconds)."""
    import cupy

    x = cupy.ones((1, 64, 7, 7), cupy.float32)
    calls = (("adaptive_avg_pool2d", (1,)), ("max_pool2d", (2,)), ("avg_pool2d", (3, 1, 1)))
    runs = {}
    for name, args in calls:
        runs[name] = (lambda fn=getattr(npl, name), args=args: fn(x, *args),
                      cupy.cuda.get_current_stream().synchronize)
    if torch is not None:
        t = torch.ones((1, 64, 7, 7), device="cuda")
        for name, args in calls:
            runs[f"torch {name}"] = (lambda fn=getattr(F, name), args=args: fn(t, *args),
                                     torch.cuda.synchronize)
    timings = {}
    for label, (run, synchronize) in runs.items():
        run()
        samples = []
        for _ in range(repeat):
            synchronize()
            start = time.perf_counter()
            for _ in range(200):
                run()
            synchronize()
            samples.append((time.perf_counter() - start) / 200 * 1e6)
        timings[label] = statistics.median(samples)
    return timings


def versions():
    found = {"python": platform.python_version(), "numbapool": npl.__version__}
    for module in ("numpy", "numba", "numba_cuda", "cupy", "torch"):
        try:
            found[module] = __import__(module).__version__
        except Exception:  # noqa: BLE001  absent or without __version__
            pass
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per case (median)")
    parser.add_argument("--calls", type=int, default=10, help="back-to-back calls per run")
    parser.add_argument("--only", default="", help="run cases whose name contains this")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = parser.parse_args(argv)

    import cupy

    device = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"]
    device = device.decode() if isinstance(device, bytes) else device
    bandwidth = copy_bandwidth(args.repeat)
    print(f"{device}: device-to-device copy {bandwidth / 1e9:.0f} GB/s (read + write)")
    print(f"{'case':22} {'shape':18} {'layout':6} {'numbapool':>10} {'torch':>9} "
          f"{'ratio':>6} {'of copy bw':>10}")
    records = []
    for case in CASES:
        if args.only not in case.id:
            continue
        shape = "x".join(map(str, case.shape))
        record = {"case": case.name, "id": case.id, "op": case.op, "kind": case.kind,
                  "shape": list(case.shape), "layout": case.layout, "dtype": "float32"}
        try:
            bench = build(case, torch=torch, xp=cupy)
            moved = moved_bytes(bench, bench.numbapool())
            ms = event_ms(bench.numbapool, args.repeat, args.calls)
            torch_ms = event_ms(bench.torch, args.repeat, args.calls) if bench.torch else None
            # ratio: PyTorch's time over numbapool's (> 1: numbapool is faster)
            record.update(numbapool_ms=ms, torch_ms=torch_ms, bytes=moved,
                          ratio=torch_ms / ms if torch_ms else None,
                          copy_bw_fraction=moved / (ms * 1e-3) / bandwidth)
            torch_text = f"{torch_ms:9.3f}" if torch_ms else f"{'-':>9}"
            ratio_text = f"{torch_ms / ms:6.2f}" if torch_ms else f"{'-':>6}"
            print(f"{case.name:22} {shape:18} {case.layout:6} {ms:10.3f} {torch_text} "
                  f"{ratio_text} {record['copy_bw_fraction']:10.2f}", flush=True)
        except Exception as error:  # noqa: BLE001  a failing case must not stop the rest
            record["error"] = f"{type(error).__name__}: {error}"
            print(f"{case.name:22} {shape:18} {case.layout:6} ERROR {record['error'][:200]}")
        records.append(record)
        cupy.get_default_memory_pool().free_all_blocks()
    overhead = overhead_us(args.repeat)
    print("per-call wall time on a (1, 64, 7, 7) input (us): "
          + ", ".join(f"{k} {v:.1f}" for k, v in overhead.items()))

    stamp = datetime.now(timezone.utc)
    result = {
        "date": stamp.isoformat(timespec="seconds"),
        "device": device,
        "versions": versions(),
        "copy_bandwidth_bytes_per_s": bandwidth,
        "repeat": args.repeat,
        "calls": args.calls,
        "overhead_us": overhead,
        "cases": records,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9]+", "-", device).strip("-") or "gpu"
    path = out / f"{stamp:%Y-%m-%d}-gpu-{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    return 1 if any("error" in r for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
