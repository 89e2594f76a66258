"""obj._move() and pickle."""

import gc
import pickle

import pytest

import tether
import tether.testing as T
from classes import Inner, Leaf, Node, Outer, Pair


def test_move_hands_the_native_reference_over():
    x = Inner(1)
    before = T.native_refcount(x)
    y = x._move()
    assert y is not x and type(y) is Inner
    assert y.value == 1
    assert T.native_refcount(y) == before
    with pytest.raises(RuntimeError, match="was moved"):
        x.value
    with pytest.raises(RuntimeError, match="was moved"):
        x.value = 2
    with pytest.raises(RuntimeError, match="was moved"):
        tether.handle(x)
    with pytest.raises(RuntimeError, match="was moved"):
        x._move()
    with pytest.raises(RuntimeError, match="was moved"):
        Outer(x)


def test_move_of_a_canonical_wrapper_moves_the_binding():
    o = Outer(Inner(1))
    x = o.x
    y = x._move()
    assert o.x is y
    del x
    gc.collect()
    assert o.x is y


def test_move_into_a_call():
    def consume(v):
        return T.native_refcount(v), v

    x = Inner(3)
    refs, v = consume(x._move())
    assert refs == 1 and v.value == 3
    f = tether.function(lambda v: v.value)
    assert f(Inner(9)._move()) == 9


def test_move_arrays_and_functions():
    arr = tether.Array([1, 2])
    arr2 = arr._move()
    assert list(arr2) == [1, 2]
    with pytest.raises(RuntimeError, match="moved"):
        len(arr)
    f = tether.function(lambda: 1)
    g = f._move()
    assert g() == 1
    with pytest.raises(RuntimeError, match="moved"):
        f()


def test_pickle_round_trip_with_identity():
    i = Inner(1)
    o = Outer(i, y=i)
    r = pickle.loads(pickle.dumps(o))
    assert type(r) is Outer and r.x.value == 1
    assert r.x is r.x
    assert r.x is r.y  # shared references stay shared
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(o, protocol)).x.value == 1


def test_pickle_subclasses_cycles_arrays_functions():
    leaf = Leaf("n", Inner(1))
    r = pickle.loads(pickle.dumps(leaf))
    assert r.name == "n" and r.left.value == 1 and r.right is None
    n = Node("a")
    n.next = n
    r = pickle.loads(pickle.dumps(n))
    assert r.next is r
    r.next = None
    n.next = None
    arr = tether.Array([Inner(1), 2])
    p = Pair(arr, arr)
    r = pickle.loads(pickle.dumps(p))
    assert r.a is r.b and r.a[0].value == 1 and r.a[0] is r.a[0]
    f = tether.function(len)
    assert pickle.loads(pickle.dumps(f))([1]) == 1


def test_pickle_of_a_moved_object_fails():
    x = Inner(1)
    x._move()
    with pytest.raises(RuntimeError):
        pickle.dumps(x)
