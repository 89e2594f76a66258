"""The collector sees the Python objects a native object owns while its wrapper holds the native
object's only strong reference: a cycle through them and the wrapper is garbage."""

import gc

import tether
import tether.testing as T

from conftest import assert_balanced


class Node(tether.Object):
    meta: object = None
    next: "Node | None" = None


def test_cycle_through_a_field_is_collected(quiet_stats):
    for _ in range(1000):
        n = Node()
        n.meta = [n]
    del n
    assert_balanced(quiet_stats)


def test_cycle_through_an_array_element_is_collected(quiet_stats):
    for _ in range(200):
        box = []
        a = tether.Array([box])
        box.append(a)
    del a, box
    assert_balanced(quiet_stats)


def test_cycle_through_a_function_callable_is_collected(quiet_stats):
    for _ in range(200):
        holder = []
        f = tether.function(lambda: holder)
        holder.append(f)
    del f, holder
    assert_balanced(quiet_stats)


def test_a_natively_held_object_is_not_collected(quiet_stats):
    n = Node()
    n.meta = [n]
    key = T.hold(n)
    del n
    gc.collect()
    assert T.stats()["native_alive"] == quiet_stats["native_alive"] + 1
    assert T.binding_state(key) in ("active", "inactive")
    T.release(key)
    assert_balanced(quiet_stats)


def test_an_object_referenced_by_another_native_object_keeps_its_python_values(quiet_stats):
    parent = Node()
    child = Node()
    payload = [child]
    child.meta = payload
    parent.next = child
    del child
    gc.collect()
    assert parent.next.meta is payload
    assert parent.next.meta[0] is parent.next
    del parent, payload
    assert_balanced(quiet_stats)


def test_a_live_wrapper_is_tracked_and_a_revived_one_too():
    parent = Node()
    parent.next = Node()
    assert gc.is_tracked(parent.next)
    i = id(parent.next)
    gc.collect()
    assert id(parent.next) == i
    assert gc.is_tracked(parent.next)


def test_a_class_holding_its_own_instance_is_collected(quiet_stats):
    import weakref

    def make():
        class Local(tether.Object):
            value: int = 0

        Local.zero = Local(0)  # the class refers to its instance, whose native object to it
        return weakref.ref(Local)

    refs = [make() for _ in range(50)]
    gc.collect()
    assert all(r() is None for r in refs), "a class kept alive by its own instance"
    assert_balanced(quiet_stats)


def test_a_cycle_through_a_revived_wrapper_is_collected(quiet_stats):
    parent = Node()
    parent.next = Node()
    first = id(parent.next)
    gc.collect()
    child = parent.next  # revived in place
    assert id(child) == first and gc.is_tracked(child)
    child.meta = [child]
    parent.next = None  # now the wrapper holds the native object's only strong reference
    del child, parent
    assert_balanced(quiet_stats)
