"""PNG through resvg (the `resvg-py` wheel: no system library), imported only when asked for."""

from __future__ import annotations

import os
import sys
from pathlib import Path

MISSING = (
    "PNG output needs the resvg-py package (a self-contained wheel): "
    "pip install 'netspec[view]' or pip install resvg-py; "
    "or write SVG (.svg), DOT (.dot) or Mermaid (.mmd), which need nothing extra"
)
_FONT_DIRS = [
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.fonts",
    "~/.local/share/fonts",
    "/System/Library/Fonts",
    "/Library/Fonts",
    "~/Library/Fonts",
    os.path.join(os.environ.get("WINDIR", r"C:\Windows"), "Fonts"),
]


class PngUnavailable(RuntimeError):
    """resvg-py is not installed."""


def have_fonts() -> bool:
    """Whether any font file is where resvg looks; without one a PNG has no text."""
    for d in _FONT_DIRS:
        root = Path(d).expanduser()
        if root.is_dir() and any(
            p.suffix.lower() in (".ttf", ".otf", ".ttc") for p in root.rglob("*")
        ):
            return True
    return False


def svg_to_png(svg: str, scale: float = 2.0) -> bytes:
    try:
        import resvg_py
    except ImportError:
        raise PngUnavailable(MISSING) from None
    if not have_fonts():
        print(
            "netspec: warning: no fonts found, so the PNG will have no text; install one "
            "(e.g. Debian's fonts-dejavu-core) or use SVG",
            file=sys.stderr,
        )
    return bytes(resvg_py.svg_to_bytes(svg_string=svg, zoom=scale))
