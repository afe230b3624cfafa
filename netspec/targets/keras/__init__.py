"""The Keras target: readable Keras 3 functional-API source, channels-last.

- `generate(graph)` writes the module text (see `codegen`; layouts in `layout`, one emitter per
  op in `emitters`). It needs no framework.
- `compile(graph, weights)` runs exactly that text in a fresh module namespace, calls its
  `build_model()` and loads the canonical weights with its `load_weights` (the conversions to
  Keras' layouts live in the generated module, so a user's copy can read netspec weights files).
- `export_weights(model, graph)` converts a model's weights back to canonical form (LSTM and
  SimpleRNN keep one bias: it comes back as `bias_ih`, with `bias_hh` zero).

Parity with the other targets assumes float32 (`keras.config.floatx()`) and, on GPUs, TF32 off
(`tf.config.experimental.enable_tensor_float_32_execution(False)`); `compile` changes neither.
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
from .codegen import Generator
from .emitters import EMITTERS

__all__ = [
    "ARTIFACTS",
    "EMITTERS",
    "NAME",
    "compile",
    "export_weights",
    "generate",
    "generate_train",
    "owns",
    "write",
]


def generate(graph: Graph) -> str:
    """The Keras module's source text for `graph`."""
    return Generator(graph, EMITTERS).source()


def generate_train(graph: Graph) -> str | None:
    """The training script `<name>_train_keras.py` (None without a `training:` section)."""
    from .train import generate_train as train_source

    return train_source(graph)


NAME = "keras"
ARTIFACTS = (
    Artifact("model", "{name}_keras.py", generate),
    Artifact("train", "{name}_train_keras.py", generate_train),
)


def load_module(graph: Graph, source: str | None = None) -> types.ModuleType:
    """Execute the generated source (or `source`) in a fresh module namespace."""
    return run_source(generate(graph) if source is None else source, "keras", graph.name)


def compile(graph: Graph, weights: dict[str, np.ndarray], **options: Any):  # noqa: A001
    """A `keras.Model` built from exactly `generate(graph)`, canonical weights loaded."""
    if options:
        raise SpecError(f"the keras target takes no options, got {', '.join(options)}")
    mod = load_module(graph)
    model = mod.build_model()
    mod.load_weights(model, dict(weights))
    return model


def export_weights(model, graph: Graph) -> dict[str, np.ndarray]:
    """The canonical weights of a model built from `graph`'s Keras source, in graph order."""
    got = load_module(graph).export_weights(model)
    return {k: np.ascontiguousarray(got[k], dtype=np.float32) for k in graph.weight_shapes()}


def write(graph: Graph, weights: dict[str, np.ndarray], outdir, **options: Any) -> list[Path]:
    """Write the source files (`ARTIFACTS`) into `outdir`; the weights file is `build`'s."""
    if options:
        raise SpecError(f"the keras target takes no options, got {', '.join(options)}")
    return write_sources(ARTIFACTS, graph, outdir)


def owns(obj: object) -> bool:
    """Whether `obj` is a Keras model (without importing Keras when it is not loaded)."""
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(obj, keras.Model)
