"""One whole-process `torch.onnx.export` run: import torch, build the module, export it.

    python benchmarks/torch_export.py NET OUT.onnx --exporter dynamo|legacy [--opset 17]

This is the contender that `benchmarks/export.py` times as a whole process against
`netspec build SPEC --target onnx`. The module is the hand-written twin from
`benchmarks/models.py` (what a PyTorch user would export); the batch axis (and the LSTM's time
axis) are exported dynamic, like netspec's graph. The legacy exporter writes opset 17 (netspec's
default); the dynamo exporter writes its own default opset, because asking it for 17 adds a
version-conversion pass (extra time, and in torch 2.13 it fails on ResNet-50's ReduceMean).
Nothing of netspec is imported here.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def export(
    net_name: str, out: str, exporter: str, opset: int | None = None, batch: int = 2, model=None
) -> None:
    import logging

    import torch

    import models

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed"

    net = models.NETS[net_name]
    if model is None:
        model = net.build()
    x = net.example(batch)
    names = {"input_names": [net.input_name], "output_names": [net.output_name]}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            dims = {a: torch.export.Dim.DYNAMIC for a in net.dynamic_axes}
            # the dynamo exporter's own opset (`opset=None`): asking it for 17 adds a version
            # conversion pass, which fails on ResNet-50 (ReduceMean axes) in torch 2.13
            kw = {} if opset is None else {"opset_version": opset}
            torch.onnx.export(
                model,
                (x,),
                out,
                dynamo=True,
                **kw,
                dynamic_shapes={net.input_name: dims},
                verbose=False,
                **names,
            )
        elif exporter == "legacy":
            axes = {
                net.input_name: {a: f"dim{a}" for a in net.dynamic_axes},
                net.output_name: {0: "dim0"},
            }
            torch.onnx.export(
                model,
                (x,),
                out,
                dynamo=False,
                opset_version=opset or 17,
                dynamic_axes=axes,
                **names,
            )
        else:
            raise SystemExit(f"unknown exporter {exporter!r}")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("net")
    p.add_argument("out")
    p.add_argument("--exporter", default="dynamo", choices=["dynamo", "legacy"])
    p.add_argument(
        "--opset",
        type=int,
        default=None,
        help="default: the exporter's own (dynamo) / 17 (legacy, as netspec)",
    )
    a = p.parse_args()
    export(a.net, a.out, a.exporter, a.opset)
    return 0


if __name__ == "__main__":
    sys.exit(main())
