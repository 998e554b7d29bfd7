"""Command line: ``python -m numbapool bench|warmup [options]``."""

import sys

USAGE = """\
usage: python -m numbapool <command> [options]

commands:
  bench   time numbapool's pooling kernels against PyTorch
          (python -m numbapool bench --help for its options)
  warmup  compile the common kernels into Numba's disk cache
          (python -m numbapool warmup --help for its options)
"""


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "bench":
        from numbapool.benchmark import main as bench

        return bench(argv[1:])
    if argv and argv[0] == "warmup":
        from numbapool._warmup import main as warmup

        return warmup(argv[1:])
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0
    print(f"unknown command {argv[0]!r}\n\n{USAGE}", end="", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
