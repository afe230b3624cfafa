"""`netspec view SPEC|MODEL.onnx`: open the ONNX model in Netron (a spec is built first, with
init_weights(seed=0))."""

from __future__ import annotations

import sys
from pathlib import Path

from .common import UsageError, load_spec, spec_options


def add_parser(sub) -> None:
    sp = sub.add_parser(
        "view",
        help="open the ONNX model in Netron on a local port",
        description="Serve a spec's ONNX model (built with init_weights(seed=0)) or an .onnx "
        "file in Netron on a local port, and open it in the browser. Ctrl-C stops it.",
    )
    sp.add_argument("model", metavar="SPEC|MODEL.onnx")
    sp.add_argument("--port", type=int, metavar="N", help="port (default: 8080 or a free one)")
    sp.add_argument("--host", default="localhost", help="address to listen on (default localhost)")
    sp.add_argument("--no-browser", action="store_true", help="print the URL only")
    spec_options(sp)
    sp.set_defaults(func=run)


def run(args) -> int:
    from ..render.view import NO_NETRON, serve, serve_bytes

    try:
        import netron  # noqa: F401
    except ImportError:
        print(f"netspec: error: {NO_NETRON}", file=sys.stderr)
        return 2
    if args.port is not None and not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {args.port}")
    path = Path(args.model)
    browse = not args.no_browser
    try:
        if path.suffix.lower() == ".onnx":
            if not path.is_file():
                raise UsageError(f"no such file: {args.model}")
            serve(path, args.host, args.port, browse)
        else:
            graph = load_spec(args, args.model)
            model = _onnx_bytes(graph)
            serve_bytes(graph.name, model, args.host, args.port, browse)
    except ImportError as e:  # the ONNX target's own dependency (the onnx package)
        print(
            f"netspec: error: building ONNX needs {e.name or 'onnx'}: pip install 'netspec[onnx]'",
            file=sys.stderr,
        )
        return 2
    except OSError as e:
        raise UsageError(f"cannot serve on {args.host}:{args.port}: {e.strerror or e}") from None
    except KeyboardInterrupt:
        pass
    return 0


def _onnx_bytes(graph) -> bytes:
    from ..api import compile

    return compile(graph, target="onnx").SerializeToString()
