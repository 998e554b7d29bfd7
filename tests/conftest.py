import os
import sys

import pytest

# tests import their helpers (reference, oracles) as top-level modules
sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(autouse=True)
def parallel_kernels(monkeypatch):
    """Test shapes are tiny: make them run the parallel kernels that real inputs use,
    from their first call (test_serial_kernels_match_parallel_kernels covers the serial
    ones, tests/test_cache.py the serial build that runs a first call)."""
    from numbapool import _cpu, _plans

    monkeypatch.setattr(_cpu, "PARALLEL_MIN_WORK", 0)
    monkeypatch.setattr(_cpu, "SERIAL_FIRST", False)
    _plans.clear()   # plans made under another test's constants would not see this one's
    yield
    _plans.clear()
