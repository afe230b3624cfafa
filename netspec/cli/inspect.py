"""`netspec inspect SPEC [--json]`: the per-layer table (rich on a terminal, plain when piped)."""

from __future__ import annotations

import sys

from .common import load_spec, spec_options


def add_parser(sub) -> None:
    sp = sub.add_parser("inspect", help="per-layer table: output shapes, parameters, MACs")
    sp.add_argument("spec", metavar="SPEC")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.add_argument(
        "--dims",
        action="append",
        metavar="AXIS=N",
        help="size of a dynamic input axis for the shapes and MACs (e.g. seq=100; an axis "
        "written null is <input>_<position>, e.g. x_2); unsized axes are counted as 1",
    )
    spec_options(sp)
    sp.set_defaults(func=run)


def run(args) -> int:
    graph = load_spec(args, args.spec)
    if args.json:
        import json

        from ..inspect_table import dynamic_axes, rows, totals, training

        data = {
            "name": graph.name,
            "layers": [
                dict(zip(("name", "op", "shape", "params"), r, strict=True)) for r in rows(graph)
            ],
            **totals(graph),
            "macs_assume_size_1": dynamic_axes(graph),
            "training": training(graph),
        }
        print(json.dumps(data, indent=2))
        return 0
    if sys.stdout.isatty():
        try:
            from ..render.term import print_inspect

            print_inspect(graph, sys.stdout)
            return 0
        except ImportError:
            pass
    from ..inspect_table import plain_inspect

    sys.stdout.write(plain_inspect(graph))
    return 0
