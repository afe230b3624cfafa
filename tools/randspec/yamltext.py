"""Specs as YAML text: `to_yaml(spec)` writes plain data (dicts, lists, scalars) that
`netspec.loads` reads back to the same data (flow style per layer, strings quoted only when
YAML would read them as something else)."""

from __future__ import annotations

import json
import re
from typing import Any

_PLAIN = re.compile(r"(\$?[A-Za-z_][A-Za-z0-9_]*)(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_RESERVED = set("null Null NULL true True TRUE false False FALSE y Y n N yes no on off".split())


def _scalar(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        text = repr(v)
        return text if re.fullmatch(r"-?[0-9.]+(e[-+]?[0-9]+)?", text) else json.dumps(v)
    if isinstance(v, str):
        if _PLAIN.match(v) and v not in _RESERVED:
            return v
        return quote(v)
    raise TypeError(type(v))


def quote(text: str) -> str:
    """A YAML double-quoted scalar: printable ASCII as is, everything else escaped."""
    out = ['"']
    for ch in text:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= o < 0x7F:
            out.append(ch)
        elif o <= 0xFFFF:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


def _flow(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {_flow(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_flow(x) for x in v) + "]"
    return _scalar(v)


def _layers(layers: list, indent: str) -> list[str]:
    return [f"{indent}- {_flow(layer)}" for layer in layers]


def to_yaml(spec: dict) -> str:
    """The spec as YAML text: block style at the top, one flow mapping per layer."""
    lines: list[str] = []
    for key, v in spec.items():
        if key in ("inputs", "params", "blocks") and isinstance(v, dict) and v:
            lines.append(f"{key}:")
            for k, x in v.items():
                if key == "blocks" and isinstance(x, dict):
                    lines.append(f"  {_scalar(k)}:")
                    for bk, bv in x.items():
                        if bk == "layers" and isinstance(bv, list):
                            lines.append("    layers:")
                            lines += _layers(bv, "      ")
                        else:
                            lines.append(f"    {_scalar(bk)}: {_flow(bv)}")
                else:
                    lines.append(f"  {_scalar(k)}: {_flow(x)}")
        elif key == "layers" and isinstance(v, list):
            lines.append("layers:")
            lines += _layers(v, "  ")
        else:
            lines.append(f"{_scalar(key)}: {_flow(v)}")
    return "\n".join(lines) + "\n"
