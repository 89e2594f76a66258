import gc
import sys

import pytest

import tether.testing as T


def pytest_report_header(config):
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    return f"tether: {sys.version.split()[0]} {'GIL' if gil else 'free-threaded, GIL disabled'}"


@pytest.fixture
def quiet_stats():
    """Stats snapshot after a full collection (for tests that compare counters)."""
    gc.collect()
    return T.stats()


BALANCED = ("native_alive", "wrappers_alive", "wrappers_cached")


def assert_balanced(before, after=None):
    gc.collect()
    after = after or T.stats()
    for k in BALANCED:
        assert after[k] == before[k], (k, before, after)
