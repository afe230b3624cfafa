"""Shared test helpers: the example specs and the CLI run in-process."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))


def run_cli(args: list[str]) -> tuple[int, str, str]:
    """`netspec ARGS...` in this process: (exit code, stdout, stderr)."""
    from netspec.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            rc = main([str(a) for a in args])
        except SystemExit as e:  # argparse's --help and --version
            rc = e.code if isinstance(e.code, int) else 0 if e.code is None else 2
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture
def specs() -> list[Path]:
    """Every example spec under specs/."""
    return list(SPECS)


@pytest.fixture(name="run_cli")
def run_cli_fixture():
    """The `run_cli(args) -> (rc, stdout, stderr)` helper, as a fixture."""
    return run_cli
