"""GPU backend (numba.cuda kernels); not built yet."""


def adopt(x):
    raise TypeError(
        "numbapool's GPU backend is not available yet: pass a NumPy array "
        "(e.g. cupy.asnumpy(x)) to pool on the CPU"
    )
