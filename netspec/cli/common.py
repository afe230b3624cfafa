"""What every command shares: the parser whose usage errors exit 2, the spec options, loading a
spec the same way everywhere."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import SpecError
from ..lower import MAX_PARAMS
from ..yamlload import core_scalar


class UsageError(SpecError):
    """A bad command line (exit 2)."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 too; keep its usage line
        self.print_usage(sys.stderr)
        raise UsageError(message)


def spec_options(sp: argparse.ArgumentParser) -> None:
    """The options of every command that reads a spec."""
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


def output_dir_option(sp: argparse.ArgumentParser) -> None:
    """`-o DIR` of the commands that write a spec's files (`output_dir` reads it)."""
    sp.add_argument(
        "-o", "--output", metavar="DIR", help="output directory (default build/<name>/)"
    )


def output_dir(args: argparse.Namespace, graph) -> Path:
    """Where a command writes `graph`'s files: -o, else build/<name>/."""
    return Path(args.output) if args.output else Path("build") / graph.name


def weights_option(sp: argparse.ArgumentParser) -> None:
    """`--weights FILE`: canonical weights to start from."""
    sp.add_argument(
        "--weights",
        metavar="FILE",
        help="canonical safetensors weights (default: init_weights(seed=0))",
    )


def params(pairs: list[str] | None) -> dict:
    """`--set NAME=VALUE` pairs as spec params (values read as YAML core scalars)."""
    out = {}
    for item in pairs or []:
        if "=" not in item:
            raise UsageError(f"--set takes NAME=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = core_scalar(v.strip())
    return out


def dims(pairs: list[str] | None) -> dict[str, int]:
    """`--dims NAME=N` pairs (also `a=1,b=2`): sizes of dynamic input axes."""
    out = {}
    for item in pairs or []:
        for part in item.split(","):
            k, _, v = part.partition("=")
            if not k.strip() or not v.strip().isdigit() or int(v) < 1:
                raise UsageError(f"--dims takes NAME=N with N a positive size, got {part!r}")
            out[k.strip()] = int(v)
    return out


def load_spec(args: argparse.Namespace, spec: str):
    """The spec's graph, with the command's --set, --max-params and --dims."""
    from ..api import load

    return load(
        spec,
        params(getattr(args, "set", None)),
        max_params=getattr(args, "max_params", MAX_PARAMS),
        dims=dims(getattr(args, "dims", None)),
    )
