"""numbapool: PyTorch's pooling family on NumPy (CPU) and CUDA (GPU) arrays, compiled with Numba.

>>> import numpy as np
>>> import numbapool as npl
>>> x = np.random.default_rng(0).standard_normal((8, 64, 56, 56), dtype=np.float32)
>>> npl.adaptive_avg_pool2d(x, (7, 7)).shape
(8, 64, 7, 7)
>>> y, idx = npl.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
>>> y.shape, idx.dtype
((8, 64, 28, 28), dtype('int64'))
>>> pool = npl.nn.AdaptiveAvgPool2d(7)
>>> pool
AdaptiveAvgPool2d(output_size=7)
>>> pool.backward(np.ones_like(pool(x))).shape
(8, 64, 56, 56)

Kernels compile on first use (and are cached on disk; set ``NUMBA_CACHE_DIR`` to choose
where), so importing numbapool compiles nothing.
"""

from typing import TYPE_CHECKING, Any

from numbapool import functional
from numbapool.functional import *  # noqa: F401,F403  the functions live at top level too
from numbapool.functional import __all__ as _functional_all
from numbapool._inspection import PoolingWindows, Windows, windows

if TYPE_CHECKING:  # numbapool.nn is imported on first use (__getattr__ below)
    from numbapool import nn

__version__ = "0.1.0"


def warmup(*args: Any, **kwargs: Any) -> int:
    """Compile the common CPU kernels into the disk cache ahead of use (see
    ``numbapool._warmup.warmup`` for the arguments; ``python -m numbapool warmup``)."""
    from numbapool._warmup import warmup as run

    return run(*args, **kwargs)


def __getattr__(name):
    # numbapool.nn is imported on first use to keep `import numbapool` light
    if name == "nn":
        import importlib

        return importlib.import_module("numbapool.nn")
    raise AttributeError(f"module 'numbapool' has no attribute {name!r}")


__all__ = ["PoolingWindows", "Windows", "functional", "nn", "warmup", "windows", *_functional_all]  # noqa: F405  (nn comes from __getattr__)
