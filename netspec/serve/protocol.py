"""Open Inference Protocol (KServe v2) tensors: parse an inference request, encode a response.

A request body is JSON, or (the binary tensor data extension) a JSON header of
`Inference-Header-Content-Length` bytes followed by the raw tensor bytes of every input whose
`parameters.binary_data_size` says so, in the order of `inputs`. JSON tensor data is a flat or
nested list in row-major order. Everything a client sends is checked here; each problem raises
`ProtocolError` with a message for the client (HTTP 400). Nothing here knows HTTP or the model.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# OIP datatype <-> numpy; BYTES and BF16 are part of the protocol but no netspec model takes them
DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
}
UNSUPPORTED = ("BYTES", "BF16")
_NAMES = {v: k for k, v in DATATYPES.items()}
# ONNX Runtime's type strings (NodeArg.type) as OIP datatypes
ORT_TYPES = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
}
HEADER = "inference-header-content-length"
MAX_RANK = 32


class ProtocolError(ValueError):
    """A malformed request: the message goes back to the client with HTTP 400."""


def datatype(dtype: np.dtype) -> str:
    """The OIP datatype of a numpy dtype."""
    try:
        return _NAMES[np.dtype(dtype)]
    except KeyError:
        raise ProtocolError(f"numpy dtype {np.dtype(dtype)} has no OIP datatype") from None


@dataclass
class Request:
    """A parsed inference request: the input arrays by name (in request order), the outputs
    asked for (None: all) and, per output, whether it goes back as binary data."""

    inputs: dict[str, np.ndarray]
    outputs: list[str] | None = None
    binary: dict[str, bool] = field(default_factory=dict)
    binary_default: bool = False
    id: str | None = None

    def wants_binary(self, name: str) -> bool:
        return self.binary.get(name, self.binary_default)


def parse_request(body: bytes, header_length: str | None) -> Request:
    """A request from its body and its `Inference-Header-Content-Length` header (or None)."""
    if header_length is None:
        head, rest = body, b""
    else:
        try:
            n = int(header_length.strip())
        except ValueError:
            raise ProtocolError(
                f"the Inference-Header-Content-Length header must be an integer, got "
                f"{_short(header_length)!r}"
            ) from None
        if not 0 < n <= len(body):
            raise ProtocolError(
                f"the Inference-Header-Content-Length header says {n} bytes, but the body has "
                f"{len(body)}"
            )
        head, rest = body[:n], body[n:]
    try:
        doc = json.loads(head)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        where = (
            f" (line {e.lineno}, column {e.colno})" if isinstance(e, json.JSONDecodeError) else ""
        )
        raise ProtocolError(f"the request is not valid JSON{where}: {_reason(e)}") from None
    except RecursionError:
        raise ProtocolError("the request's JSON is nested too deeply") from None
    if not isinstance(doc, dict):
        raise ProtocolError(f"the request must be a JSON object, got {_kind(doc)}")
    req_id = doc.get("id")
    if req_id is not None and not isinstance(req_id, str):
        raise ProtocolError(f"'id' must be a string, got {_kind(req_id)}")
    params = _params(doc, "the request")
    binary_default = _flag(params, "binary_data_output", "the request")

    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise ProtocolError("the request needs 'inputs': a non-empty list of tensors")
    inputs: dict[str, np.ndarray] = {}
    offset = 0
    for i, t in enumerate(raw_inputs):
        where = f"inputs[{i}]"
        if not isinstance(t, dict):
            raise ProtocolError(f"{where} must be an object, got {_kind(t)}")
        name = t.get("name")
        if not isinstance(name, str) or not name:
            raise ProtocolError(f"{where} needs a 'name' (a string)")
        where = f"input {_short(name)!r}"
        if name in inputs:
            raise ProtocolError(f"{where} is given twice")
        shape = _shape(t.get("shape"), where)
        dtype = _dtype(t.get("datatype"), where)
        count = math.prod(shape)
        tparams = _params(t, where)
        size = tparams.get("binary_data_size")
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise ProtocolError(f"{where}: 'binary_data_size' must be a non-negative integer")
            if "data" in t:
                raise ProtocolError(f"{where} has both 'data' and 'binary_data_size'")
            if size != count * dtype.itemsize:
                raise ProtocolError(
                    f"{where}: shape {shape} of {_NAMES[dtype]} takes "
                    f"{count * dtype.itemsize} bytes, but binary_data_size is {size}"
                )
            if offset + size > len(rest):
                raise ProtocolError(
                    f"{where}: the binary data ends after {len(rest)} bytes, "
                    f"short of the {offset + size} the inputs declare"
                )
            a = np.frombuffer(rest, dtype.newbyteorder("<"), count, offset).astype(dtype)
            offset += size
        elif "data" in t:
            a = _json_data(t["data"], dtype, count, where)
        else:
            raise ProtocolError(f"{where} has neither 'data' nor a 'binary_data_size' parameter")
        inputs[name] = a.reshape(shape)
    if offset != len(rest):
        raise ProtocolError(
            f"the body has {len(rest)} bytes of binary data, but the inputs declare {offset}"
        )

    outputs = None
    binary: dict[str, bool] = {}
    raw_outputs = doc.get("outputs")
    if raw_outputs is not None:
        if not isinstance(raw_outputs, list):
            raise ProtocolError(f"'outputs' must be a list, got {_kind(raw_outputs)}")
        outputs = []
        for i, o in enumerate(raw_outputs):
            if not isinstance(o, dict) or not isinstance(o.get("name"), str):
                raise ProtocolError(f"outputs[{i}] must be an object with a 'name' (a string)")
            name = o["name"]
            if name in binary:
                raise ProtocolError(f"output {_short(name)!r} is asked for twice")
            oparams = _params(o, f"output {_short(name)!r}")
            binary[name] = _flag(oparams, "binary_data", f"output {_short(name)!r}", binary_default)
            outputs.append(name)
    return Request(inputs, outputs, binary, binary_default, req_id)


def encode_response(
    model: str, version: str, outputs: dict[str, np.ndarray], request: Request
) -> tuple[bytes, int | None]:
    """The response body and, when some output goes as binary data, the JSON header's length
    (the `Inference-Header-Content-Length` to send)."""
    tensors = []
    blobs = []
    for name, a in outputs.items():
        a = np.asarray(a)
        t: dict[str, Any] = {"name": name, "datatype": datatype(a.dtype), "shape": list(a.shape)}
        if request.wants_binary(name):
            blob = np.ascontiguousarray(a, a.dtype.newbyteorder("<")).tobytes()
            t["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            t["data"] = a.reshape(-1).tolist()
        tensors.append(t)
    doc: dict[str, Any] = {"model_name": model, "model_version": version}
    if request.id is not None:
        doc["id"] = request.id
    doc["outputs"] = tensors
    head = json.dumps(doc, separators=(",", ":"), allow_nan=True).encode()
    if not blobs:
        return head, None
    return b"".join([head, *blobs]), len(head)


# -- checks -----------------------------------------------------------------------------------
def _params(obj: dict, where: str) -> dict:
    p = obj.get("parameters", {})
    if not isinstance(p, dict):
        raise ProtocolError(f"{where}: 'parameters' must be an object, got {_kind(p)}")
    return p


def _flag(params: dict, key: str, where: str, default: bool = False) -> bool:
    v = params.get(key, default)
    if not isinstance(v, bool):
        raise ProtocolError(f"{where}: parameter '{key}' must be true or false, got {_kind(v)}")
    return v


def _shape(shape: object, where: str) -> list[int]:
    if not isinstance(shape, list):
        raise ProtocolError(f"{where} needs a 'shape': a list of non-negative integers")
    if len(shape) > MAX_RANK:
        raise ProtocolError(f"{where}: shape has {len(shape)} axes (at most {MAX_RANK})")
    for d in shape:
        if isinstance(d, bool) or not isinstance(d, int) or d < 0:
            raise ProtocolError(
                f"{where}: shape must be a list of non-negative integers, got {_short(shape)}"
            )
    return shape


def _dtype(name: object, where: str) -> np.dtype:
    if not isinstance(name, str):
        raise ProtocolError(f"{where} needs a 'datatype' (a string such as FP32)")
    if name in DATATYPES:
        return DATATYPES[name]
    if name in UNSUPPORTED:
        raise ProtocolError(f"{where}: datatype {name} is not supported by this server")
    raise ProtocolError(
        f"{where}: unknown datatype {_short(name)!r} (expected one of {', '.join(DATATYPES)})"
    )


def _json_data(data: object, dtype: np.dtype, count: int, where: str) -> np.ndarray:
    """JSON tensor data (flat or nested lists, row-major) as an array of `dtype`; booleans only
    for BOOL, integers only for integer types, numbers for floating types; exact in range."""
    if not isinstance(data, list):
        data = [data]
    try:
        a = np.array(data)
    except ValueError:  # ragged nesting
        raise ProtocolError(f"{where}: 'data' is nested unevenly") from None
    if a.size != count:
        raise ProtocolError(f"{where}: 'data' has {a.size} elements, but its shape takes {count}")
    if a.size == 0:
        return np.zeros(0, dtype)
    kind = a.dtype.kind
    want = dtype.kind
    ok = (
        (want == "b" and kind == "b")
        or (want in "iu" and kind in "iu")
        or (want == "f" and kind in "iuf")
    )
    if not ok:
        got = {"b": "booleans", "i": "integers", "u": "integers", "f": "non-integer numbers"}
        raise ProtocolError(
            f"{where}: 'data' must hold {_expect(dtype)} for {_NAMES[dtype]}, got "
            f"{got.get(kind, 'strings, nulls or mixed values')}"
        )
    if want in "iu":
        info = np.iinfo(dtype)
        if a.min() < info.min or a.max() > info.max:
            raise ProtocolError(
                f"{where}: 'data' has values outside the range of {_NAMES[dtype]} "
                f"({info.min} to {info.max})"
            )
    with np.errstate(over="ignore"):  # a float beyond FP16's range becomes inf, as in a cast
        return a.reshape(-1).astype(dtype)


def _expect(dtype: np.dtype) -> str:
    return {"b": "true/false", "i": "integers", "u": "integers"}.get(dtype.kind, "numbers")


def _kind(v: object) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(v), type(v).__name__)


def _short(v: object, limit: int = 80) -> str:
    text = v if isinstance(v, str) else json.dumps(v, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reason(e: Exception) -> str:
    return e.msg if isinstance(e, json.JSONDecodeError) else str(e)
