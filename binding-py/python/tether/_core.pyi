"""Type stubs for the compiled core (private: use ``tether`` and ``tether.testing``)."""

from typing import Any

from . import Array as Array
from . import Function as Function
from . import function as function
from . import handle as handle
from . import testing as testing

class ObjectBase:
    def _move(self) -> ObjectBase: ...

class Schema:
    def names(self) -> tuple[str, ...]: ...

def _register_class(cls: type, fields: list[tuple[str, bool, Any, Any]], /) -> None: ...
