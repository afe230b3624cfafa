"""`netspec evaluate MODEL.onnx|SPEC`: a trained model's metrics on data (see
netspec.evaluate.run and docs/evaluate.md)."""

from __future__ import annotations

import sys
from pathlib import Path

from .common import UsageError, load_spec, spec_options

SPEC_SUFFIXES = (".yaml", ".yml")


def add_parser(sub) -> None:
    sp = sub.add_parser(
        "evaluate",
        help="metrics of a trained model on data (accuracy and confusion matrix, or MAE/MSE/R^2)",
    )
    sp.add_argument(
        "model",
        metavar="MODEL.onnx|SPEC",
        help="an ONNX model (with --spec) or a spec (with --weights)",
    )
    sp.add_argument(
        "--spec",
        metavar="SPEC",
        help="with an .onnx model: the spec it was built from (its training: section maps the "
        "data onto the model)",
    )
    sp.add_argument("--weights", metavar="FILE", help="with a spec: the trained weights")
    sp.add_argument(
        "--data",
        metavar="FILE",
        action="append",
        help="the data (.csv/.tsv, .npz, .npy or sklearn:NAME; repeat to put several side by "
        "side; default: the spec's training data)",
    )
    sp.add_argument(
        "--target",
        "-t",
        default="onnx",
        choices=["onnx", "torch", "keras"],
        help="run the model on ONNX Runtime (default) or on the framework",
    )
    sp.add_argument(
        "--split",
        choices=["all", "train", "validation", "test"],
        help="which rows of the data, split as netspec train splits them (default: test when "
        "the spec sets aside test data and --data is not given, else all)",
    )
    sp.add_argument(
        "--batch-size", type=int, default=256, metavar="N", help="examples per run (default 256)"
    )
    # the choices are targets.onnx.run.PROVIDERS (not imported here: it loads numpy)
    sp.add_argument(
        "--provider",
        default="auto",
        choices=["auto", "cuda", "tensorrt", "cpu"],
        help="ONNX Runtime's execution provider (default: CUDA when it can run, else CPU)",
    )
    sp.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        help="write evaluation.json and the pictures (PNG and SVG) into DIR",
    )
    sp.add_argument("--json", action="store_true", help="print the report as JSON")
    spec_options(sp)
    sp.set_defaults(func=run)


def run(args) -> int:
    from ..evaluate import report
    from ..evaluate.run import check_plotting, write
    from ..evaluate.run import run as evaluate

    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    given = Path(args.model)
    if given.suffix.lower() == ".onnx":
        if not args.spec:
            raise UsageError(
                f"{args.model}: an ONNX model is evaluated with its spec: add --spec SPEC "
                "(its training: section maps the data onto the model's inputs and outputs)"
            )
        if args.weights:
            raise UsageError("--weights goes with a spec; an ONNX model carries its own weights")
        spec, model = args.spec, args.model
    else:
        if args.spec:
            raise UsageError(
                f"--spec goes with an .onnx model; {args.model} is read as the spec "
                f"(expected a file ending in .onnx, {', '.join(SPEC_SUFFIXES)})"
            )
        spec, model = args.model, None
    graph = load_spec(args, spec)
    if args.output:
        check_plotting()
    result = evaluate(
        graph,
        args.data[0] if args.data and len(args.data) == 1 else args.data,
        weights=args.weights,
        target=args.target,
        model=model,
        split=args.split,
        batch_size=args.batch_size,
        provider=args.provider,
    )
    files = write(result, args.output) if args.output else []
    if args.json:
        sys.stdout.write(report.to_json(result.report))
    else:
        report.show(result.report)
    for f in files:
        print(f, file=sys.stderr)
    return 0
