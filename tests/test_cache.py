"""The on-disk kernel cache where users run numbapool: read-only installs and homes, and
cache files left damaged (a full disk, a killed process). Each case runs in fresh
interpreters, as a user's next session would."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numbapool

PACKAGE = Path(numbapool.__file__).parent

CALLS = """
    import warnings
    import numpy as np
    import numbapool as npl
    x = np.arange(2 * 3 * 6 * 5, dtype=np.float32).reshape(2, 3, 6, 5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = npl.max_pool2d(x, 2)
        z = npl.avg_pool2d(x, 3, 1, 1)
    assert (y == x[:, :, 1:6:2, 1:5:2]).all()
    assert np.isclose(z[0, 0, 2, 2], x[0, 0, 1:4, 1:4].mean())
    for warning in caught:
        print("WARNING", warning.category.__name__, warning.message)
    print("ok")
"""


def run(code, env):
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                            capture_output=True, text=True, cwd="/")
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def clean_env(**changes):
    """The environment without cache settings, importing the numbapool under test."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("NUMBA_CACHE") and k != "XDG_CACHE_HOME"}
    env["PYTHONPATH"] = str(PACKAGE.parent)
    env.update(changes)
    return env


def test_no_writable_cache_directory_compiles_in_memory_with_one_warning(tmp_path):
    """A read-only install and home (here: a file where each cache directory would be):
    the calls work, and one warning names NUMBA_CACHE_DIR."""
    site = tmp_path / "site"
    shutil.copytree(PACKAGE, site / "numbapool",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for folder in [site / "numbapool", *(p for p in (site / "numbapool").rglob("*")
                                         if p.is_dir())]:
        (folder / "__pycache__").write_text("not a directory")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".cache").write_text("not a directory")
    out = run(CALLS, clean_env(PYTHONPATH=str(site), HOME=str(home),
                               PYTHONDONTWRITEBYTECODE="1"))
    warnings = [line for line in out.splitlines() if line.startswith("WARNING")]
    assert out.splitlines()[-1] == "ok"
    assert len(warnings) == 1 and "NUMBA_CACHE_DIR" in warnings[0], out


def test_damaged_cache_files_are_replaced(tmp_path):
    """Truncated index and data files: the next process recompiles (saying so) and
    repairs the cache; the one after loads it silently."""
    env = clean_env(NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    assert run(CALLS, env).splitlines() == ["ok"]
    files = [p for p in (tmp_path / "cache").rglob("*") if p.suffix in (".nbi", ".nbc")]
    assert any(p.suffix == ".nbi" for p in files) and any(p.suffix == ".nbc" for p in files)
    for path in files:
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    out = run(CALLS, env)
    assert out.splitlines()[-1] == "ok"
    assert "damaged kernel cache entry" in out
    assert run(CALLS, env).splitlines() == ["ok"]


def test_an_index_pointing_at_damaged_data_is_replaced(tmp_path):
    env = clean_env(NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    run(CALLS, env)
    for path in (tmp_path / "cache").rglob("*.nbc"):
        path.write_bytes(b"\x80\x04garbage")
    assert run(CALLS, env).splitlines()[-1] == "ok"
    assert run(CALLS, env).splitlines() == ["ok"]


def test_serial_and_parallel_builds_have_their_own_cache_entries(tmp_path):
    """Numba's cache key ignores ``parallel=``: a small input first must not leave a
    serial build that later processes load for large inputs (one core whatever the
    machine). Each build is named after its options, so each has its own entry."""
    env = clean_env(NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    small = """
        import numpy as np, numbapool as npl
        npl.max_pool2d(np.ones((1, 2, 8, 8), np.float32), 2)
    """
    large = """
        import numpy as np, numbapool as npl
        for _ in range(2):   # the second call compiles the parallel build
            npl.max_pool2d(np.ones((16, 64, 56, 56), np.float32), 2)
    """

    def entries():
        return sorted(p.name.rsplit("-", 1)[0]
                      for p in (tmp_path / "cache").rglob("*.nbi"))

    run(small, env)
    after_small = entries()
    assert after_small and all("serial" in name for name in after_small), after_small
    run(large, env)
    after_large = entries()
    assert any("parallel" in name for name in after_large), after_large
    assert set(after_small) <= set(after_large)


LARGE_CALLS = """
    import gc
    import numpy as np, numbapool as npl
    from numbapool import _cpu

    def parallel_builds_ready():   # compiled or loaded in this process
        return sum(len(o.kernel.overloads) for o in gc.get_objects()
                   if isinstance(o, _cpu._ParallelBuild))

    x = np.random.default_rng(5).standard_normal((16, 32, 40, 40)).astype(np.float32)
    results = []
    for call in range(2):
        results.append(npl.avg_pool2d(x, 3, 2, 1))
        print(call, parallel_builds_ready())
    assert results[0].tobytes() == results[1].tobytes()
"""


def test_a_first_call_runs_the_serial_build_and_a_second_one_the_parallel_build(tmp_path):
    """A parallel build compiles 2-3 times slower than the serial one: on an empty cache
    a large input's first call runs the serial build (nothing parallel compiled), its
    second call the parallel build, with identical results."""
    env = clean_env(NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    assert run(LARGE_CALLS, env).split() == ["0", "0", "1", "1"]
    names = [p.name for p in (tmp_path / "cache").rglob("*.nbi")]
    assert any("serial" in name for name in names), names
    assert any("parallel" in name for name in names), names


def test_a_cached_parallel_build_runs_from_the_first_call(tmp_path):
    """Where the disk cache holds the parallel build, the first call loads and runs it:
    no serial build is compiled for it."""
    env = clean_env(NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    run(LARGE_CALLS, env)
    for path in (tmp_path / "cache").rglob("*serial*"):
        path.unlink()
    assert run(LARGE_CALLS, env).split() == ["0", "1", "1", "1"]
    assert not list((tmp_path / "cache").rglob("*serial*"))


def test_a_very_large_first_call_compiles_the_parallel_build(tmp_path):
    """From ``SERIAL_FIRST_MAX_WORK`` elements one core would take longer than the
    parallel compile: the first call runs the parallel build."""
    env = clean_env(NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    code = LARGE_CALLS.replace("import numpy as np,", "import numbapool._cpu as cpu\n"
                               "    cpu.SERIAL_FIRST_MAX_WORK = 16 * 32 * 40 * 40\n"
                               "    import numpy as np,")
    assert run(code, env).split() == ["0", "1", "1", "1"]


def test_warmup_fills_the_cache_that_later_processes_load(tmp_path):
    """After ``python -m numbapool warmup`` for some ops, a new process calling them on
    small and large inputs (serial and parallel builds), forward and backward, compiles
    nothing: the cache holds every kernel it needs."""
    env = clean_env(NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    result = subprocess.run([sys.executable, "-m", "numbapool", "warmup", "--ops",
                             "max_pool2d,adaptive_avg_pool2d", "--layouts", "channels_first"],
                            env=env, capture_output=True, text=True, cwd="/")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "warmed up 4 calls" in result.stderr

    def files():
        return {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*")}

    warmed = files()
    run("""
        import numpy as np, numbapool as npl
        for shape in ((1, 4, 12, 12), (2, 3, 9, 9), (8, 32, 40, 40)):
            x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
            y, idx = npl.max_pool2d(x, 3, 2, 1, return_indices=True)
            npl.max_pool2d_backward(np.ones_like(y), x, idx, 3, 2, 1)
            for size in (3, 1):
                a = npl.adaptive_avg_pool2d(x, size)
                npl.adaptive_avg_pool2d_backward(np.ones_like(a), x)
    """, env)
    assert files() == warmed


def test_warmup_names_bad_arguments():
    import pytest

    with pytest.raises(ValueError, match="'max_pool4d'"):
        numbapool.warmup(ops=["max_pool4d"])
    with pytest.raises(ValueError, match="'NHWC'"):
        numbapool.warmup(ops=["max_pool2d"], layouts=["NHWC"])
    result = subprocess.run([sys.executable, "-m", "numbapool", "warmup", "--builds", "fast"],
                            env=clean_env(), capture_output=True, text=True)
    assert result.returncode == 2 and "'fast'" in result.stderr


def test_kernels_compile_without_numba_warnings(tmp_path):
    """Compiling LP pooling with p = +-inf once printed Numba's NumbaIRAssumptionWarning
    ("variable ... is not in scope"); no Numba warning may reach users."""
    out = run("""
        import warnings
        import numpy as np
        from numba.core.errors import NumbaWarning
        warnings.simplefilter("error", NumbaWarning)
        import numbapool as npl
        from numbapool import _cpu
        x = np.random.default_rng(0).standard_normal((2, 3, 9, 8)).astype(np.float32)
        for threshold in (0, 1 << 62):  # parallel and serial builds
            _cpu.PARALLEL_MIN_WORK = threshold
            for p in (np.inf, -np.inf, 2.0):
                for x_, kw in ((x, {}), (np.ascontiguousarray(x.transpose(0, 2, 3, 1)),
                                         {"data_format": "channels_last"})):
                    y = npl.lp_pool2d(x_, p, 2, **kw)
                    npl.lp_pool2d_backward(np.ones_like(y), x_, p, 2, **kw)
        print("ok")
    """, clean_env(NUMBA_CACHE_DIR=str(tmp_path / "cache")))
    assert out.split() == ["ok"]
