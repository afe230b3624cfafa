"""A float64 reference interpreter for netspec graphs, built from the op records' numpy
references (`OPS[op].reference`).

`reference(graph, weights, inputs)` walks `graph.nodes` in order and computes each op in float64
with its record's reference, which is written from the spec language's documented semantics
(docs/spec-language.md), with numpy only: it shares no code with any target. It reads the IR (a
node's `op`, `inputs`, normalized `attrs`, `params` and `buffers`; `graph.outputs`) and the
canonical weights (`<node path>.<param>` -> array in PyTorch's layouts; a node that
`shares:` reads its owner's). A node's
`activation:` is applied to its output with that activation op's reference.

Layout: batch first, channels first; float inputs computed in float64, int64 ids stay int64.
Returns `{output name: array}` in `graph.outputs` order.
"""

from __future__ import annotations

import numpy as np

from netspec.ir import Graph
from netspec.ops import OPS


def reference(graph: Graph, weights, inputs) -> dict[str, np.ndarray]:
    """Every output of `graph` (name -> float64 array) on canonical `weights` and `inputs`."""
    vals = {
        k: np.asarray(v) if np.asarray(v).dtype == np.int64 else np.asarray(v, np.float64)
        for k, v in inputs.items()
    }
    for node in graph.nodes:
        p = {
            k: np.asarray(weights[f"{node.shares or node.name}.{k}"], np.float64)
            for k in [*node.params, *node.buffers]
        }
        y = OPS[node.op].reference([vals[i] for i in node.inputs], node.attrs, p)
        act = node.attrs.get("activation")
        if act:
            y = OPS[act["op"]].reference([y], act, {})
        vals[node.name] = y
    return {o: vals[v] for o, v in graph.outputs.items()}
