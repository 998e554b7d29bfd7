"""Compiling kernels ahead of use: ``numbapool.warmup()`` and ``python -m numbapool warmup``.

A Docker image or a CI job runs the warm-up once, at build time, so that later processes
load every kernel from the disk cache (``NUMBA_CACHE_DIR``) instead of compiling it on
their first call.
"""

import argparse
import sys

import numpy as np

COMMON = ("max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d",
          "lp_pool2d", "fractional_max_pool2d", "max_unpool2d")
"""The default set: the 2-d family, which shares its kernels with 1-d and 3-d."""

LAYOUTS = ("channels_first", "channels_last")
BUILDS = ("serial", "parallel")

# one call per family that reaches its usual kernels: small windows (tabulated), for max
# pooling also windows of unit stride, for sums windows one line high (the kernel of 1d
# pooling), and for adaptive average pooling a global mean of more than 64 values
# (carried sums)
_SAMPLES = {
    "max_pool": [dict(kernel_size=3, stride=2, padding=1, return_indices=True),
                 dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=3, stride=1)],
    "avg_pool": [dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=1)],
    "adaptive_avg_pool": [dict(output_size=3), dict(output_size=10), dict(output_size=1)],
    "adaptive_max_pool": [dict(output_size=3, return_indices=True)],
    "lp_pool": [dict(norm_type=2.0, kernel_size=2), dict(norm_type=2.0, kernel_size=1)],
    "fractional_max_pool": [dict(kernel_size=2, output_size=4, return_indices=True)],
    "max_unpool": [dict(kernel_size=2)],
}


def warmup(ops=COMMON, dtypes=("float32",), layouts=LAYOUTS, backward=True, builds=BUILDS,
           progress=False):
    """Compile (or load from the disk cache) the CPU kernels that these calls need.

    Parameters
    ----------
    ops : iterable of str
        Function names (``"max_pool2d"``, ``"adaptive_avg_pool3d"``, ...); default: the
        2-d family, whose kernels the 1-d and 3-d functions share.
    dtypes : iterable of dtype names
        Element types, e.g. ``("float32", "float16")``.
    layouts : iterable of ``"channels_first"`` and ``"channels_last"``
    backward : bool
        Also the gradients.
    builds : iterable of ``"serial"`` and ``"parallel"``
        Small inputs run serial builds, large ones parallel builds: the default compiles
        both.
    progress : bool
        Print each step to stderr.

    Returns the number of calls made. Not meant to run while other threads call
    numbapool (it switches between serial and parallel builds as it goes).
    """
    from numbapool import _cpu, _ops, _plans

    families = {op.function_name(nd): (op, nd) for op in _ops.OPS for nd in op.dims}
    steps = []
    for name in ops:
        if name not in families:
            raise ValueError(f"warmup: unknown op {name!r}; expected one of "
                             f"{', '.join(sorted(families))}")
        for dtype in dtypes:
            dtype = np.dtype(dtype)
            for layout in layouts:
                if layout not in LAYOUTS:
                    raise ValueError(f"warmup: layout must be one of {LAYOUTS}, got "
                                     f"{layout!r}")
                for build in builds:
                    if build not in BUILDS:
                        raise ValueError(f"warmup: build must be one of {BUILDS}, got "
                                         f"{build!r}")
                    steps.append((name, dtype, layout, build))
    saved = _cpu.PARALLEL_MIN_WORK, _cpu.SERIAL_FIRST
    _cpu.SERIAL_FIRST = False   # a parallel step compiles the parallel builds
    try:
        for number, (name, dtype, layout, build) in enumerate(steps, 1):
            if progress:
                print(f"\rwarmup {number}/{len(steps)}: {name} {dtype} {layout} {build}"
                      f"{' (and backward)' if backward else ''}".ljust(79), end="",
                      file=sys.stderr, flush=True)
            _cpu.PARALLEL_MIN_WORK = 0 if build == "parallel" else 1 << 62
            _plans.clear()   # a plan of the other build would launch its kernels instead
            _run(*families[name], dtype, layout, backward)
    finally:
        _cpu.PARALLEL_MIN_WORK, _cpu.SERIAL_FIRST = saved
        _plans.clear()
        if progress and steps:
            print(file=sys.stderr)
    return len(steps)


def _run(op, nd, dtype, layout, backward):
    from numba import get_num_threads

    # a batch of one gives some arrays other contiguity types; a last dim longer than
    # _cpu.TABLE_LENGTH the kernels that run the window formula instead of tables; many
    # planes the max-type gradients that scatter each plane
    for shape in ((2, 3) + (10,) * nd, (1, 3) + (10,) * nd,
                  (1, 3) + (8,) * (nd - 1) + (4100,), (1, 4 * get_num_threads()) + (6,) * nd):
        _run_shape(op, nd, dtype, layout, backward, shape)


def _run_shape(op, nd, dtype, layout, backward, shape):
    import numbapool as npl

    name = op.function_name(nd)
    x = np.linspace(-2, 2, int(np.prod(shape))).reshape(shape).astype(dtype)
    channels_last = layout == "channels_last"
    extra = {"data_format": "channels_last"} if channels_last else {}
    if channels_last:
        x = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    for kwargs in _SAMPLES[op.name]:
        if op.name == "max_unpool":
            pooled, idx = getattr(npl, f"max_pool{nd}d")(x, 2, return_indices=True, **extra)
            out = getattr(npl, name)(pooled, idx, **kwargs, **extra)
            arrays = (pooled, idx)
        elif dtype.kind in "iu" and np.dtype(dtype) not in op.integers:
            continue
        else:
            out = getattr(npl, name)(x, **kwargs, **extra)
            arrays = (x,) + ((out[1],) if isinstance(out, tuple) else ())
        taken = {param.name for param in op.backward_params()}
        if backward and dtype.kind not in "iu" and (
                "indices" not in taken or len(arrays) > 1):
            values = out[0] if isinstance(out, tuple) else out
            kept = {k: v for k, v in kwargs.items() if k in taken}
            getattr(npl, name + "_backward")(np.ones_like(values), *arrays, **kept, **extra)


def main(argv=None):
    """``python -m numbapool warmup``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m numbapool warmup",
        description="Compile numbapool's CPU kernels into Numba's disk cache "
                    "(NUMBA_CACHE_DIR), so that later processes load them.")
    parser.add_argument("--ops", default=",".join(COMMON),
                        help="comma-separated function names (default: %(default)s)")
    parser.add_argument("--dtypes", default="float32",
                        help="comma-separated dtypes (default: %(default)s)")
    parser.add_argument("--layouts", default=",".join(LAYOUTS),
                        help="comma-separated layouts (default: %(default)s)")
    parser.add_argument("--builds", default=",".join(BUILDS),
                        help="comma-separated builds (default: %(default)s)")
    parser.add_argument("--no-backward", action="store_true", help="forward kernels only")
    args = parser.parse_args(argv)

    def split(text):
        return tuple(part.strip() for part in text.split(",") if part.strip())

    try:
        count = warmup(split(args.ops), split(args.dtypes), split(args.layouts),
                       not args.no_backward, split(args.builds), progress=True)
    except (ValueError, TypeError) as error:
        parser.error(str(error))
    print(f"warmed up {count} calls", file=sys.stderr)
    return 0
