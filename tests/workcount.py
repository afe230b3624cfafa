"""Work measured as the number of Python and C function calls a piece of code makes.

Tests that guard against a blow-up (quadratic lowering, an alias bomb expanded) compare call
counts, which are the same on every run and every machine, instead of wall-clock times.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


class CallCounter:
    """`with CallCounter() as work: ...` then `work.count`: the calls made inside."""

    def __init__(self) -> None:
        self.count = 0
        self._old: Any = None

    def _profile(self, frame, event, arg) -> None:
        if event in ("call", "c_call"):
            self.count += 1

    def __enter__(self) -> CallCounter:
        self._old = sys.getprofile()
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc) -> bool:
        sys.setprofile(self._old)
        return False


def calls(fn: Callable[[], Any]) -> int:
    """How many function calls `fn()` makes; an exception it raises ends the count (the code
    under test may refuse its input: the work done until then still counts)."""
    with CallCounter() as work:
        try:
            fn()
        except Exception:
            pass
    return work.count
