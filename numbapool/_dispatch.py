"""Which backend computes a call: decided here, from the input array alone."""

import numpy as np

from numbapool._cpu import CPU


def backend_for(x, op):
    """``(backend, array)`` for the input ``x`` of ``op``.

    - An object with ``__cuda_array_interface__`` (CuPy, Numba, PyTorch CUDA tensors, ...)
      runs on the GPU (``numbapool._cuda``); the array is the object itself for CuPy and
      Numba device arrays, else a Numba device array wrapping its memory.
    - A NumPy array, or anything ``numpy.asarray`` turns into a numeric array, runs on the
      CPU (``numbapool._cpu``); subclasses are seen as plain arrays, but for masked
      arrays, which are a TypeError (their mask would be ignored).
    - Anything else is a TypeError naming it.

    numba.cuda and CuPy are imported only when a device array arrives.
    """
    if type(x) is np.ndarray:
        return CPU, x
    if isinstance(x, np.ndarray):
        if isinstance(x, np.ma.MaskedArray):
            raise TypeError(f"{op} does not take masked arrays (the mask would be ignored); "
                            "pass x.filled(value) or x.data")
        return CPU, x.view(np.ndarray)
    # Numba's CUDA simulator arrays (NUMBA_ENABLE_CUDASIM) have no __cuda_array_interface__
    if hasattr(x, "__cuda_array_interface__") or getattr(x, "__cuda_ndarray__", False):
        from numbapool import _cuda, _cuda_arrays

        return _cuda.CUDA, _cuda_arrays.adopt(x)
    if isinstance(x, (str, bytes, dict, set)) or x is None or np.isscalar(x):
        raise TypeError(f"{op} expects an array, got {type(x).__name__} {x!r:.60}")
    try:
        array = np.asarray(x)
    except Exception as error:
        raise TypeError(f"{op} expects an array, got {type(x).__name__}: {error}") from None
    if array.dtype == object:
        raise TypeError(f"{op} expects a numeric array, got {type(x).__name__} of objects")
    return CPU, array
