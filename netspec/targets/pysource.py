"""Kept for the targets that still import it: the helpers moved to `netspec.targets.python`."""

from __future__ import annotations

from .python.run import run_source
from .python.text import escape

__all__ = ["escape", "run_source"]
