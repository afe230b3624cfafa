"""`netspec graph` and `netspec view`, for the main CLI to add to its subcommands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli import spec_options
from . import EXTENSIONS, FORMATS


def _usage_error(message: str) -> Exception:
    from ..cli import UsageError

    return UsageError(message)


def _load(args, spec: str):
    """The spec's graph, loaded as every other command loads it (--set, --max-params)."""
    from ..cli import _load as load

    return load(args, spec)


def add_graph_parser(subparsers) -> argparse.ArgumentParser:
    sp = subparsers.add_parser(
        "graph",
        help="draw the network: SVG, PNG, DOT or Mermaid",
        description="Draw the network. The format follows -o's extension (.svg, .png, .dot, "
        ".gv, .mmd, .mermaid, .md: a Mermaid block for GitHub) or --format.",
    )
    sp.add_argument("spec", metavar="SPEC")
    sp.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="where to write (default <name>.<format>; '-' for stdout)",
    )
    sp.add_argument("-f", "--format", choices=FORMATS, help="default: from FILE, else svg")
    sp.add_argument(
        "--collapse-blocks",
        action="store_true",
        help="draw each block use as one box instead of a cluster",
    )
    sp.add_argument(
        "--scale", type=float, default=2.0, metavar="X", help="PNG pixels per SVG pixel (default 2)"
    )
    spec_options(sp)
    sp.set_defaults(func=run_graph)
    return sp


def _format(args) -> str:
    if args.format:
        return args.format
    if not args.output or args.output == "-":
        return "svg"
    ext = Path(args.output).suffix.lower()
    if ext not in EXTENSIONS:
        raise _usage_error(
            f"cannot tell the format from {args.output!r}: use one of "
            f"{', '.join(EXTENSIONS)} or --format {{{','.join(FORMATS)}}}"
        )
    return EXTENSIONS[ext]


def run_graph(args) -> int:
    from . import render
    from .png import PngUnavailable

    fmt = _format(args)  # a bad -o fails before the spec is read
    if args.scale <= 0:
        raise _usage_error(f"--scale must be positive, got {args.scale}")
    graph = _load(args, args.spec)
    try:
        data = render(graph, fmt, collapse_blocks=args.collapse_blocks, scale=args.scale)
    except PngUnavailable as e:
        print(f"netspec: error: {e}", file=sys.stderr)
        return 2
    if args.output == "-":
        if isinstance(data, bytes):
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
        else:
            sys.stdout.write(data)
        return 0
    ext = {"svg": ".svg", "png": ".png", "dot": ".dot", "mermaid": ".mmd", "markdown": ".md"}
    out = Path(args.output or f"{graph.name}{ext[fmt]}")
    try:
        if isinstance(data, bytes):
            out.write_bytes(data)
        else:
            out.write_text(data, encoding="utf-8")
    except OSError as e:
        raise _usage_error(f"cannot write {out}: {e.strerror or e}") from None
    print(out)
    return 0


def add_view_parser(subparsers) -> argparse.ArgumentParser:
    sp = subparsers.add_parser(
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
    sp.set_defaults(func=run_view)
    return sp


def run_view(args) -> int:
    from .view import NO_NETRON, view

    try:
        import netron  # noqa: F401
    except ImportError:
        print(f"netspec: error: {NO_NETRON}", file=sys.stderr)
        return 2
    if args.port is not None and not 0 <= args.port <= 65535:
        raise _usage_error(f"--port must be between 0 and 65535, got {args.port}")
    path = Path(args.model)
    if path.suffix.lower() == ".onnx" and not path.is_file():
        raise _usage_error(f"no such file: {args.model}")
    try:
        view(args.model, lambda: _load(args, args.model), args.host, args.port, not args.no_browser)
    except ImportError as e:  # the ONNX target's own dependency (the onnx package)
        print(
            f"netspec: error: building ONNX needs {e.name or 'onnx'}: pip install 'netspec[onnx]'",
            file=sys.stderr,
        )
        return 2
    except OSError as e:
        raise _usage_error(f"cannot serve on {args.host}:{args.port}: {e.strerror or e}") from None
    except KeyboardInterrupt:
        pass
    return 0
