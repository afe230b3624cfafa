"""The `netspec` command line. Exit codes: 0 ok, 2 spec or usage error, 1 internal failure.

Frameworks load only for the targets a command needs: `validate`, `inspect`, `schema` and
`build --target onnx` never import torch or TensorFlow.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from . import __version__
from .errors import SpecError, SpecErrors
from .lower import MAX_PARAMS
from .yamlload import core_scalar


class UsageError(SpecError):
    """A bad command line (exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 too; keep its usage line
        self.print_usage(sys.stderr)
        raise UsageError(message)


def _params(pairs: list[str] | None) -> dict:
    out = {}
    for item in pairs or []:
        if "=" not in item:
            raise UsageError(f"--set takes NAME=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = core_scalar(v.strip())
    return out


def _load(args, spec: str):
    from .api import load

    return load(
        spec,
        _params(getattr(args, "set", None)),
        max_params=getattr(args, "max_params", MAX_PARAMS),
    )


def cmd_validate(args) -> int:
    failed = 0
    for spec in args.specs:
        try:
            _load(args, spec)
        except (SpecError, SpecErrors) as e:
            print(e, file=sys.stderr)
            failed += 1
    return 2 if failed else 0


def cmd_inspect(args) -> int:
    graph = _load(args, args.spec)
    if args.json:
        import json

        from .inspect_table import rows, totals

        data = {
            "name": graph.name,
            "layers": [
                dict(zip(("name", "op", "shape", "params"), r, strict=True)) for r in rows(graph)
            ],
            **totals(graph),
        }
        print(json.dumps(data, indent=2))
        return 0
    if sys.stdout.isatty():
        try:
            from .render.term import print_inspect

            print_inspect(graph, sys.stdout)
            return 0
        except ImportError:
            pass
    from .inspect_table import plain_inspect

    sys.stdout.write(plain_inspect(graph))
    return 0


def cmd_schema(args) -> int:
    from .schema import schema_text

    sys.stdout.write(schema_text())
    return 0


def cmd_build(args) -> int:
    from .build import build

    graph = _load(args, args.spec)
    outdir = Path(args.output) if args.output else Path("build") / graph.name
    options = {}
    if args.opset is not None:
        if args.opset < 13:
            raise UsageError(f"--opset must be 13 or newer, got {args.opset}")
        options["onnx"] = {"opset": args.opset}
    names = ["torch", "keras", "onnx"] if args.target == "all" else [args.target]
    quiet = args.quiet
    from .render.term import progress

    with progress([*names, "weights"], sys.stderr) as step:
        files = build(
            graph, names, outdir, args.weights, options=options, step=None if quiet else step
        )
    if not quiet:
        for f in files:
            print(f)
    return 0


def cmd_run(args) -> int:
    from .targets.onnx.run import main_run

    return main_run(args)


def spec_options(sp: argparse.ArgumentParser) -> None:
    """The options of every command that reads a spec (the render commands too)."""
    sp.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="override a spec param (repeatable)",
    )
    sp.add_argument(
        "--max-params",
        type=int,
        default=MAX_PARAMS,
        metavar="N",
        help=f"refuse specs with more weights than this (default {MAX_PARAMS:,})",
    )


def make_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="netspec", description="Compile YAML network specs to PyTorch, Keras and ONNX."
    )
    p.add_argument("--version", action="version", version=f"netspec {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sp = sub.add_parser("validate", help="check specs: schema, references, shapes")
    sp.add_argument("specs", nargs="+", metavar="SPEC")
    spec_options(sp)
    sp.set_defaults(func=cmd_validate)

    sp = sub.add_parser("inspect", help="per-layer table: output shapes, parameters, MACs")
    sp.add_argument("spec", metavar="SPEC")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    spec_options(sp)
    sp.set_defaults(func=cmd_inspect)

    sp = sub.add_parser("build", help="write PyTorch / Keras source, ONNX and weights")
    sp.add_argument("spec", metavar="SPEC")
    sp.add_argument("--target", "-t", default="all", choices=["torch", "keras", "onnx", "all"])
    sp.add_argument(
        "-o", "--output", metavar="DIR", help="output directory (default build/<name>/)"
    )
    sp.add_argument(
        "--weights",
        metavar="FILE",
        help="canonical safetensors weights (default: init_weights(seed=0))",
    )
    sp.add_argument("--opset", type=int, help="ONNX opset (default 17; 13 or newer)")
    sp.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    spec_options(sp)
    sp.set_defaults(func=cmd_build)

    sp = sub.add_parser("run", help="run an ONNX model on ONNX Runtime")
    sp.add_argument("model", metavar="MODEL.onnx")
    sp.add_argument("--input", "-i", action="append", default=[], metavar="NAME=FILE.npy")
    sp.add_argument("--provider", default="auto", choices=["auto", "cuda", "cpu"])
    sp.add_argument("-o", "--output", metavar="DIR", help="save each output as DIR/<name>.npy")
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("schema", help="print the JSON Schema of the spec language")
    sp.set_defaults(func=cmd_schema)

    try:
        from .render import cli as render_cli
    except ImportError:
        render_cli = None
    if render_cli is not None:
        render_cli.add_graph_parser(sub)
        render_cli.add_view_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = make_parser().parse_args(argv)
        return args.func(args)
    except UsageError as e:
        print(f"netspec: error: {e.message}", file=sys.stderr)
        return 2
    except (SpecError, SpecErrors) as e:
        print(e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # an internal failure: short by default
        if os.environ.get("NETSPEC_DEBUG"):
            traceback.print_exc()
        else:
            print(
                f"netspec: internal error: {type(e).__name__}: {e}\n"
                "  (set NETSPEC_DEBUG=1 for the traceback; please report it)",
                file=sys.stderr,
            )
        return 1


if __name__ == "__main__":
    sys.exit(main())
