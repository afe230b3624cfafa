"""Docstring text in generated source: user text (a spec's description, its names) escaped so it
cannot end the docstring or hide characters, wrapped, and laid out as `ruff format` leaves it."""

from __future__ import annotations

import re
import textwrap

from .pyfmt import INDENT, WIDTH

# one escape sequence `escape` writes, or one plain character
_UNIT = re.compile(r"\\(?:x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|.)|.", re.S)


def escape(text: str) -> str:
    """Text that is safe inside a triple-quoted docstring: backslashes, quotes and characters
    that are not printable are written as escapes."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\t":
            out.append(" ")
        elif not ch.isprintable():
            code = ord(ch)
            out.append(
                f"\\x{code:02x}"
                if code < 0x100
                else f"\\u{code:04x}"
                if code < 0x10000
                else f"\\U{code:08x}"
            )
        else:
            out.append(ch)
    return "".join(out)


def wrap(text: str, width: int, cut_long: bool = False) -> list[str]:
    """Escaped lines of `text` wrapped at spaces; its line breaks are kept, blank lines
    collapsed. `cut_long`: a word longer than a line is cut between escape sequences (never
    inside one) instead of overflowing."""
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        piece = escape(raw).strip()
        if not piece:
            if lines and lines[-1]:
                lines.append("")
            continue
        for line in textwrap.wrap(piece, width, break_long_words=False, break_on_hyphens=False):
            lines += _cut(line, width) if cut_long else [line]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _cut(line: str, width: int) -> list[str]:
    out = []
    while len(line) > width:
        cut = 0
        for m in _UNIT.finditer(line):
            if m.end() > width:
                break
            cut = m.end()
        out.append(line[:cut])
        line = line[cut:]
    return [*out, line]


def docstring(lines: list[str], indent: int, width: int = WIDTH) -> list[str]:
    """A docstring (already escaped lines) as ruff formats it: one line if it fits, else the
    closing quotes alone."""
    pad = INDENT * indent
    if len(lines) == 1 and len(pad) + len(lines[0]) + 6 > width and " " in lines[0]:
        # ruff writes a docstring with one line of text on one line: make it two
        cut = lines[0].rindex(" ", 0, max(width - len(pad) - 6, lines[0].index(" ") + 1))
        lines = [lines[0][:cut], lines[0][cut + 1 :]]
    if len(lines) == 1:
        return [f'{pad}"""{lines[0]}"""']
    out = [f'{pad}"""{lines[0]}']
    out += [pad + ln if ln else "" for ln in lines[1:]]
    return [*out, pad + '"""']
