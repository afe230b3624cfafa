"""`netspec schema`: print the JSON Schema of the spec language."""

from __future__ import annotations

import sys


def add_parser(sub) -> None:
    sp = sub.add_parser("schema", help="print the JSON Schema of the spec language")
    sp.set_defaults(func=run)


def run(args) -> int:
    from ..schema import schema_text

    sys.stdout.write(schema_text())
    return 0
