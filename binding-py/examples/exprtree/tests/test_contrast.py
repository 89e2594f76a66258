"""Where identity-dependent idioms break with plain PyO3, checked rather than claimed.

`exprtree._native.contrast` holds the same kind of tree behind ordinary `#[pyclass]` types: every
read of `.children` or `.parent` builds a new Python object, and `Pair` holds its `Leaf`s by
value (PyO3's `get` returns a clone). Each test asserts the plain-PyO3 outcome, then the same
idiom on exprtree, where it works.
"""

import gc

from exprtree import Num, parse
from exprtree._native import contrast


def test_repeated_reads():
    n = contrast.tree(2)
    assert n.children[0] is not n.children[0]  # a new wrapper per read
    assert n.children[0].value == n.children[0].value  # of the same native node

    t = parse("(1 + 2) * (3 + 4)")
    assert t.children[0] is t.children[0]
    assert t.left is t.left


def test_parent_back_reference():
    n = contrast.tree(2)
    c = n.children[0]
    assert c.parent is not n
    assert c.parent.value == n.value  # it is the parent, in a new wrapper
    assert c.parent is not c.parent

    t = parse("(1 + 2) * (3 + 4)")
    assert t.children[0].parent is t
    assert t.left.left.parent.parent is t


def test_dict_keyed_by_node():
    n = contrast.tree(2)
    d = {n.children[0]: "first"}
    assert n.children[0] not in d  # default identity hash: the second read is another key
    assert d.get(n.children[0]) is None

    t = parse("(1 + 2) * (3 + 4)")
    d = {t.children[0]: "first"}
    assert t.children[0] in d and d[t.left] == "first"


def test_visited_set():
    n = contrast.tree(2)
    visited = set()
    for _ in range(2):  # walk the tree twice
        stack = [n]
        while stack:
            x = stack.pop()
            visited.add(x)
            stack.extend(x.children)
    assert len(visited) == 1 + 2 * 6  # the root once, every other node twice: never "seen"

    t = parse("(1 + 2) * (3 + 4)")
    visited = set()
    for _ in range(2):
        for x in t.walk():
            visited.add(x)
    assert len(visited) == 7


def test_mutation_through_a_by_value_field_is_lost():
    p = contrast.pair(1, 2)
    p.left.value = 3  # sets the value on a clone
    assert p.left.value == 1
    assert p.left is not p.left
    leaf = p.left
    leaf.value = 3
    p.left = leaf  # only writing the whole field back sticks
    assert p.left.value == 3

    t = parse("1 + 2")
    t.left.value = 3
    assert t.left.value == 3.0 and t.evaluate() == 5.0


def test_nested_mutation_through_shared_nodes():
    # PyNode shares its native node (an Arc): writes through a fresh wrapper do stick. What
    # breaks there is identity, not mutation.
    n = contrast.tree(1)
    n.children[0].value = 42
    assert n.children[0].value == 42

    t = parse("1 + (2 * 3)")
    t.right.right.value = 5
    assert t.evaluate() == 11.0


def test_memoising_by_id():
    # With a new wrapper per read, id() names a short-lived object: a memo keyed by id() must
    # keep every wrapper alive to stay meaningful, and then one node has many ids.
    n = contrast.tree(1)
    keep = [n.children[0] for _ in range(3)]
    assert len({id(x) for x in keep}) == 3

    t = parse("1 + 2")
    memo = {id(t.left): "left"}
    gc.collect()  # the wrapper died meanwhile; it comes back at the same address
    assert memo[id(t.left)] == "left"
    keep = [t.left for _ in range(3)]
    assert len({id(x) for x in keep}) == 1


def test_exprtree_nodes_keep_identity_where_pyo3_values_do_not():
    p = contrast.pair(1, 2)
    assert p.right is not p.right
    b = Num(1)
    assert b.copy() is not b  # copies are explicit
    assert b.walk()[0] is b
