"""Calls as users write them, checked by mypy (tests/test_typing.py): each ``assert_type``
states the type a checker must infer from numbapool's stubs and annotations."""

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from typing_extensions import assert_type

import numbapool as npl
import numbapool.nn
from numbapool.plot import plot_windows

x = np.zeros((2, 3, 8, 8), np.float32)

assert_type(npl.max_pool2d(x, 2), NDArray[Any])
assert_type(npl.max_pool2d(x, (3, 3), stride=2, padding=1, ceil_mode=True), NDArray[Any])
assert_type(npl.max_pool2d(x, 2, return_indices=True), tuple[NDArray[Any], NDArray[np.int64]])
y, indices = npl.max_pool2d(x, [2, 2], return_indices=True)
assert_type(npl.max_unpool2d(y, indices, 2, output_size=x.shape), NDArray[Any])
assert_type(npl.max_pool2d_backward(np.ones_like(y), x, indices, 2), NDArray[Any])
assert_type(npl.adaptive_avg_pool2d([[[1.0, 2.0]]], (1, None)), NDArray[Any])
assert_type(npl.avg_pool3d(x[None], 2, divisor_override=3, data_format="channels_last"),
            NDArray[Any])
assert_type(npl.fractional_max_pool2d(x, 2, output_ratio=0.5, rng=np.random.default_rng(0)),
            NDArray[Any])
assert_type(npl.lp_pool1d(np.zeros((2, 3, 8)), 2.0, 3), NDArray[Any])


if TYPE_CHECKING:  # (checked, not run)
    class DeviceArray:
        """Another array type (as CuPy's): results come back as the same type."""

    device = DeviceArray()
    assert_type(npl.adaptive_max_pool2d(device, 7), DeviceArray)
    assert_type(npl.adaptive_max_pool2d(device, 7, True),
                DeviceArray | tuple[DeviceArray, DeviceArray])

pool = numbapool.nn.AvgPool2d(3, 2, 1, count_include_pad=False)
assert_type(pool(x), NDArray[Any])
assert_type(pool.backward(np.ones((2, 3, 4, 4), np.float32)), NDArray[Any])
assert_type(pool.extra_repr(), str)
unpool = npl.nn.MaxUnpool2d(2)
assert_type(unpool(y, indices), NDArray[Any])

windows = npl.windows(npl.adaptive_avg_pool2d, (4, 4), (3, 4))
assert_type(windows, npl.PoolingWindows)
assert_type(windows.region(0, 0), tuple[range, ...])
assert_type(windows.output_size, tuple[int, ...])
ax = plot_windows(windows)
