"""tether.Array and tether.function."""

import gc

import pytest

import tether
import tether.testing as T
from classes import Inner, Outer, Pair


def test_array_identity_and_sequence_protocol():
    items = [Inner(1), 2, "three", Inner(4)]
    arr = tether.Array(items)
    assert len(arr) == 4
    assert arr[0] is arr[0] and arr[0] is items[0]
    assert arr[-1] is items[3] and arr[-4] is items[0]
    assert list(arr) == items
    assert [a is b for a, b in zip(arr, items)] == [True] * 4
    assert arr[1] == 2 and arr[2] == "three"


def test_array_revival():
    arr = tether.Array([Inner(1)])
    first = id(arr[0])
    gc.collect()
    assert id(arr[0]) == first


def test_array_index_errors_as_for_list():
    arr = tether.Array([1, 2])
    for bad in (2, -3, 100):
        with pytest.raises(IndexError):
            arr[bad]
    with pytest.raises(TypeError, match="integers or slices"):
        arr["0"]
    with pytest.raises(TypeError, match="integers or slices"):
        arr[1.5]
    empty = tether.Array()
    assert len(empty) == 0 and list(empty) == []
    with pytest.raises(IndexError):
        empty[0]


def test_array_slices():
    items = [Inner(i) for i in range(5)]
    arr = tether.Array(items)
    s = arr[1:4]
    assert isinstance(s, tether.Array) and len(s) == 3
    assert s[0] is items[1] and s[-1] is items[3]
    assert list(arr[::-2]) == items[::-2]


def test_array_bad_input():
    with pytest.raises(TypeError):
        tether.Array(1)
    with pytest.raises(TypeError):
        tether.Array([1], [2])
    with pytest.raises(TypeError):
        tether.Array(items=[1])


def test_array_is_tied():
    arr = tether.Array([1])
    p = Pair(arr)
    assert p.a is arr
    assert T.identity(arr) is arr


def test_function_round_trips_arguments_and_results():
    f = tether.function(lambda v: v)
    x = Inner(1)
    assert f(x) is x
    assert isinstance(f, tether.Function)
    g = tether.function(lambda *a, **k: (a, k))
    a, k = g(x, 2, key=x)
    assert a[0] is x and a[1] == 2 and k["key"] is x
    h = tether.function(lambda: Outer(x))
    assert h().x is x


def test_function_exceptions_propagate():
    def boom():
        raise ValueError("inside")

    with pytest.raises(ValueError, match="inside"):
        tether.function(boom)()


def test_function_objects_are_tied():
    f = tether.function(len)
    p = Pair(f)
    assert p.a is f and p.a is p.a
    assert tether.Function(len)([1, 2]) == 2
    assert tether.function(lambda v: v)(f) is f


def test_function_bad_input():
    with pytest.raises(TypeError, match="callable"):
        tether.function(3)
    with pytest.raises(TypeError):
        tether.Function()
    with pytest.raises(TypeError):
        tether.Function(len, len)
