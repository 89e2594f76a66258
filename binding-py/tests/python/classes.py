"""Module-level tether classes shared by the tests (module-level so that pickle finds them)."""

from __future__ import annotations

from typing import ClassVar, Optional

import tether


class Inner(tether.Object):
    value: int


class Outer(tether.Object):
    x: Inner
    y: tether.Object | None = None


class Pair(tether.Object):
    """Two untyped fields: any value (tether values as native references)."""

    a: object = None
    b: object = None


class Base(tether.Object):
    name: str


class Middle(Base):
    left: Optional[Inner] = None


class Leaf(Middle):
    right: Inner | None = None
    counter: ClassVar[int] = 0


class Node(tether.Object):
    """A self-referential class: the annotation is a forward reference."""

    label: str
    next: Node | None = None


class Anything(tether.Object):
    """A field without a tether annotation: any value, stored as a Python reference if not tied."""

    value: object = None
