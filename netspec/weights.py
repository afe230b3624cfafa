"""Canonical weights: deterministic initialization and safetensors files.

Keys are `<node path>.<param>`, arrays are float32 in PyTorch's layouts (see the design page).
Nothing here imports a framework. Files are safetensors (no pickle): read with the safetensors
package, written here straight from the numpy buffers (the format is a length, a JSON header and
the raw little-endian data; the package's writer would first copy every array into `bytes`).
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
from .ops import OPS

Weights = dict[str, np.ndarray]


class WeightsError(SpecError):
    """Weights that do not fit the graph: a user error (exit code 2)."""


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """fan_in and fan_out as PyTorch computes them for a weight of this shape."""
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _uniform(rng: np.random.Generator, lim: float, shape: tuple[int, ...]) -> np.ndarray:
    a = rng.random(shape, dtype=np.float32)  # drawn in float32: no float64 temporary
    a *= np.float32(2 * lim)
    a -= np.float32(lim)
    return a


def _normal(rng: np.random.Generator, std: float, shape: tuple[int, ...]) -> np.ndarray:
    a = rng.standard_normal(shape, dtype=np.float32)
    a *= np.float32(std)
    return a


def _draw(rng: np.random.Generator, init: str, shape: tuple[int, ...]) -> np.ndarray:
    """One weight, float32 throughout (the draws are float32 too, for speed and memory)."""
    fan_in, fan_out = _fans(shape)
    if init == "glorot_uniform":
        return _uniform(rng, math.sqrt(6.0 / (fan_in + fan_out)), shape)
    if init == "glorot_normal":
        return _normal(rng, math.sqrt(2.0 / (fan_in + fan_out)), shape)
    if init == "he_uniform":
        return _uniform(rng, math.sqrt(6.0 / fan_in), shape)
    if init == "he_normal":
        return _normal(rng, math.sqrt(2.0 / fan_in), shape)
    if init == "lecun_normal":
        return _normal(rng, math.sqrt(1.0 / fan_in), shape)
    if init == "normal":
        return _normal(rng, 0.05, shape)
    if init == "uniform":
        return _uniform(rng, 0.05, shape)
    if init == "zeros":
        return np.zeros(shape, np.float32)
    if init == "ones":
        return np.ones(shape, np.float32)
    raise ValueError(init)  # pragma: no cover - the schema refuses other names


def _node_init(rng: np.random.Generator, node: Node) -> Weights:
    """The op's fixed starting values (its record's `start`), zero biases, and the rest drawn
    with the layer's `init`, in the node's param order (which fixes what a seed draws)."""
    start = OPS[node.op].start
    out: Weights = {}
    for p, shape in node.params.items():
        if p in start:
            a = np.full(shape, start[p], np.float32)
        elif p.startswith("bias"):
            a = np.zeros(shape, np.float32)
        else:
            a = _draw(rng, node.attrs.get("init", "glorot_uniform"), shape)
        out[f"{node.name}.{p}"] = a
    for b, shape in node.buffers.items():
        out[f"{node.name}.{b}"] = np.full(shape, start[b], np.float32)
    return out


def init_weights(graph: Graph, seed: int = 0) -> Weights:
    """Fresh canonical weights: one PCG64 generator, nodes in topological order."""
    rng = np.random.Generator(np.random.PCG64(seed))
    out: Weights = {}
    for node in graph.nodes:
        out.update(_node_init(rng, node))
    return out


def mismatch(missing: list[str], extra: list[str]) -> str:
    """`missing N key(s): a, b; unexpected M key(s): c` (the first five of each)."""
    parts = []
    if missing:
        parts.append(f"missing {len(missing)} key(s): {', '.join(missing[:5])}")
    if extra:
        parts.append(f"unexpected {len(extra)} key(s): {', '.join(extra[:5])}")
    return "; ".join(parts)


def check_weights(graph: Graph, weights: Mapping[str, np.ndarray], source: str = "weights"):
    """Exactly the graph's keys with the graph's shapes, as float32 arrays."""
    want = graph.weight_shapes()
    missing = [k for k in want if k not in weights]
    extra = [k for k in weights if k not in want]
    if missing or extra:
        hint = None
        if extra:
            g = did_you_mean(extra[0], want)
            hint = f"'{extra[0]}' looks like '{g}'" if g else None
        raise WeightsError(
            f"{source} do not match the spec: " + mismatch(missing, extra), hint=hint
        )
    out: Weights = {}
    for k, shape in want.items():
        a = np.asarray(weights[k])
        if tuple(a.shape) != tuple(shape):
            raise WeightsError(
                f"{source}: '{k}' has shape {list(a.shape)}, the spec needs {list(shape)}"
            )
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
    """Write canonical weights to a safetensors file (keys and data in topological order)."""
    from .version import __version__

    ordered = {k: np.ascontiguousarray(weights[k], "<f4") for k in graph.weight_shapes()}
    header: dict[str, object] = {
        # One metadata key, so that two builds of the same spec are byte-identical.
        "__metadata__": {
            "netspec": json.dumps({"model": graph.name, "version": __version__}, sort_keys=True)
        }
    }
    offset = 0
    for k, a in ordered.items():
        header[k] = {
            "dtype": "F32",
            "shape": list(a.shape),
            "data_offsets": [offset, offset + a.nbytes],
        }
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as the format asks
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for a in ordered.values():
            f.write(memoryview(a).cast("B"))
