"""`$param` and `${expression}` values, evaluated by netspec itself (never Python's eval).

Expressions take numbers, param names, `+ - * / // %` and parentheses. `/` gives a float;
`//` and `%` follow Python's floor semantics.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MAX_EXPR = 200
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN = re.compile(
    r"\s*(?:(?P<num>(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>//|[-+*/%()]))"
)
HELP = "expressions take numbers, params, + - * / // % and parentheses"


class ExprError(Exception):
    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            bad = text[pos:].lstrip()[:1]
            raise ExprError(f"unexpected {bad!r} in expression {text!r}", HELP)
        if m.group("num"):
            s = m.group("num")
            out.append(("num", float(s) if any(c in s for c in ".eE") else int(s)))
        elif m.group("name"):
            out.append(("name", m.group("name")))
        else:
            out.append(("op", m.group("op")))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str, env: Mapping[str, Any]):
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.env = env

    def peek(self) -> tuple[str, Any] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, Any]:
        t = self.peek()
        if t is None:
            raise ExprError(f"expression {self.text!r} ends too early", HELP)
        self.i += 1
        return t

    def parse(self) -> Any:
        if not self.toks:
            raise ExprError("empty expression", HELP)
        v = self.expr()
        if self.peek() is not None:
            raise ExprError(f"unexpected {self.peek()[1]!r} in expression {self.text!r}", HELP)
        return v

    def expr(self) -> Any:
        v = self.term()
        while self.peek() in (("op", "+"), ("op", "-")):
            op = self.take()[1]
            r = self.term()
            v = v + r if op == "+" else v - r
        return v

    def term(self) -> Any:
        v = self.unary()
        while self.peek() in (("op", "*"), ("op", "/"), ("op", "//"), ("op", "%")):
            op = self.take()[1]
            r = self.unary()
            if op != "*" and r == 0:
                raise ExprError(f"division by zero in expression {self.text!r}")
            if op == "*":
                v = v * r
            elif op == "/":
                v = v / r
            elif op == "//":
                v = v // r
            else:
                v = v % r
        return v

    def unary(self) -> Any:
        if self.peek() in (("op", "-"), ("op", "+")):
            op = self.take()[1]
            v = self.unary()
            return -v if op == "-" else v
        return self.atom()

    def atom(self) -> Any:
        kind, val = self.take()
        if kind == "num":
            return val
        if kind == "name":
            if self.peek() == ("op", "("):
                raise ExprError(f"calls are not allowed in expressions ({val}(...))", HELP)
            return number(lookup(val, self.env), val)
        if val == "(":
            v = self.expr()
            if self.take() != ("op", ")"):
                raise ExprError(f"missing ')' in expression {self.text!r}")
            return v
        raise ExprError(f"unexpected {val!r} in expression {self.text!r}", HELP)


def lookup(name: str, env: Mapping[str, Any]) -> Any:
    if name not in env:
        from .errors import did_you_mean

        guess = did_you_mean(name, env)
        hint = f"did you mean '${guess}'?" if guess else (
            "known params: " + ", ".join(sorted(env)) if env else "the spec has no params")
        raise ExprError(f"unknown param '{name}'", hint)
    return env[name]


def number(v: Any, name: str) -> int | float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ExprError(f"param '{name}' is {v!r}, not a number, so it cannot be used in an "
                        "expression")
    return v


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
            raise ExprError(f"unterminated expression {v!r}", "write ${...} with a closing }")
        body = v[2:-1]
        if len(body) > MAX_EXPR:
            raise ExprError(f"expression longer than {MAX_EXPR} characters")
        return _Parser(body, env).parse()
    name = v[1:]
    if not NAME.match(name):
        raise ExprError(f"{v!r} is not a param reference",
                        "write $name for a param or ${expression} for arithmetic")
    return lookup(name, env)
