"""Every bad argument gets a ValueError or TypeError that names the bad value."""

import math

import numpy as np
import pytest

import numbapool as npl

X = np.zeros((2, 3, 8, 8), np.float32)


@pytest.mark.parametrize("kwargs,match", [
    ({"kernel_size": 0}, r"kernel_size must be > 0, got \(0, 0\)"),
    ({"kernel_size": 2, "stride": (1, -1)}, r"stride must be > 0, got \(1, -1\)"),
    ({"kernel_size": 2, "dilation": 0}, r"dilation must be > 0, got \(0, 0\)"),
    ({"kernel_size": 2, "padding": -1}, r"padding must be >= 0, got \(-1, -1\)"),
    ({"kernel_size": 3, "padding": 2}, r"pad should be at most half of kernel size.*\(2, 2\)"),
    ({"kernel_size": 9}, r"Output size is too small.*\(8, 8\).*\(0, 0\)"),
    ({"kernel_size": (2, 2, 2)}, r"kernel_size must be an int or a tuple of 2 ints"),
])
def test_max_pool_bad_geometry(kwargs, match):
    with pytest.raises(ValueError, match=match):
        npl.max_pool2d(X, **kwargs)


@pytest.mark.parametrize("value", [2.5, "2", None, (2, 1.5)])
def test_non_integer_sizes_are_type_errors(value):
    with pytest.raises(TypeError, match="kernel_size"):
        npl.max_pool2d(X, value)


def test_wrong_rank():
    with pytest.raises(ValueError, match=r"3-d \(unbatched\) or 4-d \(batched\).*\(8, 8\)"):
        npl.max_pool2d(np.zeros((8, 8)), 2)
    with pytest.raises(ValueError, match=r"got shape \(1, 2, 3, 4, 5, 6\)"):
        npl.avg_pool3d(np.zeros((1, 2, 3, 4, 5, 6)), 2)


def test_zero_size_non_batch_dim():
    with pytest.raises(ValueError, match=r"non-empty.*\(2, 0, 8, 8\)"):
        npl.max_pool2d(np.zeros((2, 0, 8, 8)), 2)
    with pytest.raises(ValueError, match=r"non-empty.*\(2, 3, 8, 0\)"):
        npl.adaptive_avg_pool2d(np.zeros((2, 3, 8, 0)), 2)


@pytest.mark.parametrize("dtype", [np.complex64, np.bool_, object, "U3"])
def test_unsupported_dtypes(dtype):
    with pytest.raises(TypeError, match="dtype"):
        npl.max_pool2d(np.zeros((1, 1, 4, 4), dtype), 2)


@pytest.mark.parametrize("op", ["avg_pool2d", "adaptive_avg_pool2d", "lp_pool2d"])
def test_integers_are_rejected_by_averaging_ops(op):
    args = {"avg_pool2d": (2,), "adaptive_avg_pool2d": (2,), "lp_pool2d": (2, 2)}[op]
    with pytest.raises(TypeError, match="int32"):
        getattr(npl, op)(np.zeros((1, 1, 4, 4), np.int32), *args)


@pytest.mark.parametrize("value", ["not an array", None, 3.0, {"a": 1}])
def test_non_arrays(value):
    with pytest.raises(TypeError, match="expects an array"):
        npl.max_pool2d(value, 2)


def test_unknown_data_format():
    with pytest.raises(ValueError, match="'NHWC'"):
        npl.max_pool2d(X, 2, data_format="NHWC")


def test_divisor_override_zero_and_non_int():
    with pytest.raises(ValueError, match="divisor_override must be non-zero, got 0"):
        npl.avg_pool2d(X, 2, divisor_override=0)
    with pytest.raises(TypeError, match="divisor_override.*1.5"):
        npl.avg_pool2d(X, 2, divisor_override=1.5)


def test_avg_pool3d_input_smaller_than_kernel():
    with pytest.raises(ValueError, match=r"smaller than kernel size \(2, 2, 2\)"):
        npl.avg_pool3d(np.zeros((1, 1, 1, 4, 4)), 2, padding=1)


@pytest.mark.parametrize("norm_type,error", [(0, ValueError), (math.nan, ValueError),
                                             ("2", TypeError)])
def test_lp_norm_type(norm_type, error):
    with pytest.raises(error, match="norm_type"):
        npl.lp_pool2d(X, norm_type, 2)


def test_adaptive_negative_output_size():
    with pytest.raises(ValueError, match=r"output_size must be >= 0, got \(2, -1\)"):
        npl.adaptive_max_pool2d(X, (2, -1))


class TestFractional:
    def test_output_ratio_outside_open_interval(self):
        for ratio in (0, 1, 1.5, -0.2):
            with pytest.raises(ValueError, match=f"output_ratio.*{ratio}"):
                npl.fractional_max_pool2d(X, 2, output_ratio=ratio)

    def test_neither_size_nor_ratio(self):
        with pytest.raises(ValueError, match="output_size or output_ratio, got neither"):
            npl.fractional_max_pool2d(X, 2)

    def test_samples_of_wrong_shape_dtype_or_range(self):
        with pytest.raises(ValueError, match=r"shape \(N', 3, 2\) with N' >= 2, got \(2, 3\)"):
            npl.fractional_max_pool2d(X, 2, 4, random_samples=np.zeros((2, 3)))
        with pytest.raises(ValueError, match=r"N' >= 2, got \(1, 3, 2\)"):
            npl.fractional_max_pool2d(X, 2, 4, random_samples=np.zeros((1, 3, 2)))
        with pytest.raises(TypeError, match="float array"):
            npl.fractional_max_pool2d(X, 2, 4, random_samples=np.zeros((2, 3, 2), int))
        with pytest.raises(ValueError, match=r"\[0, 1\)"):
            npl.fractional_max_pool2d(X, 2, 4, random_samples=np.full((2, 3, 2), 1.0))
        with pytest.raises(ValueError, match=r"\[0, 1\)"):
            npl.fractional_max_pool2d(X, 2, 4, random_samples=np.full((2, 3, 2), np.nan))

    def test_kernel_too_large_for_input(self):
        with pytest.raises(ValueError, match=r"too large for input size \(8, 8\)"):
            npl.fractional_max_pool2d(X, 5, output_size=5)
        with pytest.raises(ValueError, match="too large"):
            npl.fractional_max_pool3d(np.zeros((1, 1, 4, 4, 4)), 2, output_size=3)

    def test_rng_must_be_a_generator(self):
        with pytest.raises(TypeError, match="Generator"):
            npl.fractional_max_pool2d(X, 2, 4, rng=42)


class TestUnpool:
    y, idx = npl.max_pool2d(X, 2, return_indices=True)

    def test_index_out_of_range(self):
        bad = self.idx.copy()
        bad[0, 0, 0, 0] = 64
        with pytest.raises(ValueError, match="Found an invalid max index: 64"):
            npl.max_unpool2d(self.y, bad, 2)
        bad[0, 0, 0, 0] = -1
        with pytest.raises(ValueError, match="invalid max index: -1"):
            npl.max_unpool2d(self.y, bad, 2)

    def test_indices_of_wrong_shape_or_dtype(self):
        with pytest.raises(ValueError, match=r"indices must have shape \(2, 3, 4, 4\)"):
            npl.max_unpool2d(self.y, self.idx[:, :, :2], 2)
        with pytest.raises(TypeError, match="integer array.*float64"):
            npl.max_unpool2d(self.y, self.idx.astype(float), 2)

    def test_output_size_outside_valid_range(self):
        with pytest.raises(ValueError, match=r"output_size \(10, 8\)"):
            npl.max_unpool2d(self.y, self.idx, 2, output_size=(10, 8))
        npl.max_unpool2d(self.y, self.idx, 2, output_size=(2, 3, 9, 8))  # N, C prefix is fine
