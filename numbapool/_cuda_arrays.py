"""Device arrays for the GPU backend: adoption, views, allocation, streams, host copies.

Arrays: a CuPy array gives CuPy results; a Numba device array gives Numba device
arrays; any other ``__cuda_array_interface__`` producer (a PyTorch CUDA tensor, ...)
is wrapped with ``numba.cuda.as_cuda_array`` without copying and gets Numba device
arrays back (``torch.as_tensor(result, device="cuda")`` takes them back into PyTorch
without a copy). Views of any strides share the caller's memory, as on the CPU.

Streams: work on a CuPy array is queued on CuPy's current stream; work on any other
array on the stream its ``__cuda_array_interface__`` names (the producer's, so no
host synchronisation is needed), else on the default stream.

Needs the numba-cuda package (``pip install "numbapool[cuda]"``): numba's deprecated
built-in CUDA target cannot compile numbapool's kernels (it fails on ``min()`` from
Numba 0.68 on). Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) runs everything,
slowly, for tests. Nothing here imports ``numba.cuda`` (or CuPy) until a device array
arrives.
"""

import functools
import sys

import numpy as np

INSTALL_HINT = 'pip install "numbapool[cuda]"'


@functools.cache
def numba_cuda():
    """``numba.cuda``, checked to be usable; imported on first call."""
    try:
        from numba import cuda as module
    except ImportError as error:
        raise TypeError(
            f"numbapool got a CUDA array but numba.cuda cannot be imported ({error}); "
            f"install the GPU backend with: {INSTALL_HINT}"
        ) from None
    if not module.is_available():
        reason = module.cuda_error() if hasattr(module, "cuda_error") else None
        raise RuntimeError(
            f"numbapool got a CUDA array but numba.cuda finds no usable GPU"
            f"{f' ({reason})' if reason else ''}; it needs an NVIDIA driver and the CUDA "
            f"packages that {INSTALL_HINT} installs"
        )
    if getattr(module, "implementation", "") == "Built-in" and not simulated():
        # numba's own (deprecated) CUDA target cannot compile min() from Numba 0.68 on
        raise TypeError(
            "numbapool's GPU backend needs the numba-cuda package, not numba's built-in "
            f"CUDA target; install it with: {INSTALL_HINT}"
        )
    return module


@functools.cache
def simulated():
    from numba.core import config

    return bool(config.ENABLE_CUDASIM)


def is_cupy(array):
    cupy = sys.modules.get("cupy")
    return cupy is not None and isinstance(array, cupy.ndarray)


def adopt(x):
    """The array to compute on for an object with ``__cuda_array_interface__``.

    CuPy arrays and Numba device arrays are used as they are; anything else is wrapped
    (no copy) as a Numba device array that keeps the producer's stream.
    """
    cuda = numba_cuda()
    if is_cupy(x) or getattr(x, "__cuda_ndarray__", False):
        return x
    try:
        return cuda.as_cuda_array(x, sync=False)
    except Exception as error:
        raise TypeError(
            f"numbapool cannot read {type(x).__name__} through its "
            f"__cuda_array_interface__: {error}"
        ) from None


def view(array, shape, strides, dtype=None):
    """A view of ``array``'s memory, its first element kept, of any shape and strides."""
    dtype = array.dtype if dtype is None else np.dtype(dtype)
    shape, strides = tuple(int(s) for s in shape), tuple(int(s) for s in strides)
    if is_cupy(array):
        return sys.modules["cupy"].ndarray(shape, dtype, memptr=array.data, strides=strides)
    if simulated():
        host = np.lib.stride_tricks.as_strided(array._ary, shape, strides)
        return type(array)(host.view(dtype), stream=array.stream)
    from numba.cuda.cudadrv.devicearray import DeviceNDArray

    # gpu_data points at the first element (the array interface's data pointer), so
    # negative strides index backwards from it, as they should
    return DeviceNDArray(shape, strides, dtype, stream=array.stream, gpu_data=array.gpu_data)


def allocate(shape, dtype, like):
    """A C-contiguous uninitialised array of ``like``'s kind (CuPy or Numba)."""
    if like is not None and is_cupy(like):
        return sys.modules["cupy"].empty(shape, dtype)
    stream = like.stream if like is not None else 0
    return numba_cuda().device_array(shape, dtype, stream=stream)


def stream_of(array):
    """The stream work on ``array`` is queued on (see the module docstring)."""
    if simulated():
        return 0
    if is_cupy(array):
        pointer = sys.modules["cupy"].cuda.get_current_stream().ptr
        return _external_stream(pointer) if pointer else 0
    return array.stream


@functools.lru_cache(maxsize=64)
def _external_stream(pointer):
    return numba_cuda().external_stream(pointer)


def kernel_argument(array):
    """What a kernel launch takes: CuPy arrays become Numba views without the host
    synchronisation that Numba's own conversion of kernel arguments would do."""
    if is_cupy(array):
        return numba_cuda().as_cuda_array(array, sync=False)
    return array


def host_copy(array, stream):
    """A NumPy copy of a contiguous device array, waiting for ``stream``'s work."""
    if is_cupy(array):
        return array.get()
    host = array.copy_to_host(stream=stream)
    if stream:
        stream.synchronize()  # copy_to_host on a stream is asynchronous
    return host


def to_device(array):
    """A Numba device copy of a NumPy array (queued on CuPy's current stream when CuPy
    is in use, so that its kernels see the data)."""
    cuda = numba_cuda()
    stream = 0
    if "cupy" in sys.modules and not simulated():
        pointer = sys.modules["cupy"].cuda.get_current_stream().ptr
        stream = _external_stream(pointer) if pointer else 0
    return cuda.to_device(np.ascontiguousarray(array), stream=stream)
