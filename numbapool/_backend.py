"""What the host driver needs from a target: the primitives every backend provides.

``numbapool._driver`` holds the host logic once (element types, output allocation, the
global-pooling view, index checks, which reduction a gradient needs); a backend only
allocates, views, moves arrays to and from the host and launches its kernels. The
kernel launchers take canonical (N, C, D, H, W) arrays, already viewed in the element
type's ``storage`` dtype, and choose among the backend's kernels for that algorithm.
"""

import abc
import functools
import hashlib
import math
import threading
import warnings
from pathlib import Path

import numpy as np

from numbapool import _bodies, _elements, _jit, _reductions, _windows
from numbapool._elements import EXACT_TAPS
from numbapool._windows import ADAPTIVE


def jit_cached(jit, function, **options):
    """``jit(cache=True, **options)(function)`` that works wherever numbapool runs: where
    no cache directory is writable (read-only installs and homes) the kernel is compiled
    in memory, with one warning naming ``NUMBA_CACHE_DIR``; a cache entry that fails to
    load (a truncated or corrupt file) is replaced by a fresh compile instead of failing
    every later call."""
    try:
        dispatcher = jit(cache=True, **options)(function)
    except RuntimeError as error:
        if "cannot cache" not in str(error):
            raise
        _warn_uncached()
        return jit(**options)(function)
    cache = getattr(dispatcher, "_cache", None)
    if cache is not None and hasattr(cache, "load_overload") and hasattr(cache, "flush"):
        cache.load_overload = _CacheLoad(cache, cache.load_overload)
    return dispatcher


def load_cached(dispatcher, signature):
    """``dispatcher``'s build for argument types ``signature``, loaded from the disk
    cache; None, with nothing compiled, where the cache does not hold it (or there is no
    disk cache). A build already compiled in this process is returned as it is."""
    if not isinstance(getattr(getattr(dispatcher, "_cache", None), "load_overload", None),
                      _CacheLoad):
        return None
    _CacheLoad.only.active = True
    try:
        return dispatcher.compile(signature)
    except _NotCached:
        return None
    finally:
        _CacheLoad.only.active = False


class _NotCached(Exception):
    pass


@functools.cache
def _warn_uncached():
    warnings.warn("numbapool compiles its kernels in memory in every process, as Numba "
                  "finds no writable cache directory (beside numbapool or in the home); set "
                  "NUMBA_CACHE_DIR to a writable directory to keep them between processes",
                  RuntimeWarning, stacklevel=4)


class _CacheLoad:
    """A kernel's cache lookup (Numba's ``load_overload``): an entry that fails to load is
    replaced by a fresh compile, with a warning; under ``load_cached`` a missing entry
    stops the compile that would follow."""

    only = threading.local()   # active: within load_cached, on this thread

    def __init__(self, cache, load):
        self.cache, self.load = cache, load

    def __call__(self, signature, target_context):
        try:
            loaded = self.load(signature, target_context)
        except Exception as error:  # noqa: BLE001  any unreadable entry: compile afresh
            warnings.warn(f"numbapool replaced a damaged kernel cache entry in "
                          f"{self.cache.cache_path} ({type(error).__name__}: {error})",
                          RuntimeWarning, stacklevel=2)
            self.cache.flush()  # a fresh, empty index, so the new compile can be saved
            loaded = None
        if loaded is None and getattr(_CacheLoad.only, "active", False):
            raise _NotCached
        return loaded


# Numba's on-disk cache keys a kernel on its own source file, but the code it inlines from
# other modules only by name: both backends name every kernel after those modules' digest
# too, so that editing or upgrading them recompiles instead of loading stale code.
INLINED_DIGEST = hashlib.sha256(
    b"".join(Path(str(module.__file__)).read_bytes()
             for module in (_bodies, _elements, _jit, _reductions, _windows))
).hexdigest()[:16]


def window_extent(dim, windows):
    """The most taps a window of one dim can have."""
    if windows is ADAPTIVE:
        out = max(dim.out, 1)
        return -(-dim.size // out) + (dim.size % out > 0)
    return dim.kernel


def _taps(dims, windows):
    return math.prod(window_extent(dim, windows) for dim in dims)


class Backend(abc.ABC):
    """A target: the CPU (NumPy arrays) or CUDA (device arrays)."""

    name = ""

    writes_elements = False
    """True: kernels store finished values in the element type (through ``Element.store``
    into an array of ``Element.stored``); False: they write the value type
    (``Element.value``), in which some kernels accumulate, and the driver casts the
    result."""

    # --- arrays ---------------------------------------------------------------------

    @abc.abstractmethod
    def canonical(self, array, nd, batched, data_format):
        """The (N, C, D, H, W) view of a caller's array (``_layout.to_canonical``)."""

    @abc.abstractmethod
    def restore(self, array5, nd, batched, data_format):
        """A 5-d result in the caller's convention (``_layout.from_canonical``)."""

    @abc.abstractmethod
    def empty(self, shape5, dtype, channels_last, like):
        """An uninitialised (N, C, D, H, W) array, C fastest in memory if
        ``channels_last``, of the same kind of array as ``like``."""

    def no_indices(self, like):
        """An int64 array for kernels that write no indices, which they take for its type
        alone."""
        return self.empty((1,) * 5, np.int64, False, like)

    @abc.abstractmethod
    def retype(self, array, dtype):
        """``array``'s memory seen as ``dtype`` of the same size (float16 as uint16)."""

    @abc.abstractmethod
    def merged_planes(self, array5):
        """The (N, C, 1, 1, D*H*W) view of ``array5`` (``_layout.merged_planes``), or
        None when a plane's memory is not one run."""

    @abc.abstractmethod
    def cast(self, array5, dtype, element):
        """A new array of ``array5``'s values (the compute type) as ``dtype``, with the
        same memory order."""

    @abc.abstractmethod
    def value_range(self, array):
        """``(min, max)`` of an integer array as Python ints; ``(0, -1)`` when empty."""

    @abc.abstractmethod
    def to_host(self, array):
        """A NumPy array of ``array``'s values."""

    @abc.abstractmethod
    def from_host(self, array, like):
        """A NumPy array's values on this target, near ``like``."""

    # --- kernels --------------------------------------------------------------------

    def sums_carry(self, dims, windows, channels_last):
        """Whether this backend's kernels add more values into one float32 sum than stay
        accurate (``_elements.EXACT_TAPS`` one after another), so that sums of floats
        must be carried in float64 (``Element.carrying``)."""
        return _taps(dims, windows) > EXACT_TAPS

    @abc.abstractmethod
    def window_reducer(self, x, out_shape, dims, windows, reduction, element, options, samples,
                       with_indices, channels_last):
        """Forward pooling as ``reduce(x, out, idx)``: ``out[o]`` (and, ``with_indices``,
        ``idx[o]``) for every output ``o`` from the taps of its window
        (``_bodies.window_reducer``), for ``x`` or an array of its shape, strides and
        dtype, and an ``out`` of ``out_shape``. Everything but the launch is decided here,
        once: a forward call's plan (``numbapool._plans``) keeps ``reduce``, which holds no
        array of the call."""

    @abc.abstractmethod
    def gather_gradient(self, grad, idx, out, x, grad_in, dims, windows, reduction,
                        element, options, channels_last):
        """Backward pooling: every element of ``grad_in`` gathers the gradients of the
        outputs whose windows hold it (``_bodies.gradient_gatherer``)."""

    @abc.abstractmethod
    def scatter_planes(self, values, idx, out, element, accumulate, channels_last):
        """Per (n, c) plane: zero ``out``, then write (or add) each value at its index
        (``_bodies.plane_scatterer``)."""

    @abc.abstractmethod
    def indices_outside_windows(self, idx, dims, windows, unit_steps, in_spatial):
        """Whether any index of ``idx`` (a max-type forward's output shape) is not one its
        output's window can report (``_bodies.reporter(unit_steps)``); ``in_spatial`` is
        the input's (D, H, W)."""

    def planes_as_rows(self, *arrays):
        """``arrays`` as (N, C, 1, 1, plane) views where the memory of all of them allows
        (kernels then find an index's place without splitting it), else as they are."""
        merged = [self.merged_planes(array) for array in arrays]
        return merged if all(view is not None for view in merged) else arrays

    @abc.abstractmethod
    def gather_by_index(self, grad, idx, grad_in, channels_last):
        """``grad_in[j] = grad[plane, idx[j]]`` (``_bodies.gather_by_index``)."""
