"""Mean and max image pyramids of a Zarr store larger than the workers' memory, with
numbapool on dask arrays, next to ``dask.array.coarsen`` with NumPy reductions.

    python examples/pyramid.py                  # a 2 GiB image, 2 workers of 384 MiB
    python examples/pyramid.py --size-gb 0.25   # a quick run
    python examples/pyramid.py --json results.json --store /data/scratch

Writes a float32 (C, H, W) image to a Zarr store (in a temporary folder unless --store
is given), then builds 3 levels of 2x2 pooling with ``numbapool.avg_pool2d`` and
``numbapool.max_pool2d`` on the ``da.from_zarr`` array, written back with ``to_zarr``,
on a ``distributed.LocalCluster`` of worker processes; checks a corner of every level
against NumPy; does the same with ``dask.array.coarsen(np.mean / np.max)``, and prints
the throughput of each (input MB/s). Needs dask[array], distributed and zarr 3.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time

# the workers (one thread each) are the parallelism: numbapool's kernels run serially
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import dask  # noqa: E402
import dask.array as da  # noqa: E402
import distributed  # noqa: E402
import numba  # noqa: E402
import numpy as np  # noqa: E402
import zarr  # noqa: E402

import numbapool as npl  # noqa: E402

LEVELS = 3
CORNER = 512  # the checked region of level 0: a corner CORNER x CORNER, every channel


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=2.0,
                        help="size of the image in GiB (default 2)")
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--chunk", type=int, default=2048,
                        help="chunk height and width of level 0 (default 2048)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="384MiB",
                        help="memory limit of each worker process (default 384MiB)")
    parser.add_argument("--store", help="folder for the Zarr store (default: a temporary "
                                        "folder, removed at the end)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="build each pyramid this many times, report the fastest")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--label", default=platform.node(),
                        help="the machine's name in the JSON file")
    return parser.parse_args()


def image_shape(size_gb, channels, chunk):
    """(C, H, W) of about ``size_gb`` GiB of float32, H = 2 W, both multiples of the
    chunk (and so of 2 ** LEVELS)."""
    pixels = size_gb * 2**30 / 4 / channels
    width = max(1, round((pixels / 2) ** 0.5 / chunk)) * chunk
    return channels, 2 * width, width


def write_image(store, shape, chunk, client):
    """Level 0: smooth structure plus noise, so that means and maxima differ."""
    chunks = (1, chunk, chunk)

    def block(empty, block_id=None):
        c, i, j = block_id
        y = np.arange(i * chunk, (i + 1) * chunk, dtype=np.float32)[:, None]
        x = np.arange(j * chunk, (j + 1) * chunk, dtype=np.float32)
        noise = np.random.default_rng(block_id).standard_normal((1, chunk, chunk), np.float32)
        noise += np.sin(y / 97 + c) * np.cos(x / 61)
        return noise

    image = da.empty(shape, chunks=chunks, dtype=np.float32).map_blocks(block,
                                                                        dtype=np.float32)
    return run(client, [image.to_zarr(store, component="0", compute=False,
                                      compressors=None, overwrite=True)])


def numbapool_level(x, kind):
    return npl.avg_pool2d(x, 2) if kind == "mean" else npl.max_pool2d(x, 2)


def coarsen_level(x, kind):
    return da.coarsen(np.mean if kind == "mean" else np.max, x, {1: 2, 2: 2})


def build(store, name, level, kind, client):
    """LEVELS levels of ``level(x, kind)`` from level 0, each written to the store under
    ``{name}/{k}``; the seconds it took."""
    current = da.from_zarr(store, component="0")
    writes = []
    for k in range(1, LEVELS + 1):
        current = level(current, kind)
        writes.append(current.to_zarr(store, component=f"{name}/{k}", compute=False,
                                      compressors=None, overwrite=True))
    return run(client, writes)


def run(client, delayed):
    """Compute on the cluster with a progress bar; the seconds it took."""
    start = time.perf_counter()
    futures = client.compute(delayed)
    distributed.progress(futures)
    distributed.wait(futures)
    for future in futures:
        future.result()  # raises a task's error, if any
    print()
    return time.perf_counter() - start


def expected_corner(corner, kind, levels):
    """The corner of each level, pooled by NumPy (means in float64, then float32)."""
    result, current = [], corner
    for _ in range(levels):
        c, h, w = current.shape
        blocks = current.reshape(c, h // 2, 2, w // 2, 2)
        if kind == "mean":
            current = blocks.astype(np.float64).mean(axis=(2, 4)).astype(np.float32)
        else:
            current = blocks.max(axis=(2, 4))
        result.append(current)
    return result


def check(store, name, kind):
    """Every level's corner against NumPy: maxima equal, means within float32 rounding."""
    group = zarr.open_group(store, mode="r")
    corner = group["0"][:, :CORNER, :CORNER]
    for k, want in enumerate(expected_corner(corner, kind, LEVELS), 1):
        got = group[f"{name}/{k}"][:, :CORNER >> k, :CORNER >> k]
        if kind == "max":
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    return True


def warm_up(chunk):
    """Load (or compile) numbapool's kernels for blocks of this size in a worker."""
    block = np.zeros((1, chunk, chunk), np.float32)
    npl.avg_pool2d(block, 2)
    npl.max_pool2d(block, 2)


def checkout():
    """The numbapool checkout's commit (and whether it has changes), if it is one."""
    folder = os.path.dirname(os.path.abspath(npl.__file__))
    try:
        commit = subprocess.run(["git", "-C", folder, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        changes = subprocess.run(["git", "-C", folder, "status", "--porcelain", "--", "."],
                                 capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + (" with uncommitted changes" if changes else "")


def machine():
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as info:
            model = next(line.split(":", 1)[1].strip() for line in info
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = None
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    return {"cpu": model, "cores": os.cpu_count(), "memory_bytes": memory,
            "system": platform.platform(), "python": platform.python_version()}


def main():
    args = arguments()
    shape = image_shape(args.size_gb, args.channels, args.chunk)
    nbytes = int(np.prod(shape)) * 4
    folder = args.store or tempfile.mkdtemp(prefix="numbapool-pyramid-")
    store = os.path.join(folder, "pyramid.zarr")
    print(f"image {shape} float32, {nbytes / 2**30:.2f} GiB in {store}; {args.workers} "
          f"workers of {args.memory_limit}, 1 thread each")
    results = {}
    try:
        with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                      processes=True, memory_limit=args.memory_limit,
                                      dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            client.run(warm_up, args.chunk)
            print("writing level 0")
            results["write_s"] = write_image(store, shape, args.chunk, client)
            for tool, level in (("numbapool", numbapool_level), ("coarsen", coarsen_level)):
                for kind in ("mean", "max"):
                    print(f"{tool}: {kind} pyramid, {LEVELS} levels")
                    runs = [build(store, f"{tool}-{kind}", level, kind, client)
                            for _ in range(args.repeat)]
                    check(store, f"{tool}-{kind}", kind)
                    results[f"{tool}_{kind}_s"] = min(runs)
                    results[f"{tool}_{kind}_runs_s"] = runs
                    results[f"{tool}_{kind}_MB_per_s"] = nbytes / min(runs) / 1e6
    finally:
        if not args.store:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"\nlevel 0 written in {results['write_s']:.1f} s; input throughput "
          f"({nbytes / 1e6:.0f} MB through {LEVELS} levels, corners checked against NumPy):")
    for kind in ("mean", "max"):
        ours, theirs = results[f"numbapool_{kind}_MB_per_s"], results[f"coarsen_{kind}_MB_per_s"]
        print(f"  {kind:4}  numbapool {ours:7.0f} MB/s ({results[f'numbapool_{kind}_s']:.1f} s)"
              f"   dask.array.coarsen {theirs:7.0f} MB/s "
              f"({results[f'coarsen_{kind}_s']:.1f} s)   x{ours / theirs:.2f}")
    if args.json:
        record = {
            "example": "examples/pyramid.py",
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "machine": {"label": args.label, **machine()},
            "repeat": args.repeat, "reported": "the fastest run",
            "numbapool_checkout": checkout(),
            "versions": {"numbapool": npl.__version__, "numpy": np.__version__,
                         "numba": numba.__version__, "dask": dask.__version__,
                         "distributed": distributed.__version__, "zarr": zarr.__version__},
            "image": {"shape": list(shape), "dtype": "float32", "bytes": nbytes,
                      "chunks": [1, args.chunk, args.chunk], "compressors": None},
            "cluster": {"workers": args.workers, "threads_per_worker": 1,
                        "memory_limit": args.memory_limit, "processes": True,
                        "NUMBA_NUM_THREADS": os.environ["NUMBA_NUM_THREADS"]},
            "levels": LEVELS, "pooling": "2x2 per level, each level from the previous one",
            "checked": f"corner {CORNER}x{CORNER} of level 0, every channel, each level",
            "results": results,
        }
        with open(args.json, "w") as out:
            json.dump(record, out, indent=2)
            out.write("\n")
        print(f"results in {args.json}")


if __name__ == "__main__":
    main()
