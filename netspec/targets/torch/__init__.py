"""The PyTorch target: readable, standalone source of an `nn.Module`.

- `generate(graph)` writes the module text (`codegen`; one emitter per op in `emitters`). It
  needs no framework.
- `compile(graph, weights)` executes exactly that text in a fresh module namespace, instantiates
  its model class, loads the canonical weights strictly (batch_norm's `num_batches_tracked`
  aside: it is not a canonical key) and returns the module in eval mode.
- `export_weights(module, graph)` gives the module's weights back in canonical form.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import SpecError
from ...ir import Graph
from ..base import Artifact, write_sources
from ..python.run import run_source
from .codegen import Generator, model_class
from .emitters import EMITTERS
from .state import export_weights, load_state
from .train import generate_train, run_training

__all__ = [
    "ARTIFACTS",
    "EMITTERS",
    "NAME",
    "compile",
    "export_weights",
    "generate",
    "owns",
    "run_training",
    "write",
]


def generate(graph: Graph) -> str:
    """The PyTorch module's source text for `graph`."""
    return Generator(graph, EMITTERS).source()


NAME = "torch"
ARTIFACTS = (
    Artifact("model", "{name}_torch.py", generate),
    Artifact("train", "{name}_train_torch.py", generate_train),
)


def load_module(graph: Graph, source: str | None = None) -> types.ModuleType:
    """Execute `generate(graph)` (or `source`) in a fresh module namespace."""
    return run_source(generate(graph) if source is None else source, "torch", graph.name)


def _check_options(options: dict[str, Any]) -> None:
    if options:
        raise SpecError(f"the torch target takes no options, got {', '.join(options)}")


def compile(graph: Graph, weights: dict[str, np.ndarray], **options: Any):  # noqa: A001
    """An `nn.Module` built from exactly `generate(graph)`, canonical weights loaded, in eval
    mode."""
    _check_options(options)
    module = load_module(graph).__dict__[model_class(graph.name)]()
    load_state(module, weights)
    return module.eval()


def write(graph: Graph, weights: dict[str, np.ndarray], outdir, **options: Any) -> list[Path]:
    """Write the source files (`ARTIFACTS`) into `outdir`; the weights file is `build`'s."""
    _check_options(options)
    return write_sources(ARTIFACTS, graph, outdir)


def owns(obj: object) -> bool:
    """Whether `obj` is a torch module (without importing torch when it is not loaded)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)
