"""SVG from a laid-out diagram: plain shapes and text, no scripts, no external resources.

Only presentation attributes are used (no CSS), so every SVG renderer draws the same picture;
the background is opaque so the picture reads in dark themes too.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from .layout import (
    CL_LABEL,
    LABEL_PX,
    LINE,
    PAD_X,
    TEXT_PX,
    TITLE_PX,
    Layout,
    fit,
    layout,
    text_width,
)
from .model import Box, Diagram

FONT = "DejaVu Sans Mono, Menlo, Consolas, Liberation Mono, monospace"
HEADER = 46
# (fill, stroke) per op family; inputs, outputs and collapsed blocks stand apart.
COLOURS = {
    "convolution": ("#e3f2fd", "#1e88e5"),
    "linear": ("#e0f2f1", "#00897b"),
    "pooling": ("#f3e5f5", "#8e24aa"),
    "normalization": ("#fff8e1", "#f9a825"),
    "regularization": ("#eceff1", "#78909c"),
    "shape": ("#f5f5f5", "#9e9e9e"),
    "merge": ("#fff3e0", "#ef6c00"),
    "embedding": ("#fce4ec", "#d81b60"),
    "recurrent": ("#ede7f6", "#5e35b1"),
    "activation": ("#e8f5e9", "#43a047"),
    "block": ("#e1f5fe", "#0277bd"),
    "input": ("#37474f", "#263238"),
    "output": ("#37474f", "#263238"),
}
CLUSTER_FILLS = ("#f6f8fb", "#edf1f6")
EDGE = "#546e7a"


def _text(x: float, y: float, s: str, px: int, fill: str, *, bold=False, anchor="middle") -> str:
    weight = ' font-weight="bold"' if bold else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{px}" fill="{fill}"{weight} '
        f'text-anchor="{anchor}">{escape(s)}</text>'
    )


def _element_id(box: Box) -> str:
    return ("node-" if box.kind in ("node", "block") else box.kind + "-") + box.id.replace(
        "output:", ""
    )


def _box(box: Box, r, width: float) -> list[str]:
    fill, stroke = COLOURS.get(box.family, ("#ffffff", "#616161"))
    dark = box.kind in ("input", "output")
    room = width - 2 * PAD_X
    out = [
        f"<g id={quoteattr(_element_id(box))} data-name={quoteattr(box.id)} "
        f'data-kind="{box.kind}">',
        f"<title>{escape(box.tooltip or box.id)}</title>",
    ]
    radius = r.h / 2 if dark else 6
    out.append(
        f'<rect x="{r.x:.1f}" y="{r.y:.1f}" width="{r.w:.1f}" height="{r.h:.1f}" '
        f'rx="{radius:.1f}" fill="{fill}" stroke="{stroke}" stroke-width="1.3"/>'
    )
    if box.kind == "block":  # a collapsed block: a second frame inside
        out.append(
            f'<rect x="{r.x + 3:.1f}" y="{r.y + 3:.1f}" width="{r.w - 6:.1f}" '
            f'height="{r.h - 6:.1f}" rx="4" fill="none" stroke="{stroke}" '
            'stroke-width="0.8"/>'
        )
    cx = r.cx
    y = r.y + 5 + LINE - 3
    title_fill = "#ffffff" if dark else "#212121"
    if dark:
        out.append(_text(cx, y, fit(box.heading, room, TITLE_PX), TITLE_PX, title_fill, bold=True))
        out.append(_text(cx, y + LINE, fit(box.shape, room, TEXT_PX), TEXT_PX, "#cfd8dc"))
    else:
        out.append(_text(cx, y, fit(box.title, room, TITLE_PX), TITLE_PX, title_fill, bold=True))
        out.append(_text(cx, y + LINE, fit(box.detail, room, TEXT_PX), TEXT_PX, "#37474f"))
        out.append(_text(cx, y + 2 * LINE, fit(box.shape, room, TEXT_PX), TEXT_PX, "#607d8b"))
    out.append("</g>")
    return out


def _path(points, vertical) -> str:
    d = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
    for (x0, y0), (x1, y1), straight in zip(points[:-1], points[1:], vertical, strict=True):
        if straight:
            d.append(f"L{x1:.1f},{y1:.1f}")
        else:
            m = (y1 - y0) / 2
            d.append(f"C{x0:.1f},{y0 + m:.1f} {x1:.1f},{y1 - m:.1f} {x1:.1f},{y1:.1f}")
    return " ".join(d)


def render_svg(d: Diagram) -> str:
    lay: Layout = layout(d, top=HEADER)
    head_w = max(text_width(d.title, 14), text_width(d.subtitle, 11)) + 32
    w, h = max(lay.width, min(head_w, 960.0), 360.0), lay.height
    shift = (w - lay.width) / 2  # centre the drawing under a wider header
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" '
        f'viewBox="0 0 {w:.0f} {h:.0f}" font-family={quoteattr(FONT)}>',
        f"<title>{escape(d.title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" '
        f'markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" '
        f'fill="{EDGE}"/></marker></defs>',
        f'<rect width="{w:.0f}" height="{h:.0f}" fill="#ffffff"/>',
        _text(16, 22, fit(d.title, w - 32, 14), 14, "#212121", bold=True, anchor="start"),
        _text(16, 39, fit(d.subtitle, w - 32, 11), 11, "#607d8b", anchor="start"),
    ]
    out.append(f'<g transform="translate({shift:.1f},0)">')
    for cl in d.clusters:  # parents first, so nested frames are drawn over them
        if cl not in lay.clusters:
            continue
        r = lay.clusters[cl]
        depth = len(d.path(cl)) - 1
        out.append(
            f'<g data-cluster={quoteattr(cl)}><rect x="{r.x:.1f}" y="{r.y:.1f}" '
            f'width="{r.w:.1f}" height="{r.h:.1f}" rx="8" '
            f'fill="{CLUSTER_FILLS[depth % 2]}" stroke="#90a4ae" '
            'stroke-dasharray="5 3"/>'
        )
        label = fit(d.clusters[cl].label, r.w - 2 * PAD_X, LABEL_PX)
        out.append(
            _text(
                r.x + 8, r.y + CL_LABEL - 4, label, LABEL_PX, "#455a64", bold=True, anchor="start"
            )
            + "</g>"
        )
    for route in lay.routes:
        e = route.edge
        out.append(
            f'<path d="{_path(route.points, route.vertical)}" fill="none" '
            f'stroke="{EDGE}" stroke-width="1.3" marker-end="url(#arrow)" '
            f"data-from={quoteattr(e.src)} data-to={quoteattr(e.dst)}/>"
        )
    for box in d.boxes.values():
        out += _box(box, lay.boxes[box.id], lay.box_w)
    for route in lay.routes:  # labels last, over the lines
        if route.edge.label:
            x, y = route.points[-1]
            out.append(
                f'<text x="{x + 4:.1f}" y="{y - 5:.1f}" font-size="10" fill="#bf360c" '
                f'font-weight="bold" stroke="#ffffff" stroke-width="3" '
                f'paint-order="stroke">{escape(route.edge.label)}</text>'
            )
    out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"
