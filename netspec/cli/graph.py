"""`netspec graph SPEC -o FILE`: draw the network (SVG, PNG, DOT or Mermaid)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..outdir import write_file
from ..render import EXTENSIONS, FORMATS
from .common import UsageError, load_spec, spec_options

SUFFIX = {"svg": ".svg", "png": ".png", "dot": ".dot", "mermaid": ".mmd", "markdown": ".md"}


def add_parser(sub) -> None:
    sp = sub.add_parser(
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
    sp.set_defaults(func=run)


def output_format(args) -> str:
    if args.format:
        return args.format
    if not args.output or args.output == "-":
        return "svg"
    ext = Path(args.output).suffix.lower()
    if ext not in EXTENSIONS:
        raise UsageError(
            f"cannot tell the format from {args.output!r}: use one of "
            f"{', '.join(EXTENSIONS)} or --format {{{','.join(FORMATS)}}}"
        )
    return EXTENSIONS[ext]


def run(args) -> int:
    from ..render import render
    from ..render.png import PngUnavailable

    fmt = output_format(args)  # a bad -o fails before the spec is read
    if args.scale <= 0:
        raise UsageError(f"--scale must be positive, got {args.scale}")
    graph = load_spec(args, args.spec)
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
    out = Path(args.output or f"{graph.name}{SUFFIX[fmt]}")
    write_file(out, data)  # atomic; a symlink at `out` is replaced, not written through
    print(out)
    return 0
