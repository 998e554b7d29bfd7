"""What a user waits for before the first result: compile time, each case in a fresh
interpreter with an empty (or a filled) Numba cache.

    python bench/first_calls.py [--out bench/results/NAME.json] [--repeat 3]
                                [--baseline OTHER_CHECKOUT]

Rows (the compile/cache issue's table): the first call of each op alone on an empty
cache, and the same call repeated (which compiles the parallel build); nine typical first
calls in one process on an empty cache; the first call of each op in a fresh process once
those two calls have filled the cache; ``import numbapool`` beyond numpy and
numba. Medians of ``--repeat`` runs; float32 (1, 64, 28, 28) inputs, large enough for
parallel builds (on the 2-core VM a parallel launch already beats the serial build for
max pooling of a (1, 16, 28, 28) input), whose first calls run the serial builds
(``numbapool._cpu._ParallelBuild``).

``--baseline`` times another checkout of numbapool (``git worktree add ../old REV``) in
the same run, each of its probes right after the same probe of this one, so that the
machine's drift (several tenths of a second on a shared VM) hits both alike; the record
keeps both and the ratio of each row.

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
print(json.dumps({"import_s": imported - base, "calls_s": times, "file": npl.__file__}))
"""


def probe(calls, cache_dir, root=ROOT):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir,
               PYTHONPATH=os.pathsep.join(filter(None, [str(root),
                                                       os.environ.get("PYTHONPATH")])))
    # bytecode is written and reused, as a user's interpreter does: without it every
    # import recompiles numbapool's sources
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    result = subprocess.run([sys.executable, "-c", PROBE, *calls], env=env,
                            capture_output=True, text=True, cwd=tempfile.gettempdir())
    if result.returncode:
        raise RuntimeError(result.stderr[-2000:])
    measured = json.loads(result.stdout.splitlines()[-1])
    if not Path(measured["file"]).resolve().is_relative_to(Path(root).resolve()):
        raise RuntimeError(f"the probe imported {measured['file']}, not the one in {root}")
    return measured


def _commit(root):
    result = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True)
    return result.stdout.strip() or None


def measure(roots, repeat):
    """``{root: {"ops": rows, **summary}}``: every probe runs once per root, back to back."""
    measured = {root: {"ops": {}} for root in roots}
    for label, call in OPS.items():
        times = {root: ([], [], []) for root in roots}
        for _ in range(repeat):
            for root in roots:
                empty, second, filled = times[root]
                with tempfile.TemporaryDirectory() as cache:
                    first_two = probe([call, call], cache, root)["calls_s"]
                    empty.append(first_two[0])
                    second.append(first_two[1])
                    filled.append(probe([call], cache, root)["calls_s"][0])
        for root in roots:
            measured[root]["ops"][label] = {
                key: statistics.median(values) for key, values in
                zip(("empty_cache_s", "second_call_s", "filled_cache_s"), times[root])}
    nine = {root: ([], []) for root in roots}
    for _ in range(repeat):
        for root in roots:
            with tempfile.TemporaryDirectory() as cache:
                run = probe(list(OPS.values()), cache, root)
                nine[root][0].append(sum(run["calls_s"]))
                nine[root][1].append(run["import_s"])
    for root in roots:
        measured[root]["nine_first_calls_empty_cache_s"] = statistics.median(nine[root][0])
        measured[root]["import_beyond_numpy_numba_s"] = statistics.median(nine[root][1])
    return measured


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--baseline", type=Path,
                        help="another numbapool checkout, timed in the same run")
    args = parser.parse_args(argv)
    roots = [ROOT] + ([args.baseline.resolve()] if args.baseline else [])
    measured = measure(roots, args.repeat)
    this, base = measured[ROOT], measured.get(roots[-1]) if args.baseline else None

    for label, row in this["ops"].items():
        was = base["ops"][label] if base else {}
        print(f"{label:24}" + "".join(
            f"   {name} {row[key]:5.2f} s" + (f" (was {was[key]:.2f})" if was else "")
            for name, key in (("empty cache", "empty_cache_s"), ("second call", "second_call_s"),
                              ("filled cache", "filled_cache_s"))))
    for key, text in (("nine_first_calls_empty_cache_s",
                       "nine first calls, one process, empty cache"),
                      ("import_beyond_numpy_numba_s", "import numbapool beyond numpy + numba")):
        print(f"{text}: {this[key]:.3f} s" + (f" (was {base[key]:.3f} s)" if base else ""))
    record = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": platform.node(), "cpus": os.cpu_count(),
              "python": platform.python_version(), "repeat": args.repeat,
              "scipy_installed": importlib.util.find_spec("scipy") is not None,
              "commit": _commit(ROOT), **this}
    if base:
        record["baseline"] = {"commit": _commit(roots[-1]), **base}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
