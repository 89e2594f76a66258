"""tether's extension API at its edges, through exprtree's test hooks: misuse by the binding
author or the user ends in a clear Python exception, never a crash or a leak."""

import gc
import threading

import pytest

import exprtree
from exprtree import _native
from exprtree._native import _testing as X


def counters():
    gc.collect()
    s = _native._stats()
    return {k: s[k] for k in ("native_alive", "wrappers_alive", "wrappers_cached")}


def test_a_native_type_with_no_registered_class_is_a_type_error():
    before = counters()
    with pytest.raises(TypeError, match="no Python class is registered.*Unregistered"):
        X.unregistered()
    assert counters() == before


def test_a_value_whose_class_name_is_not_declared_is_a_type_error():
    before = counters()
    with pytest.raises(TypeError, match="'NotDeclared'.*ClassDef::subclass"):
        X.stray()
    assert counters() == before


def test_registering_a_class_twice_is_a_runtime_error():
    with pytest.raises(RuntimeError, match="exprtree.Expr is already registered"):
        X.register_expr_again(_native)
    assert _native.Expr is exprtree.Expr  # the first registration stands


def test_a_panic_in_a_getter_setter_or_method_is_a_python_exception():
    before = counters()
    f = X.Faulty()
    # PyO3's PanicException derives from BaseException, not Exception.
    with pytest.raises(BaseException, match="a getter panicked"):
        f.boom
    with pytest.raises(BaseException, match="a setter panicked"):
        f.fine = 2
    with pytest.raises(BaseException, match="a method panicked"):
        f.explode()
    assert f.fine == 1  # the object is still usable
    del f
    assert counters() == before


def test_constructor_arguments_are_checked():
    with pytest.raises(TypeError, match=r"Num\(\) takes 1 positional argument \(0 given\)"):
        exprtree.Num()
    with pytest.raises(TypeError, match=r"Num\(\) takes 1 positional argument \(2 given\)"):
        exprtree.Num(1, 2)
    with pytest.raises(TypeError, match=r"Num\(\) argument 1"):
        exprtree.Num("one")
    with pytest.raises(TypeError, match="no keyword arguments"):
        exprtree.Num(value=1)
    with pytest.raises(TypeError, match=r"BinOp\(\) argument 2: .*expected exprtree.Expr"):
        exprtree.BinOp("+", 1, exprtree.Num(2))
    with pytest.raises(TypeError, match="takes 0 positional arguments"):
        X.Faulty(1)


def test_a_node_dropped_on_a_rust_thread_frees_everything():
    before = counters()
    t = exprtree.parse("a + b * c")
    right = t.right
    key = X.hold(right)
    assert X.native_refcount(right) == 3  # the tree, the wrapper, the registry
    del t, right
    gc.collect()
    X.release_on_thread(key)  # the last reference: dropped where Python never ran
    assert counters() == before
    with pytest.raises(KeyError):
        X.release(key)


def test_the_wrapper_survives_natively_and_revives_at_the_same_address():
    t = exprtree.parse("a + 1")
    key = X.hold(t.left)
    first = id(t.left)
    gc.collect()
    assert id(t.left) == first
    X.release(key)


def test_concurrent_first_reads_agree_on_one_wrapper():
    t = exprtree.parse(" + ".join(f"x{i}" for i in range(64)))
    nodes = []
    barrier = threading.Barrier(4)

    def reader():
        barrier.wait()
        nodes.append([n for n in t.walk()])

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    first = nodes[0]
    for other in nodes[1:]:
        assert all(a is b for a, b in zip(first, other))


def test_members_keep_identity_check_types_and_unset():
    before = counters()
    h = X.Holder()
    with pytest.raises(AttributeError, match="'Holder' object has no attribute 'item'"):
        h.item
    t = exprtree.parse("a + b")
    h.node = t.left
    assert h.node is t.left
    assert h.node_from_rust() is t.left  # the Rust side reads the same native object
    with pytest.raises(TypeError, match=r"Holder.node must be Expr \| None, not int"):
        h.node = 3
    assert h.node is t.left  # unchanged
    h.node = None
    assert h.node is None and h.node_from_rust() is None
    payload = object()
    h.item = payload
    assert h.item is payload
    del h.item
    with pytest.raises(AttributeError):
        h.item
    del h, t
    assert counters() == before


def test_a_member_keeps_a_node_alive_natively_and_its_wrapper_revives_in_place():
    h = X.Holder()
    h.node = exprtree.Num(7)
    first = id(h.node)
    gc.collect()
    assert id(h.node) == first
    assert h.node.value == 7


def test_a_cycle_through_a_member_is_collected():
    before = counters()
    for _ in range(500):
        h = X.Holder()
        h.item = [h]
    del h
    assert counters() == before


def test_value_equality_hash_static_and_class_methods_and_pickling():
    import pickle

    P = X.Point
    a, b = P(1, 2), P(1, 2)
    assert a is not b and a == b and not (a != b) and hash(a) == hash(b)
    assert a != P(2, 1) and (a == 3) is False  # NotImplemented, then identity
    assert {a: "x"}[b] == "x"
    assert P.origin() == P(0, 0) and type(P.origin()) is P
    assert P.from_pair((3, 4)) == P(3, 4)
    assert P.DIMENSIONS == 2 and repr(a) == "Point(1, 2)"
    assert P.__doc__.startswith("Point(x, y)")
    c = pickle.loads(pickle.dumps(a))
    assert c == a and c is not a and type(c) is P


def test_pickling_a_tree_node_without_state_is_refused():
    import pickle

    with pytest.raises((TypeError, pickle.PicklingError)):
        pickle.dumps(exprtree.parse("a + 1"))
