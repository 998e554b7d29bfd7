"""PyTorch's pooling functions for NumPy arrays (CPU) and CUDA arrays (GPU).

Every function takes PyTorch's arguments, with PyTorch's names, order and defaults, and
returns the same kind of array it was given. Inputs may be batched ``(N, C, *spatial)``
or unbatched ``(C, *spatial)``; ``data_format="channels_last"`` takes Keras/Flax-style
``(N, *spatial, C)`` arrays instead. Any strides work, and an input whose memory is
channels-last gives an output whose memory is channels-last.

Each ``{op}{nd}d`` has a ``{op}{nd}d_backward`` twin returning the gradient with respect
to its input. The functions are generated from the op table (``numbapool._ops.OPS``).
"""

from numbapool import _ops

globals().update(_ops.functions())

__all__ = _ops.function_names()
