"""Helpers for parity tests and benchmarks: weights and inputs that exercise every path, and
the op records' examples as graphs.

`init_weights` gives batch_norm identity statistics and zero biases, which would hide layout
and convention bugs; `random_weights` randomizes everything (variances stay positive; each op
record's `test_values` says where a param needs a range of its own).
"""

from __future__ import annotations

import json

import numpy as np

import netspec
from netspec.ir import Graph
from netspec.ops import OPS, Example

ATOL = 1e-5
RTOL = 1e-4


def random_weights(graph: Graph, seed: int = 0, scale: float = 0.5) -> dict[str, np.ndarray]:
    rng = np.random.Generator(np.random.PCG64(seed))
    out: dict[str, np.ndarray] = {}
    for node in graph.nodes:
        if node.shares:
            continue  # its owner's weights
        values = OPS[node.op].test_values
        for p, shape in [*node.params.items(), *node.buffers.items()]:
            if p in values:
                kind, lo, hi = values[p]
                a = rng.uniform(lo, hi, shape) if kind == "uniform" else rng.normal(lo, hi, shape)
            else:
                fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
                a = rng.normal(0.0, scale / np.sqrt(fan_in), shape)
            out[f"{node.name}.{p}"] = a.astype(np.float32)
    return out


def vocab_limit(graph: Graph, input_name: str) -> int:
    """The smallest vocabulary of the embeddings that read an int64 input."""
    sizes = [
        n.attrs["vocab"] for n in graph.nodes if n.op == "embedding" and input_name in n.inputs
    ]
    return min(sizes) if sizes else 10


def random_inputs(
    graph: Graph, batch: int = 2, seed: int = 0, dynamic: int = 5
) -> dict[str, np.ndarray]:
    """Inputs in the logical (channels-first) layout; dynamic axes get size `dynamic`."""
    rng = np.random.Generator(np.random.PCG64(seed + 1000))
    out: dict[str, np.ndarray] = {}
    for name, v in graph.inputs.items():
        shape = (batch, *[d if isinstance(d, int) else dynamic for d in v.shape])
        if v.dtype == "int64":
            out[name] = rng.integers(0, vocab_limit(graph, name), shape, dtype=np.int64)
        else:
            out[name] = rng.normal(0.0, 1.0, shape).astype(np.float32)
    return out


def max_violation(a: np.ndarray, b: np.ndarray) -> float:
    """max(|a - b| - (ATOL + RTOL * |b|)): <= 0 means within the parity bound."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"shapes differ: {a.shape} vs {b.shape}")
    return float(np.max(np.abs(a - b) - (ATOL + RTOL * np.abs(b)))) if a.size else 0.0


def assert_close(
    a: np.ndarray, b: np.ndarray, what: str = "", atol: float = ATOL, rtol: float = RTOL
) -> None:
    """The design page's parity bound: |a - b| <= atol + rtol * |b| elementwise."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"{what}: shapes differ: {a.shape} vs {b.shape}")
    bad = np.abs(a - b) > atol + rtol * np.abs(b)
    if bad.any():
        i = np.unravel_index(np.argmax(np.abs(a - b)), a.shape)
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {a.size} values differ; max abs diff "
            f"{float(np.max(np.abs(a - b))):.3g} at {tuple(int(j) for j in i)} "
            f"({a[i]!r} vs {b[i]!r})"
        )


# -- the op records' examples ------------------------------------------------------------------
def example_spec(op: str, e: Example) -> dict:
    """An example as a spec: its inputs, the layers before, then the op (the output)."""
    layer = {"op": op, **e.attrs}
    inputs = {
        k: {"shape": list(v), **({"dtype": e.dtype} if e.dtype != "float32" else {})}
        for k, v in e.inputs.items()
    }
    return {
        "netspec": 1,
        "name": f"{op}_{e.name}",
        "inputs": inputs,
        "layers": [*e.before, layer],
    }


def example_graph(op: str, e: Example) -> Graph:
    return netspec.loads(json.dumps(example_spec(op, e)), file=f"<{op}.{e.name}>")


def examples() -> dict[str, tuple[str, Example]]:
    """Every example of every op: `"<op>.<example>"` -> (op, example)."""
    return {f"{op}.{e.name}": (op, e) for op, d in OPS.items() for e in d.examples}


def example(key: str) -> Graph:
    """The graph of one example, by `"<op>.<example>"` (e.g. `"conv2d.depthwise"`)."""
    return example_graph(*examples()[key])


def example_inputs(graph: Graph, e: Example, batch: int = 2, seed: int = 0) -> dict:
    """`random_inputs`, float ones moved to normal(shift, scale) as the example asks."""
    x = random_inputs(graph, batch=batch, seed=seed)
    return {
        k: v if v.dtype == np.int64 else (v * e.scale + e.shift).astype(np.float32)
        for k, v in x.items()
    }
