"""User-facing errors: location, path, what was expected, and a suggestion."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

PathPart = str | int
Path = tuple[PathPart, ...]


def path_str(path: Sequence[PathPart], limit: int | None = None) -> str:
    """`('layers', 3, 'units')` -> `layers[3].units`; with `limit`, a path of more parts keeps
    its first and last parts around `...`."""
    if limit is not None and len(path) > limit:
        keep = limit // 2
        return path_str(path[:keep]) + "..." + path_str(path[-keep:]).lstrip(".")
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


# Names other frameworks use for what netspec calls otherwise: suggested when the target name is
# among the choices (an unknown activation, init, op, ...).
ALIASES = {
    "linear": "identity",
    "none": "identity",
    "he": "he_uniform",
    "kaiming": "he_uniform",
    "kaiming_uniform": "he_uniform",
    "kaiming_normal": "he_normal",
    "xavier": "glorot_uniform",
    "xavier_uniform": "glorot_uniform",
    "xavier_normal": "glorot_normal",
    "lecun": "lecun_normal",
    "lecun_uniform": "lecun_normal",
    "glorot": "glorot_uniform",
    "swish": "silu",
    "fc": "dense",
    "linear_layer": "dense",
    "attention": "multi_head_attention",
    "mha": "multi_head_attention",
    "batchnorm": "batch_norm",
    "layernorm": "layer_norm",
}


def did_you_mean(word: object, choices: Iterable[str]) -> str | None:
    """The closest valid name, if one is close enough to be a likely typo, or the name netspec
    uses for another framework's word (`ALIASES`). A match of another first letter must be
    closer (`attention` is not `flatten`)."""
    if not isinstance(word, str):
        return None
    choices = list(choices)
    alias = ALIASES.get(word.lower().replace("-", "_"))
    if alias in choices:
        return alias
    lowered = {c.lower(): c for c in choices}
    if word.lower() in lowered:
        return lowered[word.lower()]
    for close in difflib.get_close_matches(word, choices, n=3, cutoff=0.6):
        ratio = difflib.SequenceMatcher(None, word, close).ratio()
        if ratio >= 0.8 or close[:1].lower() == word[:1].lower():
            return close
    return None


_BIDI = {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}


def printable(text: str, lines: bool = False) -> str:
    """User text (a description, a path) made safe to print or draw: newlines and tabs become
    spaces; control characters (ANSI escapes included), bidi overrides, line separators, lone
    surrogates and the XML non-characters become visible escapes (`\\x1b`, `\\u202e`), so
    nothing reaches a terminal, SVG (valid XML), DOT or Mermaid raw. Other text (any script,
    emoji) is kept. With `lines`, newlines are kept (a message of several lines)."""
    out = []
    for c in text:
        o = ord(c)
        if lines and c == "\n":
            out.append(c)
        elif c in "\n\t\r":
            out.append(" ")
        elif o < 0x20 or 0x7F <= o < 0xA0:
            out.append(f"\\x{o:02x}")
        elif o in _BIDI or o in (0x2028, 0x2029, 0xFFFE, 0xFFFF) or 0xD800 <= o < 0xE000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(c)
    return "".join(out)


def titled(name: str, description: str) -> str:
    """`name: description` (the heading of inspect and of every drawing), printable."""
    return printable(name + (f": {description}" if description else ""))


class SpecError(Exception):
    """An error in a spec, reported to the user without a traceback.

    `path` locates the offending node in the YAML document; the loader attaches the file name
    and the node's line and column (1-based) before the error reaches the user.
    """

    def __init__(
        self,
        message: str,
        path: Sequence[PathPart] = (),
        *,
        hint: str | None = None,
        line: int | None = None,
        col: int | None = None,
        file: str | None = None,
        key: bool = False,
    ):
        super().__init__(message)
        self.message = message
        self.path: Path = tuple(path)
        self.hint = hint
        self.line = line
        self.col = col
        self.file = file
        self.key = key  # point at the mapping key rather than its value
        self.source_line: str | None = None
        self.note: str | None = None  # a second remark, printed after the hint

    def location(self) -> str:
        where = self.file or "<spec>"
        if self.line is not None:
            where += f":{self.line}:{self.col or 1}"
        return where

    def __str__(self) -> str:
        head = f"{self.location()}: error: "
        if self.path:
            head += f"{path_str(self.path, limit=16)}: "
        text = head + _cap(self.message)
        if self.source_line is not None and self.col is not None:
            line, col = _window(self.source_line, self.col)
            text += f"\n    {line}\n    {' ' * (col - 1)}^"
        if self.hint:
            text += f"\n  hint: {_cap(self.hint)}"
        if self.note:
            text += f"\n  note: {self.note}"
        return printable(text, lines=True)  # user text quoted anywhere reaches no terminal raw


def _cap(text: str, limit: int = 600) -> str:
    """Messages quote user values; a huge value is cut so that the error stays readable."""
    return text if len(text) <= limit else text[: limit - 5] + " ..."


def _window(line: str, col: int, width: int = 100) -> tuple[str, int]:
    """A long source line cut to `width` characters around `col` (tabs shown as spaces)."""
    line = "".join(c if c.isprintable() else " " if c == "\t" else "?" for c in line)
    if len(line) <= width:
        return line, col
    start = max(0, min(col - 1 - width // 2, len(line) - width))
    cut = line[start : start + width]
    if start > 0:
        cut, col = "..." + cut[3:], col - start
    if start + width < len(line):
        cut = cut[:-3] + "..."
    return cut, col


class SpecErrors(Exception):
    """Several independent spec errors, reported together in document order."""

    def __init__(self, errors: list[SpecError]):
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


def unknown(kind: str, word: object, choices: Iterable[str], path: Sequence[PathPart], **kw):
    """A SpecError for an unknown name, with a did-you-mean when one is close."""
    choices = sorted(choices)
    guess = did_you_mean(word, choices)
    if guess is not None:
        hint = f"did you mean '{guess}'?"
    elif len(choices) <= 12:
        hint = "expected one of: " + ", ".join(choices) if choices else None
    else:
        hint = None
    return SpecError(f"unknown {kind} {word!r}", path, hint=hint, **kw)
