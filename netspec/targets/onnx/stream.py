"""Write a model to disk without serializing its weights through protobuf.

`ModelProto.SerializeToString()` on a model that holds its weights costs a copy of every weight
inside the proto, then the encoded buffer, then a `bytes` object: about 4x the weight bytes at
its peak. Here the small parts (the graph without initializers, each initializer's header) are
encoded by protobuf and the weights go to the file straight from their numpy buffers. The bytes
written are exactly those `SerializeToString()` gives for the same model (protobuf writes fields
in field-number order, so the parts are cut at the field numbers around `graph` and
`initializer`); a test checks this byte for byte.

Initializers of `external` size or more go to a separate data file, as `onnx.save_model(...,
save_as_external_data=True)` would put them: the tensor's header names `location`, `offset` and
`length`; tensors of 1 MiB or more start at a 4 KiB boundary so that a runtime can map them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx

_GRAPH = onnx.ModelProto.DESCRIPTOR.fields_by_name["graph"].number  # 7
_INITIALIZER = onnx.GraphProto.DESCRIPTOR.fields_by_name["initializer"].number  # 5
_RAW_DATA = onnx.TensorProto.DESCRIPTOR.fields_by_name["raw_data"].number  # 9
_ALIGN, _ALIGN_FROM = 4096, 1 << 20


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _tag(field: int, length: int) -> bytes:
    """The key and length of a length-delimited field."""
    return _varint(field << 3 | 2) + _varint(length)


def _split(msg, at: int) -> tuple[bytes, bytes]:
    """`msg` encoded in two parts: its fields numbered below `at`, and above it."""
    lo, hi = type(msg)(), type(msg)()
    lo.CopyFrom(msg)
    hi.CopyFrom(msg)
    for f in msg.DESCRIPTOR.fields:
        if f.number > at or f.number == at:
            lo.ClearField(f.name)
        if f.number < at or f.number == at:
            hi.ClearField(f.name)
    return lo.SerializeToString(), hi.SerializeToString()


def raw(array: np.ndarray) -> memoryview:
    """The array's bytes in ONNX's little-endian order, without a copy when they already are."""
    a = np.ascontiguousarray(array, array.dtype.newbyteorder("<"))
    return memoryview(a).cast("B")


def tensor(
    t: onnx.TensorProto, name: str, array: np.ndarray, data: bool = True
) -> onnx.TensorProto:
    """Fill `t` (new, or added to a graph's initializers) as the initializer `name` holding
    `array`: its type and dims, and with `data` its bytes (`raw_data`)."""
    t.name = name
    t.data_type = onnx.helper.np_dtype_to_tensor_dtype(array.dtype)
    t.dims.extend(array.shape)
    if data:
        t.raw_data = raw(array).tobytes()
    return t


def data_bytes(initializers: Mapping[str, np.ndarray]) -> int:
    return sum(a.nbytes for a in initializers.values())


def write(
    model: onnx.ModelProto,
    initializers: Mapping[str, np.ndarray],
    path: Path,
    data_path: Path | None = None,
    external: int = 1024,
) -> None:
    """Write `model` (which holds no initializers) with `initializers` appended to its graph,
    in order. With `data_path`, initializers of `external` bytes or more go there."""
    assert not model.graph.initializer
    parts: list[bytes | memoryview] = []  # the graph's initializer fields, in order
    data = None
    offset = 0
    try:
        if data_path is not None:
            data = open(data_path, "xb")  # noqa: SIM115 - closed below
        for name, array in initializers.items():
            head = tensor(onnx.TensorProto(), name, array, data=False)
            body = raw(array)
            if data is not None and body.nbytes >= external:
                if body.nbytes >= _ALIGN_FROM and offset % _ALIGN:
                    pad = _ALIGN - offset % _ALIGN
                    data.write(b"\0" * pad)
                    offset += pad
                data.write(body)
                head.data_location = onnx.TensorProto.EXTERNAL
                where = {"location": data_path.name, "offset": offset, "length": body.nbytes}
                for k, v in where.items():
                    head.external_data.add(key=k, value=str(v))
                offset += body.nbytes
                h = head.SerializeToString()
                parts += [_tag(_INITIALIZER, len(h)), h]
            else:
                h = head.SerializeToString()  # dims, data_type, name: fields before raw_data
                raw_tag = _tag(_RAW_DATA, body.nbytes)
                parts += [_tag(_INITIALIZER, len(h) + len(raw_tag) + body.nbytes), h, raw_tag, body]
    finally:
        if data is not None:
            data.close()
    model_lo, model_hi = _split(model, _GRAPH)
    graph_lo, graph_hi = _split(model.graph, _INITIALIZER)
    size = len(graph_lo) + sum(len(p) for p in parts) + len(graph_hi)
    with open(path, "xb") as f:
        f.write(model_lo)
        f.write(_tag(_GRAPH, size))
        f.write(graph_lo)
        for p in parts:
            f.write(p)
        f.write(graph_hi)
        f.write(model_hi)
