"""Experiment (evidence for RESULTS.md, not part of the run): write the .onnx file streamed,
so that neither a ModelProto holding the weights nor its full serialization ever exists.

    python benchmarks/experiment_stream_write.py SPEC

Protobuf's wire format merges concatenated messages: a repeated field gets the elements of
every occurrence, an embedded message field (ModelProto.graph = 7) is merged. So the file can be
written as `skeleton` (the model without its large initializers) followed, per large
initializer, by the fragment `graph { initializer { name dims data_type raw_data } }`, the raw
bytes written straight from the numpy buffer (a memoryview: no copy). Nothing in netspec is
changed; the skeleton comes from netspec's own compile, then the result is checked: onnx.load
reads the same initializers, the checker passes, and ONNX Runtime gives the same outputs as on
netspec's own file.

Prints, for the current path (the onnx target's `write`) and for the streamed one, in fresh
child processes: time and peak resident-set growth (VmHWM - VmRSS before the step), relative to
the weight bytes. The weights are drawn before either step (they are needed by both, and by the
.safetensors file) and count in "weights", not in the step.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIG = 1024  # initializers above this many bytes are streamed


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return -1


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _len_field(field: int, payload_len: int) -> bytes:
    return _varint(field << 3 | 2) + _varint(payload_len)


def stream_write(skeleton_bytes: bytes, big: list[tuple[str, list[int], int, object]],
                 path: Path) -> None:
    """skeleton, then one `graph { initializer {...} }` fragment per large tensor."""
    from onnx import TensorProto

    with open(path, "wb") as f:
        f.write(skeleton_bytes)
        for name, dims, dtype, array in big:
            head = TensorProto(name=name, dims=dims, data_type=dtype).SerializeToString()
            raw = memoryview(array).cast("B")  # little-endian float32 on x86: no copy
            tensor_len = len(head) + len(_len_field(9, raw.nbytes)) + raw.nbytes
            init = _len_field(5, tensor_len)  # GraphProto.initializer = 5
            graph_len = len(init) + tensor_len
            f.write(_len_field(7, graph_len))  # ModelProto.graph = 7
            f.write(init)
            f.write(head)
            f.write(_len_field(9, raw.nbytes))  # TensorProto.raw_data = 9
            f.write(raw)


def child(mode: str, spec: str, out: str) -> dict:
    import numpy as np

    import netspec
    from netspec import targets

    tonnx = targets.get("onnx")
    graph = netspec.load(spec)
    w = netspec.init_weights(graph, 0)
    if mode == "streamed":
        # the skeleton: netspec's own model of the graph built on 1-element stand-ins for the
        # weights (no memory); every initializer that is a canonical weight under its own name
        # is then taken from `w`: small ones into the skeleton, large ones streamed after it.
        # (Enough for the graphs measured here; recurrent layers re-pack their weights under
        # other names and would need the emitter's packing.)
        from onnx import numpy_helper

        class Stub(dict):
            def __getitem__(self, k):
                return np.zeros([1] * np.ndim(dict.__getitem__(self, k)), np.float32)

        base = _status("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")
        t0 = time.perf_counter()
        skel = tonnx._build(graph, Stub(w), tonnx._check_opset(None))
        big, keep = [], []
        for t in skel.graph.initializer:
            if t.name in w:
                a = np.ascontiguousarray(w[t.name], np.float32)
                if a.nbytes > BIG:
                    big.append((t.name, list(a.shape), t.data_type, a))
                else:
                    keep.append(numpy_helper.from_array(a, t.name))
            elif t.name.startswith("const/"):
                keep.append(t)
            else:
                raise AssertionError(f"{t.name}: not a canonical weight (re-packed)")
        del skel.graph.initializer[:]
        skel.graph.initializer.extend(keep)
        stream_write(skel.SerializeToString(), big, Path(out))
        dt = time.perf_counter() - t0
    else:
        base = _status("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")
        t0 = time.perf_counter()
        tonnx.write(graph, w, Path(out).parent)
        dt = time.perf_counter() - t0
    peak = _status("VmHWM")
    wb = 4 * (graph.param_count + graph.buffer_count)
    return {"mode": mode, "seconds": dt, "growth": peak - base, "weight_bytes": wb}


def check(spec: str, current: Path, streamed: Path) -> str:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    import netspec
    from netspec.testing import random_inputs

    a, b = onnx.load(str(current)), onnx.load(str(streamed))
    onnx.checker.check_model(b)
    ia = {t.name: numpy_helper.to_array(t) for t in a.graph.initializer}
    ib = {t.name: numpy_helper.to_array(t) for t in b.graph.initializer}
    assert ia.keys() == ib.keys(), set(ia) ^ set(ib)
    assert all(np.array_equal(ia[k], ib[k]) for k in ia)
    g = netspec.load(spec)
    x = random_inputs(g, batch=2)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    ya = ort.InferenceSession(str(current), so).run(None, x)
    yb = ort.InferenceSession(str(streamed), so).run(None, x)
    assert all(np.array_equal(p, q) for p, q in zip(ya, yb, strict=True))
    return f"identical initializers ({len(ia)}), checker ok, identical ORT outputs"


def main() -> int:
    if sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], sys.argv[3], sys.argv[4])))
        return 0
    spec = sys.argv[1]
    name = Path(spec).stem
    with tempfile.TemporaryDirectory() as d:
        res = {}
        for mode in ("current", "streamed", "current", "streamed"):
            out = Path(d) / mode / f"{name}.onnx"
            out.parent.mkdir(exist_ok=True)
            p = subprocess.run([sys.executable, __file__, "--child", mode, spec, str(out)],
                               capture_output=True, text=True, check=True)
            r = json.loads(p.stdout)
            res.setdefault(mode, []).append(r)
        files = {m: next((Path(d) / m).glob("*.onnx")) for m in res}
        print(check(spec, files["current"], files["streamed"]))
        for mode, rs in res.items():
            t = min(r["seconds"] for r in rs)
            g = max(r["growth"] for r in rs)
            wb = rs[0]["weight_bytes"]
            print(f"{mode:9s} write step: {t * 1e3:7.1f} ms (best of 2), peak growth "
                  f"{g / 2**20:7.1f} MiB = {g / wb:.2f}x the weights ({wb / 2**20:.1f} MiB), "
                  f"file {files[mode].stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
