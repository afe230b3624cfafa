"""What a picture of a graph shows: boxes, block clusters and edges, independent of the format.

Every renderer (SVG, DOT, Mermaid) draws this same diagram, so the formats agree on labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import titled
from ..ir import Graph, Node, shape_str
from ..ops import OPS


@dataclass
class Box:
    id: str  # the IR name (spec input, node, block use) or `output:<name>`
    kind: str  # input | node | block | output
    title: str
    detail: str  # op and key attributes
    shape: str
    family: str  # colour key: an op family, or input / output / block
    cluster: str | None = None  # innermost visible cluster
    tooltip: str = ""

    @property
    def heading(self) -> str:
        """The first line drawn: the name, after `input` / `output` for those."""
        return f"{self.kind} {self.title}" if self.kind in ("input", "output") else self.title


@dataclass
class Cluster:
    id: str  # the block use's dotted name
    label: str
    parent: str | None = None


@dataclass
class Edge:
    src: str
    dst: str
    label: str = ""  # input position for ordered ops, or a block output's name


@dataclass
class Diagram:
    name: str
    title: str
    subtitle: str = ""
    boxes: dict[str, Box] = field(default_factory=dict)  # in topological order
    clusters: dict[str, Cluster] = field(default_factory=dict)  # parents before children
    edges: list[Edge] = field(default_factory=list)

    def path(self, cluster: str | None) -> list[str]:
        """Enclosing clusters of `cluster`, outermost first, itself last."""
        out: list[str] = []
        while cluster is not None:
            out.append(cluster)
            cluster = self.clusters[cluster].parent
        return out[::-1]

    def nesting(self) -> tuple[dict[str | None, list[str]], dict[str | None, list[str]]]:
        """Per cluster (None: the top level), its child clusters and its boxes, in order."""
        children: dict[str | None, list[str]] = {}
        for cl in self.clusters.values():
            children.setdefault(cl.parent, []).append(cl.id)
        members: dict[str | None, list[str]] = {}
        for box in self.boxes.values():
            members.setdefault(box.cluster, []).append(box.id)
        return children, members


def _axes(v: Any) -> str:
    """(3, 3) -> `3×3`; an int stays itself."""
    if isinstance(v, (tuple, list)):
        return "×".join(str(x) for x in v)
    return str(v)


def _one(v: Any) -> str:
    """A per-axis value shown once when every axis agrees: (2, 2) -> `2`."""
    if isinstance(v, (tuple, list)) and v and all(x == v[0] for x in v):
        return str(v[0])
    return _axes(v)


def _padding(a: dict) -> str | None:
    mode = a.get("padding_mode")
    if mode == "same":
        return "same"
    pads = a.get("padding")
    if not pads or all(p == 0 for pair in pads for p in pair):
        return None
    if all(b == e for b, e in pads):
        return "pad " + _one([b for b, _ in pads])
    return "pad " + ",".join(f"{b}/{e}" for b, e in pads)


def _activation(a: dict) -> str | None:
    act = a.get("activation")
    if not act:
        return None
    extra = ", ".join(
        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in act.items() if k != "op"
    )
    return "+" + act["op"] + (f"({extra})" if extra else "")


def describe(node: Node) -> str:
    """The op and its key attributes in a short line: `conv2d 64, 3×3, stride 2, pad 1`."""
    a, op = node.attrs, node.op
    parts: list[str | None] = []
    if op in ("conv1d", "conv2d", "conv_transpose2d"):
        parts = [str(a["filters"]), _axes(a["kernel"])]
        if _one(a.get("stride", 1)) != "1":
            parts.append("stride " + _one(a["stride"]))
        parts.append(_padding(a))
        if any(x for x in a.get("output_padding", ()) or ()):
            parts.append("out_pad " + _one(a["output_padding"]))
        if _one(a.get("dilation", 1)) != "1":
            parts.append("dilation " + _one(a["dilation"]))
        if a.get("groups", 1) != 1:
            parts.append(f"groups {a['groups']}")
        parts.append(_activation(a))
    elif op == "dense":
        parts = [str(a["units"]), _activation(a)]
    elif op.endswith(("pool1d", "pool2d")):
        parts = [_axes(a["size"])]
        if a["stride"] != a["size"]:
            parts.append("stride " + _one(a["stride"]))
        parts.append(_padding(a))
    elif op in ("rnn", "lstm", "gru"):
        parts = [str(a["units"])]
        if a["num_layers"] != 1:
            parts.append(f"{a['num_layers']} layers")
        if a["bidirectional"]:
            parts.append("bidirectional")
        if a["return_sequences"]:
            parts.append("sequences")
    elif op == "embedding":
        parts = [f"{a['vocab']}→{a['dim']}"]
    elif op == "dropout":
        parts = [f"rate {a['rate']:g}"]
    elif op == "reshape":
        parts = ["→" + _axes(a["shape"])]
    elif op == "permute":
        parts = ["dims " + ",".join(str(d) for d in a["dims"])]
    elif op in ("concat", "softmax", "log_softmax"):
        parts = [f"axis {a['axis']}"]
    elif op in ("leaky_relu", "elu"):
        parts = [f"alpha {a['alpha']:g}"]
    shown = [p for p in parts if p]
    return op + (" " + ", ".join(shown) if shown else "")


def _block_label(graph: Graph, use_name: str) -> str:
    use = graph.uses[use_name]
    params = ", ".join(f"{k}={v}" for k, v in use.params.items())
    return f"{use_name.rsplit('.', 1)[-1]} · {use.block}" + (f"({params})" if params else "")


def _family(op: str) -> str:
    d = OPS.get(op)
    return d.family if d is not None else "other"


def _tooltip(node: Node) -> str:
    lines = [f"{node.name}: {describe(node)}", f"output {shape_str(node.shape)}"]
    if node.shares:
        lines.append(f"the weights of {node.shares} (shares:)")
    elif node.param_count:
        lines.append(f"{node.param_count:,} parameters")
    return "\n".join(lines)


def _use_of(graph: Graph, scope: tuple[str, ...]) -> str | None:
    """The dotted name of the innermost block use of a scope (local names, outermost first)."""
    if not scope:
        return None
    joined = ".".join(scope)
    return joined if joined in graph.uses else scope[-1]


def build_diagram(graph: Graph, collapse_blocks: bool = False) -> Diagram:
    """The diagram of `graph`; with `collapse_blocks`, each outermost block use is one box."""
    title = titled(graph.name, graph.description)
    subtitle = f"{graph.param_count:,} parameters · {graph.macs:,} MACs per example"
    d = Diagram(graph.name, title, subtitle)
    for name, v in graph.inputs.items():
        d.boxes[name] = Box(
            name,
            "input",
            name,
            f"input {v.dtype}",
            shape_str(v.shape),
            "input",
            tooltip=f"input {name}: {v.dtype} {shape_str(v.shape)}",
        )

    rep: dict[str, str] = {n: n for n in graph.inputs}  # value -> box id
    out_label: dict[str, str] = {}  # value -> block output name, for edges leaving a collapsed use
    if not collapse_blocks:
        for uname, use in graph.uses.items():  # dict order: parents before nested uses
            d.clusters[uname] = Cluster(
                uname, _block_label(graph, uname), _use_of(graph, use.scope)
            )

    for node in graph.nodes:
        top = node.scope[0] if node.scope else None
        if collapse_blocks and top is not None:
            rep[node.name] = top
            if top not in d.boxes:
                use = graph.uses[top]
                outs = list(use.outputs.values())
                shapes = ", ".join(shape_str(graph.value(v).shape) for v in outs)
                detail = f"block {use.block}" + "".join(f", {k}={v}" for k, v in use.params.items())
                d.boxes[top] = Box(
                    top, "block", top, detail, shapes, "block", tooltip=_block_label(graph, top)
                )
            continue
        rep[node.name] = node.name
        d.boxes[node.name] = Box(
            node.name,
            "node",
            node.local_name,
            describe(node),
            shape_str(node.shape),
            _family(node.op),
            _use_of(graph, node.scope),
            _tooltip(node),
        )
    if collapse_blocks:
        for use in graph.uses.values():
            if not use.scope and len(use.outputs) > 1:
                for oname, v in use.outputs.items():
                    out_label[v] = oname

    seen: set[tuple[str, str, str]] = set()

    def connect(src: str, dst: str, label: str = "") -> None:
        if src != dst and (src, dst, label) not in seen:
            seen.add((src, dst, label))
            d.edges.append(Edge(src, dst, label))

    for node in graph.nodes:
        ordered = OPS[node.op].ordered_inputs and len(node.inputs) > 1
        dst = rep[node.name]
        for i, v in enumerate(node.inputs):
            src = rep[v]
            if ordered and dst == node.name:
                label = str(i + 1)
            else:  # a value leaving a collapsed block with several outputs names its output
                label = out_label.get(v, "") if src != v else ""
            connect(src, dst, label)

    for oname, v in graph.outputs.items():
        oid = f"output:{oname}"
        shape = shape_str(graph.value(v).shape)
        d.boxes[oid] = Box(
            oid, "output", oname, "output", shape, "output", tooltip=f"output {oname} = {v} {shape}"
        )
        connect(rep[v], oid, out_label.get(v, ""))
    return d
