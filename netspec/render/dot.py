"""Graphviz DOT text: `dot -Tsvg` draws it where Graphviz is installed; no package is needed
to write it."""

from __future__ import annotations

from .model import Diagram
from .svg import COLOURS


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _node(box) -> str:
    fill, stroke = COLOURS.get(box.family, ("#ffffff", "#616161"))
    if box.kind in ("input", "output"):
        label = f"{box.heading}\n{box.shape}"
        extra = f', shape=box, style="rounded,filled", fontcolor="#ffffff", fillcolor="{fill}"'
    else:
        label = f"{box.title}\n{box.detail}\n{box.shape}"
        periph = ", peripheries=2" if box.kind == "block" else ""
        extra = f', fillcolor="{fill}", color="{stroke}"{periph}'
    return f"{_q(box.id)} [label={_q(label)}, tooltip={_q(box.tooltip)}{extra}];"


def render_dot(d: Diagram) -> str:
    out = [
        f"digraph {_q(d.name)} {{",
        f"  graph [rankdir=TB, labelloc=t, label={_q(d.title + chr(10) + d.subtitle)}, "
        'fontname="DejaVu Sans Mono", fontsize=12, nodesep=0.3, ranksep=0.35];',
        '  node [shape=box, style="rounded,filled", fontname="DejaVu Sans Mono", fontsize=10];',
        '  edge [color="#546e7a", fontname="DejaVu Sans Mono", fontsize=9, fontcolor="#bf360c"];',
    ]
    children, members = d.nesting()

    def emit(cluster: str | None, indent: str) -> None:
        for sub in children.get(cluster, []):
            out.append(f"{indent}subgraph {_q('cluster_' + sub)} {{")
            out.append(
                f"{indent}  label={_q(d.clusters[sub].label)}; labeljust=l; "
                'style="rounded,dashed"; color="#90a4ae";'
            )
            emit(sub, indent + "  ")
            out.append(f"{indent}}}")
        for b in members.get(cluster, []):
            out.append(indent + _node(d.boxes[b]))

    emit(None, "  ")
    for e in d.edges:
        label = f" [label={_q(e.label)}]" if e.label else ""
        out.append(f"  {_q(e.src)} -> {_q(e.dst)}{label};")
    out.append("}")
    return "\n".join(out) + "\n"
