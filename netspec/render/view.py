"""`netspec view`: an ONNX model in Netron, served on a local port."""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

NO_NETRON = (
    "netspec view needs the netron package: pip install 'netspec[view]' or pip install netron"
)


def serve(path: Path, host: str, port: int | None, browse: bool, out=sys.stdout) -> None:
    """Serve the .onnx file at `path` in Netron until interrupted (Ctrl-C)."""
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


def serve_bytes(name: str, model: bytes, host: str, port: int | None, browse: bool) -> None:
    """Serve a serialized model as `<name>.onnx` from a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="netspec-view-") as tmp:
        path = Path(tmp) / f"{name}.onnx"
        path.write_bytes(model)
        serve(path, host, port, browse)
