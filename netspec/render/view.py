"""`netspec view`: the ONNX model in Netron, served on a local port."""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

NO_NETRON = (
    "netspec view needs the netron package: pip install 'netspec[view]' or pip install netron"
)


def onnx_bytes(graph) -> bytes:
    """The graph built for the ONNX target (weights: init_weights(seed=0)), serialized."""
    import netspec

    proto = netspec.compile(graph, target="onnx")
    return proto.SerializeToString()


def serve(path: Path, host: str, port: int | None, browse: bool, out=sys.stdout) -> None:
    """Serve `path` in Netron until interrupted (Ctrl-C)."""
    import netron

    logging.getLogger("netron").setLevel(logging.WARNING)  # we print the address ourselves
    address = netron.serve(str(path), None, address=(host, port), browse=browse)
    print(
        f"Netron is showing {path.name} at http://{address[0]}:{address[1]} (Ctrl-C to stop)",
        file=out,
        flush=True,
    )
    try:
        netron.wait()
    finally:
        netron.stop()


def view(model: str, graph_loader, host: str, port: int | None, browse: bool) -> None:
    """Serve an .onnx file as it is, or build a spec's ONNX into a temporary folder first."""
    path = Path(model)
    if path.suffix.lower() == ".onnx":
        serve(path, host, port, browse)
        return
    graph = graph_loader()
    with tempfile.TemporaryDirectory(prefix="netspec-view-") as tmp:
        out = Path(tmp) / f"{graph.name}.onnx"
        out.write_bytes(onnx_bytes(graph))
        serve(out, host, port, browse)
