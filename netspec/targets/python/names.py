"""Legal, unique Python identifiers for generated source.

A `Namer` hands out the names of one Python scope (a function's variables, a constructor's
parameters, a module's classes): a wanted name is made a legal identifier, gets a trailing `_`
when it is reserved (`self_`, `nn_`, `class_`), and a `_1`, `_2`, ... suffix when it is taken.
Each generator reserves what its own module uses (its imports, its helpers) on top of `KEYWORDS`
and `ALWAYS`.
"""

from __future__ import annotations

import builtins
import itertools
import keyword
import re

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
CLASS_SUFFIX = re.compile(r"(Model|Block)?\d*\Z")
KEYWORDS = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)
# never a generated variable: the method receivers, E741's ambiguous names, the throwaway
ALWAYS = frozenset({"self", "cls", "l", "I", "O", "_"})


def python_builtins(capitalized: bool = False) -> frozenset[str]:
    """Every builtin name (`capitalized`: only those starting upper case: `Exception`...)."""
    names = dir(builtins)
    return frozenset(n for n in names if not capitalized or n[:1].isupper())


def camel(name: str) -> str:
    """`basic_down` -> `BasicDown`, `resnet18` -> `Resnet18`."""
    parts = [p for p in name.split("_") if p]
    out = "".join(p[0].upper() + p[1:] for p in parts)
    if not out or out[0].isdigit():
        out = "Net" + out
    return out


def identifier(want: str) -> str:
    """`want` as a legal identifier: other characters become `_`, a leading digit gets `_`."""
    base = want if IDENT.match(want) else re.sub(r"\W", "_", want, flags=re.ASCII) or "v"
    return "_" + base if base[0].isdigit() else base


class Namer:
    """Unique, legal names for one Python scope. `reserved`: names never handed out as they are
    (a wanted reserved name gets a trailing `_`); `bases`: class-name stems, whose numbered forms
    (`Basic`, `Basic2`, `BasicBlock`) count as taken too."""

    def __init__(self, reserved: set[str] | frozenset[str], bases: set[str] | None = None):
        self.used: set[str] = set()
        self.reserved = reserved
        self.bases = bases or set()

    def taken(self, name: str) -> bool:
        if name in self.used or name in self.reserved:
            return True
        for b in self.bases:
            if name.startswith(b) and CLASS_SUFFIX.match(name, len(b)):
                return True
        return False

    def new(self, want: str) -> str:
        """A fresh name like `want` (now taken)."""
        base = identifier(want)
        if base in self.reserved or (self.taken(base) and base not in self.used):
            base += "_"
        name, k = base, 0
        while self.taken(name):
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name


def numbered(base: str, taken: set[str], start: int = 2) -> str:
    """`base`, else `base_2`, `base_3`, ... (from `start`): the first not in `taken`. For names
    that are not identifiers (a framework's layer names)."""
    candidates = itertools.chain([base], (f"{base}_{k}" for k in itertools.count(start)))
    return next(n for n in candidates if n not in taken)
