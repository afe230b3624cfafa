"""`netspec deploy MODEL.onnx|SPEC --triton DIR --litert DIR`: a model ready for a serving
engine (a Triton model repository) or a phone (a LiteRT flatbuffer of the Keras target).

The work lives in `netspec.deploy` (one module per engine or runtime); this module reads the
command line and prints what was written.
"""

from __future__ import annotations

from .common import UsageError, load_spec, spec_options, weights_option


def add_parser(sub) -> None:
    sp = sub.add_parser(
        "deploy", help="write a Triton model repository or a LiteRT model for deployment"
    )
    sp.add_argument("model", metavar="MODEL.onnx|SPEC")
    weights_option(sp)
    sp.add_argument("--triton", metavar="DIR", help="write a Triton model repository into DIR")
    sp.add_argument(
        "--litert",
        metavar="DIR",
        help="write <name>.tflite (LiteRT, from the Keras target) into DIR",
    )
    sp.add_argument(
        "--litert-batch",
        type=int,
        metavar="N",
        help="a fixed batch size for the LiteRT model (default: any; recurrent layers need one)",
    )
    sp.add_argument("--name", help="the model's name in the repository (default: the spec's)")
    sp.add_argument(
        "--max-batch-size",
        type=int,
        metavar="N",
        help="Triton's max_batch_size (default 32 when the model has a batch axis; 0: none)",
    )
    sp.add_argument("--instance", default="cpu", choices=["cpu", "gpu"], help="instance kind")
    sp.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    spec_options(sp)
    sp.set_defaults(func=run)


def run(args) -> int:
    from ..deploy.source import from_graph, from_onnx, is_onnx_file

    if not args.triton and not args.litert:
        raise UsageError("nothing to write: give --triton DIR and/or --litert DIR")
    if is_onnx_file(args.model):
        src = from_onnx(args.model, args.weights)
    else:
        src = from_graph(load_spec(args, args.model), args.weights)
    written = []
    tflite = None
    if args.litert:  # converted first: when it fails, nothing is written
        from ..deploy import litert

        litert.check_source(src, args.name)
        tflite = litert.convert(src.graph, src.weights, args.litert_batch)
    if args.triton:
        from ..deploy.triton import write_repository

        files, mbs = write_repository(
            src,
            args.triton,
            name=args.name,
            max_batch_size=args.max_batch_size,
            instance=args.instance,
        )
        written += files
        if not args.quiet:
            print(f"triton: max_batch_size {mbs}, instance {args.instance}")
    if tflite is not None:
        written += litert.write(src, args.litert, args.name, data=tflite)
    if not args.quiet:
        for f in written:
            print(f)
    return 0
