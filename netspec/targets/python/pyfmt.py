"""A small expression tree for generated Python, printed the way `ruff format` prints it.

Covered: names and literals (`Raw`), calls, keyword arguments, lists and tuples, and chains of
one binary operator (what the generated PyTorch and Keras modules need). What fits in the line
stays on one line. Otherwise the last bracket pair is split as ruff (like black) splits it: a call's
arguments go on one indented line if they fit, else one per line with a trailing comma (a sole
argument is split recursively, without a comma); a split list or tuple always has one item per
line. An assignment's value is split at its own brackets only when `target = func(` fits, else
it is wrapped in parentheses; a chain of operators is wrapped in parentheses and split before
each operator. `tests/test_python_kernel.py` checks random trees against ruff itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

WIDTH = 100
INDENT = "    "


class Expr:
    """Base class of the expression nodes."""


@dataclass(frozen=True)
class Raw(Expr):
    """Text that is never split: a name, a literal, an attribute or a subscript."""

    text: str


@dataclass(frozen=True)
class Kw:
    """A keyword argument `name=value` (only inside a `Call`)."""

    name: str
    value: Expr


@dataclass(frozen=True)
class Call(Expr):
    func: str
    args: tuple[Expr | Kw, ...] = ()


@dataclass(frozen=True)
class Seq(Expr):
    """A list (`[...]`) or a tuple (`(...)`, with the trailing comma of a 1-tuple)."""

    open: str
    items: tuple[Expr, ...]

    @property
    def close(self) -> str:
        return "]" if self.open == "[" else ")"


@dataclass(frozen=True)
class BinOp(Expr):
    """`a op b op c` with one operator."""

    op: str
    items: tuple[Expr, ...]


def lit(v: Any) -> Expr:
    """A Python literal (ints, floats, bools, None, strings, tuples, lists, dicts)."""
    if isinstance(v, Expr):
        return v
    if v is None or isinstance(v, bool):
        return Raw(repr(v))
    if isinstance(v, int):
        return Raw(str(v))
    if isinstance(v, float):
        if math.isinf(v):
            return Raw('float("-inf")' if v < 0 else 'float("inf")')
        return Raw(repr(v))
    if isinstance(v, str):
        return Raw(quote(v))
    if isinstance(v, (tuple, list)):
        return Seq("(" if isinstance(v, tuple) else "[", tuple(lit(x) for x in v))
    if isinstance(v, dict):  # short mappings only: never split
        return Raw("{" + ", ".join(f"{flat(lit(k))}: {flat(lit(x))}" for k, x in v.items()) + "}")
    raise TypeError(f"no literal for {v!r}")


def quote(s: str) -> str:
    """A double-quoted string literal (ASCII; escapes as `repr` writes them)."""
    body = repr(s)[1:-1] if s else ""
    if repr(s).startswith("'"):
        body = body.replace("\\'", "'").replace('"', '\\"')
    return f'"{body}"'


def flat(e: Expr | Kw) -> str:
    if isinstance(e, Raw):
        return e.text
    if isinstance(e, Kw):
        return f"{e.name}={flat(e.value)}"
    if isinstance(e, Call):
        return f"{e.func}({', '.join(flat(a) for a in e.args)})"
    if isinstance(e, Seq):
        inner = ", ".join(flat(x) for x in e.items)
        if e.open == "(" and len(e.items) == 1:
            inner += ","
        return f"{e.open}{inner}{e.close}"
    if isinstance(e, BinOp):
        return f" {e.op} ".join(_operand(x) for x in e.items)
    raise TypeError(e)


def _operand(e: Expr) -> str:
    return f"({flat(e)})" if isinstance(e, BinOp) else flat(e)


def _parts(e: Expr) -> tuple[str, list[Expr | Kw], str] | None:
    """(opener text, items, closer) of a bracketed expression."""
    if isinstance(e, Call):
        return f"{e.func}(", list(e.args), ")"
    if isinstance(e, Seq):
        return e.open, list(e.items), e.close
    return None


def _fits(indent: int, text: str) -> bool:
    return indent * len(INDENT) + len(text) <= WIDTH


def split(prefix: str, e: Expr | Kw, indent: int, suffix: str = "") -> list[str]:
    """Lines (with their indentation) of `prefix + e + suffix`."""
    pad = INDENT * indent
    if isinstance(e, Kw):
        return split(prefix + e.name + "=", e.value, indent, suffix)
    one = prefix + flat(e) + suffix
    if _fits(indent, one):
        return [pad + one]
    if isinstance(e, BinOp):
        return [pad + prefix + "(", *_operands(e, indent + 1), pad + ")" + suffix]
    parts = _parts(e)
    if parts is None or not parts[1]:
        return [pad + one]
    opener, items, closer = parts
    head = pad + prefix + opener
    tail = pad + closer + suffix
    one_tuple = isinstance(e, Seq) and e.open == "(" and len(items) == 1
    sole = len(items) == 1 and not one_tuple
    if sole or not isinstance(e, Seq):  # a split list or tuple has one item per line
        body = ", ".join(flat(x) for x in items)
        if _fits(indent + 1, body):
            return [head, pad + INDENT + body, tail]
    if sole:
        return [head, *split("", items[0], indent + 1), tail]
    lines = [head]
    for x in items:
        lines += split("", x, indent + 1, ",")
    return [*lines, tail]


def _operands(e: BinOp, indent: int) -> list[str]:
    """A chain inside parentheses: on one line if it fits, else one operand per line."""
    pad = INDENT * indent
    body = " ".join([_operand(e.items[0])] + [f"{e.op} {_operand(x)}" for x in e.items[1:]])
    if _fits(indent, body):
        return [pad + body]
    return [pad + _operand(e.items[0])] + [pad + f"{e.op} {_operand(x)}" for x in e.items[1:]]


def _value(prefix: str, e: Expr, indent: int) -> list[str]:
    """The right-hand side of an assignment or a return, as ruff lays it out: split at the
    value's own brackets when the first line fits, else inside added parentheses."""
    pad = INDENT * indent
    one = prefix + flat(e)
    if _fits(indent, one):
        return [pad + one]
    if isinstance(e, BinOp):
        return split(prefix, e, indent)
    parts = _parts(e)
    if parts is not None and parts[1] and _fits(indent, prefix + parts[0]):
        return split(prefix, e, indent)
    if parts is None and not _fits(indent + 1, flat(e)):
        return [pad + one]  # parentheses would not help
    return [pad + prefix + "(", *split("", e, indent + 1), pad + ")"]


def assign(target: str, e: Expr, indent: int, comment: str = "") -> list[str]:
    """`target = e`, with `  # comment` when it all fits on one line."""
    lines = _value(f"{target} = ", e, indent)
    if comment and len(lines) == 1 and len(lines[0]) + 4 + len(comment) <= WIDTH:
        lines = [f"{lines[0]}  # {comment}"]
    return lines


def returns(values: list[str], indent: int) -> list[str]:
    """`return a` or `return a, b` (parenthesized, one per line, when too long)."""
    pad = INDENT * indent
    if len(values) == 1:
        return _value("return ", Raw(values[0]), indent)
    one = "return " + ", ".join(values)
    if _fits(indent, one):
        return [pad + one]
    return [pad + "return (", *[pad + INDENT + v + "," for v in values], pad + ")"]


def signature(name: str, params: list[str], ret: str | None, indent: int) -> list[str]:
    """`def name(params) -> ret:` split like ruff splits a signature."""
    pad = INDENT * indent
    tail = f") -> {ret}:" if ret else "):"
    one = f"def {name}(" + ", ".join(params) + tail
    if _fits(indent, one):
        return [pad + one]
    body = ", ".join(params)
    if _fits(indent + 1, body):
        return [pad + f"def {name}(", pad + INDENT + body, pad + tail]
    return [pad + f"def {name}(", *[pad + INDENT + p + "," for p in params], pad + tail]
