"""The ONNX target: an `onnx.ModelProto` emitted straight from the IR with `onnx.helper`.

Nothing here imports torch or TensorFlow. The model is channels-first like the IR; graph inputs
and outputs carry the spec's names, the batch axis is the symbolic dimension `batch`, named
dynamic axes keep their names (an unnamed one becomes `<input>_dim<axis>`), and weights are
initializers. Recurrent layers are one fused LSTM / GRU / RNN node per layer, sequence-first,
with the transposes that needs; batch_norm stays a BatchNormalization node (ONNX Runtime folds
it into the convolution before it, and the weights read back exactly).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ...errors import SpecError
from ...ir import Graph
from ...version import __version__
from ...weights import Weights, check_weights
from ..base import Artifact
from . import stream
from .builder import Builder, elem_type
from .emitters import EMITTERS, emit_node

DEFAULT_OPSET = 17
MIN_OPSET = 13
MAX_OPSET = onnx.defs.onnx_opset_version()
BATCH = "batch"
_PROTOBUF_SAFE = 2**31 - 2**26  # protobuf's 2 GiB limit, with room for the graph itself
EXTERNAL_THRESHOLD = _PROTOBUF_SAFE

NAME = "onnx"
# binary files, both produced by `write`; the data file only for a model over the threshold
MODEL = Artifact("model", "{name}.onnx")
DATA = Artifact("data", "{name}.onnx.data")
ARTIFACTS = (MODEL, DATA)

__all__ = [
    "ARTIFACTS",
    "DEFAULT_OPSET",
    "EMITTERS",
    "MAX_OPSET",
    "MIN_OPSET",
    "NAME",
    "compile",
    "export_weights",
    "generate",
    "owns",
    "write",
]


def _check_opset(opset: int | None, graph: Graph | None = None) -> int:
    opset = DEFAULT_OPSET if opset is None else opset
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise SpecError(
            f"ONNX opset {opset!r} is not supported: netspec emits opsets "
            f"{MIN_OPSET} to {MAX_OPSET} (default {DEFAULT_OPSET})",
            file=(graph.source or graph.name) if graph is not None else None,
            hint=f"pick --opset between {MIN_OPSET} and {MAX_OPSET}",
        )
    return opset


def _input_dims(graph: Graph) -> dict[str, list[int | str]]:
    """Each input's dims: `batch`, ints, named symbols; unnamed dynamic axes get fresh names."""
    taken = {d for v in graph.inputs.values() for d in v.shape if isinstance(d, str)}
    taken.add(BATCH)
    out = {}
    for name, v in graph.inputs.items():
        dims: list[int | str] = [BATCH]
        for axis, d in enumerate(v.shape, start=1):
            if d is None:
                sym, k = f"{name}_dim{axis}", 1
                while sym in taken:
                    k += 1
                    sym = f"{name}_dim{axis}_{k}"
                taken.add(sym)
                d = sym
            dims.append(d)
        out[name] = dims
    return out


def _build(
    graph: Graph, weights: Mapping[str, np.ndarray] | None, opset: int
) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """The model without its initializers, and the initializers (name -> array, in order)."""
    b = Builder(graph, weights, opset)
    for name in [*graph.inputs, *graph.outputs, *(n.name for n in graph.nodes)]:
        b.reserve(name)
    # which node writes straight into a graph output (the first output naming its value)
    direct: dict[str, str] = {}
    for oname, vname in graph.outputs.items():
        if vname not in graph.inputs and vname not in direct:
            direct[vname] = oname
    # a node whose path is also some other value's output name gets another tensor name
    other_outputs = {o for o, v in graph.outputs.items() if o != v}
    tensor: dict[str, str] = {name: name for name in graph.inputs}
    for node in graph.nodes:
        out = direct.get(node.name)
        if out is None:
            out = node.name if node.name not in other_outputs else b.tmp("value", node)
        tensor[node.name] = emit_node(b, node, [tensor[v] for v in node.inputs], out)

    outputs = []
    for oname, vname in graph.outputs.items():
        t = tensor[vname]
        if t != oname:  # an alias (dropout, identity), an input, or a second output of one value
            b.current = None
            b.op("Identity", [t], oname)
        v = graph.value(vname)
        dims = [BATCH, *(d if d is not None else None for d in v.shape)]
        outputs.append(helper.make_tensor_value_info(oname, elem_type(v.dtype), dims))

    in_dims = _input_dims(graph)
    inputs = [
        helper.make_tensor_value_info(n, elem_type(v.dtype), in_dims[n])
        for n, v in graph.inputs.items()
    ]
    opsets = [helper.make_opsetid("", opset)]
    model = onnx.ModelProto(
        ir_version=helper.find_min_ir_version_for(opsets),
        producer_name="netspec",
        producer_version=__version__,
        doc_string=graph.description or "",
    )
    model.opset_import.extend(opsets)
    props = {"netspec_version": __version__, "spec_hash": graph.spec_hash, "spec_name": graph.name}
    for k, v in props.items():
        model.metadata_props.add(key=k, value=v)
    g = model.graph
    g.name = graph.name
    g.node.extend(b.nodes)
    g.input.extend(inputs)
    g.output.extend(outputs)
    _name_output_dims(model, b.initializers)
    return model, b.initializers


def _fill(model: onnx.ModelProto, initializers: Mapping[str, np.ndarray]) -> onnx.ModelProto:
    """Add the initializers to the model in place: each array is copied once, into its proto."""
    for name, array in initializers.items():
        stream.tensor(model.graph.initializer.add(), name, array)
    return model


def _name_output_dims(model: onnx.ModelProto, initializers: Mapping[str, np.ndarray]) -> None:
    """Outputs' dynamic dims the IR leaves unnamed take the names shape inference derives."""
    unnamed = [
        o
        for o in model.graph.output
        if any(
            not d.HasField("dim_value") and not d.HasField("dim_param")
            for d in o.type.tensor_type.shape.dim
        )
    ]
    if not unnamed:
        return
    # inference on a skeleton: weights become typed inputs (their values do not matter), the
    # constants (shapes, axes) stay initializers; nothing large is copied
    g = onnx.GraphProto(name=model.graph.name)
    g.node.extend(model.graph.node)
    g.input.extend(model.graph.input)
    g.output.extend(model.graph.output)
    for name, array in initializers.items():
        if name.startswith("const/"):
            stream.tensor(g.initializer.add(), name, array)
        else:
            dtype = helper.np_dtype_to_tensor_dtype(array.dtype)
            g.input.append(helper.make_tensor_value_info(name, dtype, array.shape))
    skeleton = helper.make_model(g, opset_imports=model.opset_import)
    skeleton.ir_version = model.ir_version
    try:
        inferred = onnx.shape_inference.infer_shapes(skeleton)
    except Exception:  # pragma: no cover - the checks in the tests catch real problems
        return
    by_name = {o.name: o for o in inferred.graph.output}
    for o in unnamed:
        inf = by_name.get(o.name)
        if inf is None or len(inf.type.tensor_type.shape.dim) != len(o.type.tensor_type.shape.dim):
            continue
        for d, di in zip(o.type.tensor_type.shape.dim, inf.type.tensor_type.shape.dim, strict=True):
            if not d.HasField("dim_value") and not d.HasField("dim_param"):
                if di.HasField("dim_param") and not di.dim_param.startswith("unk__"):
                    d.dim_param = di.dim_param  # a spec symbol carried through


def compile(
    graph: Graph,
    weights: Mapping[str, np.ndarray] | None = None,  # noqa: A001
    opset: int | None = None,
) -> onnx.ModelProto:
    """The ONNX model of `graph` with `weights` (canonical arrays) as initializers."""
    opset = _check_opset(opset, graph)
    w = check_weights(graph, weights) if weights is not None else None
    if w is None:
        from ...weights import init_weights

        w = init_weights(graph, 0)
    return _fill(*_build(graph, w, opset))


def generate(graph: Graph, opset: int | None = None) -> str:
    """The model in ONNX's textual form (`onnx.printer`), initializer values not inlined."""
    opset = _check_opset(opset, graph)
    model, initializers = _build(graph, None, opset)
    for name, array in initializers.items():
        const = name.startswith("const/")
        init = stream.tensor(model.graph.initializer.add(), name, array, data=const)
        if not const:
            init.data_location = TensorProto.EXTERNAL
            init.external_data.add(key="location", value=DATA.file(graph))
    head = (
        f"# {graph.name}: ONNX opset {opset}, written by netspec from the spec.\n"
        f"# Weights are not inlined here (they read 'location: {DATA.file(graph)}');\n"
        f"# netspec.compile(graph, 'onnx', weights) and `netspec build --target onnx` give\n"
        f"# the complete model.\n"
    )
    return head + onnx.printer.to_text(model) + "\n"


def owns(model: object) -> bool:
    """Whether `model` is an ONNX ModelProto."""
    return isinstance(model, onnx.ModelProto)


def export_weights(model: onnx.ModelProto | str | os.PathLike, graph: Graph) -> Weights:
    """Canonical weights read back from the model's initializers (exactly)."""
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    out: Weights = {}
    try:
        for node in graph.nodes:
            if (node.params or node.buffers) and not node.shares:
                out.update(EMITTERS[node.op].unpack(node, inits))
    except KeyError as e:
        raise SpecError(
            f"the ONNX model does not hold the weights of '{graph.name}': "
            f"initializer {e} is missing"
        ) from None
    except ValueError as e:
        raise SpecError(f"the ONNX model's initializers do not fit '{graph.name}': {e}") from None
    return check_weights(graph, out, "ONNX initializers")


def write(
    graph: Graph,
    weights: Mapping[str, np.ndarray],
    outdir: str | os.PathLike,
    opset: int | None = None,
    external_threshold: int | None = None,
) -> list[Path]:
    """Write `<name>.onnx` into `outdir`, streamed (see `stream.py`): the file is what
    `compile(...).SerializeToString()` gives, without holding a serialized copy in memory. A model
    larger than `external_threshold` bytes (default `EXTERNAL_THRESHOLD`, under protobuf's 2 GiB
    limit) keeps its weights in `<name>.onnx.data` beside it, referred to by that relative name."""
    threshold = EXTERNAL_THRESHOLD if external_threshold is None else external_threshold
    opset = _check_opset(opset, graph)
    model, initializers = _build(graph, check_weights(graph, weights), opset)
    path = MODEL.path(graph, outdir)
    data = DATA.path(graph, outdir)
    for p in (path, data):  # replace, never write through a link or append to old data
        if p.is_symlink() or p.exists():
            p.unlink()
    big = _too_big(model, initializers, threshold)
    stream.write(model, initializers, path, data if big else None)
    return [path, data] if data.exists() else [path]


def _too_big(
    model: onnx.ModelProto, initializers: Mapping[str, np.ndarray], threshold: int
) -> bool:
    """Whether the serialized model would exceed `threshold` bytes, counted without
    serializing: the initializers' data plus a bound on everything else."""
    data = stream.data_bytes(initializers)
    if data > min(threshold, _PROTOBUF_SAFE):
        return True
    rest = model.ByteSize() + 256 * len(initializers)  # the model holds no weights: cheap
    return data + rest + 65536 > threshold
