"""What the Keras generator prints that `python.pyfmt` does not: a layer applied to its inputs,
`x = layers.Conv2D(64, 3, name="conv1")(x)`, a call of a call, laid out as `ruff format` lays it
out (the arguments are already rendered text)."""

from __future__ import annotations

from ..python.pyfmt import WIDTH


def call_lines(head: str, callee: str, args: list[str], tail: str) -> list[str]:
    """`head callee(args)tail` laid out as `ruff format` does: on one line if it fits; else,
    when `tail` is a call `(x)` whose opening line fits, split there; else split inside the
    arguments (on one indented line if they fit, else one per line with a trailing comma).
    (`python.pyfmt` prints one call; a layer applied to its inputs is a call of a call.)"""
    indent = head[: len(head) - len(head.lstrip())]
    inner = ", ".join(args)
    one = f"{head}{callee}({inner}){tail}"
    if len(one) <= WIDTH:
        return [one]
    if tail.startswith("(") and len(f"{head}{callee}({inner})(") <= WIDTH:
        return [f"{head}{callee}({inner})(", *_body(indent, tail[1:-1]), f"{indent})"]
    if len(f"{indent}    {inner}") <= WIDTH:
        mid = [f"{indent}    {inner}"]
    else:
        mid = [line for a in args for line in _arg(indent + "    ", a)]
    if len(f"{indent}){tail}") <= WIDTH or not tail.startswith("("):
        return [f"{head}{callee}(", *mid, f"{indent}){tail}"]
    return [f"{head}{callee}(", *mid, f"{indent})(", *_body(indent, tail[1:-1]), f"{indent})"]


def _arg(indent: str, arg: str) -> list[str]:
    """One argument per line; a `key=[...]` list too long for its line is exploded."""
    if len(f"{indent}{arg},") > WIDTH and arg.endswith(")") and "(" in arg:
        head, _, inner = arg[:-1].partition("(")  # a call (`layers.LSTM(...)`) split inside
        if _split(inner) is not None and "[" not in head:
            if len(f"{indent}    {inner}") <= WIDTH:
                return [f"{indent}{head}(", f"{indent}    {inner}", f"{indent}),"]
            return [f"{indent}{head}(", *_args(indent + "    ", _split(inner)), f"{indent}),"]
    key, eq, rest = arg.partition("=[")
    if len(f"{indent}{arg},") <= WIDTH or not eq or not rest.endswith("]"):
        return [f"{indent}{arg},"]
    items = rest[:-1].split(", ")
    return [f"{indent}{key}=[", *[f"{indent}    {a}," for a in items], f"{indent}],"]


def _body(indent: str, body: str) -> list[str]:
    """A call's single argument on its own line(s): a list too long for one line is exploded."""
    if len(f"{indent}    {body}") <= WIDTH or not body.startswith("["):
        return [f"{indent}    {body}"]
    items = body[1:-1].split(", ")
    return [f"{indent}    [", *[f"{indent}        {a}," for a in items], f"{indent}    ]"]


def _args(indent: str, args: list[str]) -> list[str]:
    return [line for a in args for line in _arg(indent, a)]


def _split(text: str) -> list[str] | None:
    """Arguments separated by top-level `, ` (None: brackets or quotes do not balance)."""
    out, depth, start, quote = [], 0, 0, ""
    for i, c in enumerate(text):
        if quote:
            quote = "" if c == quote and text[i - 1] != "\\" else quote
        elif c in "\"'":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            out.append(text[start:i].strip())
            start = i + 1
    if depth or quote:
        return None
    return [*out, text[start:].strip()]
