"""How the code that both targets compile is registered with Numba.

``jitable`` is Numba's ``register_jitable`` and ``overloaded`` its ``overload``, each
registering the function twice: for the CPU without the C-callable wrapper that Numba
otherwise compiles for every function (no kernel takes a callee's address, and those
wrappers were 7% of the compile time of a first call), and for every other target (CUDA)
as it is. Numba picks the CPU registration on the CPU, as the more specific target.
"""

from numba.extending import overload

_CPU_OPTIONS = {"no_cfunc_wrapper": True}


def overloaded(function, strict=True, cpu_options=()):
    """Decorate ``typer(*argument_types) -> implementation`` as ``function``'s overload;
    ``cpu_options`` are more of Numba's options for the CPU."""

    def register(typer):
        overload(function, target="cpu", jit_options={**_CPU_OPTIONS, **dict(cpu_options)},
                 strict=strict)(typer)
        overload(function, strict=strict)(typer)
        return typer

    return register


def jitable(function=None, *, always_inline=False):
    """``function``, callable from kernels of either target (and from Python).
    ``always_inline``: the CPU always inlines it (LLVM would keep a call, with its
    exception check, where the body has several divisions)."""
    if function is None:
        return lambda function: jitable(function, always_inline=always_inline)
    options = {"forceinline": True} if always_inline else {}
    overloaded(function, strict=False, cpu_options=options)(lambda *args, **kwargs: function)
    return function
