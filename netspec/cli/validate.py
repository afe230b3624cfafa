"""`netspec validate SPEC...`: schema, references and shapes; prints only errors."""

from __future__ import annotations

import sys

from ..errors import SpecError, SpecErrors
from .common import load_spec, spec_options


def add_parser(sub) -> None:
    sp = sub.add_parser("validate", help="check specs: schema, references, shapes")
    sp.add_argument("specs", nargs="+", metavar="SPEC")
    spec_options(sp)
    sp.set_defaults(func=run)


def run(args) -> int:
    failed = 0
    for spec in args.specs:
        try:
            load_spec(args, spec)
        except (SpecError, SpecErrors) as e:
            print(e, file=sys.stderr)
            failed += 1
    return 2 if failed else 0
