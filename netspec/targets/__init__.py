"""The registry of targets: the one list of target names, each imported only when used, so that
only the target asked for loads its framework. `netspec build --target`, `build --target all`
and the library API read their choices here. What a target module provides: `base.Target`.

A new target is a package `netspec/targets/<name>/` implementing `base.Target` plus one line
in `REGISTRY`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Target


@dataclass(frozen=True)
class Entry:
    """A registered target: its name, its module, and the top-level packages whose objects it
    owns (so that `owner` can tell a model's target without importing any framework)."""

    name: str
    module: str
    packages: tuple[str, ...]


REGISTRY = {
    e.name: e
    for e in (
        Entry("torch", "netspec.targets.torch", ("torch",)),
        Entry("keras", "netspec.targets.keras", ("keras", "tensorflow", "tf_keras")),
        Entry("onnx", "netspec.targets.onnx", ("onnx",)),
    )
}
TARGETS = {e.name: e.module for e in REGISTRY.values()}  # name -> module, read from REGISTRY


def names() -> list[str]:
    """The targets' names, in the order `build --target all` writes them."""
    return list(REGISTRY)


def get(name: str) -> Target:
    """The target module `name` (imported now)."""
    if name not in REGISTRY:
        from ..errors import unknown

        raise unknown("target", name, REGISTRY, ())
    return importlib.import_module(REGISTRY[name].module)


def owner(model: object) -> Target:
    """The target whose object `model` is: judged first by the packages its type comes from
    (importing no framework and no other target), then by the target's own `owns`."""
    packages = {c.__module__.split(".")[0] for c in type(model).__mro__}
    for entry in REGISTRY.values():
        if packages.intersection(entry.packages):
            target = get(entry.name)
            if target.owns(model):
                return target
    raise TypeError(f"cannot take weights from a {type(model).__name__}")
