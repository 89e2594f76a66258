"""Classes declared with `#[derive(Class)]` (exprtree._native._derived, src/derived.rs): the
declarative form gives the same behaviour as the builder (properties, members, methods,
constructor, repr, docstrings, the collector)."""

import gc
import threading
import weakref

import pytest

import exprtree
from exprtree._native import _derived as D

from conftest import assert_balanced


def test_properties_read_and_write():
    c = D.Counter("apples", 3)
    assert (c.count, c.label) == (3, "apples")
    c.count = -7
    c.label = "pears"
    assert (c.count, c.label) == (-7, "pears")
    c.count = 2**62
    assert c.count == 2**62
    s = c.settings()
    assert (s.enabled, s.ratio) == (True, 1.0)
    s.enabled = False
    s.ratio = 0.25
    assert (s.enabled, s.ratio) == (False, 0.25)


def test_a_get_only_field_is_a_read_only_property_under_its_python_name():
    a, b = D.Counter("a", 0), D.Counter("b", 0)
    assert isinstance(a.serial, int) and b.serial > a.serial
    with pytest.raises(AttributeError, match="serial"):
        a.serial = 5
    assert not hasattr(a, "id")  # the Rust field's name is not exposed
    assert not hasattr(D.Counter, "settings_field")


def test_a_wrong_type_is_a_type_error_naming_the_property():
    c = D.Counter("apples", 3)
    with pytest.raises(TypeError, match=r"^Counter\.count: "):
        c.count = "three"
    with pytest.raises(TypeError, match=r"^Counter\.count: "):
        c.count = 1.5
    with pytest.raises(OverflowError):
        c.count = 2**64
    with pytest.raises(TypeError, match=r"^Counter\.label: "):
        c.label = 3
    s = c.settings()
    with pytest.raises(TypeError, match=r"^Settings\.ratio: "):
        s.ratio = "high"
    assert (c.count, c.label, s.ratio) == (3, "apples", 1.0)  # unchanged


def test_a_property_cannot_be_deleted():
    c = D.Counter("apples", 3)
    with pytest.raises(TypeError, match=r"Counter\.count cannot be deleted"):
        del c.count
    assert c.count == 3


def test_members_accept_none_unless_required():
    c = D.Counter("x", 0)
    with pytest.raises(AttributeError, match="'node'.*not set"):
        c.node
    c.node = None
    assert c.node is None
    with pytest.raises(TypeError, match=r"^Counter\.node must be Expr \| None, not int$"):
        c.node = 1
    with pytest.raises(TypeError, match=r"^Counter\.root must be Expr, not NoneType$"):
        c.root = None
    with pytest.raises(TypeError, match=r"^Counter\.root must be Expr, not str$"):
        c.root = "x"
    n = exprtree.Num(2)
    c.root = n
    assert c.root is n
    with pytest.raises(TypeError):
        c.root = None
    assert c.root is n  # a refused assignment leaves the member unchanged
    del c.node  # unsets
    with pytest.raises(AttributeError):
        c.node


def test_a_node_stored_in_a_member_keeps_its_identity():
    c = D.Counter("x", 0)
    t = exprtree.parse("x * (y + 2)")
    c.node = t.left
    assert c.node is t.left
    assert c.node_from_rust() is t.left  # the Rust side sees the same native node
    c.node = t.right.right
    assert c.node is t.right.right
    assert c.node.parent is t.right
    # A member holds its node natively: it outlives every Python reference to it.
    c.root = exprtree.Num(41)
    ident = id(c.root)
    assert c.root.value == 41
    c.root.value = 42
    assert c.root.value == 42 and isinstance(c.root, exprtree.Num)
    assert id(c.root) == ident  # revived at the same address


def test_an_untyped_member_holds_any_object():
    c = D.Counter("x", 0)
    thing = {"a": [1, 2]}
    c.item = thing
    assert c.item is thing
    n = exprtree.Var("v")
    c.item = n
    assert c.item is n
    c.item = None
    assert c.item is None


def test_methods():
    c = D.Counter("x", 10)
    assert c.bump() == 11
    assert c.bump(5) == 16
    assert c.bump(by=-16) == 0
    assert c.count == 0
    assert c.settings() is c.settings()  # one wrapper for the one native object
    assert D.Counter("y", 0).settings() is not c.settings()


def test_repr():
    c = D.Counter("apples", 3)
    assert repr(c) == 'Counter("apples", 3)'
    c.bump()
    assert repr(c) == 'Counter("apples", 4)'


def test_constructor_arguments_are_checked():
    with pytest.raises(TypeError, match=r"^Counter\(\) takes 2 positional arguments \(0 given\)"):
        D.Counter()
    with pytest.raises(TypeError, match=r"^Counter\(\) takes 2 positional arguments \(3 given\)"):
        D.Counter("a", 1, 2)
    with pytest.raises(TypeError, match=r"^Counter\(\) argument 1: "):
        D.Counter(1, 2)
    with pytest.raises(TypeError, match=r"^Counter\(\) argument 2: "):
        D.Counter("a", "b")
    with pytest.raises(TypeError, match="keyword"):
        D.Counter("a", count=1)
    with pytest.raises(TypeError, match="cannot create 'Settings' instances"):
        D.Settings()


def test_names_and_docstrings():
    assert D.Counter.__name__ == "Counter"
    assert D.Counter.__module__ == "exprtree._native._derived"
    assert D.Settings.__name__ == "Settings"  # `name = "Settings"` (the Rust type is CounterSettings)
    assert D.Counter.__doc__ == (
        "A counter with a label, an expression node and a slot for any object.\n\n"
        "Counter(label, count): a class declared with #[derive(Class)]."
    )
    assert D.Settings.__doc__.startswith("A counter's settings")
    assert D.Counter.count.__doc__ == "The count (an int)."
    assert D.Counter.label.__doc__ == "The counter's label (a str)."
    assert D.Counter.serial.__doc__.startswith("The counter's serial number")
    assert D.Counter.node.__doc__ == "An expression node, or None."
    assert D.Counter.root.__doc__ == "An expression node; None is refused."
    assert D.Counter.item.__doc__.startswith("Any Python object")
    assert D.Settings.ratio.__doc__ == "A ratio (a float)."
    assert D.Counter.bump.__doc__.startswith("bump(self, by=1)")


def test_a_python_subclass():
    class Named(D.Counter):
        def shout(self):
            return self.label.upper()

    n = Named("quiet", 1)
    assert type(n) is Named and n.shout() == "QUIET"
    n.count = 9
    assert n.bump() == 10


def test_a_cycle_through_a_member_is_collected(balanced):
    # (`c.item = c` itself would be a *native* cycle: a member stores a tied object as a native
    # reference, which the collector does not see. A Python container in between is seen.)
    c = D.Counter("cycle", 0)
    c.item = [c]
    dead = weakref.ref(c)
    del c
    gc.collect()
    assert dead() is None
    assert_balanced(balanced)


def test_a_cycle_through_a_member_and_a_node_is_collected(balanced):
    # counter -> item (a list) -> the node's wrapper -> its tag -> the counter: every link is
    # reported to the collector (each native object is held by its wrapper only).
    c = D.Counter("x", 0)
    n = exprtree.Num(1)
    c.item = [n, c]
    n.tag = c
    dead = weakref.ref(c)
    del c, n
    gc.collect()
    assert dead() is None
    assert_balanced(balanced)


def test_concurrent_reads_and_writes():
    c = D.Counter("start", 0)
    nodes = [exprtree.Num(i) for i in range(4)]
    errors = []
    rounds = 300

    def work(k):
        try:
            for i in range(rounds):
                c.count = c.count + 1  # racy on purpose: only must not crash
                c.label = f"thread {k} round {i}"
                assert c.label.startswith("thread ")
                c.node = nodes[(k + i) % len(nodes)]
                assert c.node in nodes
                c.item = (k, i)
                assert isinstance(c.item, tuple)
                c.settings().ratio = float(i)
                assert isinstance(repr(c), str)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert 1 <= c.count <= 4 * rounds

    # `bump` is one atomic read-modify-write: no increment is lost.
    c.count = 0

    def bump():
        for _ in range(rounds):
            c.bump()

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.count == 4 * rounds
