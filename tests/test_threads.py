"""Calls from several Python threads, and processes forked after a parallel call, under
each of Numba's threading layers (each run in a fresh interpreter, as the layer is chosen
once per process)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import numbapool

THREADS = """
    import threading
    import numpy as np
    import numba
    import numbapool as npl
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 32, 48, 48)).astype(np.float32)
    x_cl = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    calls = [
        lambda: npl.max_pool2d(x, 3, 2, 1, return_indices=True)[1],
        lambda: npl.avg_pool2d(x_cl, 3, 2, 1, data_format="channels_last"),
        lambda: npl.adaptive_avg_pool2d(x, 7),
        lambda: npl.adaptive_max_pool2d_backward(np.ones((8, 32, 5, 5), np.float32), x,
                                                 npl.adaptive_max_pool2d(x, 5, True)[1]),
        lambda: npl.lp_pool2d(x, 2.0, 3),
    ]
    want = [call() for call in calls]
    failures = []

    def work(seed):
        order = np.random.default_rng(seed).permutation(len(calls))
        for _ in range(6):
            for i in order:
                if not np.array_equal(calls[i](), want[i]):
                    failures.append(i)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(numba.threading_layer(), "failures", failures)
"""

FORK = """
    import multiprocessing, os
    from concurrent.futures import ProcessPoolExecutor
    import numpy as np
    import numba
    import numbapool as npl
    x = np.random.default_rng(0).standard_normal((8, 32, 48, 48)).astype(np.float32)
    npl.max_pool2d(x, 3, 2, 1)  # a first call runs the serial build,
    want = npl.max_pool2d(x, 3, 2, 1)  # a repeat the parallel one: in the parent first

    def child(_):
        return bool(np.array_equal(npl.max_pool2d(x, 3, 2, 1), want))

    if __name__ == "__main__":
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
            pooled = list(pool.map(child, range(4)))
        pid = os.fork()
        if pid == 0:
            os._exit(0 if child(0) else 1)
        _, status = os.waitpid(pid, 0)
        print(numba.threading_layer(), pooled, os.waitstatus_to_exitcode(status))
"""


def run(code, layer):
    env = dict(os.environ, NUMBA_THREADING_LAYER=layer,
               PYTHONPATH=str(Path(numbapool.__file__).parent.parent))
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                            capture_output=True, text=True, timeout=600)
    if "No threading layer could be loaded" in result.stderr:
        pytest.skip(f"Numba cannot load the {layer} threading layer here (not installed)")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout.split()


@pytest.mark.parametrize("layer", ["omp", "tbb", "workqueue"])
def test_eight_threads_at_once_under_every_threading_layer(layer):
    """Numba's workqueue layer aborts the process on concurrent parallel launches:
    numbapool serialises its launches there. Results equal the single-threaded ones."""
    out = run(THREADS, layer)
    assert out[0] == layer and out[1:] == ["failures", "[]"], out


@pytest.mark.parametrize("layer", ["omp", "tbb", "workqueue"])
def test_forked_processes_after_a_parallel_call(layer):
    """GNU OpenMP terminates a forked child that opens a parallel region: children
    forked after one run serial builds instead, with the same results."""
    out = run(FORK, layer)
    assert out == [layer, "[True,", "True,", "True,", "True]", "0"], out
