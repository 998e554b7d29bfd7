"""Call plans: a repeated forward call runs its kernel without redoing the checks.

What a forward does before its kernel runs (argument checks, window geometry, the choice
of kernel and its tables, the result's shape and memory order) depends on the input's
shape, strides and dtype and on the arguments, never on the values. So the first call of
each signature runs in full and keeps its plan: a function from the input to the result
that allocates the result and launches the kernel it chose. A later call with the same
signature looks the plan up and runs it, which makes a call on a tiny input several times
cheaper.

- Only NumPy and CuPy arrays (exactly ``numpy.ndarray`` or ``cupy.ndarray``; a CuPy
  array's device counts too) are planned, and only forwards whose result depends on
  nothing but the input (not fractional pooling: its samples are drawn per call). A CuPy
  replay queues its kernel on the stream that is current when it runs.
- A signature holds the arguments with their types (``2``, ``2.0``, ``True`` and
  ``np.int64(2)`` differ), so a call replays only where the full path would have done
  the same; unhashable arguments are not planned. A call that raises leaves no plan:
  bad input raises every time.
- Plans hold no array of a call, at most ``MAX_PLANS`` of them (then all are forgotten
  and made again as calls come), and none survives a fork (a child may have to run serial
  kernels, ``numbapool._cpu._ParallelBuild``).
"""

import os
import sys
import threading

import numpy as np

from numbapool._params import _key

MAX_PLANS = 256
"""Plans kept in all: one per function, input shape and argument set a program uses. A
plan holds at most one window table (``numbapool._cpu.TABLE_LENGTH``: under 0.6 MB, and
only for inputs 32 times larger), so all of them stay small next to the data."""

_recording = threading.local()
_all_plans: list = []


class Plans(dict):
    """One public function's plans, by call signature."""

    def __init__(self):
        super().__init__()
        _all_plans.append(self)

    def lookup(self, x, arguments):
        """``(signature, plan or None)`` for a call on ``x``; the signature is None where
        the call cannot be planned."""
        if type(x) is np.ndarray:
            where = None
        elif _is_cupy(x):
            where = x.data.device_id   # a plan's kernels are loaded on one device
        else:
            return None, None
        types = tuple(map(type, arguments))
        if tuple in types or list in types:   # their items' types count too
            signature = (x.shape, x.strides, x.dtype, where, tuple(map(_key, arguments)))
        else:
            signature = (x.shape, x.strides, x.dtype, where, arguments, types)
        try:
            return signature, self.get(signature)
        except TypeError:   # an unhashable argument
            return None, None

    def record(self, signature, forward, *arguments):
        """``forward(*arguments)``, keeping the plan it offers (``offer``) under
        ``signature``."""
        if signature is None:
            return forward(*arguments)
        outer = getattr(_recording, "offers", None)
        _recording.offers = offers = []
        try:
            result = forward(*arguments)
        finally:
            _recording.offers = outer
        if len(offers) == 1 and offers[0] is not None:
            if sum(map(len, _all_plans)) >= MAX_PLANS:
                clear()
            self[signature] = offers[0]
        return result


def _is_cupy(x):
    cupy = sys.modules.get("cupy")   # never imported here: a CuPy array means it was
    return cupy is not None and type(x) is cupy.ndarray


def offer(plan):
    """A forward's plan for the call being recorded: ``plan(x)`` gives the call's result
    for any input of its signature; None where the call must not be replayed."""
    offers = getattr(_recording, "offers", None)
    if offers is not None:
        offers.append(plan)


def clear():
    """Forget every plan (tests and benchmarks that change a tuning constant)."""
    for plans in _all_plans:
        plans.clear()


os.register_at_fork(after_in_child=clear)
