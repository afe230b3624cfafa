"""CPU runtimes for the same model: OpenVINO and LiteRT against ONNX Runtime, and ONNX Runtime on
the quantized variants (`netspec build --quantize`) against float32.

    .venv/bin/python benchmarks/runtimes.py            # prints the tables, ~5-10 min on 2 cores
    .venv/bin/python benchmarks/runtimes.py --write    # also writes its section of RESULTS.md

Networks: ResNet-18 (specs/resnet18.yaml), MobileNetV2 (specs/keras_mobilenetv2.yaml) and the
digits CNN (specs/digits_cnn.yaml), random weights (`tools.testing.random_weights`). Every
contender runs with 2 threads (ORT: intra-op 2, sequential, spinning off, as in
benchmarks/inference.py; OpenVINO: INFERENCE_NUM_THREADS 2, f32 precision; LiteRT: 2 threads,
its default XNNPACK delegate), is checked against ONNX Runtime within the float32 parity bound
before it is timed (the quantized ones within a loose bound: they are approximations), and is
called directly (no netspec input checks in the timed call). Contenders are interleaved round by
round; the figure is the median per-call time; ratios are paired per round (see common.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from common import (
    ROOT,
    THREADS,
    Table,
    calls_for,
    fmt_ratio,
    fmt_s,
    loadavg,
    paired_ratio,
    pin_threads,
    replace_section,
    rounds_for,
    time_calls,
)
from inference import ort_session  # the same session options as the inference section

NETS = {
    "ResNet-18": ROOT / "specs/resnet18.yaml",
    "MobileNetV2": ROOT / "specs/keras_mobilenetv2.yaml",
    "digits CNN": ROOT / "specs/digits_cnn.yaml",
}
BATCHES = {"ResNet-18": [1], "MobileNetV2": [1], "digits CNN": [1, 64]}
BEGIN, END = "<!-- runtimes:begin -->", "<!-- runtimes:end -->"


def timed(fns: dict, repeat: int) -> dict:
    """Warm up, size the rounds from the slowest contender, then time them interleaved."""
    import time

    t = {}
    for name, fn in fns.items():
        fn()
        t0 = time.perf_counter()
        fn()
        t[name] = time.perf_counter() - t0
    number = calls_for(max(t.values()))
    rounds = rounds_for(max(t.values()), number, repeat, budget_s=3.0)
    return time_calls(fns, rounds, number=number, warmup=1)


def runtimes(repeat: int) -> Table:
    import netspec
    from netspec.deploy import litert, openvino
    from tools.testing import assert_close, random_inputs, random_weights

    table = Table(
        "CPU latency per call: OpenVINO and LiteRT vs ONNX Runtime (same weights, 2 threads)",
        [
            "network",
            "batch",
            "ONNX Runtime",
            "OpenVINO",
            "LiteRT",
            "OpenVINO / ORT",
            "LiteRT / ORT",
        ],
    )
    for net, path in NETS.items():
        graph = netspec.load(path)
        w = random_weights(graph)
        model = netspec.compile(graph, "onnx", w).SerializeToString()
        sess = ort_session(model)
        ov = openvino.Session(model, threads=THREADS)
        try:
            lite = litert.Session(litert.convert(graph, w), threads=THREADS)
        except Exception as e:  # noqa: BLE001 - reported in the table
            lite, why = None, str(e)
        for batch in BATCHES[net]:
            x = random_inputs(graph, batch=batch)
            want = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, x), strict=True))
            for name, got in [("OpenVINO", ov.run(x)), ("LiteRT", lite.run(x) if lite else {})]:
                for k in got:
                    assert_close(got[k], want[k], f"{net} {name} {k}")
            feeds_lite = {k: litert._to_keras(a) for k, a in x.items()}
            fns = {
                "ort": lambda x=x, sess=sess: sess.run(None, x),
                "openvino": lambda x=x, ov=ov: ov.request.infer(x),
            }
            if lite:
                fns["litert"] = lambda f=feeds_lite, lite=lite: lite.runner(**f)
            s = timed(fns, repeat)
            lite_cell = fmt_s(s["litert"].median) if lite else f"failed: {why[:60]}"
            table.add(
                net,
                batch,
                fmt_s(s["ort"].median),
                fmt_s(s["openvino"].median),
                lite_cell,
                fmt_ratio(paired_ratio(s["openvino"], s["ort"])),
                fmt_ratio(paired_ratio(s["litert"], s["ort"])) if lite else "-",
            )
            print(table.rows[-1], flush=True)
    table.notes.append("ratio < 1: faster than ONNX Runtime")
    return table


def quantized(repeat: int) -> Table:
    import numpy as np

    import netspec
    from netspec.targets.onnx.quantize import quantize
    from tools.testing import random_inputs, random_weights

    table = Table(
        "ONNX Runtime CPU on netspec build --quantize variants vs float32 (2 threads)",
        [
            "network",
            "batch",
            "variant",
            "size",
            "size / f32",
            "latency",
            "latency / f32",
            "max |diff|",
        ],
    )
    for net in ("ResNet-18", "digits CNN"):
        graph = netspec.load(NETS[net])
        w = random_weights(graph)
        with tempfile.TemporaryDirectory() as tmp:
            f32 = Path(tmp) / "f32.onnx"
            f32.write_bytes(netspec.compile(graph, "onnx", w).SerializeToString())
            cal = random_inputs(graph, batch=64, seed=7)
            files = {"float32": f32}
            for label, mode, data in [
                ("int8 dynamic", "int8", None),
                ("int8 static", "int8", cal),
                ("fp16", "fp16", None),
            ]:
                files[label] = Path(tmp) / f"{label.replace(' ', '_')}.onnx"
                quantize(f32, files[label], mode, data)
            sessions = {k: ort_session(str(p)) for k, p in files.items()}
            for batch in BATCHES[net][-1:] if net == "digits CNN" else [1]:
                x = random_inputs(graph, batch=batch)
                want = sessions["float32"].run(None, x)[0]
                s = timed(
                    {k: (lambda s=s, x=x: s.run(None, x)) for k, s in sessions.items()}, repeat
                )
                for k, p in files.items():
                    diff = float(np.abs(sessions[k].run(None, x)[0] - want).max())
                    table.add(
                        net,
                        batch,
                        k,
                        _size(p.stat().st_size),
                        fmt_ratio(p.stat().st_size / f32.stat().st_size),
                        fmt_s(s[k].median),
                        fmt_ratio(paired_ratio(s[k], s["float32"])),
                        f"{diff:.2g}",
                    )
                    print(table.rows[-1], flush=True)
    table.notes.append(
        "random weights and inputs: the differences show the approximation, not accuracy "
        "(accuracy on the trained digits CNN: tests/test_quantize.py and docs/deploy.md)"
    )
    return table


def _size(n: int) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def write(tables: list[Table], path: Path) -> None:
    import datetime
    import platform

    import onnxruntime
    import openvino

    from netspec.version import __version__

    versions = (
        f"netspec {__version__}, onnxruntime {onnxruntime.__version__}, "
        f"openvino {openvino.__version__.split('-')[0]}, "
        f"ai-edge-litert {_version('ai-edge-litert')}, python {platform.python_version()}"
    )
    body = [
        f"## Runtimes (benchmarks/runtimes.py, {datetime.date.today()}, {os.cpu_count()} CPUs, "
        f"load {loadavg()})",
        "",
        versions,
        "",
    ]
    body += [t.markdown() for t in tables]
    replace_section(path, BEGIN, END, "\n".join(body))


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=7, help="timed rounds per contender (at least)")
    p.add_argument("--only", choices=["runtimes", "quantized"], help="one section")
    p.add_argument("--write", action="store_true", help="write the section into RESULTS.md")
    args = p.parse_args()
    pin_threads()
    sys.path.insert(0, str(ROOT))
    print(f"load {loadavg()}", flush=True)
    tables = []
    if args.only in (None, "runtimes"):
        tables.append(runtimes(args.repeat))
    if args.only in (None, "quantized"):
        tables.append(quantized(args.repeat))
    for t in tables:
        print()
        print(t.markdown())
    print(f"load {loadavg()}")
    if args.write:
        write(tables, ROOT / "benchmarks" / "RESULTS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
