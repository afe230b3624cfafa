"""`$param` and `${expression}` values, evaluated by netspec itself (never Python's eval).

Expressions take numbers, param names, `+ - * / // %` and parentheses. `/` gives a float;
`//` and `%` follow Python's floor semantics. Results stay within 64-bit integers and finite
floats: anything larger is an error, so no expression can make netspec compute for long.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

MAX_EXPR = 200
MAX_NESTING = 32
MAX_INT = 2**63 - 1  # results beyond this are refused (and never reach a shape or a weight)
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN = re.compile(
    r"\s*(?:(?P<num>(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>//|[-+*/%()])|(?P<bad>\S))"
)
HELP = "expressions take numbers, params, + - * / // % and parentheses"


class ExprError(Exception):
    """`name` is set when a param was not found (the caller may know why)."""

    def __init__(self, message: str, hint: str | None = None, name: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.name = name


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
    def __init__(self, text: str, env: Mapping[str, Any]):
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.env = env
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

    def parse(self) -> Any:
        if not self.toks:
            raise ExprError("empty expression", HELP)
        v = self.expr()
        if self.peek() is not None:
            raise self.unexpected(self.peek())
        return v

    def expr(self) -> Any:
        v = self.term()
        while self.peek() in (("op", "+"), ("op", "-")):
            op = self.take()[1]
            r = self.term()
            v = _bounded(v + r if op == "+" else v - r, self.text)
        return v

    def term(self) -> Any:
        v = self.unary()
        while self.peek() in (("op", "*"), ("op", "/"), ("op", "//"), ("op", "%")):
            op = self.take()[1]
            r = self.unary()
            if op != "*" and r == 0:
                raise ExprError(
                    f"division by zero in expression {self.text!r}",
                    "check the params the divisor is computed from",
                )
            if op == "*":
                v = v * r
            elif op == "/":
                v = v / r
            elif op == "//":
                v = v // r
            else:
                v = v % r
            v = _bounded(v, self.text)
        return v

    def unary(self) -> Any:
        negate = False
        while self.peek() in (("op", "-"), ("op", "+")):  # a loop, not recursion
            negate ^= self.take()[1] == "-"
        v = self.atom()
        return -v if negate else v

    def atom(self) -> Any:
        kind, val = self.take()
        if kind == "num":
            return val
        if kind == "name":
            if self.peek() == ("op", "("):
                raise ExprError(
                    f"calls are not allowed in expressions ({val}(...)); netspec evaluates "
                    "expressions itself, not as Python",
                    HELP,
                )
            return number(lookup(val, self.env), val)
        if val == "(":
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise ExprError(
                    f"expression nested more than {MAX_NESTING} parentheses deep",
                    "split it into params",
                )
            v = self.expr()
            self.depth -= 1
            if self.peek() != ("op", ")"):
                raise ExprError(f"missing ')' in expression {self.text!r}", HELP)
            self.take()
            return v
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


def resolve(v: Any, env: Mapping[str, Any]) -> Any:
    """Substitute `$name` and `${expr}` in a value (recursing into lists)."""
    if isinstance(v, list):
        return [resolve(x, env) for x in v]
    if not is_ref(v):
        return v
    if v.startswith("${"):
        if not v.endswith("}"):
            raise ExprError(f"unterminated expression {_show(v)}", "write ${...} with a closing }")
        body = v[2:-1]
        if len(body) > MAX_EXPR:
            raise ExprError(f"expression longer than {MAX_EXPR} characters", "split it into params")
        return _Parser(body, env).parse()
    name = v[1:]
    if not NAME.match(name):
        raise ExprError(
            f"{_show(v)} is not a param reference",
            "write $name for a param or ${expression} for arithmetic",
        )
    return lookup(name, env)
