"""Statistics from the training data for the `normalize` op, as Keras's `Normalization.adapt`.

`adapt(graph, weights, dataset, rows)` returns `weights` with every normalize node's `mean` and
`variance` (keys `<node>.mean`, `<node>.variance`) computed from the examples at `rows` (the
training split) of the model input the node reads: one mean and population variance per entry
of the node's `axis`, every other axis and the batch averaged over (or one for every value with
`axis: null`). `netspec.train.data.feature_stats` computes them, in float64, streaming over the
data in chunks (a memory-mapped `.npy` is never read whole); they are stored in the dtype of the
weights they replace (float32 for canonical weights). Other weights are returned unchanged.

A normalize takes its statistics from the data, so it must read a model input directly: a
normalize of a computed value is refused here, with the layer's location (validation accepts it,
since a model with the starting statistics, or statistics from a weights file, is well defined).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import SpecError
from .data import feature_stats

if TYPE_CHECKING:
    from ..ir import Graph, Node
    from .data import Dataset


def adapt(
    graph: Graph, weights: Mapping[str, np.ndarray], dataset: Dataset, rows: np.ndarray
) -> dict[str, np.ndarray]:
    """`weights` with each normalize node's mean and variance taken from `dataset` at `rows`."""
    out = dict(weights)
    for node in graph.nodes:
        if node.op != "normalize" or node.shares:
            continue  # a sharer applies its owner's statistics
        source = node.inputs[0]
        if source not in graph.inputs:
            raise _not_an_input(graph, node, source)
        field = dataset.inputs[source]
        axis = node.attrs["axis"]  # 1..rank (batch is 0), or None
        mean, var = feature_stats(field, rows, None if axis is None else axis - 1)
        for param, stat in (("mean", mean), ("variance", var)):
            key = f"{node.name}.{param}"
            shape = node.buffers[param]
            dtype = out[key].dtype if key in out else np.float32
            out[key] = np.asarray(stat, dtype=np.float64).reshape(shape).astype(dtype)
    return out


def _not_an_input(graph: Graph, node: Node, source: str) -> SpecError:
    line, col = node.loc if node.loc is not None else (None, None)
    inputs = ", ".join(f"'{k}'" for k in graph.inputs)
    err = SpecError(
        f"normalize takes its statistics from the data, so it must read a model input, but "
        f"'{node.name}' reads '{source}'",
        hint=f"give it one of the model's inputs ({inputs}) with `inputs:`, or normalize the "
        "data before it reaches this layer",
        line=line,
        col=col,
        file=graph.source or None,
    )
    if line is not None and graph.source:
        try:
            lines = Path(graph.source).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            lines = []
        if 0 < line <= len(lines):
            err.source_line = lines[line - 1].rstrip()
    return err
