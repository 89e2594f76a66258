"""Identity: `is` and `id()` while a native reference keeps the object alive."""

import gc
import sys
import tracemalloc

import pytest

import tether
import tether.testing as T
from classes import Inner, Outer, Pair


class Cell(tether.Object):
    """Only the revival tests below make instances of it (they count its references)."""

    value: int


class CellHolder(tether.Object):
    cell: Cell


def test_attribute_identity():
    o = Outer(Inner(1))
    assert o.x is o.x


def test_stored_value_reads_back_as_itself():
    o = Outer(Inner(1))
    i = Inner(2)
    o.x = i
    assert o.x is i
    a = tether.Array([])
    p = Pair(a, a)
    assert p.a is a and p.b is a


def test_dropped_wrapper_is_revived_at_the_same_address():
    o = Outer(Inner(1))
    first = id(o.x)
    gc.collect()
    assert id(o.x) == first
    x = o.x
    key = T.hold(x)
    try:
        assert T.binding_state(key) == "active"
        del x
        gc.collect()
        assert T.binding_state(key) == "inactive"
        assert id(o.x) == first
        assert tether.handle(o.x) == tether.handle(o.x)
    finally:
        T.release(key)


def test_two_thousand_drop_refetch_cycles_keep_one_address():
    o = Outer(Inner(1))
    addresses = {id(o.x) for _ in range(2000)}
    assert len(addresses) == 1


def test_gc_collect_between_drop_and_refetch():
    o = Outer(Inner(7))
    first = id(o.x)
    for _ in range(50):
        gc.collect()
        x = o.x
        assert id(x) == first and x.value == 7
        del x


def test_identity_through_native_functions():
    i = Inner(1)
    assert T.identity(i) is i
    assert T.identity(5) == 5
    s = object()
    assert T.identity(s) is s
    f = tether.function(lambda v: v)
    assert f(i) is i
    assert T.identity(f) is f


def test_handle_is_stable_across_revival():
    o = Outer(Inner(1))
    h = tether.handle(o.x)
    gc.collect()
    assert tether.handle(o.x) == h
    assert tether.handle(o) != h
    with pytest.raises(TypeError, match="tether object"):
        tether.handle(3)


def test_fresh_wrapper_after_the_native_object_was_detached():
    """A wrapper with a weak reference is not cached; the next fetch makes a fresh one."""
    import weakref

    o = Outer(Inner(1))
    key = T.hold(o.x)
    try:
        x = o.x
        r = weakref.ref(x)
        del x
        gc.collect()
        assert r() is None
        assert T.binding_state(key) == "detached"
        y = o.x
        assert y is o.x and y.value == 1
        assert T.binding_state(key) == "active"
    finally:
        T.release(key)


@pytest.mark.thread_unsafe(reason="toggles a process-wide setting")
def test_without_caching_every_death_frees_the_wrapper():
    o = Outer(Inner(1))
    previous = T.set_caching(False)
    try:
        key = T.hold(o.x)
        assert T.binding_state(key) == "detached"  # the fetched wrapper died and was freed
        x = o.x
        assert x is o.x and T.binding_state(key) == "active"
        del x
        assert T.binding_state(key) == "detached"
        T.release(key)
    finally:
        T.set_caching(previous)


@pytest.mark.thread_unsafe(reason="counts references to a class")
def test_revivals_leave_the_class_reference_count_alone():
    # A cached block keeps its reference to its class, and a revival reuses it: the class's
    # count is not touched (free-threaded, touching it is an atomic on the class's shared count).
    h = CellHolder(Cell(1))
    first = id(h.cell)  # the constructor's wrapper, cached when it died, revived and cached again
    before_stats = T.stats()["revivals"]
    before = sys.getrefcount(Cell)
    for _ in range(1000):
        assert id(h.cell) == first
    assert sys.getrefcount(Cell) == before
    assert T.stats()["revivals"] - before_stats == 1000


@pytest.mark.thread_unsafe(reason="starts and stops tracemalloc (process-wide)")
def test_a_revival_is_a_new_object_to_tracemalloc():
    # A revival runs the hooks PyObject_Init runs for a new object (_Py_NewReference: 3.11-3.12
    # tracemalloc's, 3.13+ the reference tracer, which tracemalloc installs): tracemalloc then
    # dates the block from the revival, not from the wrapper's first allocation.
    tracemalloc.start(1)
    try:
        h = CellHolder(Cell(2))  # the wrapper is allocated (traced) here, then cached
        made = sys._getframe().f_lineno - 1
        first = id(h.cell)
        gc.collect()
        x = h.cell  # revived here
        revived = sys._getframe().f_lineno - 1
        assert id(x) == first
        tb = tracemalloc.get_object_traceback(x)
        assert tb is not None
        assert tb[0].lineno == revived != made
    finally:
        tracemalloc.stop()
