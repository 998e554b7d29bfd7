"""What a user waits for before the first result: compile time, each case in a fresh
interpreter with an empty (or a filled) Numba cache.

    python bench/first_calls.py [--out bench/results/NAME.json] [--repeat 3]

Rows (the compile/cache issue's table): the first call of each op alone on an empty
cache, and the same call repeated (which compiles the parallel build); nine typical first
calls in one process on an empty cache; the first call of each op in a fresh process once
those two calls have filled the cache; ``import numbapool`` beyond numpy and
numba. Medians of ``--repeat`` runs; float32 (1, 64, 28, 28) inputs, large enough for
parallel builds (on the 2-core VM a parallel launch already beats the serial build for
max pooling of a (1, 16, 28, 28) input), whose first calls run the serial builds
(``numbapool._cpu._ParallelBuild``).

Where SciPy is installed, Numba's first compile or cache load imports ``scipy.linalg``
(its check for a BLAS), about 0.15 s of every filled-cache figure on the 2-core VM; the
record says whether it was (``scipy_installed``). Run it with an interpreter without SciPy,
as ``pip install numbapool`` gives, to see numbapool's own time.
"""

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

OPS = {
    "max_pool2d": "npl.max_pool2d(x, 3, 2, 1)",
    "max_pool2d+indices": "npl.max_pool2d(x, 3, 2, 1, return_indices=True)",
    "avg_pool2d": "npl.avg_pool2d(x, 3, 2, 1)",
    "adaptive_avg_pool2d 7": "npl.adaptive_avg_pool2d(x, 7)",
    "adaptive_avg_pool2d 1": "npl.adaptive_avg_pool2d(x, 1)",
    "adaptive_max_pool2d": "npl.adaptive_max_pool2d(x, 7)",
    "lp_pool2d": "npl.lp_pool2d(x, 2.0, 2)",
    "fractional_max_pool2d": "npl.fractional_max_pool2d(x, 2, output_ratio=0.5)",
    "max_pool2d float64": "npl.max_pool2d(x.astype(np.float64), 3, 2, 1)",
}

PROBE = """
import sys, time, json
start = time.perf_counter()
import numpy as np, numba
base = time.perf_counter()
import numbapool as npl
imported = time.perf_counter()
x = np.random.default_rng(0).standard_normal((1, 64, 28, 28)).astype(np.float32)
times = []
for call in sys.argv[1:]:
    t = time.perf_counter()
    eval(call)
    times.append(time.perf_counter() - t)
print(json.dumps({"import_s": imported - base, "calls_s": times}))
"""


def probe(calls, cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir,
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                       os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, "-c", PROBE, *calls], env=env,
                            capture_output=True, text=True, cwd=tempfile.gettempdir())
    if result.returncode:
        raise RuntimeError(result.stderr[-2000:])
    return json.loads(result.stdout.splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    rows = {}
    for label, call in OPS.items():
        empty, second, filled = [], [], []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as cache:
                first_two = probe([call, call], cache)["calls_s"]
                empty.append(first_two[0])
                second.append(first_two[1])
                filled.append(probe([call], cache)["calls_s"][0])
        rows[label] = {"empty_cache_s": statistics.median(empty),
                       "second_call_s": statistics.median(second),
                       "filled_cache_s": statistics.median(filled)}
        print(f"{label:24} empty cache {rows[label]['empty_cache_s']:6.2f} s   "
              f"second call {rows[label]['second_call_s']:5.2f} s   "
              f"filled cache {rows[label]['filled_cache_s']:5.2f} s", flush=True)
    nine, imports = [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as cache:
            measured = probe(list(OPS.values()), cache)
            nine.append(sum(measured["calls_s"]))
            imports.append(measured["import_s"])
    summary = {"nine_first_calls_empty_cache_s": statistics.median(nine),
               "import_beyond_numpy_numba_s": statistics.median(imports)}
    print(f"nine first calls, one process, empty cache: {summary['nine_first_calls_empty_cache_s']:.2f} s")
    print(f"import numbapool beyond numpy + numba: {summary['import_beyond_numpy_numba_s']:.3f} s")
    record = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": platform.node(), "cpus": os.cpu_count(),
              "python": platform.python_version(), "repeat": args.repeat,
              "scipy_installed": importlib.util.find_spec("scipy") is not None,
              "ops": rows, **summary}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
