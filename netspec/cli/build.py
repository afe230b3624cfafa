"""`netspec build SPEC --target NAME|all`: source, models and weights into one directory."""

from __future__ import annotations

import sys

from .. import targets
from .common import (
    UsageError,
    load_spec,
    output_dir,
    output_dir_option,
    spec_options,
    weights_option,
)


def add_parser(sub) -> None:
    sp = sub.add_parser("build", help="write PyTorch / Keras source, ONNX and weights")
    sp.add_argument("spec", metavar="SPEC")
    sp.add_argument("--target", "-t", default="all", choices=[*targets.names(), "all"])
    output_dir_option(sp)
    weights_option(sp)
    sp.add_argument("--opset", type=int, help="ONNX opset (default 17; 13 or newer)")
    sp.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    spec_options(sp)
    sp.set_defaults(func=run)


def run(args) -> int:
    from ..build import build
    from ..render.term import progress

    graph = load_spec(args, args.spec)
    outdir = output_dir(args, graph)
    options = {}
    if args.opset is not None:
        if args.opset < 13:
            raise UsageError(f"--opset must be 13 or newer, got {args.opset}")
        options["onnx"] = {"opset": args.opset}
    names = targets.names() if args.target == "all" else [args.target]
    with progress([*names, "weights"], sys.stderr) as step:
        files = build(
            graph, names, outdir, args.weights, options=options, step=None if args.quiet else step
        )
    if not args.quiet:
        for f in files:
            print(f)
    return 0
