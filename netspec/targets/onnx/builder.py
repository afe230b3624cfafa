"""The graph under construction: nodes, initializers, tensor names, opset-dependent forms.

Emitters (see `emitters.py`) only talk to a `Builder`. Naming rules:

- a node's result tensor is named by its dotted path (`basic_1.conv1`), or by the spec's output
  name when it is an output;
- intermediate tensors inside one layer are `<path>/<what>` (a `/` never occurs in a netspec
  name, so they cannot collide with a layer, an input or an output);
- initializers holding canonical weights in their canonical layout (possibly reshaped) carry the
  canonical key (`conv1.weight`); initializers in another layout are `<path>/<what>` (`lstm/W_l0`)
  and the op's `unpack` function converts them back; constants that are not weights are
  `<path>/<what>` too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from ...ir import Graph, Node


class Builder:
    def __init__(self, graph: Graph, weights: Mapping[str, np.ndarray] | None, opset: int):
        self.graph = graph
        self.weights = weights  # None: structure only (initializers get zeros)
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, np.ndarray] = {}  # name -> value, in creation order
        self.used: set[str] = set()  # every tensor name taken so far
        self._consts: dict[tuple, str] = {}
        self._counter: dict[str, int] = {}
        self.current: Node | None = None  # the layer being emitted (names its ONNX nodes)

    # -- names ---------------------------------------------------------------------------
    def reserve(self, name: str) -> str:
        self.used.add(name)
        return name

    def tmp(self, what: str, node: Node | None = None) -> str:
        """A fresh intermediate tensor name `<layer path>/<what>`."""
        base = f"{(node or self.current).name}/{what}" if (node or self.current) else what
        name, k = base, 1
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        return self.reserve(name)

    def _node_name(self, op_type: str) -> str:
        prefix = self.current.name if self.current is not None else "graph"
        key = f"{prefix}/{op_type}"
        k = self._counter.get(key, 0) + 1
        self._counter[key] = k
        return key if k == 1 else f"{key}_{k}"

    # -- nodes ---------------------------------------------------------------------------
    def op(
        self,
        op_type: str,
        inputs: Sequence[str],
        out: str | None = None,
        *,
        what: str | None = None,
        outputs: Sequence[str] | None = None,
        **attrs: Any,
    ) -> str:
        """Append one node; returns its (first) output tensor name.

        `out` names the output (a layer's result); otherwise a fresh `<path>/<what>` name.
        `outputs` gives every output explicitly (use '' to skip an optional one).
        """
        if outputs is None:
            outputs = [out if out is not None else self.tmp(what or op_type.lower())]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(
            helper.make_node(
                op_type, list(inputs), list(outputs), name=self._node_name(op_type), **attrs
            )
        )
        return outputs[0]

    # -- initializers --------------------------------------------------------------------
    def owned(self, name: str) -> str:
        """`name` (a weight key `<layer>.<p>` or an initializer `<layer>/...` of the layer being
        emitted) as its owner's when the layer `shares:` another's weights."""
        c = self.current
        if c is not None and c.shares:
            for sep in "./":
                if name.startswith(c.name + sep):
                    return c.shares + name[len(c.name) :]
        return name

    def weight(self, key: str) -> np.ndarray:
        """A canonical weight array (zeros of the right shape when building structure only)."""
        key = self.owned(key)
        if self.weights is None:
            return np.zeros(self.graph.weight_shapes()[key], np.float32)
        return np.asarray(self.weights[key], np.float32)

    def initializer(self, name: str, array: np.ndarray) -> str:
        """A new initializer; a layer that `shares:` gets its owner's (the same array)."""
        shared = self.owned(name)
        if shared != name and shared in self.initializers:
            return shared
        name = shared
        assert name not in self.initializers, name
        self.reserve(name)
        self.initializers[name] = np.asarray(array)
        return name

    def param(self, node: Node, p: str, shape: Sequence[int] | None = None) -> str:
        """The canonical weight `<node>.<p>` as an initializer of that name (reshaped if asked)."""
        key = f"{node.name}.{p}"
        a = self.weight(key)
        return self.initializer(key, a if shape is None else a.reshape(shape))

    def const(self, value: Any, dtype: Any = np.int64, what: str = "const") -> str:
        """A constant (not a weight); identical constants are shared."""
        a = np.asarray(value, dtype=dtype)
        sig = (a.dtype.str, a.shape, a.tobytes())
        if sig not in self._consts:
            name, k = f"const/{what}", 1
            while name in self.used:
                k += 1
                name = f"const/{what}_{k}"
            self._consts[sig] = self.initializer(name, a)
        return self._consts[sig]

    # -- forms that differ between opsets ------------------------------------------------
    def reduce(
        self,
        op_type: str,
        x: str,
        axes: Sequence[int],
        keepdims: bool,
        *,
        out: str | None = None,
        what: str | None = None,
    ) -> str:
        """ReduceMean / ReduceMax ...: `axes` an attribute before opset 18, an input from 18."""
        if self.opset >= 18:
            return self.op(
                op_type,
                [x, self.const(list(axes), what="axes")],
                out,
                what=what,
                keepdims=int(keepdims),
            )
        return self.op(op_type, [x], out, what=what, axes=list(axes), keepdims=int(keepdims))

    def squeeze(
        self, x: str, axes: Sequence[int], out: str | None = None, what: str | None = None
    ) -> str:
        """Squeeze with `axes` as an input (opset 13 and later, our minimum)."""
        return self.op("Squeeze", [x, self.const(list(axes), what="axes")], out, what=what)

    def reshape(
        self, x: str, shape: Sequence[int], out: str | None = None, what: str | None = None
    ) -> str:
        """Reshape; a 0 in `shape` copies that input dimension (used for the batch axis)."""
        return self.op("Reshape", [x, self.const(list(shape), what="shape")], out, what=what)


def elem_type(dtype: str) -> int:
    return {"float32": TensorProto.FLOAT, "int64": TensorProto.INT64}[dtype]
