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
    """Weights that do not fit the graph: a user error (exit code 2), located at the weights
    file (never at `<spec>`: the spec is not what is wrong)."""

    def location(self) -> str:
        return self.file or "netspec"


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
        if not node.shares:
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


def _same_layer_hint(extra: str, want) -> str | None:
    """A did-you-mean for a weight key, only between keys of the same param name (`.weight`
    with `.weight`): a close layer name with another param is not the same weight."""
    param = extra.rsplit(".", 1)[-1]
    g = did_you_mean(extra, [k for k in want if k.rsplit(".", 1)[-1] == param])
    return f"'{extra}' looks like '{g}'" if g else None


def _params_hint(graph: Graph, built_with: dict | None) -> str | None:
    """When a weights file records other params than the spec's now: which differ."""
    if not built_with:
        return None
    now = json.loads(json.dumps(graph.params, default=str))
    diff = [f"{k}={built_with[k]!r}" for k in built_with if k in now and now[k] != built_with[k]]
    if not diff:
        return None
    return (
        f"the weights file was built with {', '.join(diff)}; pass the same values with --set, "
        "or build new weights"
    )


def _check_keys(graph: Graph, keys, source: str, file: str | None, built_with=None) -> None:
    want = graph.weight_shapes()
    missing = [k for k in want if k not in keys]
    extra = [k for k in keys if k not in want]
    if missing or extra:
        hint = _params_hint(graph, built_with) or (
            _same_layer_hint(extra[0], want) if extra else None
        )
        raise WeightsError(
            f"{source} do not match the spec: " + mismatch(missing, extra), hint=hint, file=file
        )


def _check_shape(graph, k, shape, want, source, file, built_with=None) -> None:
    """`shape` is `want`, the spec's shape for key `k` (passed in: `graph.weight_shapes()`
    builds every key's)."""
    if tuple(shape) != tuple(want):
        raise WeightsError(
            f"{source}: '{k}' has shape {list(shape)}, the spec needs {list(want)}",
            hint=_params_hint(graph, built_with),
            file=file,
        )


def _finite(k: str, a: np.ndarray, source: str, file: str | None) -> None:
    """NaN or infinite weights are refused: every output would be NaN (or inf)."""
    if not np.isfinite(a).all():
        bad = int(a.size - np.count_nonzero(np.isfinite(a)))
        raise WeightsError(
            f"{source}: '{k}' holds {bad:,} NaN or infinite value(s)",
            hint="weights must be finite; a diverged training run saves NaN, retrain or use "
            "an earlier checkpoint",
            file=file,
        )


def check_weights(graph: Graph, weights: Mapping[str, np.ndarray], source: str = "weights"):
    """Exactly the graph's keys with the graph's shapes, real and finite, as float32 arrays
    (float16/float64/integers and ml_dtypes' bfloat16 are converted; bool, complex and other
    kinds are refused)."""
    file = None
    _check_keys(graph, weights, source, file)
    out: Weights = {}
    for k, want in graph.weight_shapes().items():
        a = np.asarray(weights[k])
        _check_shape(graph, k, a.shape, want, source, file)
        if a.dtype.kind not in "fiu" and a.dtype.name != "bfloat16":
            raise WeightsError(
                f"{source}: '{k}' is {a.dtype.name}; weights are real numbers",
                hint="give float32 arrays (bool and complex values are not converted)",
                file=file,
            )
        a = np.ascontiguousarray(a, dtype=np.float32)
        _finite(k, a, source, file)
        out[k] = a
    return out


MAX_HEADER_BYTES = 100 * 1024 * 1024
# safetensors dtype -> (numpy dtype of the stored values, bytes per value); BF16 is widened to
# float32 here by a shift (exact), whatever else is imported.
FLOAT_DTYPES = {"F32": ("<f4", 4), "F16": ("<f2", 2), "F64": ("<f8", 8), "BF16": ("<u2", 2)}


def _header(f, size: int, file: str) -> tuple[dict, dict | None]:
    """A safetensors header, checked: every entry's dtype, shape and offsets inside the file."""

    def bad(why: str) -> WeightsError:
        return WeightsError(
            f"not a readable safetensors file ({why})",
            hint="give the .safetensors file that netspec build or train wrote",
            file=file,
        )

    head = f.read(8)
    if len(head) < 8:
        raise bad("too short")
    n = int.from_bytes(head, "little")
    if n > min(MAX_HEADER_BYTES, size - 8):
        raise bad(f"its header claims {n:,} bytes")
    try:
        header = json.loads(f.read(n))
    except (ValueError, UnicodeDecodeError):
        raise bad("its header is not JSON") from None
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    meta = header.pop("__metadata__", None)
    data = size - 8 - n
    for k, e in header.items():
        ok = (
            isinstance(e, dict)
            and isinstance(e.get("dtype"), str)
            and isinstance(e.get("shape"), list)
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in e["shape"])
            and isinstance(e.get("data_offsets"), list)
            and len(e["data_offsets"]) == 2
            and all(isinstance(o, int) and not isinstance(o, bool) for o in e["data_offsets"])
        )
        if not ok:
            raise bad(f"entry {k!r} is malformed")
        a, b = e["data_offsets"]
        if not 0 <= a <= b <= data:
            raise bad(f"entry {k!r} points outside the file")
        if (
            e["dtype"] in FLOAT_DTYPES
            and b - a != math.prod(e["shape"]) * FLOAT_DTYPES[e["dtype"]][1]
        ):
            raise bad(f"entry {k!r}: its size does not match its shape")
    built_with = None
    if isinstance(meta, dict) and isinstance(meta.get("netspec"), str):
        try:
            built_with = json.loads(meta["netspec"]).get("params")
        except (ValueError, AttributeError):
            built_with = None
    return header, built_with if isinstance(built_with, dict) else None


def read_safetensors(path: str | os.PathLike, graph: Graph) -> Weights:
    """The canonical weights in a safetensors file, every key, shape and dtype checked from the
    header before any tensor is read (a wrong multi-GB file costs nothing); bounded reads."""
    import stat

    p = Path(path)
    file = str(p)
    if p.is_dir():
        raise WeightsError(
            "the weights path is a folder",
            hint=f"give the .safetensors file inside it, e.g. {p / (graph.name + '.safetensors')}",
            file=file,
        )
    if not p.exists():
        raise WeightsError("the weights file does not exist", file=file)
    try:
        f = open(p, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise WeightsError(f"cannot read the weights file: {e.strerror or e}", file=file) from None
    with f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise WeightsError("the weights path is not a regular file", file=file)
        header, built_with = _header(f, st.st_size, file)
        source = "weights"
        _check_keys(graph, header, source, file, built_with)
        base = 8 + int.from_bytes(_peek(f), "little")
        out: Weights = {}
        for k, want in graph.weight_shapes().items():
            e = header[k]
            _check_shape(graph, k, e["shape"], want, source, file, built_with)
            if e["dtype"] not in FLOAT_DTYPES:
                hint = "convert it to F32 before saving (e.g. tensor.float())"
                if e["dtype"].startswith("F8"):
                    hint = "float8 weights are not read: " + hint
                raise WeightsError(
                    f"'{k}' is {e['dtype']}; netspec reads F32, F16, BF16 or F64 weights",
                    hint=hint,
                    file=file,
                )
            a, b = e["data_offsets"]
            f.seek(base + a)
            raw = f.read(b - a)
            dtype = FLOAT_DTYPES[e["dtype"]][0]
            arr = np.frombuffer(raw, dtype).reshape(e["shape"])
            if e["dtype"] == "BF16":
                arr = (arr.astype("<u4") << 16).view("<f4")
            arr = np.ascontiguousarray(arr, dtype=np.float32)
            _finite(k, arr, source, file)
            out[k] = arr
    return out


def _peek(f) -> bytes:
    f.seek(0)
    return f.read(8)


def load_weights(source: str | os.PathLike | Mapping | None, graph: Graph) -> Weights:
    """Weights from a safetensors path, a dict of canonical arrays, or None (seed 0)."""
    if source is None:
        return init_weights(graph, 0)
    if isinstance(source, Mapping):
        return check_weights(graph, source)
    return read_safetensors(source, graph)


def write_weights(weights: Mapping[str, np.ndarray], graph: Graph, path: str | os.PathLike):
    """Write canonical weights to a safetensors file (keys and data in topological order)."""
    from .version import __version__

    ordered = {k: np.ascontiguousarray(weights[k], "<f4") for k in graph.weight_shapes()}
    header: dict[str, object] = {
        # One metadata key, so that two builds of the same spec are byte-identical; the params
        # it was built with let a later mismatch say which --set differs.
        "__metadata__": {
            "netspec": json.dumps(
                {"model": graph.name, "params": graph.params, "version": __version__},
                sort_keys=True,
                default=str,
            )
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
