"""Canonical weights: deterministic initialization and safetensors files.

Keys are `<node path>.<param>`, arrays are float32 in PyTorch's layouts (see the design page).
Nothing here imports a framework; safetensors' numpy API writes the files (no pickle).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .errors import SpecError, did_you_mean
from .ir import Graph, Node

Weights = dict[str, np.ndarray]
FILLS = {"running_mean": 0.0, "running_var": 1.0}


class WeightsError(SpecError):
    """Weights that do not fit the graph: a user error (exit code 2)."""


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """fan_in and fan_out as PyTorch computes them for a weight of this shape."""
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _draw(rng: np.random.Generator, init: str, shape: tuple[int, ...]) -> np.ndarray:
    fan_in, fan_out = _fans(shape)
    if init == "glorot_uniform":
        lim = math.sqrt(6.0 / (fan_in + fan_out))
        a = rng.uniform(-lim, lim, shape)
    elif init == "glorot_normal":
        a = rng.normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), shape)
    elif init == "he_uniform":
        lim = math.sqrt(6.0 / fan_in)
        a = rng.uniform(-lim, lim, shape)
    elif init == "he_normal":
        a = rng.normal(0.0, math.sqrt(2.0 / fan_in), shape)
    elif init == "lecun_normal":
        a = rng.normal(0.0, math.sqrt(1.0 / fan_in), shape)
    elif init == "normal":
        a = rng.normal(0.0, 0.05, shape)
    elif init == "uniform":
        a = rng.uniform(-0.05, 0.05, shape)
    elif init == "zeros":
        a = np.zeros(shape)
    elif init == "ones":
        a = np.ones(shape)
    else:  # pragma: no cover - the schema refuses other names
        raise ValueError(init)
    return a.astype(np.float32)


def _node_init(rng: np.random.Generator, node: Node) -> Weights:
    out: Weights = {}
    for p, shape in node.params.items():
        if p.startswith("bias"):
            a = np.zeros(shape, np.float32)
        elif node.op in ("batch_norm", "layer_norm"):
            a = np.ones(shape, np.float32)
        elif node.op == "prelu":
            a = np.full(shape, 0.25, np.float32)
        else:
            a = _draw(rng, node.attrs.get("init", "glorot_uniform"), shape)
        out[f"{node.name}.{p}"] = a
    for b, shape in node.buffers.items():
        out[f"{node.name}.{b}"] = np.full(shape, FILLS[b], np.float32)
    return out


def init_weights(graph: Graph, seed: int = 0) -> Weights:
    """Fresh canonical weights: one PCG64 generator, nodes in topological order."""
    rng = np.random.Generator(np.random.PCG64(seed))
    out: Weights = {}
    for node in graph.nodes:
        out.update(_node_init(rng, node))
    return out


def check_weights(graph: Graph, weights: Mapping[str, np.ndarray], source: str = "weights"):
    """Exactly the graph's keys with the graph's shapes, as float32 arrays."""
    want = graph.weight_shapes()
    missing = [k for k in want if k not in weights]
    extra = [k for k in weights if k not in want]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s): {', '.join(missing[:5])}")
        if extra:
            parts.append(f"unexpected {len(extra)} key(s): {', '.join(extra[:5])}")
        hint = None
        if extra:
            g = did_you_mean(extra[0], want)
            hint = f"'{extra[0]}' looks like '{g}'" if g else None
        raise WeightsError(f"{source} do not match the spec: " + "; ".join(parts), hint=hint)
    out: Weights = {}
    for k, shape in want.items():
        a = np.asarray(weights[k])
        if tuple(a.shape) != tuple(shape):
            raise WeightsError(f"{source}: '{k}' has shape {list(a.shape)}, the spec needs "
                               f"{list(shape)}")
        out[k] = np.ascontiguousarray(a, dtype=np.float32)
    return out


def load_weights(source: str | os.PathLike | Mapping | None, graph: Graph) -> Weights:
    """Weights from a safetensors path, a dict of canonical arrays, or None (seed 0)."""
    if source is None:
        return init_weights(graph, 0)
    if isinstance(source, Mapping):
        return check_weights(graph, source)
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(source)
    if not path.is_file():
        raise WeightsError(f"weights file {str(path)!r} does not exist")
    try:
        data = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path}: not a readable safetensors file ({e})") from None
    return check_weights(graph, data, str(path))


def write_weights(weights: Mapping[str, np.ndarray], graph: Graph, path: str | os.PathLike):
    """Write canonical weights to a safetensors file (keys in topological order)."""
    from safetensors.numpy import save_file

    from . import __version__

    ordered = {k: np.ascontiguousarray(weights[k], np.float32) for k in graph.weight_shapes()}
    # One metadata key: safetensors writes several in arbitrary order, which would make two
    # builds of the same spec differ byte for byte.
    meta = {"netspec": json.dumps({"model": graph.name, "version": __version__}, sort_keys=True)}
    save_file(ordered, str(path), metadata=meta)
