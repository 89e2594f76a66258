"""Wrapper death: finalizers, weak references, the garbage collector, statistics."""

import gc
import threading
import weakref

import pytest

import tether
import tether.testing as T
from classes import Inner, Outer, Pair
from conftest import assert_balanced


class Finalized(tether.Object):
    value: int
    deaths = {}  # value -> count (per test: values are unique)

    def __del__(self):
        Finalized.deaths[self.value] = Finalized.deaths.get(self.value, 0) + 1


class Holder(tether.Object):
    item: tether.Object


_COUNTER = iter(range(10**9))
_LOCK = threading.Lock()


def unique():
    with _LOCK:
        return next(_COUNTER)


def test_del_runs_on_every_wrapper_death_and_is_not_cached():
    n = unique()
    h = Holder(Finalized(n))  # the constructor's wrapper died already: one __del__
    key = T.hold(h.item)  # the fetched wrapper died right after: two
    try:
        assert Finalized.deaths[n] == 2
        for k in range(1, 6):
            x = h.item
            assert x is h.item and x.value == n
            del x
            gc.collect()
            assert Finalized.deaths[n] == 2 + k
            # not cached: the word let go of the wrapper before __del__ ran
            assert T.binding_state(key) == "detached"
    finally:
        T.release(key)


def test_del_can_fetch_its_own_object():
    seen = []
    armed = []

    class Refetch(tether.Object):
        value: int

        def __del__(self):
            # the dying wrapper still reads its fields; fetching the same native object
            # elsewhere builds a fresh wrapper (it never waits for this one). That wrapper's own
            # death runs __del__ again: fetch only once.
            if armed and not seen:
                seen.append(None)
                seen[0] = (self.value, holder.item is holder.item, holder.item is not self)

    holder = Holder(Refetch(1))
    x = holder.item
    armed.append(True)
    del x
    gc.collect()
    assert seen[0] == (1, True, True)


def test_del_resurrection():
    keep = []

    class Phoenix(tether.Object):
        value: int

        def __del__(self):
            keep.append(self)

    h = Holder(Phoenix(1))
    keep.clear()  # the constructor's wrapper was resurrected too
    gc.collect()
    x = h.item
    del x
    gc.collect()
    assert len(keep) == 1 and keep[0].value == 1
    assert h.item is h.item  # a fresh canonical wrapper; the resurrected one is not canonical
    assert h.item is not keep[0]
    keep.clear()
    gc.collect()


def test_weakref_dies_with_the_wrapper():
    o = Outer(Inner(1))
    x = o.x
    r = weakref.ref(x)
    assert r() is x
    del x
    gc.collect()
    assert r() is None
    x2 = o.x
    r2 = weakref.ref(x2)
    assert r2() is x2
    del x2
    assert r2() is None


def test_weakref_callback_fetching_the_same_attribute():
    o = Outer(Inner(1))
    seen = []

    def callback(ref):
        y = o.x  # same native object, during the dying wrapper's teardown
        seen.append((y.value, y is o.x))

    x = o.x
    r = weakref.ref(x, callback)
    del x
    gc.collect()
    assert seen == [(1, True)]
    assert r() is None


def test_weakref_callback_on_the_last_native_reference():
    seen = []
    o = Outer(Inner(1))
    x = o.x
    r = weakref.ref(x, lambda ref: seen.append(ref() is None))
    del o, x  # the wrapper held the last native reference
    gc.collect()
    assert seen == [True] and r() is None


@pytest.mark.thread_unsafe(reason="compares global statistics and scans gc.get_objects()")
def test_a_thousand_held_objects_leave_nothing_behind(quiet_stats):
    class Held(tether.Object):
        value: int

    before = quiet_stats
    keys = []
    for i in range(1000):
        x = Held(i)
        keys.append(T.hold(x))
        del x  # the wrapper dies: cached while the registry holds the native object
    gc.collect()
    assert not [o for o in gc.get_objects() if type(o) is Held]
    s = T.stats()
    assert s["native_alive"] - before["native_alive"] == 1000
    assert s["wrappers_cached"] - before["wrappers_cached"] == 1000
    assert all(T.binding_state(k) == "inactive" for k in keys)
    for k in keys:
        T.release(k)
    assert_balanced(before)


@pytest.mark.thread_unsafe(reason="compares global statistics")
def test_stats_balance_for_every_kind_of_death(quiet_stats):
    before = quiet_stats
    o = Pair(Inner(1), tether.Array([Inner(2), tether.function(len)]))
    for _ in range(10):
        o.a
        o.b[0]
        o.b[1]
    f = Finalized(unique())
    x = o.a
    r = weakref.ref(x)
    y = x._move()
    del f, x, r, y, o
    assert_balanced(before)
    s = T.stats()
    for k in ("native_alive", "wrappers_alive", "wrappers_cached", "revivals", "fresh_wrappers"):
        assert isinstance(s[k], int)


@pytest.mark.thread_unsafe(reason="compares global statistics")
def test_last_native_reference_dropped_on_a_foreign_thread(quiet_stats):
    before = quiet_stats
    freed = []

    class Payload:
        def __del__(self):
            freed.append(threading.current_thread().name)

    o = Outer(Inner(Payload()))
    key = T.hold(o.x)
    first = id(o.x)
    del o
    gc.collect()
    assert T.binding_state(key) == "inactive"
    assert T.stats()["wrappers_cached"] - before["wrappers_cached"] == 1
    # the foreign thread's drop reclaims the native object: it attaches to free the cached
    # wrapper and to drop the Python payload
    T.release_on_foreign_thread(key)
    assert len(freed) == 1
    assert_balanced(before)
    del first


@pytest.mark.thread_unsafe(reason="compares global statistics")
def test_foreign_drop_while_python_threads_refetch(quiet_stats):
    before = quiet_stats
    for _ in range(20):
        o = Outer(Inner(1))
        key = T.hold(o.x)
        stop = threading.Event()

        def refetch():
            while not stop.is_set():
                o.x

        ts = [threading.Thread(target=refetch) for _ in range(2)]
        for t in ts:
            t.start()
        T.release_on_foreign_thread(key)
        stop.set()
        for t in ts:
            t.join()
        del o
    assert_balanced(before)


def test_bad_testing_inputs():
    with pytest.raises(TypeError, match="tether object"):
        T.hold(3)
    with pytest.raises(KeyError):
        T.release(2**62)
    with pytest.raises(KeyError):
        T.binding_state(2**62)
    with pytest.raises(KeyError):
        T.release_on_foreign_thread(2**62)
    with pytest.raises(TypeError):
        T.native_refcount("x")
    assert T.native_refcount(Inner(1)) == 1
