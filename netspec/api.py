"""The library API: load, generate, compile, init_weights, export_weights, save_weights."""

from __future__ import annotations

import builtins
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import targets
from .errors import SpecError
from .ir import Graph
from .lower import MAX_PARAMS, lower, spec_hash

if TYPE_CHECKING:
    from .weights import Weights
from .yamlload import parse

__all__ = [
    "compile",
    "evaluate",
    "export_weights",
    "generate",
    "init_weights",
    "load",
    "loads",
    "save_weights",
    "train",
]


def loads(
    text: str | bytes,
    params: Mapping[str, Any] | None = None,
    *,
    file: str = "<spec>",
    max_params: int = MAX_PARAMS,
    dims: Mapping[str, int] | None = None,
) -> Graph:
    """Validate spec text and lower it to the IR; raises SpecError with file:line:col.
    `dims`: sizes for the inputs' dynamic axes (what `inspect --dims` counts MACs with)."""
    doc = parse(text, file)
    try:
        graph = lower(doc.data, dict(params or {}), max_params, doc.where, dict(dims or {}))
    except SpecError as e:
        raise doc.locate(e) from None
    graph.source = file
    graph.spec_hash = spec_hash(doc.text, graph.params)
    return graph


def load(
    path: str | os.PathLike,
    params: Mapping[str, Any] | None = None,
    *,
    max_params: int = MAX_PARAMS,
    dims: Mapping[str, int] | None = None,
) -> Graph:
    """Read, validate and lower a spec file."""
    from .outdir import read_bounded
    from .yamlload import MAX_FILE_BYTES

    data = read_bounded(path, MAX_FILE_BYTES, "spec")  # at most limit + 1 bytes: parse refuses
    return loads(data, params, file=str(path), max_params=max_params, dims=dims)


def generate(graph: Graph, target: str = "torch") -> str:
    """The target's source for `graph` (Python for torch and keras)."""
    return targets.get(target).generate(graph)


def compile(  # noqa: A001 - the contract's name
    graph: Graph,
    target: str = "torch",
    weights: str | os.PathLike | Mapping | None = None,
    **options: Any,
):
    """Build a runnable model from exactly the source `generate` returns, weights loaded."""
    from .weights import load_weights

    w = load_weights(weights, graph)
    return targets.get(target).compile(graph, w, **options)


def init_weights(graph: Graph, seed: int = 0) -> Weights:
    """Fresh canonical weights (numpy arrays): one PCG64 generator seeded once, node by node."""
    from .weights import init_weights as draw

    return draw(graph, seed)


def export_weights(model: object, graph: Graph) -> Weights:
    """A model's weights in canonical form."""
    from .weights import load_weights

    if isinstance(model, Mapping):
        return load_weights(model, graph)
    return targets.owner(model).export_weights(model, graph)


def save_weights(model: object, graph: Graph, path: str | os.PathLike) -> None:
    """Write a (trained) model's weights back to a canonical safetensors file."""
    from .weights import write_weights

    write_weights(export_weights(model, graph), graph, path)


def train(
    graph: Graph,
    data: str | os.PathLike | list | None = None,
    target: str = "torch",
    *,
    out: str | os.PathLike | None = None,
    weights: str | os.PathLike | Mapping | None = None,
    resume: bool = False,
    epochs: int | None = None,
    progress=None,
    tensorboard: str | os.PathLike | None = None,
    nproc: int | None = None,
):
    """Train `graph` as its `training:` section says (data: default the section's), with the
    target's generated training script; with `out`, write the trained model's files there
    (see `netspec train`); `tensorboard`: a folder for TensorBoard event files; `nproc`: train
    in that many processes under torchrun (PyTorch). Returns the `History` (per-epoch values,
    final metrics, weights)."""
    from .train.run import train as run
    from .yamlload import locate_in_source

    try:
        return run(
            graph,
            data,
            target=target,
            out=out,
            weights=weights,
            resume=resume,
            epochs=epochs,
            progress=progress,
            tensorboard=tensorboard,
            nproc=nproc,
        )
    except SpecError as e:  # the training section's mistakes found with the data: at their line
        raise locate_in_source(e, graph.source) from None


def evaluate(
    graph: Graph,
    data: str | os.PathLike | list | None = None,
    *,
    weights: str | os.PathLike | Mapping | None = None,
    target: str = "onnx",
    model: str | os.PathLike | bytes | Any | None = None,
    split: str | None = None,
    batch_size: int = 256,
    provider: str = "auto",
) -> dict:
    """Metrics of `graph`'s trained model (`weights`, or the ONNX `model` file) on `data`
    (default: the `training:` section's data, its test part when it sets one aside), run on
    ONNX Runtime (`target="onnx"`) or on torch / keras: a JSON-ready dict (see
    `netspec evaluate` and docs/evaluate.md)."""
    from .evaluate.run import evaluate as run

    return run(
        graph,
        data,
        weights=weights,
        target=target,
        model=model,
        split=split,
        batch_size=batch_size,
        provider=provider,
    )


_ = builtins  # `compile` shadows the builtin here on purpose
