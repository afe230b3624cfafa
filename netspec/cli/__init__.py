"""The `netspec` command line: one module per command, listed in `COMMANDS`.

This package is the only place that knows argparse and exit codes: 0 ok, 2 a spec or usage
error, 1 an internal failure. A command module has `add_parser(subparsers)`, which adds its
subcommand and sets `func` (`args -> exit code`); a new command is a new module plus its name
in `COMMANDS`. Command modules import what they run inside `run`, so that `validate`,
`inspect`, `schema` and `build --target onnx` never import torch or TensorFlow.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
import traceback

from ..errors import SpecError, SpecErrors, printable
from ..version import __version__
from .common import Parser, UsageError, spec_options

__all__ = ["COMMANDS", "UsageError", "main", "make_parser", "spec_options"]

COMMANDS = (
    "validate",
    "inspect",
    "build",
    "train",
    "evaluate",
    "run",
    "serve",
    "schema",
    "graph",
    "view",
    "deploy",
    "tune",
)


def make_parser() -> argparse.ArgumentParser:
    p = Parser(prog="netspec", description="Compile YAML network specs to PyTorch, Keras and ONNX.")
    p.add_argument("--version", action="version", version=f"netspec {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return p


class Terminated(KeyboardInterrupt):
    """SIGTERM (what `timeout`, CI and service managers send), raised in the main thread so that
    staging folders and temporary files are cleaned up as on Ctrl-C."""


def _terminate(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def _sigterm_raises():
    """SIGTERM raises `Terminated` while a command runs (main thread only; restored after)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    try:
        with _sigterm_raises():
            args = make_parser().parse_args(argv)
            return args.func(args)
    except UsageError as e:
        print(printable(f"netspec: error: {e.message}", lines=True), file=sys.stderr)
        return 2
    except (SpecError, SpecErrors) as e:
        print(e, file=sys.stderr)
        return 2
    except Terminated:
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # an internal failure: short by default
        if os.environ.get("NETSPEC_DEBUG"):
            traceback.print_exc()
        else:
            print(
                printable(f"netspec: internal error: {type(e).__name__}: {e}", lines=True) + "\n"
                "  (set NETSPEC_DEBUG=1 for the traceback; please report it)",
                file=sys.stderr,
            )
        return 1
