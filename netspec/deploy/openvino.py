"""OpenVINO on the CPU for netspec's ONNX models (`netspec run --runtime openvino`).

OpenVINO reads ONNX directly. Its CPU plugin may compute in bf16 or f16 where the processor
supports it; the inference precision hint is forced to f32, so that its outputs stay within the
float32 bound of ONNX Runtime's. Inputs are checked against the ONNX model's signature by the
same checks as `netspec run` on ONNX Runtime, so both runtimes refuse the same inputs alike.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..targets.onnx.run import RunError, check_inputs

DEVICE = "CPU"

_ONNX_TYPES = {
    1: "tensor(float)",
    2: "tensor(uint8)",
    3: "tensor(int8)",
    6: "tensor(int32)",
    7: "tensor(int64)",
    9: "tensor(bool)",
    10: "tensor(float16)",
    11: "tensor(double)",
}


class _Arg:
    """An ONNX graph input described as ONNX Runtime's NodeArg is (what `check_inputs` reads)."""

    def __init__(self, value):
        t = value.type.tensor_type
        self.name = value.name
        self.type = _ONNX_TYPES.get(t.elem_type, f"onnx elem type {t.elem_type}")
        self.shape = [
            int(d.dim_value) if d.HasField("dim_value") else (d.dim_param or None)
            for d in t.shape.dim
        ]


class Session:
    """A model compiled by OpenVINO for the CPU (`threads`: its inference threads; default
    OpenVINO's choice): `run(inputs)` gives the outputs by name, in the ONNX model's order."""

    def __init__(self, model: Any, threads: int | None = None):
        import onnx

        try:
            import openvino as ov
        except ImportError:
            raise RunError(
                "--runtime openvino needs the openvino package",
                hint="pip install 'netspec[deploy]'",
            ) from None
        if isinstance(model, onnx.ModelProto):
            proto, src = model, model.SerializeToString()
        elif isinstance(model, bytes):
            try:
                proto, src = onnx.load_from_string(model), model
            except Exception as e:
                raise RunError(f"not a readable ONNX model ({e})") from None
        else:
            path = Path(model)
            if not path.is_file():
                raise RunError(f"model file {str(path)!r} does not exist")
            try:
                proto = onnx.load(str(path), load_external_data=False)
            except Exception as e:
                raise RunError(f"{str(path)!r} is not a readable ONNX model ({e})") from None
            src = os.fspath(path)
        inits = {t.name for t in proto.graph.initializer}
        self._inputs = [_Arg(v) for v in proto.graph.input if v.name not in inits]
        self.output_names = [o.name for o in proto.graph.output]
        core = ov.Core()
        try:
            read = core.read_model(src)
            config: dict = {ov.properties.hint.inference_precision: ov.Type.f32}
            if threads:
                config[ov.properties.inference_num_threads] = threads
            self.compiled = core.compile_model(read, DEVICE, config)
        except Exception as e:  # OpenVINO's conversion or compilation failure
            text = " ".join(str(e).split())[:400]
            raise RunError(f"OpenVINO cannot load the model: {text}") from None
        self._ports = []
        for name in self.output_names:
            port = next((p for p in self.compiled.outputs if name in p.get_names()), None)
            if port is None:  # pragma: no cover - OpenVINO keeps ONNX output names
                raise RunError(f"OpenVINO lost the model's output {name!r}")
            self._ports.append(port)
        self.request = self.compiled.create_infer_request()

    def get_inputs(self) -> list[_Arg]:
        return self._inputs

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = check_inputs(self, inputs)
        try:
            result = self.request.infer(feeds)
        except Exception as e:  # e.g. a token id outside the vocabulary
            text = " ".join(str(e).split())[:400]
            raise RunError(f"OpenVINO failed on these inputs: {text}") from None
        return {n: np.array(result[p]) for n, p in zip(self.output_names, self._ports, strict=True)}


def run_model(model: Any, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run an `.onnx` file, a ModelProto or its bytes on OpenVINO's CPU plugin; outputs by
    name."""
    return Session(model).run(inputs)
