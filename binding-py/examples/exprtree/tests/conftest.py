"""Shared helpers: every test checks that the objects it made are gone once it drops them.

tether counts native objects and wrappers (`exprtree._native._stats()`). After `gc.collect()`,
`native_alive`, `wrappers_alive` and `wrappers_cached` must be back where they were before the
test: a leaked native node, a wrapper kept alive by a missed cycle, or a cached (dead) wrapper
whose native object never died all show up here.
"""

import gc
import sys

import pytest

from exprtree import _native

BALANCED = ("native_alive", "wrappers_alive", "wrappers_cached")


def pytest_report_header(config):
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    return f"exprtree: Python {sys.version.split()[0]}, {'GIL' if gil else 'free-threaded'}"


def snapshot():
    """The balanced counters after a full collection."""
    gc.collect()
    stats = _native._stats()
    return {k: stats[k] for k in BALANCED}


def assert_balanced(before):
    """The counters are back to `before` (after a full collection)."""
    after = snapshot()
    assert after == before, f"stats did not balance: before {before}, after {after}"


def forget_last_failure():
    """pytest keeps the last failure's traceback in `sys.last_*` (until the next test's call
    phase), and with it the failed test's frame and locals: drop it so that a previous (say,
    xfail) test's objects are not counted as this test's."""
    for name in ("last_type", "last_value", "last_traceback", "last_exc"):
        if hasattr(sys, name):
            delattr(sys, name)


@pytest.fixture(autouse=True)
def balanced():
    """Snapshot before the test; at its end (its locals are gone by then) the counters must
    balance. Tests may also call `assert_balanced(balanced)` themselves, mid-way."""
    forget_last_failure()
    before = snapshot()
    yield before
    assert_balanced(before)
