"""Running a spec on the targets that are installed: outputs in the logical layout, as numpy."""

from __future__ import annotations

from typing import Any

from netspec.ir import Graph


def available_targets() -> list[str]:
    """The targets whose package is there (they are being written one by one): torch first
    (the usual reference), then onnx, then keras (the slowest to build). A package directory
    without `__init__.py`, or one without `generate` and `compile` yet, is not there yet; one
    that fails to import raises."""
    import importlib
    import importlib.util

    from netspec.targets import TARGETS

    out = []
    for name in ("torch", "onnx", "keras"):
        spec = importlib.util.find_spec(TARGETS[name])
        if spec is None or spec.origin is None:
            continue
        mod = importlib.import_module(TARGETS[name])
        if all(hasattr(mod, f) for f in ("generate", "compile", "EMITTERS")):
            out.append(name)
    return out


def to_keras_layout(a: Any) -> Any:
    """Logical (channels-first) -> Keras' boundary layout: per-example rank >= 3 moves axis 1
    last."""
    import numpy as np

    return np.moveaxis(a, 1, -1) if a.ndim >= 4 else a


def from_keras_layout(a: Any) -> Any:
    import numpy as np

    a = np.asarray(a)
    return np.moveaxis(a, -1, 1) if a.ndim >= 4 else a


_ORT_OPTIONS = None


def run_target(target: str, graph: Graph, weights: dict, inputs: dict) -> list:
    """Build `graph` on `target` with `weights` and run it on `inputs` (logical layout, numpy);
    the outputs come back in the spec's order, in the logical layout, as numpy arrays."""
    global _ORT_OPTIONS
    import numpy as np

    from netspec import api

    if target == "torch":
        import torch

        module = api.compile(graph, "torch", weights)
        with torch.no_grad():
            ys = module(*(torch.from_numpy(np.ascontiguousarray(inputs[k])) for k in graph.inputs))
        ys = ys if isinstance(ys, (tuple, list)) else (ys,)
        return [y.detach().numpy() for y in ys]
    if target == "onnx":
        import onnxruntime as ort

        proto = api.compile(graph, "onnx", weights)
        if _ORT_OPTIONS is None:
            _ORT_OPTIONS = ort.SessionOptions()
            _ORT_OPTIONS.intra_op_num_threads = 1
            _ORT_OPTIONS.inter_op_num_threads = 1
            _ORT_OPTIONS.log_severity_level = 3
        sess = ort.InferenceSession(
            proto.SerializeToString(), _ORT_OPTIONS, providers=["CPUExecutionProvider"]
        )
        return list(sess.run(None, {k: inputs[k] for k in graph.inputs}))
    if target == "keras":
        model = api.compile(graph, "keras", weights)
        ins = [to_keras_layout(inputs[k]) for k in graph.inputs]
        out = model(ins if len(ins) > 1 else ins[0], training=False)
        outs = out if isinstance(out, (list, tuple)) else [out]
        if isinstance(out, dict):
            outs = [out[k] for k in graph.outputs]
        return [from_keras_layout(np.asarray(o)) for o in outs]
    raise ValueError(f"unknown target {target!r}")
