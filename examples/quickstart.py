"""Pool the worked examples of the PyTorch pooling docs with numbapool and print them."""

import numpy as np

import numbapool as npl
from numbapool import nn


def show(title, value):
    print(f"{title}:\n{np.array2string(np.asarray(value), precision=4)}\n")


x = np.arange(1, 17, dtype=np.float32).reshape(1, 1, 4, 4)
show("input (1, 1, 4, 4)", x[0, 0])
show("MaxPool2d(kernel_size=2, stride=2)", nn.MaxPool2d(kernel_size=2, stride=2)(x)[0, 0])
show("AvgPool2d(kernel_size=2, stride=2)", nn.AvgPool2d(kernel_size=2, stride=2)(x)[0, 0])
show("AdaptiveMaxPool2d((3, 4))", nn.AdaptiveMaxPool2d((3, 4))(x)[0, 0])
show("AdaptiveAvgPool2d((1, 1))  (global average pooling)", nn.AdaptiveAvgPool2d((1, 1))(x)[0, 0])
show("LPPool2d(1, kernel_size=2, stride=2)  (p = 1: window sums)",
     nn.LPPool2d(1, kernel_size=2, stride=2)(x)[0, 0])

grid = np.arange(49, dtype=np.float32).reshape(1, 1, 7, 7)
show("MaxPool2d(2, 2) on arange(49) as 7x7", nn.MaxPool2d(2, 2)(grid)[0, 0])
fractional = nn.FractionalMaxPool2d(kernel_size=2, output_size=(3, 3), rng=np.random.default_rng(0))
show("FractionalMaxPool2d(2, output_size=(3, 3)), seeded", fractional(grid)[0, 0])

y, indices = npl.max_pool2d(x, 2, return_indices=True)
show("max_unpool2d(max_pool2d(x)) puts each maximum back", npl.max_unpool2d(y, indices, 2)[0, 0])

rng = np.random.default_rng(0)
print("Adaptive pooling fixes the output size whatever the input size:")
pool = nn.AdaptiveAvgPool2d(1)
for size in (32, 16, 8):
    print(f"  {pool}: (1, 64, {size}, {size}) -> {pool(rng.standard_normal((1, 64, size, size))).shape}")
for shape, out in [((2, 128, 32, 32), (4, 4)), ((2, 64, 10, 20), (1, 7)), ((1, 512, 13, 13), (7, 7))]:
    print(f"  AdaptiveAvgPool2d({out}): {shape} -> {nn.AdaptiveAvgPool2d(out)(rng.standard_normal(shape)).shape}")

nhwc = rng.standard_normal((2, 224, 224, 3)).astype(np.float32)
print("Keras/Flax layout, data_format='channels_last':",
      nhwc.shape, "->", npl.adaptive_avg_pool2d(nhwc, 7, data_format="channels_last").shape)
