"""Device arrays for the GPU backend: adoption, views, allocation, streams, host copies.

Arrays: a CuPy array gives CuPy results; a Numba device array gives Numba device
arrays; any other ``__cuda_array_interface__`` producer (a PyTorch CUDA tensor, ...)
is wrapped with ``numba.cuda.as_cuda_array`` without copying and gets Numba device
arrays back (``torch.as_tensor(result, device="cuda")`` takes them back into PyTorch
without a copy). Views of any strides share the caller's memory, as on the CPU.

Streams: work on a CuPy array is queued on CuPy's current stream; work on any other
array on the stream its ``__cuda_array_interface__`` names (the producer's, so no
host synchronisation is needed), else on the default stream.

Needs the numba-cuda package (``pip install "numbapool[cuda13]"``, or ``[cuda12]`` for a
CUDA 12 driver): numba's deprecated
built-in CUDA target cannot compile numbapool's kernels (it fails on ``min()`` from
Numba 0.68 on). Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) runs everything,
slowly, for tests. Nothing here imports ``numba.cuda`` (or CuPy) until a device array
arrives.
"""

import functools
import sys
import threading

import numpy as np

INSTALL_HINT = ('pip install "numbapool[cuda13]" (a CUDA 13 driver) or '
                '"numbapool[cuda12]" (CUDA 12)')


@functools.cache
def numba_cuda():
    """``numba.cuda``, checked to be usable; imported on first call."""
    try:
        from numba import cuda as module

        _load_array_support()
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


def _load_array_support():
    """Import numba-cuda's NumPy array support, which overloads ``numpy.row_stack`` at
    import (numba-cuda 0.30 and before): NumPy 2.5 removed that function, and without it
    no kernel compiles. A stand-in exists while the module loads, and is gone after."""
    if hasattr(np, "row_stack") or simulated():
        return

    def row_stack(*args, **kwargs):
        raise AttributeError("numpy.row_stack was removed in NumPy 2.5; use numpy.vstack")

    np.row_stack = row_stack
    try:
        import numba.cuda.np.arrayobj  # noqa: F401
    finally:
        del np.row_stack


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


def to_device(array, like):
    """A device copy of a NumPy array, queued on ``like``'s stream (see ``stream_of``)
    so that kernels on that stream see it, without waiting for that stream: the values go
    through pinned host memory (a copy from pageable memory waits for the stream's queued
    work). A CuPy ``like`` gives a CuPy array, anything else a Numba device array."""
    host = np.ascontiguousarray(array)
    stream = stream_of(like)
    if simulated() or not stream or not host.size:
        return numba_cuda().to_device(host, stream=stream)
    device = allocate(host.shape, host.dtype, like)
    _STAGING.copy(host, kernel_argument(device), stream)
    return device


class _Pinned:
    """A pinned host buffer, and the event recorded after the last copy out of it."""

    def __init__(self, nbytes):
        self.memory = numba_cuda().pinned_array(max(nbytes, 1 << 16), np.uint8)
        self.copied = None

    def free_for(self, nbytes):
        return self.memory.size >= nbytes and (self.copied is None or self.copied.query())


class _Staging:
    """Pinned host buffers for host-to-device copies on a stream, each reused once its
    last copy has passed; 16 at most (when all are busy, the oldest is waited for)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._buffers = []

    def copy(self, host, device, stream):
        cuda = numba_cuda()
        with self._lock:
            buffer = next((b for b in self._buffers if b.free_for(host.nbytes)), None)
            if buffer is None:
                if len(self._buffers) >= 16:
                    oldest = self._buffers.pop(0)
                    oldest.copied.synchronize()
                    buffer = oldest if oldest.free_for(host.nbytes) else _Pinned(host.nbytes)
                else:
                    buffer = _Pinned(host.nbytes)
                self._buffers.append(buffer)
            staged = buffer.memory[:host.nbytes].view(host.dtype).reshape(host.shape)
            staged[...] = host
            device.copy_to_device(staged, stream=stream)
            buffer.copied = cuda.event(timing=False)
            buffer.copied.record(stream=stream)


_STAGING = _Staging()
