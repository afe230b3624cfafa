"""`$param` and `${expression}` values, parsed once and evaluated by netspec (never Python's eval).

Expressions take numbers, param names, `+ - * / // %` and parentheses, and at most one
comparison (`== != < <= > >=`, giving true or false, for `when:`). `/` gives a float;
`//` and `%` follow Python's floor semantics. Results stay within 64-bit integers and finite
floats: anything larger is an error, so no expression can make netspec compute for long.

`parse(text)` gives an `Expr`, which the IR keeps beside each value it computed, so that code
generators can write the spec's own arithmetic (`width // 4`) instead of a number.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

MAX_EXPR = 200
MAX_NESTING = 32
MAX_INT = 2**63 - 1  # results beyond this are refused (and never reach a shape or a weight)
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN = re.compile(
    r"\s*(?:(?P<num>(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>//|==|!=|<=|>=|[-+*/%()<>])|(?P<bad>\S))"
)
HELP = (
    "expressions take numbers, params, + - * / // %, parentheses and one comparison "
    "(== != < <= > >=)"
)
COMPARE = ("==", "!=", "<", "<=", ">", ">=")
# binding strength, as in Python; a comparison (true or false: `when:`) binds loosest
_LEVEL = {"+": 1, "-": 1, "*": 2, "/": 2, "//": 2, "%": 2, **dict.fromkeys(COMPARE, 0)}
_NEG = 3  # unary minus binds tighter than * / // %, in netspec as in Python
_ATOM = 4


class ExprError(Exception):
    """`name` is set when a param was not found (the caller may know why)."""

    def __init__(self, message: str, hint: str | None = None, name: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.name = name


# A parsed expression is a tree of tuples: ("num", value), ("name", id), ("neg", operand),
# or (op, left, right) with op one of + - * / // %.
Tree = tuple


@dataclass(frozen=True)
class Expr:
    """A `$param` or `${expression}` as written in a spec.

    `text` is the value exactly as written (`"$w"`, `"${2 * w}"`). A bare `$name` stands for the
    param's whole value, which may be any YAML value (`padding: $pad` with `pad: same`); inside
    `${...}` every name must be a number. Which scope a name belongs to is the IR's to say (see
    `netspec.ir.Node.exprs` and `BlockUse.args`)."""

    text: str
    tree: Tree

    @property
    def whole(self) -> bool:
        """Written as `$name`: the param's value itself, of any type."""
        return not self.text.startswith("${")

    def names(self) -> tuple[str, ...]:
        """The param names referred to, in order of first appearance."""
        out: list[str] = []
        stack = [self.tree]
        while stack:
            t = stack.pop()
            if t[0] == "name":
                if t[1] not in out:
                    out.append(t[1])
            elif t[0] != "num":
                stack.extend(reversed(t[1:]))
        return tuple(out)

    def render(self, rename: Callable[[str], str] = lambda name: name) -> str:
        """Python source for the expression: the same operators, which mean the same in Python,
        with only the parentheses that Python needs; each param name passes through `rename`."""
        return _render(self.tree, rename)[0]

    def evaluate(self, env: Mapping[str, Any]) -> Any:
        """The value, with params looked up in `env`."""
        if self.whole:
            return lookup(self.tree[1], env)
        return _eval(self.tree, env, self.text[2:-1])

    def __str__(self) -> str:
        return self.text


def _render(t: Tree, rename: Callable[[str], str]) -> tuple[str, int]:
    kind = t[0]
    if kind == "num":
        return repr(t[1]), _ATOM
    if kind == "name":
        return rename(t[1]), _ATOM
    if kind == "neg":
        text, level = _render(t[1], rename)
        return "-" + (text if level >= _NEG else f"({text})"), _NEG
    level = _LEVEL[kind]
    left, ll = _render(t[1], rename)
    right, rl = _render(t[2], rename)
    if ll < level:
        left = f"({left})"
    if rl <= level:  # operators group to the left: a - (b - c) keeps its parentheses
        right = f"({right})"
    return f"{left} {kind} {right}", level


def _eval(t: Tree, env: Mapping[str, Any], text: str) -> Any:
    kind = t[0]
    if kind == "num":
        return t[1]
    if kind == "name":
        return number(lookup(t[1], env), t[1])
    if kind == "neg":
        return -_eval(t[1], env, text)
    a = _eval(t[1], env, text)
    b = _eval(t[2], env, text)
    if kind in COMPARE:
        return {
            "==": a == b,
            "!=": a != b,
            "<": a < b,
            "<=": a <= b,
            ">": a > b,
            ">=": a >= b,
        }[kind]
    if kind == "+":
        v = a + b
    elif kind == "-":
        v = a - b
    elif kind == "*":
        v = a * b
    else:
        if b == 0:
            raise ExprError(
                f"division by zero in expression {text!r}",
                "check the params the divisor is computed from",
            )
        v = a / b if kind == "/" else a // b if kind == "//" else a % b
    return _bounded(v, text)


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:  # only trailing whitespace is left
            break
        if m.group("num"):
            s = m.group("num")
            out.append(("num", _bounded(float(s) if any(c in s for c in ".eE") else int(s), text)))
        elif m.group("name"):
            out.append(("name", m.group("name")))
        elif m.group("op"):
            out.append(("op", m.group("op")))
        else:  # reported by the parser, which can say more (e.g. that calls are not allowed)
            out.append(("bad", m.group("bad")))
        pos = m.end()
    return out


def _bounded(v: int | float, text: str) -> int | float:
    if isinstance(v, float) and not math.isfinite(v):
        raise ExprError(f"expression {text!r} gives {v}, not a finite number")
    if isinstance(v, int) and abs(v) > MAX_INT:
        raise ExprError(f"expression {text!r} gives a number beyond 64-bit integers")
    return v


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, Any] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, Any]:
        t = self.peek()
        if t is None:
            raise ExprError(f"expression {self.text!r} ends too early", HELP)
        self.i += 1
        return t

    def unexpected(self, tok: tuple[str, Any]) -> ExprError:
        return ExprError(f"unexpected {tok[1]!r} in expression {self.text!r}", HELP)

    def parse(self) -> Tree:
        if not self.toks:
            raise ExprError("empty expression", HELP)
        t = self.expr()
        if self.peek() in [("op", c) for c in COMPARE]:
            t = (self.take()[1], t, self.expr())
        if self.peek() is not None:
            raise self.unexpected(self.peek())
        return t

    def expr(self) -> Tree:
        t = self.term()
        while self.peek() in (("op", "+"), ("op", "-")):
            t = (self.take()[1], t, self.term())
        return t

    def term(self) -> Tree:
        t = self.unary()
        while self.peek() in (("op", "*"), ("op", "/"), ("op", "//"), ("op", "%")):
            t = (self.take()[1], t, self.unary())
        return t

    def unary(self) -> Tree:
        negate = False
        while self.peek() in (("op", "-"), ("op", "+")):  # a loop, not recursion
            negate ^= self.take()[1] == "-"
        t = self.atom()
        if not negate:
            return t
        return t[1] if t[0] == "neg" else ("neg", t)  # -(-x) is x

    def atom(self) -> Tree:
        kind, val = self.take()
        if kind == "num":
            return ("num", val)
        if kind == "name":
            if self.peek() == ("op", "("):
                raise ExprError(
                    f"calls are not allowed in expressions ({val}(...)); netspec evaluates "
                    "expressions itself, not as Python",
                    HELP,
                )
            return ("name", val)
        if val == "(":
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise ExprError(
                    f"expression nested more than {MAX_NESTING} parentheses deep",
                    "split it into params",
                )
            t = self.expr()
            self.depth -= 1
            if self.peek() != ("op", ")"):
                raise ExprError(f"missing ')' in expression {self.text!r}", HELP)
            self.take()
            return t
        raise self.unexpected((kind, val))


def lookup(name: str, env: Mapping[str, Any]) -> Any:
    if name not in env:
        from .errors import did_you_mean

        guess = did_you_mean(name, env)
        if guess:
            hint = f"did you mean '${guess}'?"
        elif env:
            hint = "known params: " + ", ".join(sorted(env))
        else:
            hint = "declare it under params:"
        raise ExprError(f"unknown param '{name}'", hint, name=name)
    return env[name]


def number(v: Any, name: str) -> int | float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ExprError(
            f"param '{name}' is {_show(v)}, not a number, so it cannot be used in an expression"
        )
    return _bounded(v, name)


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def is_ref(v: Any) -> bool:
    return isinstance(v, str) and v.startswith("$")


def parse(text: str) -> Expr:
    """Parse a `$name` or `${expression}` string (raises ExprError)."""
    # a block body is lowered once per use: each short text is parsed once
    return _parse_cached(text) if len(text) <= MAX_EXPR + 3 else _parse(text)


@lru_cache(maxsize=4096)
def _parse_cached(text: str) -> Expr:
    return _parse(text)


def _parse(text: str) -> Expr:
    if text.startswith("${"):
        if not text.endswith("}"):
            raise ExprError(
                f"unterminated expression {_show(text)}", "write ${...} with a closing }"
            )
        body = text[2:-1]
        if len(body) > MAX_EXPR:
            raise ExprError(f"expression longer than {MAX_EXPR} characters", "split it into params")
        return Expr(text, _Parser(body).parse())
    name = text[1:]
    if not NAME.match(name):
        raise ExprError(
            f"{_show(text)} is not a param reference",
            "write $name for a param or ${expression} for arithmetic",
        )
    return Expr(text, ("name", name))


def find(v: Any) -> Any:
    """The expressions in a value as written, mirroring its structure: an Expr for a `$...`
    string, a list (an entry per item) or a mapping (only the keys that hold one) around
    nested ones, and None where the value holds no expression."""
    if is_ref(v):
        return parse(v)
    if isinstance(v, list):
        items = [find(x) for x in v]
        return items if any(x is not None for x in items) else None
    if isinstance(v, dict):
        found = {k: e for k, e in ((k, find(x)) for k, x in v.items()) if e is not None}
        return found or None
    return None


def resolve(v: Any, env: Mapping[str, Any]) -> Any:
    """Substitute `$name` and `${expr}` in a value (recursing into lists)."""
    if isinstance(v, list):
        return [resolve(x, env) for x in v]
    if not is_ref(v):
        return v
    return parse(v).evaluate(env)
