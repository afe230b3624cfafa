"""The targets, imported lazily so that only the one asked for loads its framework.

A target module provides:
- `EMITTERS`: op name -> emitter (every op of the table must have one; a test checks),
- `generate(graph) -> str`: the target's source text,
- `compile(graph, weights) -> model`: built from exactly that source, weights loaded,
- `export_weights(model, graph) -> dict[str, np.ndarray]`: canonical weights back,
- `write(graph, weights, outdir, **options) -> list[Path]`: the files `build` writes,
- `owns(model) -> bool`: whether `model` is one of this target's objects.
"""

from __future__ import annotations

import importlib
from types import ModuleType

TARGETS = {
    "torch": "netspec.targets.torch",
    "keras": "netspec.targets.keras",
    "onnx": "netspec.targets.onnx",
}


def get(name: str) -> ModuleType:
    if name not in TARGETS:
        from ..errors import unknown

        raise unknown("target", name, TARGETS, ())
    return importlib.import_module(TARGETS[name])


def owner(model: object) -> ModuleType:
    """The target whose object `model` is, judged by the type's module (no framework import)."""
    mods = {c.__module__.split(".")[0] for c in type(model).__mro__}
    for name, prefix in (("torch", "torch"), ("keras", "keras"), ("onnx", "onnx")):
        if prefix in mods or (name == "keras" and ("tensorflow" in mods or "tf_keras" in mods)):
            return get(name)
    raise TypeError(f"cannot take weights from a {type(model).__name__}")
