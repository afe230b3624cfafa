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
    sp.add_argument(
        "--quantize",
        choices=["int8", "fp16"],
        help="also write <name>.int8.onnx (dynamic; static with --calibrate) or <name>.fp16.onnx",
    )
    sp.add_argument("--calibrate", metavar="FILE", help="int8 calibration data (.npz/.npy/.csv)")
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
    calibration = None
    if args.quantize or args.calibrate:
        from ..targets.onnx.quantize import read_calibration

        if "onnx" not in names or not args.quantize:
            raise UsageError("--quantize (and --calibrate) go with the onnx target")
        if args.calibrate and args.quantize != "int8":
            raise UsageError("--calibrate goes with --quantize int8 (fp16 needs no data)")
        if args.calibrate:
            calibration = read_calibration(args.calibrate, graph)
    with progress([*names, "weights"], sys.stderr) as step:
        files = build(
            graph, names, outdir, args.weights, options=options, step=None if args.quiet else step
        )
    if args.quantize:
        from ..targets.onnx.quantize import write_variant

        path, done, ratio = write_variant(graph, outdir, args.quantize, calibration)
        files.append(path)
        if not args.quiet:
            print(
                f"{args.quantize}: {done}, {ratio:.2f}x the float32 model's size", file=sys.stderr
            )
    if not args.quiet:
        for f in files:
            print(f)
    return 0
