"""Mermaid flowchart text, which GitHub renders inside a ```mermaid block."""

from __future__ import annotations

import json

from .model import Box, Diagram
from .svg import COLOURS


def _esc(s: str) -> str:
    """Text for a quoted Mermaid label: its entity codes, not HTML escapes."""
    for ch, code in (("&", "#amp;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        s = s.replace(ch, code)
    return s


def _label(box: Box) -> str:
    if box.kind in ("input", "output"):
        lines = [f"<b>{_esc(box.heading)}</b>", _esc(box.shape)]
    else:
        lines = [f"<b>{_esc(box.title)}</b>", _esc(box.detail), _esc(box.shape)]
    return "<br/>".join(lines)


def render_mermaid(d: Diagram) -> str:
    # Mermaid ids are plain words; names with dots (and `end`) would break the syntax.
    ids = {b: f"n{i}" for i, b in enumerate(d.boxes)}
    cids = {c: f"c{i}" for i, c in enumerate(d.clusters)}
    out = ["---", f"title: {json.dumps(d.title, ensure_ascii=False)}", "---", "flowchart TB"]
    children, members = d.nesting()

    def emit(cluster: str | None, indent: str) -> None:
        for b in members.get(cluster, []):
            box = d.boxes[b]
            open_, close = {
                "input": ('(["', '"])'),
                "output": ('(["', '"])'),
                "block": ('[["', '"]]'),
            }.get(box.kind, ('["', '"]'))
            out.append(f"{indent}{ids[b]}{open_}{_label(box)}{close}")
        for sub in children.get(cluster, []):
            out.append(f'{indent}subgraph {cids[sub]}["{_esc(d.clusters[sub].label)}"]')
            emit(sub, indent + "  ")
            out.append(f"{indent}end")

    emit(None, "  ")
    for e in d.edges:
        arrow = f'-->|"{_esc(e.label)}"|' if e.label else "-->"
        out.append(f"  {ids[e.src]} {arrow} {ids[e.dst]}")
    families: dict[str, list[str]] = {}
    for b, box in d.boxes.items():
        families.setdefault(box.family, []).append(ids[b])
    for fam, nodes in families.items():
        fill, stroke = COLOURS.get(fam, ("#ffffff", "#616161"))
        text = ",color:#ffffff" if fam in ("input", "output") else ""
        out.append(f"  classDef {fam} fill:{fill},stroke:{stroke}{text}")
        out.append(f"  class {','.join(nodes)} {fam}")
    for c in cids.values():
        out.append(f"  style {c} fill:#f6f8fb,stroke:#90a4ae,stroke-dasharray:5 3")
    return "\n".join(out) + "\n"
