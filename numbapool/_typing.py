"""The types of numbapool's arguments, for annotations and the type stubs
(``functional.pyi``, ``nn.pyi``, written from the op table by ``numbapool._stubs``)."""

from collections.abc import Sequence
from typing import Any, Literal, TypeVar, Union

import numpy as np
from numpy.typing import NDArray

ArrayT = TypeVar("ArrayT")
"""An input array's type, which the result shares (NumPy, CuPy, Numba device, dask)."""

NumPyInput = Union[NDArray[Any], Sequence[Any]]
"""What gives a NumPy result: a NumPy array, or nested sequences (made one)."""

Indices = NDArray[np.int64]
DataFormat = Literal["channels_first", "channels_last"]
Size = Union[int, Sequence[int]]
"""A size per spatial dim: one int for every dim, or one per dim (or one in a 1-tuple)."""
AdaptiveSize = Union[int, None, Sequence[Union[int, None]]]
"""An adaptive output size: ``None`` keeps that dim's input size."""
Ratio = Union[float, Sequence[float]]
