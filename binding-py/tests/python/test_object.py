"""tether.Object: fields, construction, errors, classes."""

import gc
import weakref

import pytest

import tether
from classes import Anything, Base, Inner, Leaf, Middle, Node, Outer, Pair


def test_fields_positional_and_keyword():
    i = Inner(1)
    assert i.value == 1
    assert Inner(value=2).value == 2
    o = Outer(i, y=None)
    assert o.x is i and o.y is None
    o2 = Outer(x=i)
    assert o2.y is None


def test_missing_required_field_is_a_type_error():
    with pytest.raises(TypeError, match="missing required field: 'x'"):
        Outer()
    with pytest.raises(TypeError, match="missing required field"):
        Inner()


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        Inner(1, z=2)


def test_too_many_positional_and_duplicates_are_type_errors():
    with pytest.raises(TypeError, match="at most 1 positional argument"):
        Inner(1, 2)
    with pytest.raises(TypeError, match="multiple values for field 'value'"):
        Inner(1, value=2)


def test_wrong_declared_type_is_a_type_error():
    with pytest.raises(TypeError, match=r"Outer.x must be Inner, not int"):
        Outer(1)
    o = Outer(Inner(1))
    with pytest.raises(TypeError, match="must be Inner, not str"):
        o.x = "nope"
    with pytest.raises(TypeError, match="must be Inner, not NoneType"):
        o.x = None
    with pytest.raises(TypeError, match="must be Object | None, not int"):
        o.y = 3
    # the failed assignments left the field alone
    assert isinstance(o.x, Inner)


def test_nullable_and_any_object_fields():
    o = Outer(Inner(1))
    o.y = None
    arr = tether.Array([1])
    with pytest.raises(TypeError):
        o.y = arr  # an Array is not a tether.Object
    o.y = Inner(3)
    assert o.y.value == 3
    a = Anything()
    for v in (1, "s", [1, 2], arr, Inner(2), None):
        a.value = v
        assert a.value is v


def test_python_values_are_owned_references():
    class Payload:
        pass

    payload = Payload()
    r = weakref.ref(payload)
    i = Inner(payload)  # `value: int` is not a tether type: any value, stored as a Python reference
    del payload
    gc.collect()
    assert r() is i.value  # the native object owns a reference
    del i
    gc.collect()
    assert r() is None  # and gives it up with the native object


def test_no_dict_and_unknown_attributes():
    i = Inner(1)
    assert not hasattr(i, "__dict__")
    with pytest.raises(AttributeError):
        i.nope = 1
    with pytest.raises(AttributeError):
        i.nope


def test_unset_field_raises_attribute_error():
    o = Outer.__new__(Outer)
    with pytest.raises(AttributeError, match="not set"):
        o.x
    o.x = Inner(1)
    del o.x
    with pytest.raises(AttributeError, match="not set"):
        o.x


def test_weak_referenceable():
    i = Inner(1)
    r = weakref.ref(i)
    assert r() is i
    del i
    gc.collect()
    assert r() is None


def test_subclasses_of_subclasses():
    leaf = Leaf("n", Inner(1), Inner(2))
    assert leaf.name == "n" and leaf.left.value == 1 and leaf.right.value == 2
    assert isinstance(leaf, Middle) and isinstance(leaf, Base) and isinstance(leaf, tether.Object)
    assert Leaf.__tether_fields__ == ("name", "left", "right")
    assert Leaf.counter == 0  # ClassVar: a class attribute, not a field
    m = Middle(name="m")
    assert m.left is None
    with pytest.raises(TypeError, match="Middle.left must be Inner | None"):
        m.left = Leaf("x")
    # a subclass instance is accepted where its base is declared
    class SubInner(Inner):
        pass

    o = Outer(SubInner(5))
    assert type(o.x) is SubInner and o.x is o.x


def test_forward_references_are_checked_once_resolvable():
    n = Node("a", Node("b"))
    assert n.next.label == "b" and n.next.next is None
    with pytest.raises(TypeError, match="Node.next must be Node | None"):
        n.next = Inner(1)


def test_class_definition_errors():
    with pytest.raises(TypeError, match="__slots__"):

        class Bad(tether.Object):
            __slots__ = ("a",)

    with pytest.raises(TypeError, match="redeclares an inherited field"):

        class Again(Inner):
            value: int

    class Left(tether.Object):
        a: int

    class Right(tether.Object):
        b: int

    with pytest.raises(TypeError, match="one line"):

        class Both(Left, Right):
            pass


def test_dict_mixin_is_refused():
    class WithDict:
        pass

    with pytest.raises(TypeError, match="__dict__|larger"):

        class Bad(Inner, WithDict):
            pass


def test_plain_object_and_repr():
    o = tether.Object()
    assert isinstance(o, tether.Object)
    p = Pair(Inner(1))
    p.b = p
    assert repr(Inner(3)) == "Inner(value=3)"
    assert "Pair(a=Inner(value=1), b=..." in repr(p)
    p.b = None  # break the native cycle


def test_defaults_are_shared_values():
    class D(tether.Object):
        items: list = []

    a, b = D(), D()
    assert a.items is b.items
    a.items = [1]
    assert b.items == []


def test_class_cannot_be_reassigned():
    class A(tether.Object):
        a: int

    class B(tether.Object):
        b: int

    x = A(1)
    assert x.__class__ is A
    with pytest.raises(TypeError, match="cannot change"):
        x.__class__ = B
    arr = tether.Array([1])
    with pytest.raises(TypeError):
        arr.__class__ = tether.Function


def test_long_chains_are_dropped_without_recursion():
    head = None
    for i in range(200_000):
        head = Node(str(i), head)
    assert head.next.label == "199998"
    del head  # the native side releases the chain iteratively (no stack overflow)
    gc.collect()


def test_fields_past_the_inline_ones(quiet_stats):
    # The first four fields live in the native block itself, the rest in one more allocation:
    # a class whose inherited and own fields straddle that line reads, writes, deletes and
    # frees every one of them, keeps each child's identity, and leaves nothing behind.
    from conftest import assert_balanced

    class Base3(tether.Object):
        a: object
        b: object
        c: object

    class Wide(Base3):
        d: object
        e: object
        f: object
        g: object

    names = "abcdefg"
    kids = [Inner(i) for i in range(len(names))]
    w = Wide(*kids)
    for name, kid in zip(names, kids):
        assert getattr(w, name) is kid
        assert getattr(w, name) is getattr(w, name)
    ids = [id(getattr(w, n)) for n in names]
    del kids, kid
    gc.collect()
    # Every child's wrapper died and comes back at the same address.
    assert [id(getattr(w, n)) for n in names] == ids
    assert [getattr(w, n).value for n in names] == list(range(len(names)))
    w.e = "python value"
    w.g = None
    assert (w.e, w.g) == ("python value", None)
    del w.f
    with pytest.raises(AttributeError, match="'f'"):
        w.f
    w.f = Inner(99)
    assert w.f.value == 99
    assert "g=None" in repr(w)
    del w
    assert_balanced(quiet_stats)
