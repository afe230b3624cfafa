"""ONNX Runtime CPU latency of netspec's transformer graphs against ONNX Runtime on
`torch.onnx.export` of the PyTorch module netspec generates for the same spec.

    .venv/bin/python benchmarks/attention.py            # prints the table, ~2 min on 2 cores
    .venv/bin/python benchmarks/attention.py --write    # also writes its section of RESULTS.md

Networks: the ViT of specs/vit_tiny.yaml and one BERT-base encoder layer
(benchmarks/specs/bert_layer.yaml: width 768, 12 heads, 128 tokens, a padding mask), random
weights (`tools.testing.random_weights`), batch 1 and 32. Contenders: netspec's ONNX at its
default opset 17 (the attention decomposed) and at opset 23 (the ONNX `Attention` operator), and
`torch.onnx.export` (the legacy exporter, opset 17, dynamic batch) of netspec's generated
PyTorch module with the same weights. Each is checked against the PyTorch module within the
float32 parity bound before it is timed; ONNX Runtime runs with 2 threads, sequential, spinning
off (as benchmarks/runtimes.py). Contenders are interleaved round by round; the figure is the
median per-call time; ratios are paired per round (see common.py). Ratio < 1: netspec faster.
"""

from __future__ import annotations

import argparse
import io
import sys
import warnings
from pathlib import Path

from common import (
    ROOT,
    Table,
    fmt_ratio,
    fmt_s,
    loadavg,
    paired_ratio,
    pin_threads,
    replace_section,
)
from inference import ort_session
from runtimes import timed

NETS = {
    "ViT (vit_tiny)": ROOT / "specs/vit_tiny.yaml",
    "BERT-base layer": ROOT / "benchmarks/specs/bert_layer.yaml",
}
BATCHES = [1, 32]
BEGIN, END = "<!-- attention:begin -->", "<!-- attention:end -->"


def torch_export(graph, module, x: dict) -> bytes:
    import torch

    names = list(graph.inputs)
    args = tuple(torch.from_numpy(x[k]) for k in names)
    out = io.BytesIO()
    axes = {k: {0: "batch"} for k in [*names, *graph.outputs]}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            out,
            dynamo=False,
            opset_version=17,
            input_names=names,
            output_names=list(graph.outputs),
            dynamic_axes=axes,
        )
    return out.getvalue()


def attention(repeat: int) -> Table:
    import numpy as np
    import torch

    import netspec
    from tools.testing import assert_close, random_inputs, random_weights

    table = Table(
        "ONNX Runtime CPU latency per call: netspec's ONNX vs torch.onnx.export of netspec's "
        "PyTorch module (same weights, 2 threads)",
        [
            "network",
            "batch",
            "export",
            "netspec opset 17",
            "netspec opset 23",
            "17 / export",
            "23 / export",
        ],
    )
    for net, path in NETS.items():
        graph = netspec.load(path)
        w = random_weights(graph)
        module = netspec.compile(graph, "torch", w).eval()
        trace = random_inputs(graph, batch=2, seed=1)
        sessions = {
            "export": ort_session(torch_export(graph, module, trace)),
            "17": ort_session(netspec.compile(graph, "onnx", w, opset=17).SerializeToString()),
            "23": ort_session(netspec.compile(graph, "onnx", w, opset=23).SerializeToString()),
        }
        for batch in BATCHES:
            x = random_inputs(graph, batch=batch, seed=2)
            if "mask" in x:  # a padding mask: the last quarter of the tokens padded
                x["mask"] = np.ones_like(x["mask"])
                x["mask"][:, -x["mask"].shape[1] // 4 :] = 0.0
            with torch.no_grad():
                want = module(*(torch.from_numpy(x[k]) for k in graph.inputs)).numpy()
            for k, s in sessions.items():
                assert_close(s.run(None, x)[0], want, f"{net} batch {batch}: {k}")
            fns = {k: (lambda s=s, x=x: s.run(None, x)) for k, s in sessions.items()}
            t = timed(fns, repeat)
            table.add(
                net,
                batch,
                fmt_s(t["export"].median),
                fmt_s(t["17"].median),
                fmt_s(t["23"].median),
                fmt_ratio(paired_ratio(t["17"], t["export"])),
                fmt_ratio(paired_ratio(t["23"], t["export"])),
            )
            print(table.rows[-1], flush=True)
    table.notes.append("ratio < 1: netspec's graph is faster than the exported one")
    return table


def write(tables: list[Table], path: Path) -> None:
    import datetime
    import os

    import onnxruntime
    import torch

    from netspec.version import __version__

    body = [
        f"## Attention (benchmarks/attention.py, {datetime.date.today()}, {os.cpu_count()} "
        f"CPUs, load {loadavg()})",
        "",
        f"netspec {__version__}, onnxruntime {onnxruntime.__version__}, torch {torch.__version__}",
        "",
    ]
    body += [t.markdown() for t in tables]
    replace_section(path, BEGIN, END, "\n".join(body))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=7, help="timed rounds per contender (at least)")
    p.add_argument("--write", action="store_true", help="write the section into RESULTS.md")
    args = p.parse_args()
    pin_threads()
    sys.path.insert(0, str(ROOT))
    print(f"load {loadavg()}", flush=True)
    tables = [attention(args.repeat)]
    for t in tables:
        print()
        print(t.markdown())
    print(f"load {loadavg()}")
    if args.write:
        write(tables, ROOT / "benchmarks" / "RESULTS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
