"""Arithmetic expression trees whose nodes keep their identity (an example built on tether).

    >>> import exprtree
    >>> t = exprtree.parse("x * (y + 2)")
    >>> t.right.parent is t
    True
"""

from ._native import BinOp, Expr, Num, Var, parse

__all__ = ["BinOp", "Expr", "Num", "Var", "parse"]
