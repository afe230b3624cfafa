"""Text helpers shared by the targets that emit Python source."""

from __future__ import annotations


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
