"""Pictures of a graph: SVG (laid out here, in pure Python), PNG (via resvg), DOT, Mermaid.

from netspec.render import render
svg = render(graph, "svg", collapse_blocks=True)
"""

from __future__ import annotations

from ..ir import Graph
from .model import Diagram, build_diagram

FORMATS = ("svg", "png", "dot", "mermaid", "markdown")
EXTENSIONS = {
    ".svg": "svg",
    ".png": "png",
    ".dot": "dot",
    ".gv": "dot",
    ".mmd": "mermaid",
    ".mermaid": "mermaid",
    ".md": "markdown",
}


def render(
    graph: Graph, fmt: str = "svg", *, collapse_blocks: bool = False, scale: float = 2.0
) -> str | bytes:
    """The picture of `graph` in `fmt`: text for svg, dot, mermaid and markdown (a Mermaid
    block), bytes for png (raises `png.PngUnavailable` without resvg-py)."""
    d = build_diagram(graph, collapse_blocks)
    if fmt == "svg":
        from .svg import render_svg

        return render_svg(d)
    if fmt == "png":
        from .png import svg_to_png
        from .svg import render_svg

        return svg_to_png(render_svg(d), scale)
    if fmt == "dot":
        from .dot import render_dot

        return render_dot(d)
    if fmt in ("mermaid", "markdown"):
        from .mermaid import render_mermaid

        text = render_mermaid(d)
        return f"```mermaid\n{text}```\n" if fmt == "markdown" else text
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


__all__ = ["EXTENSIONS", "FORMATS", "Diagram", "build_diagram", "render"]
