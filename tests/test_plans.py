"""Call plans (``numbapool._plans``): a repeated forward replays what its first call
decided. A replay must give what the full path gives for the same input, for every
family, layout and dtype; anything the full path would decide differently must miss."""

import gc
import os
import threading
import weakref

import numpy as np
import pytest

import numbapool as npl
from numbapool import _ops, _plans

from ops_table import ROWS
from oracles import make_input


def plans_of(function):
    return function.__globals__.get("_plans", {})   # gradients have none


def full_path(function, *args, **kwargs):
    """The call without plans: what a fresh process computes."""
    saved = dict(plans_of(function))
    plans_of(function).clear()
    try:
        return function(*args, **kwargs)
    finally:
        plans_of(function).clear()
        plans_of(function).update(saved)


def parts(result):
    return result if isinstance(result, tuple) else (result,)


def assert_same(got, want):
    for g, w in zip(parts(got), parts(want), strict=True):
        assert type(g) is type(w) and g.dtype == w.dtype and g.shape == w.shape
        assert g.strides == w.strides
        assert g.tobytes() == w.tobytes()


FAMILIES = [op for op in _ops.OPS if op.name not in ("fractional_max_pool", "max_unpool")]
LAYOUTS = ["cf", "cl", "channels_last_format", "unbatched"]


def arguments(op, nd, dtype, layout, seed):
    arrays, kwargs = ROWS[op.name].inputs(np.random.default_rng(seed), nd, dtype)
    x = arrays[0]
    if layout == "cl":       # channels-last memory, the caller's (N, C, *spatial) shape
        x = np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, -1)), -1, 1)
    elif layout == "channels_last_format":
        x = np.ascontiguousarray(np.moveaxis(x, 1, -1))
        kwargs = {**kwargs, "data_format": "channels_last"}
    elif layout == "unbatched":
        x = np.ascontiguousarray(x[0])
    return x, kwargs


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
@pytest.mark.parametrize("op", FAMILIES, ids=lambda op: op.name)
def test_a_replay_reads_the_new_input_and_equals_the_full_path(op, dtype, layout):
    for nd in op.dims:
        function = getattr(npl, op.function_name(nd))
        first, kwargs = arguments(op, nd, dtype, layout, seed=1)
        second, _ = arguments(op, nd, dtype, layout, seed=2)
        function(first, **kwargs)
        assert len(plans_of(function)) == 1
        replayed = function(second, **kwargs)
        assert len(plans_of(function)) == 1
        assert_same(replayed, full_path(function, second, **kwargs))


def test_global_pooling_replays_the_merged_planes():
    x = np.random.default_rng(0).standard_normal((3, 5, 6, 7), np.float32)
    for function in (npl.adaptive_avg_pool2d, npl.adaptive_max_pool2d):
        function(x, 1)
        y = x + 1
        assert_same(function(y, 1), full_path(function, y, 1))
        assert len(plans_of(function)) == 1


def test_integer_inputs_replay():
    x = np.arange(2 * 3 * 8 * 8, dtype=np.int64).reshape(2, 3, 8, 8)
    y = x[::-1].copy()
    for function, args in ((npl.max_pool2d, (3, 2, 1, 1, False, True)),
                           (npl.lp_pool2d, (2, 3))):
        function(x, *args)
        assert_same(function(y, *args), full_path(function, y, *args))
        assert len(plans_of(function)) == 1


# ---------------------------------------------------------------------------------------
# What must not replay


X = np.random.default_rng(3).standard_normal((2, 4, 7, 7)).astype(np.float32)


@pytest.mark.parametrize("bad", [2.0, True, np.float32(2), "2", (2, 2.0), (True, 2)])
def test_an_argument_of_another_type_is_checked_again(bad):
    npl.max_pool2d(X, 2)
    npl.max_pool2d(X, (2, 2))
    with pytest.raises(TypeError):
        npl.max_pool2d(X, bad)


def test_numpy_integers_and_lists_plan_apart_from_ints_and_give_the_same_result():
    want = npl.max_pool2d(X, 2)
    for size in (np.int64(2), np.int8(2), [2, 2], (2, 2)):
        assert_same(npl.max_pool2d(X, size), want)
    assert len(plans_of(npl.max_pool2d)) == 5


def test_other_strides_dtype_or_rank_take_the_full_path():
    npl.avg_pool2d(X, 3, 2, 1)
    for x in (X[:, :, ::2], X.transpose(0, 1, 3, 2), np.asfortranarray(X), X.astype(np.float64),
              X[0], X[:, :, :5, :5]):
        assert_same(npl.avg_pool2d(x, 3, 2, 1), full_path(npl.avg_pool2d, x, 3, 2, 1))


def test_a_call_that_raises_leaves_no_plan_and_raises_again():
    for _ in range(2):
        with pytest.raises(ValueError, match="too small"):
            npl.max_pool2d(X, 9)
        with pytest.raises(TypeError, match="dtype"):
            npl.max_pool2d(X.astype(np.complex64), 2)
    assert len(plans_of(npl.max_pool2d)) == 0


def test_the_same_shape_with_a_bad_argument_is_checked_again():
    npl.max_pool2d(X, 2, 2, 1)
    with pytest.raises(ValueError, match="pad"):
        npl.max_pool2d(X, 2, 2, 2)   # padding over half the kernel


@pytest.mark.parametrize("nd", [2, 3])
def test_fractional_pooling_draws_new_samples_every_call(nd):
    function = getattr(npl, f"fractional_max_pool{nd}d")
    x = np.random.default_rng(4).standard_normal((2, 8) + (33,) * nd).astype(np.float32)
    rng = np.random.default_rng(5)
    first, second = (function(x, 2, output_size=(11,) * nd, return_indices=True, rng=rng)
                     for _ in range(2))
    assert len(plans_of(function)) == 0
    again = np.random.default_rng(5)
    for got in (first, second):
        assert_same(got, function(x, 2, output_size=(11,) * nd, return_indices=True,
                                  rng=again))
    assert not np.array_equal(first[1], second[1])


def test_unpooling_and_gradients_are_not_planned():
    y, idx = npl.max_pool2d(X, 2, return_indices=True)
    npl.max_unpool2d(y, idx, 2, output_size=X.shape[2:])
    npl.max_pool2d_backward(np.ones_like(y), X, idx, 2)
    assert len(plans_of(npl.max_unpool2d)) == len(plans_of(npl.max_pool2d_backward)) == 0


def test_subclasses_and_sequences_are_not_planned():
    class Tagged(np.ndarray):
        pass

    npl.max_pool2d(X.view(Tagged), 2)
    npl.max_pool2d(X.tolist(), 2)
    assert len(plans_of(npl.max_pool2d)) == 0


def test_unhashable_arguments_take_the_full_path():
    for _ in range(2):
        with pytest.raises(TypeError):
            npl.max_pool2d(X, {2: 2})
    assert len(plans_of(npl.max_pool2d)) == 0


# ---------------------------------------------------------------------------------------
# Conditions around plans


def test_plans_keep_no_array_alive():
    x = np.ones((2, 4, 7, 7), np.float32)
    seen = [weakref.ref(x)]
    for call in (lambda a: npl.max_pool2d(a, 2, return_indices=True),
                 lambda a: npl.adaptive_avg_pool2d(a, 1), lambda a: npl.avg_pool2d(a, 3)):
        result = call(x)
        call(x)
        seen += [weakref.ref(part) for part in parts(result)]
        del result
    del x
    gc.collect()
    assert [ref() for ref in seen] == [None] * len(seen)


def test_plans_are_bounded():
    for size in range(8, 8 + _plans.MAX_PLANS + 40):
        npl.max_pool1d(np.ones((1, 1, size), np.float32), 2)
        npl.avg_pool1d(np.ones((1, 1, size), np.float32), 2)
        assert sum(map(len, _plans._all_plans)) <= _plans.MAX_PLANS
    assert_same(npl.max_pool1d(np.arange(9.0).reshape(1, 1, 9), 2),
                np.array([[[1.0, 3.0, 5.0, 7.0]]]))


def test_threads_replaying_and_recording_at_once_get_their_own_results():
    rng = np.random.default_rng(6)
    inputs = [make_input(rng, (2, 3, 6 + i % 4, 7), np.float32) for i in range(16)]
    wants = [full_path(npl.max_pool2d, x, 2, 1, 1, return_indices=True) for x in inputs]
    errors = []

    def work(start):
        try:
            for round_ in range(30):
                i = (start + round_) % len(inputs)
                assert_same(npl.max_pool2d(inputs[i], 2, 1, 1, return_indices=True), wants[i])
        except Exception as error:  # noqa: BLE001  reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_starts_without_plans():
    npl.max_pool2d(X, 2)
    assert len(plans_of(npl.max_pool2d)) == 1
    pid = os.fork()
    if pid == 0:   # the child: exit status 0 only if it has no plan
        os._exit(0 if len(plans_of(npl.max_pool2d)) == 0 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
