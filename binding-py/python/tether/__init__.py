"""tether: one Python wrapper per native object, for the object's whole life.

``a.x is a.x``, ``f(x) is x``, and the same ``id()`` after a wrapper dies and is fetched again,
on GIL and free-threaded CPython alike. See docs/python.md for what is guaranteed and when.

    import tether

    class Inner(tether.Object):
        value: int

    class Outer(tether.Object):
        x: Inner
        y: tether.Object | None = None
"""

from __future__ import annotations

import copyreg
import reprlib
import sys
import types
import typing

from . import _core
from ._core import Array, Function, function, handle

__all__ = ["Array", "Function", "Object", "function", "handle"]

_TIED = (_core.ObjectBase, Array, Function)
_MISSING = object()


def _is_tied_type(t: object) -> bool:
    return isinstance(t, type) and issubclass(t, _TIED)


def _forward_text(ann: object) -> str | None:
    """The source text of a string or forward-reference annotation, else None."""
    if isinstance(ann, str):
        return ann
    text = getattr(ann, "__forward_arg__", None)
    return text if isinstance(text, str) else None


def _is_classvar(ann: object) -> bool:
    text = _forward_text(ann)
    if text is not None:
        return text.replace(" ", "").split("[", 1)[0] in {
            "ClassVar",
            "typing.ClassVar",
            "t.ClassVar",
        }
    return ann is typing.ClassVar or typing.get_origin(ann) is typing.ClassVar


def _spec(ann: object):
    """How assignments to a field annotated ``ann`` are checked.

    Returns ``(types, nullable, expected)`` for a tether-typed annotation (``Inner``,
    ``Inner | None``, ``Optional[Inner]``, unions of tether types), ``False`` for no check (any
    other annotation: the value is stored as an owned Python reference), or ``None`` when the
    annotation is a forward reference that cannot be evaluated yet.
    """
    if _forward_text(ann) is not None:
        return None
    if typing.get_origin(ann) is typing.Annotated:
        return _spec(typing.get_args(ann)[0])
    if _is_tied_type(ann):
        return ((ann,), False, ann.__name__)
    origin = typing.get_origin(ann)
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(ann)
        nullable = any(a is type(None) for a in args)
        rest = [a for a in args if a is not type(None)]
        if any(_forward_text(a) is not None for a in rest):
            return None
        if rest and all(_is_tied_type(a) for a in rest):
            expected = " | ".join(a.__name__ for a in rest)
            return (tuple(rest), nullable, expected + (" | None" if nullable else ""))
    return False


def _resolver(cls: type, ann: object):
    """A callable resolving a forward-reference annotation on first use (see ``_spec``)."""

    def evaluate(a: object, namespace: dict) -> object:
        text = _forward_text(a)
        if text is not None:
            return eval(text, namespace, {cls.__name__: cls})  # noqa: S307 - annotation text
        origin = typing.get_origin(a)
        if origin is typing.Union or origin is types.UnionType:
            return typing.Union[tuple(evaluate(x, namespace) for x in typing.get_args(a))]
        if origin is typing.Annotated:
            return evaluate(typing.get_args(a)[0], namespace)
        return a

    def resolve():
        module = sys.modules.get(cls.__module__)
        namespace = dict(vars(module)) if module is not None else {}
        try:
            value = evaluate(ann, namespace)
        except NameError:
            return None  # not defined yet: try again on the next assignment
        except Exception:
            return False
        spec = _spec(value)
        return False if spec is None else spec

    return resolve


def _own_annotations(cls: type) -> dict[str, object]:
    if sys.version_info >= (3, 14):
        import annotationlib

        return dict(
            annotationlib.get_annotations(cls, format=annotationlib.Format.FORWARDREF)
        )
    return dict(cls.__dict__.get("__annotations__", {}))


class _ObjectMeta(_core.TiedType):
    """Metaclass of ``tether.Object``: turns annotations into natively stored fields.

    ``TiedType`` (the metaclass of every tied class, extension classes included) gives every
    class ``__slots__ = ()`` (no ``__dict__``: instances all have the one wrapper layout, so a
    dead wrapper's memory can be revived in place) and installs the wrapper lifecycle; this adds
    one member descriptor per field.
    """

    def __new__(mcls, name, bases, namespace, **kwargs):
        if "__slots__" in namespace:
            raise TypeError(
                f"{name}: tether.Object subclasses cannot declare __slots__; declare fields "
                "as annotations (they are stored natively)"
            )
        cls = super().__new__(mcls, name, bases, namespace, **kwargs)
        own = []
        for field, ann in _own_annotations(cls).items():
            if _is_classvar(ann):
                continue
            if field.startswith("__") and field.endswith("__"):
                raise TypeError(
                    f"{name}: a field cannot have a special name ({field!r}): Python looks "
                    "those up on the class (the object's protocols); rename the field, or mark "
                    "a class attribute ClassVar"
                )
            text = _forward_text(ann)
            if text is not None:
                try:
                    compile(text, f"<annotation of {name}.{field}>", "eval")
                except SyntaxError as e:
                    raise TypeError(
                        f"{name}.{field}: the annotation {text!r} is not a Python expression "
                        f"({e.msg}); its type could never be checked"
                    ) from None
            default = cls.__dict__.get(field, _MISSING)
            spec = _spec(ann)
            check = _resolver(cls, ann) if spec is None else (spec or None)
            own.append((field, default is not _MISSING, default, check))
        _core._register_class(cls, own)
        return cls

    def __setattr__(cls, name, value):
        if name.startswith("__tether_"):
            raise AttributeError(
                f"{cls.__name__}.{name} is tether's record of the class's fields; it cannot "
                "be replaced"
            )
        super().__setattr__(name, value)

    def __delattr__(cls, name):
        if name.startswith("__tether_"):
            raise AttributeError(
                f"{cls.__name__}.{name} is tether's record of the class's fields; it cannot "
                "be deleted"
            )
        super().__delattr__(name)


class Object(_core.ObjectBase, metaclass=_ObjectMeta):
    """Base of native-backed classes.

    Annotated class attributes are fields stored in the native object: a tether value as a
    native reference, any other value as an owned Python reference. Construct with fields
    positionally or by keyword. While a native reference keeps an object alive, its wrapper
    keeps its identity (``is`` and ``id()``), even across the wrapper's death.
    """

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        parts = []
        for name in type(self).__tether_fields__:
            try:
                parts.append(f"{name}={getattr(self, name)!r}")
            except AttributeError:
                continue
        return f"{type(self).__name__}({', '.join(parts)})"

    def __reduce_ex__(self, protocol):
        cls = type(self)
        # A subclass's own __reduce__ wins, as for any object.
        if cls.__reduce__ is not object.__reduce__:
            return self.__reduce__()
        if getattr(cls, "__getstate__", None) is not getattr(object, "__getstate__", None):
            state = self.__getstate__()
        else:
            state = {}
            for name in cls.__tether_fields__:
                try:
                    state[name] = getattr(self, name)
                except AttributeError:
                    continue
        return (copyreg.__newobj__, (cls,), state)

    def __setstate__(self, state: dict) -> None:
        for name, value in state.items():
            setattr(self, name, value)
