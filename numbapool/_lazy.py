"""Dask arrays: any numbapool function given a ``dask.array.Array`` returns a lazy one.

The generated functions of ``numbapool._ops`` hand a call here when one of its arrays is
a dask array (this module imports dask; numbapool imports this module only then). Each
block is computed by the in-memory function on a NumPy block with the caller's
arguments, so results equal the in-memory result on the whole array, bitwise.

How each op is split:

- N and C: chunks as the input's; planes never interact.
- Max, average and LP pooling (fixed windows), forward: each spatial dim is split into
  output blocks that follow the input's chunks; a block reads the input slab that holds
  its windows (a halo to the right where windows cross a chunk boundary) and runs the
  op there with the same kernel, stride, padding, dilation and ceil_mode. Slabs start at
  multiples of the stride, where window starts and ceil_mode's rule are the global ones;
  their left padding only reaches local outputs that are dropped, and their windows end
  inside the slab, or at the input's real end, so clipping and the average's divisor are
  the global ones. Max-type indices are moved to the whole plane's coordinates.
- Adaptive pooling, forward: output blocks start at multiples of out / gcd(in, out),
  where the input position o * in / out is an integer and the windows between two such
  outputs are those of a smaller adaptive problem (slabs do not overlap). A dim whose
  in and out share no factor (global pooling too) is one block.
- Fractional max pooling and max unpooling: spatial dims whole (windows placed per plane
  by random samples; indices point anywhere in the plane). Samples are drawn when the
  function is called, for the whole array, and sliced per block.
- Every ``*_backward``: spatial dims whole (a gradient block would need the outputs of
  every window over it, and max-type indices in their slab's coordinates); grad_output,
  input and indices aligned to the input's N and C chunks.

numbapool's sums (average, LP, adaptive average) depend on more than their taps: on the
kernel a block's shape and memory choose (fastmath lets LLVM reorder additions). Blocks
are kept where the whole array is: contiguous; two channels at least in channels-last
layout; rows of ``SUM_MIN_WIDTH`` at least (or the whole row); adaptive averages of
two outputs at least along dims that have them (one output everywhere is global
pooling). Chunks of the result may then be coarser than the input's.

Arguments are checked when the function is called, by the in-memory function on empty
stand-ins (the real sizes but a batch of 0), so a bad call raises the same error as in
memory; only the values of indices, which need the data, are checked as blocks compute.
"""

import math
import operator
from typing import Optional
from dataclasses import dataclass

import dask.array as da
import numpy as np
from dask.base import tokenize

from numbapool import _inspection, _ops, _params, _windows, functional
from numbapool._dispatch import backend_for

ADAPTIVE = frozenset({"adaptive_avg_pool", "adaptive_max_pool"})
SUMS = frozenset({"avg_pool", "lp_pool", "adaptive_avg_pool"})
# Slabs of summing ops are at least this wide along the last spatial dim (or the whole
# dim): numbapool's channels-first sums are compiled with fastmath, and LLVM's loops for
# rows narrower than a vector (measured: 4 float64 on AVX-512) add a window's rows in
# another order, so a narrow block could round differently from the whole array
SUM_MIN_WIDTH = 16
ARRAYS = ("grad_output", "input", "indices")  # the array arguments, in signature order


def call(op, nd, name, arguments):
    """``name`` (a function of ``op``, rank ``nd``) on its ``arguments`` (the function's
    locals: every parameter by name), one of whose arrays is a dask array."""
    arguments = dict(arguments)
    _params.check_data_format(arguments["data_format"])  # first, as in memory
    names = [key for key in ARRAYS if key in arguments]
    for key in names:
        arguments[key] = _as_array(arguments[key], name)
        if isinstance(arguments[key], da.Array) and any(
                math.isnan(size) for size in arguments[key].shape):
            raise ValueError(f"{name}: {key} has unknown chunk sizes; call "
                             f"{key}.compute_chunk_sizes() first")
    function = getattr(functional, name)
    x = arguments["input"]
    if not _is_array(x) or x.ndim not in (nd + 1, nd + 2) or 0 in x.shape or any(
            _is_array(arguments[key]) and (arguments[key].ndim != x.ndim or (
                x.ndim == nd + 2 and arguments[key].shape[0] != x.shape[0]))
            for key in names):
        # the in-memory error names the real shapes; an empty input's result is free
        return _eager(function, arguments, names)
    axes = Axes(x.ndim, nd, arguments["data_format"])
    try:
        empty = _empty_call(function, arguments, names, axes)
    except (ValueError, TypeError):
        # raised by a check of arguments or shapes, before any value is read: the call
        # on real-shape stand-ins raises it too, naming the real shapes
        _real_shape_call(function, arguments, names)
        raise
    if name.endswith("_backward"):
        return _run_whole(arguments, names, axes, empty, WholeSpec(
            name, tuple(_others(arguments, names))), sums=op.name in SUMS)
    if op.name == "fractional_max_pool":
        return _fractional(op, nd, arguments, names, axes, empty)
    if op.name == "max_unpool":
        return _run_whole(arguments, names, axes, empty, WholeSpec(
            name, tuple(_others(arguments, names))))
    return _pool(op, name, arguments, axes, empty)


def _others(arguments, names):
    """The (name, value) pairs of the arguments that are not arrays."""
    return [(key, value) for key, value in arguments.items() if key not in names]


# ---------------------------------------------------------------------------------------
# Checking a call on stand-ins


class Axes:
    """Where N, C and the spatial dims are in a caller's array."""

    def __init__(self, ndim, nd, data_format):
        self.ndim = ndim
        self.batched = ndim == nd + 2
        lead = 1 if self.batched else 0
        self.n = 0 if self.batched else None
        if data_format == "channels_first":
            self.c, self.spatial = lead, tuple(range(lead + 1, ndim))
        else:
            self.c, self.spatial = ndim - 1, tuple(range(lead, ndim - 1))

    def batch_of(self, shape):
        """A shape of this layout with a batch of 0 (added when unbatched)."""
        return (0,) + tuple(shape[1:] if self.batched else shape)

    def unbatch(self, array):
        """The meta of a result from the empty call's (zero-size, of this rank)."""
        return array if self.batched else _empty_like(array, (0,) * (array.ndim - 1))


def _as_array(value, name):
    """A dask array as it is, anything else as the in-memory function sees it (a value
    that is no array stays as given, for the in-memory check to reject)."""
    if isinstance(value, da.Array):
        return value
    try:
        return backend_for(value, name)[1]
    except TypeError:
        return value


def _is_array(value):
    return isinstance(value, da.Array) or (hasattr(value, "shape") and hasattr(value, "dtype"))


def _empty_like(array, shape):
    """An uninitialised array of ``array``'s kind (NumPy, masked, CuPy...) and dtype; of
    zero size here, but for ``_real_shape_stand_in``'s single element."""
    meta = array._meta if isinstance(array, da.Array) else array
    return np.empty_like(meta, shape=shape)


def _real_shape_stand_in(array):
    """A stand-in with ``array``'s shape that holds no memory, for calls that raise
    before reading it (or have nothing to read)."""
    if not _is_array(array):
        return array
    if 0 in array.shape:
        return _empty_like(array, array.shape)
    one = _empty_like(array, (1,) * array.ndim)
    return np.lib.stride_tricks.as_strided(one, array.shape, (0,) * array.ndim,
                                           writeable=False)


def _real_shape_call(function, arguments, names):
    """The in-memory call on stand-ins of the real shapes, which hold no memory: for
    calls that raise before reading them, or have nothing to read (an empty input)."""
    stand_ins = dict(arguments)
    for key in names:
        stand_ins[key] = _real_shape_stand_in(arguments[key])
    return function(**stand_ins)


def _eager(function, arguments, names):
    """The error of a call whose arrays do not fit together, or an empty input's result
    (as dask arrays)."""
    result = _real_shape_call(function, arguments, names)
    if 0 not in arguments["input"].shape:
        raise AssertionError(f"numbapool: {function.__name__} accepted arrays of "
                             "mismatched sizes")
    if isinstance(result, tuple):
        return tuple(da.from_array(part) for part in result)
    return da.from_array(result)


def _empty_call(function, arguments, names, axes):
    """The function on stand-ins of a batch of 0 (unbatched inputs gain one): checks
    every argument but index values, and gives the result's types and spatial sizes."""
    stand_ins = dict(arguments)
    for key in names:
        if _is_array(arguments[key]):
            stand_ins[key] = _empty_like(arguments[key], axes.batch_of(arguments[key].shape))
    return function(**stand_ins)


# ---------------------------------------------------------------------------------------
# Max, average, LP and adaptive pooling: spatial dims in blocks


@dataclass(frozen=True)
class Block:
    """One output block of a spatial dim: outputs [o0, o1) from input slab [lo, hi),
    where they are the local outputs from ``skip`` on."""

    o0: int
    o1: int
    lo: int
    hi: int
    skip: int


def _boundaries(chunks):
    """The interior chunk boundaries of one axis."""
    return [int(b) for b in np.cumsum(chunks)[:-1]]


def fixed_blocks(dim, chunks):
    """Blocks of a fixed-window dim (a ``Geometry``) following the input ``chunks``.

    A block's slab starts at a multiple of the stride (its first window's start, or 0)
    and ends where its last window ends, or at the input's end. Slabs reach at least to
    the next slab's start, so that inputs between windows (stride > kernel) belong to one
    of them, and are at least a window span long.
    """
    size, out, kernel, stride, pad, dilation = dim
    span = (kernel - 1) * dilation + 1
    first_inside = -(-pad // stride)  # the first output whose window starts at >= 0
    # each input boundary: the first output whose window starts at or after it
    cuts = {-(-(b + pad) // stride) for b in _boundaries(chunks)}
    edges = [0, *sorted(o for o in cuts if first_inside < o < out), out]
    bounds = []
    for o0, o1 in zip(edges, edges[1:]):
        lo = stride * max(0, o0 - first_inside)
        hi = min(size, (o1 - 1) * stride - pad + span)
        bounds.append([o0, o1, lo, hi])
    bounds[-1][3] = size
    for this, after in zip(bounds, bounds[1:]):
        this[3] = max(this[3], after[2])
    for this in bounds:
        # a slab at least a span long (avg_pool3d refuses shorter inputs): the last one
        # may need to start earlier, at a multiple of the stride still
        if this[3] - this[2] < span:
            this[2] = stride * (max(0, this[3] - span) // stride)
    return tuple(Block(o0, o1, lo, hi, o0 - lo // stride) for o0, o1, lo, hi in bounds)


def adaptive_blocks(dim, chunks):
    """Blocks of an adaptive dim: cut at multiples of ``out / gcd(in, out)`` near the
    input's chunk boundaries."""
    size, out = dim.size, dim.out
    common = math.gcd(size, out)
    step_out, step_in = out // common, size // common
    # the nearest whole step to each boundary
    cuts = {((2 * b + step_in) // (2 * step_in)) * step_out for b in _boundaries(chunks)}
    edges = [0, *sorted(o for o in cuts if 0 < o < out), out]
    return tuple(Block(o0, o1, o0 // step_out * step_in, o1 // step_out * step_in, 0)
                 for o0, o1 in zip(edges, edges[1:]))


def _geometry(op, spatial, arguments):
    """The whole input's geometry, as ``numbapool.windows`` derives it (no element type:
    fractional calls are not blocked spatially)."""
    return _inspection.SETUPS[op.name](spatial, len(spatial), arguments, None)[0]


def _slabs(x, axes, plans):
    """``x`` with chunk j of each spatial axis the slab of block j (overlapping slabs
    are copied out of ``x`` and concatenated)."""
    sizes = {}
    for axis, blocks in zip(axes.spatial, plans):
        if any(this.hi > after.lo for this, after in zip(blocks, blocks[1:])):
            where = [slice(None)] * x.ndim
            pieces = []
            for block in blocks:
                where[axis] = slice(block.lo, block.hi)
                pieces.append(x[tuple(where)])
            x = da.concatenate(pieces, axis=axis)
        sizes[axis] = tuple(block.hi - block.lo for block in blocks)
    return x.rechunk(sizes)


@dataclass(frozen=True)
class PoolSpec:
    """What a block of a spatially blocked forward needs (pickled to workers)."""

    function: str
    arguments: tuple     # (name, value) pairs of the call, but the input
    spatial: tuple       # the spatial axes
    plans: tuple         # per spatial dim, its Blocks
    geometry: tuple      # per spatial dim, the whole input's Geometry
    adaptive: bool
    pair: bool           # the function returns (values, indices)


def _pool(op, name, arguments, axes, empty):
    x = arguments["input"]
    spatial = tuple(x.shape[axis] for axis in axes.spatial)
    geometry = _geometry(op, spatial, arguments)
    blocks = adaptive_blocks if op.name in ADAPTIVE else fixed_blocks
    plans = [blocks(dim, x.chunks[axis]) for dim, axis in zip(geometry, axes.spatial)]
    if op.name in SUMS:
        plans[-1] = _merged_narrow(plans[-1], width=SUM_MIN_WIDTH)
    if op.name == "adaptive_avg_pool":
        # a block of one output in every dim would be global pooling, which numbapool
        # sums in another order: blocks of dims with outputs to share keep two
        plans = [_merged_narrow(plan, outputs=2) for plan in plans]
    plans = tuple(plans)
    spec = PoolSpec(name, tuple(_others(arguments, ["input"])), axes.spatial, plans,
                    geometry, op.name in ADAPTIVE, isinstance(empty, tuple))
    if op.name in SUMS and arguments["data_format"] == "channels_last":
        # numbapool adds a window's taps in another order in channels-last memory than
        # in channels-first memory, and a single channel is channels-first: blocks keep
        # two channels at least, as the whole array has
        x = x.rechunk({axes.c: _at_least_two(x.chunks[axes.c])})
    chunks = list(x.chunks)
    for axis, plan in zip(axes.spatial, plans):
        chunks[axis] = tuple(block.o1 - block.o0 for block in plan)
    return _mapped(_pool_block, [_slabs(x, axes, plans)], spec, tuple(chunks), empty, axes)


def _merged_narrow(blocks, width=0, outputs=0):
    """Blocks with slabs narrower than ``width`` or fewer than ``outputs`` outputs merged
    into a neighbour (a merged block reads both slabs; its outputs are still the local
    ones from ``skip``)."""

    def narrow(block):
        return block.hi - block.lo < width or block.o1 - block.o0 < outputs

    merged = [blocks[0]]
    for block in blocks[1:]:
        last = merged[-1]
        if narrow(last) or narrow(block):
            merged[-1] = Block(last.o0, block.o1, last.lo, block.hi, last.skip)
        else:
            merged.append(block)
    return tuple(merged)


def _at_least_two(chunks):
    """Chunks of one axis with chunks of 1 merged into a neighbour (if the axis has 2)."""
    merged = []
    for size in chunks:
        if merged and merged[-1] < 2:
            merged[-1] += size
        else:
            merged.append(size)
    if len(merged) > 1 and merged[-1] < 2:
        last = merged.pop()
        merged[-1] += last
    return tuple(merged)


def _mapped(block_function, arrays, spec, chunks, empty, axes):
    """``block_function(*blocks, spec=spec, block_id=...)`` over ``arrays``, giving blocks
    of ``chunks``: a dask array, or for a function returning (values, indices) two."""
    token = tokenize(spec, *(array.name for array in arrays))
    if not isinstance(empty, tuple):
        return da.map_blocks(block_function, *arrays, spec=spec, chunks=chunks,
                             meta=axes.unbatch(empty), name=f"{spec.function}-{token}")
    # one task computes both; each result takes its part
    both = da.map_blocks(block_function, *arrays, spec=spec, chunks=chunks,
                         meta=np.empty((0,) * len(chunks), object),
                         name=f"{spec.function}-both-{token}")
    return tuple(both.map_blocks(operator.itemgetter(i), meta=axes.unbatch(part),
                                 name=f"{spec.function}-{i}-{token}")
                 for i, part in enumerate(empty))


def _pool_block(block, spec, block_id=None):
    block = np.ascontiguousarray(block)  # see _whole_block
    here = [plan[block_id[axis]] for plan, axis in zip(spec.plans, spec.spatial)]
    arguments = dict(spec.arguments)
    if spec.adaptive:
        arguments["output_size"] = tuple(b.o1 - b.o0 for b in here)
    result = getattr(functional, spec.function)(block, **arguments)
    values, indices = result if spec.pair else (result, None)
    keep = [slice(None)] * block.ndim
    for b, axis in zip(here, spec.spatial):
        keep[axis] = slice(b.skip, b.skip + b.o1 - b.o0)
    keep = tuple(keep)
    trimmed = any(values.shape[axis] != b.o1 - b.o0 for b, axis in zip(here, spec.spatial))
    values = values[keep].copy() if trimmed else values
    if indices is None:
        return values
    slab = tuple(block.shape[axis] for axis in spec.spatial)
    return values, _global_indices(indices[keep], spec, here, slab)


def _global_indices(local, spec, here, slab):
    """Flat indices over the slab's spatial dims as indices over the whole input's."""
    whole = tuple(dim.size for dim in spec.geometry)
    if slab == whole:
        return local
    ndim = local.ndim

    def along(values, k):  # a per-output vector of dim k, shaped to broadcast
        shape = [1] * ndim
        shape[spec.spatial[k]] = len(values)
        return np.asarray(values, np.int64).reshape(shape)

    # a max window without taps inside the input (dilation and padding) reports its
    # first tap, which may lie off the plane: computed here from the whole geometry
    firsts, empty = [], np.zeros((1,) * ndim, bool)
    if not spec.adaptive:
        for k, (dim, b) in enumerate(zip(spec.geometry, here)):
            first, count = _fixed_taps(dim, np.arange(b.o0, b.o1, dtype=np.int64))
            firsts.append(along(first, k))
            empty = empty | along(count == 0, k)
    # split by division, not np.unravel_index: NumPy 2.4.6's miscomputes some inputs of
    # shape (n, 1) with n > 8192 (the trailing channel of channels-last indices)
    rest = np.where(empty, 0, local) if empty.any() else local
    coords = []
    for size in slab[:0:-1]:
        coords.append(rest % size)
        rest = rest // size
    coords.append(rest)
    flat = np.zeros(local.shape, np.int64)
    for k, (coord, b) in enumerate(zip(coords[::-1], here)):
        flat = flat * whole[k] + coord + b.lo
    if empty.any():
        reported = np.zeros((1,) * ndim, np.int64)
        for k, first in enumerate(firsts):
            reported = reported * whole[k] + first
        flat = np.where(empty, reported, flat)
    return flat


def _fixed_taps(dim, outputs):
    """The first in-bounds tap (or the first tap at or after 0) and the number of taps of
    the windows of ``outputs``, from the kernels' own ``_windows.fixed_window``."""
    taps = np.array([_windows.fixed_window(dim, int(o), 0.0)[:2] for o in outputs],
                    np.int64).reshape(-1, 2)
    return taps[:, 0], taps[:, 1]


# ---------------------------------------------------------------------------------------
# Spatial dims whole: fractional pooling, unpooling and every backward


@dataclass(frozen=True)
class WholeSpec:
    """What a block of a call with whole spatial dims needs (pickled to workers)."""

    function: str
    arguments: tuple         # (name, value) pairs of the arguments that are not arrays
    samples: object = None   # fractional pooling: every plane's samples, (N, C, nd)
    n_starts: Optional[tuple] = None   # the first plane of each N chunk, and N (None: unbatched)
    c_starts: tuple = ()     # the first channel of each C chunk, and C
    c_axis: int = 0


def _whole(array, axes, planes):
    """``array`` (dask or in memory) as a dask array with spatial dims in one chunk and
    N and C chunked as ``planes`` (chunks of every axis; only N's and C's are read)."""
    chunks = list(planes)
    for axis in axes.spatial:
        chunks[axis] = (array.shape[axis],)
    if isinstance(array, da.Array):
        return array.rechunk(tuple(chunks))
    return da.from_array(array, chunks=tuple(chunks))


def _run_whole(arguments, names, axes, empty, spec, sums=False):
    """The function over blocks with whole spatial dims, N and C chunked as the input
    (or the first dask array of the call); ``sums``: blocks keep two channels at least
    in channels-last layout (``_pool``)."""
    planes = list(next(arguments[key] for key in ("input", *names)
                       if isinstance(arguments[key], da.Array)).chunks)
    if sums and arguments["data_format"] == "channels_last":
        planes[axes.c] = _at_least_two(planes[axes.c])
    arrays = [_whole(arguments[key], axes, planes) for key in names]
    first = empty[0] if isinstance(empty, tuple) else empty
    chunks = list(arrays[0].chunks)
    for axis in axes.spatial:
        chunks[axis] = (first.shape[axis + (0 if axes.batched else 1)],)
    return _mapped(_whole_block, arrays, spec, tuple(chunks), empty, axes)


def _whole_block(*blocks, spec, block_id=None):
    # numbapool's sums can round differently on strided views (dask's blocks often are)
    # than on contiguous memory, which the whole array computed in memory is
    blocks = [np.ascontiguousarray(block) for block in blocks]
    arguments = dict(spec.arguments)
    if spec.samples is not None:
        n0, n1 = (0, 1) if spec.n_starts is None else spec.n_starts[block_id[0]:][:2]
        c0, c1 = spec.c_starts[block_id[spec.c_axis]:][:2]
        arguments["random_samples"] = spec.samples[n0:n1, c0:c1]
    return getattr(functional, spec.function)(*blocks, **arguments)


def _fractional(op, nd, arguments, names, axes, empty):
    """Fractional max pooling: the samples of every plane drawn (or checked) now, as the
    in-memory call would, and sliced per block."""
    x = arguments["input"]
    given = arguments["_random_samples"]
    if given is None:
        given = arguments["random_samples"]
    # the whole call's view and element type, from a stand-in that holds no memory
    whole = op.prepared(_real_shape_stand_in(x), nd, arguments["data_format"],
                        op.function_name(nd), op.integers)
    n, c = whole.x5.shape[:2]
    if given is None:
        samples = _ops.draw_samples(whole.element, (n, c, nd), arguments["rng"], whole.op)
    else:
        _ops._fractional_samples(whole, given, None)  # its checks, with the real N
        samples = np.asarray(whole.backend.to_host(given))[:n]
    others = {**dict(_others(arguments, names)), "_random_samples": None,
              "random_samples": None, "rng": None}
    spec = WholeSpec(op.function_name(nd), tuple(others.items()), samples,
                     _starts(x.chunks[0]) if axes.batched else None,
                     _starts(x.chunks[axes.c]), axes.c)
    return _run_whole(arguments, names, axes, empty, spec)


def _starts(chunks):
    return tuple(int(s) for s in np.concatenate([[0], np.cumsum(chunks)]))
