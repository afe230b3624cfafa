"""The contract every target implements, and the files a target writes.

A target is a module, `netspec/targets/<name>/__init__.py`, registered in `netspec.targets`
(the CLI's `--target` choices, `build --target all` and the library API read that registry).
It provides what `Target` lists. What it writes for a graph is its `ARTIFACTS`: today each
target writes its model file (`<name>_torch.py`, `<name>_keras.py`, `<name>.onnx`); a training
script is one more `Artifact("train", "{name}_train_torch.py", generate_train)` in the tuple,
written by the same `write` (`write_sources`). The canonical weights file is not a target's:
`build` writes it once for all targets.

Nothing here imports numpy or a framework: the registry stays cheap for `netspec validate`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..ir import Graph
    from ..weights import Weights


@dataclass(frozen=True)
class Artifact:
    """One file a target writes for a graph.

    `kind` names what it is ("model"; "train" for a training script), `filename` is a template
    filled with the graph's name (`"{name}_torch.py"`), and `source` gives the file's text, or is
    None for a file the target's `write` produces itself (ONNX's binary model and its data).
    A `source` that returns None for a graph means "no such file for this graph" (a training
    script for a spec without a `training:` section)."""

    kind: str
    filename: str
    source: Callable[[Graph], str] | None = None

    def file(self, graph: Graph) -> str:
        """The file name for `graph`."""
        return self.filename.format(name=graph.name)

    def path(self, graph: Graph, outdir: str | os.PathLike) -> Path:
        return Path(outdir) / self.file(graph)


@runtime_checkable
class Target(Protocol):
    """What every target module provides (checked for each registered target by the tests)."""

    NAME: str
    """The name users pass to `--target` and `netspec.generate(graph, target=...)`."""
    EMITTERS: Mapping[str, Any]
    """Op name -> emitter; every op of the op table must have one (a test checks)."""
    ARTIFACTS: tuple[Artifact, ...]
    """The files `write` produces, "model" first."""

    def generate(self, graph: Graph) -> str:
        """The model's source text (Python for the Python targets; ONNX's text form)."""
        ...

    def compile(self, graph: Graph, weights: Weights, **options: Any) -> Any:
        """A runnable model built from exactly `generate(graph)`, canonical weights loaded."""
        ...

    def export_weights(self, model: Any, graph: Graph) -> Weights:
        """A model's weights back in canonical form (names and layouts of the IR)."""
        ...

    def write(
        self, graph: Graph, weights: Weights, outdir: str | os.PathLike, **options: Any
    ) -> list[Path]:
        """Write the target's artifacts into `outdir` (an existing directory); the paths."""
        ...

    def owns(self, obj: object) -> bool:
        """Whether `obj` is one of this target's models (never imports a framework)."""
        ...


def artifact(artifacts: Iterable[Artifact], kind: str) -> Artifact:
    """The artifact of `kind` ("model", "train", ...)."""
    for a in artifacts:
        if a.kind == kind:
            return a
    raise KeyError(kind)


def write_sources(artifacts: Iterable[Artifact], graph: Graph, outdir) -> list[Path]:
    """Write every artifact that has a `source` (UTF-8 text); the paths, in order. An artifact
    whose source gives None for this graph is not written."""
    out = []
    for a in artifacts:
        text = a.source(graph) if a.source is not None else None
        if text is not None:
            path = a.path(graph, outdir)
            path.write_text(text, encoding="utf-8")
            out.append(path)
    return out
