"""Run the benchmark from a source checkout; same options as ``python -m numbapool bench``."""

import sys
from pathlib import Path

# Run as a script, Python puts bench/ on the path, not the checkout holding numbapool.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from numbapool.benchmark import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
