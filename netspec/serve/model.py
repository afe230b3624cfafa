"""One served model: its ONNX Runtime session (made as `netspec run` makes it), its OIP
metadata, and the checks of a request against it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import did_you_mean
from ..targets.onnx.run import RunError, check_inputs, make_session, ort_message
from .protocol import ORT_TYPES, ProtocolError, Request, datatype

VERSION = "1"


@dataclass(frozen=True)
class Tensor:
    """An input or output as the model metadata shows it (-1 for a dynamic axis)."""

    name: str
    datatype: str
    shape: list[int]

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": self.shape}


def _tensors(args) -> list[Tensor]:
    out = []
    for a in args:
        dt = ORT_TYPES.get(a.type)
        if dt is None:
            raise RunError(f"the model's tensor {a.name!r} has type {a.type}, not served here")
        shape = [d if isinstance(d, int) and d >= 0 else -1 for d in (a.shape or [])]
        out.append(Tensor(a.name, dt, shape))
    return out


class Model:
    """A model behind the server. `max_batch` bounds axis 0 of each input when that axis is
    dynamic in the model (the batch axis of every netspec model)."""

    def __init__(self, name: str, source: Any, provider: str = "auto", max_batch: int = 64):
        self.name = name
        self.version = VERSION
        self.session, self.provider, self.cuda_note = make_session(source, provider)
        self.inputs = _tensors(self.session.get_inputs())
        self.outputs = _tensors(self.session.get_outputs())
        self.max_batch = max_batch
        # batched: every input and output has a dynamic axis 0, so requests can be stacked
        self.batched = all(t.shape and t.shape[0] == -1 for t in (*self.inputs, *self.outputs))

    def metadata(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": "onnxruntime_onnx",
            "inputs": [t.metadata() for t in self.inputs],
            "outputs": [t.metadata() for t in self.outputs],
        }

    def check(self, request: Request) -> dict[str, np.ndarray]:
        """The request's inputs checked against the model (names, datatypes, shapes, batch
        size) and its asked outputs against the model's; raises ProtocolError."""
        want = {t.name: t for t in self.inputs}
        for name in request.inputs:
            if name not in want:
                g = did_you_mean(name, want)
                raise ProtocolError(
                    f"model '{self.name}' has no input {name!r} (its inputs: {', '.join(want)})"
                    + (f"; did you mean '{g}'?" if g else "")
                )
        missing = [n for n in want if n not in request.inputs]
        if missing:
            raise ProtocolError(f"missing input(s): {', '.join(missing)}")
        for name, t in want.items():
            a = request.inputs[name]
            got = datatype(a.dtype)
            if got != t.datatype:
                raise ProtocolError(f"input {name!r} must be {t.datatype}, got {got}")
        try:
            feeds = check_inputs(self.session, request.inputs)
        except RunError as e:
            raise ProtocolError(e.message) from None
        if self.batched:
            for name, a in feeds.items():
                if a.shape[0] > self.max_batch:
                    raise ProtocolError(
                        f"input {name!r} has a batch of {a.shape[0]}, over this server's "
                        f"limit of {self.max_batch} (--max-batch)"
                    )
        if request.outputs is not None:
            names = [t.name for t in self.outputs]
            for name in request.outputs:
                if name not in names:
                    g = did_you_mean(name, names)
                    raise ProtocolError(
                        f"model '{self.name}' has no output {name!r} (its outputs: "
                        f"{', '.join(names)})" + (f"; did you mean '{g}'?" if g else "")
                    )
        return feeds

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """All outputs, by name in the model's order; an ONNX Runtime failure on these inputs
        (say a token id outside the vocabulary) is the client's: ProtocolError."""
        names = [t.name for t in self.outputs]
        try:
            values = self.session.run(names, feeds)
        except Exception as e:
            raise ProtocolError(f"ONNX Runtime failed on these inputs: {ort_message(e)}") from None
        return dict(zip(names, values, strict=True))
