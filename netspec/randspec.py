"""Random valid specs, for differential testing of the targets against each other.

`random_spec(seed)` returns a spec as plain data (dicts, lists, scalars) that `netspec.lower`
accepts; `to_yaml(spec)` writes it as YAML text that `netspec.loads` reads back to the same data.
A seed always gives the same spec (Python's `random.Random`, seeded once).

Specs are built layer by layer against the op table's own shape rules: each candidate layer's
attributes are checked and its output shape computed by `OPS[op].rule`, exactly as the loader
does, and a block use's output shape comes from lowering a one-use probe spec. So almost every
spec is valid by construction; the whole spec is lowered at the end anyway, and a refused one is
replaced by the next candidate (`Generated.attempts` counts them).

Families (`FAMILIES`): `image` ([C, H, W] conv stacks), `signal` ([C, L] 1-D convolutions),
`vector` ([F]), `sequence` ([T, F] with recurrent layers; T may be dynamic) and `tokens` (int64
ids into an embedding). Graphs are chains with forks: residual and gated skips (add, subtract,
multiply with broadcasting, concat), several inputs joined or kept apart, several outputs,
repeated layers, and blocks (one or two inputs, one or several outputs, params, repeat, nested
uses). Sizes stay small (at most `MAX_ELEMS` numbers per example in any value, `MAX_PARAMS`
weights), so a spec runs in milliseconds on any target.

`shrink(spec, still_fails)` reduces a failing spec to a small one that still fails.
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import SpecError
from .ir import Graph, Shape, Value
from .lower import lower
from .ops import ACTIVATIONS, INITS, OPS, Ctx, Invalid

__all__ = [
    "FAMILIES",
    "Generated",
    "available_targets",
    "disagreements",
    "generate",
    "random_spec",
    "run_target",
    "shrink",
    "to_yaml",
]

FAMILIES = ("image", "signal", "vector", "sequence", "tokens")
MAX_ELEMS = 1024  # numbers per example in any value (dynamic axes counted as DYN)
MAX_DIM = 24  # largest static axis a layer may produce
MAX_PARAMS = 12_000
DYN = 5  # the size `netspec.testing.random_inputs` gives dynamic axes
WORDS = """stem head proj skip gate mix body neck tail feat enc dec a b h z trunk side left right
up down core""".split()
CONV_ACTS = [a for a in ACTIVATIONS if a not in ("softmax", "log_softmax")]
INT_ATTRS = ("units", "filters", "dim", "vocab")
_PLAIN = re.compile(r"(\$?[A-Za-z_][A-Za-z0-9_]*)(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_RESERVED = set("null Null NULL true True TRUE false False FALSE y Y n N yes no on off".split())


# -- values and scopes ----------------------------------------------------------------------
@dataclass
class _Val:
    ref: str  # how the scope that holds it refers to it
    shape: Shape
    dtype: str = "float32"
    is_input: bool = False
    conc: Shape = ()  # the shape when dynamic axes of the inputs have size DYN

    def __post_init__(self) -> None:
        if not self.conc:
            self.conc = tuple(d if isinstance(d, int) else DYN for d in self.shape)


@dataclass
class _Block:
    name: str
    spec: dict  # the block's definition as written
    n_in: int
    outs: list[str]  # output names (one entry "" for the implicit last layer)
    params: dict[str, int | None]  # declared params and defaults
    sample: dict[str, int]  # the params of the first use


@dataclass
class _Scope:
    env: dict[str, Any]  # params visible here, resolved
    top: bool
    depth: int = 0
    layers: list = field(default_factory=list)
    values: list[_Val] = field(default_factory=list)
    used: set[str] = field(default_factory=set)
    counters: dict[str, int] = field(default_factory=dict)
    taken: set[str] = field(default_factory=set)
    prev: _Val | None = None
    widths: list[int] = field(default_factory=list)  # preferred sizes (block params)

    def current(self, rng: random.Random) -> _Val:
        if self.prev is not None:
            return self.prev
        leaves = [v for v in self.values if v.ref not in self.used and v.dtype == "float32"]
        return rng.choice(leaves or self.values)


@dataclass
class Generated:
    seed: int
    family: str
    spec: dict
    graph: Graph
    attempts: int  # candidates drawn (1 = the first was valid)

    @property
    def text(self) -> str:
        return to_yaml(self.spec)


def _numel(shape: Shape) -> int:
    return math.prod(d if isinstance(d, int) else DYN for d in shape)


def _trial(op: str, attrs: dict, inputs: list[_Val]) -> tuple[Shape, Shape, int] | None:
    """The op's output shape (symbolic and concrete) and weight count by its own rule, or None
    if the loader would refuse the layer (attributes out of range, shapes that do not fit) or
    it would not fit the inputs the tests give (dynamic axes of size DYN)."""
    d = OPS[op]
    if len(inputs) < d.min_inputs or (d.max_inputs is not None and len(inputs) > d.max_inputs):
        return None
    for v in inputs:
        if v.dtype != d.input_dtype:
            return None
    a: dict[str, Any] = {}
    for at in d.attrs.values():
        if at.name in attrs:
            try:
                a[at.name] = at.check(copy.deepcopy(attrs[at.name]))
            except Invalid:
                return None
        elif at.required:
            return None
        else:
            a[at.name] = copy.deepcopy(at.default)
    ctx = Ctx("probe", op, copy.deepcopy(a), [Value(v.ref, v.shape, v.dtype) for v in inputs], ())
    try:
        shape = tuple(d.rule(ctx))
    except SpecError:
        return None
    conc = shape
    if any(not isinstance(x, int) for v in inputs for x in v.shape):
        try:
            conc = tuple(
                d.rule(Ctx("probe", op, a, [Value(v.ref, v.conc, v.dtype) for v in inputs], ()))
            )
        except SpecError:
            return None
    if _numel(shape) > MAX_ELEMS or any(isinstance(x, int) and x > MAX_DIM * 4 for x in shape):
        return None
    weights = sum(math.prod(s) for s in [*ctx.params.values(), *ctx.buffers.values()])
    return shape, conc, weights


# -- the generator ----------------------------------------------------------------------------
class _Gen:
    def __init__(self, seed: int, family: str | None):
        self.rng = random.Random(seed)
        self.family = family or self.rng.choice(FAMILIES)
        self.spec_params: dict[str, Any] = {}
        self.blocks: dict[str, _Block] = {}
        self.weights = 0
        self.written: dict[str, list] = {}  # input shapes as written (null: dynamic)
        self.block_words = iter(
            ["unit", "cell", "stage", "res", "tower", "branch", "pair", "fuse", "duo", "trio"]
        )

    # -- small random helpers
    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def pick_weighted(self, table: dict[str, float]) -> str:
        ops = list(table)
        return self.rng.choices(ops, [table[o] for o in ops])[0]

    def width(self, scope: _Scope, lo: int = 1, hi: int = 8) -> int:
        fits = [w for w in scope.widths if lo <= w <= hi]
        if fits and self.chance(0.6):
            return self.rng.choice(fits)
        return self.rng.randint(lo, hi)

    def fresh_name(self, scope: _Scope) -> str:
        for _ in range(50):
            w = self.rng.choice(WORDS)
            if self.chance(0.5):
                w += str(self.rng.randint(1, 9))
            if w not in scope.taken:
                return w
        return f"n{len(scope.taken)}x"

    def spatial(self, n: int, lo: int, hi: int, p_list: float = 0.2) -> int | list[int]:
        if n > 1 and self.chance(p_list):
            return [self.rng.randint(lo, hi) for _ in range(n)]
        return self.rng.randint(lo, hi)

    def activation(self, conv: bool, out_rank: int) -> Any:
        if not self.chance(0.35):
            return None
        acts = CONV_ACTS if conv else ACTIVATIONS
        a = self.rng.choice(acts)
        if a == "leaky_relu" and self.chance(0.5):
            return {"op": a, "alpha": self.rng.choice([0.1, 0.2, 0.3])}
        if a == "elu" and self.chance(0.5):
            return {"op": a, "alpha": self.rng.choice([0.5, 1.5])}
        if a in ("softmax", "log_softmax"):
            if self.chance(0.5):
                return a
            ax = self.rng.randint(1, out_rank)
            return {"op": a, "axis": ax if self.chance(0.5) else ax - out_rank - 1}
        return a

    def maybe(self, attrs: dict, key: str, p: float, value: Any) -> None:
        if self.chance(p):
            attrs[key] = value

    def init(self, attrs: dict) -> None:
        self.maybe(
            attrs,
            "init",
            0.15,
            # the op table's names, the default last (the order fixes what a seed draws)
            self.rng.choice(INITS[1:] + INITS[:1]),
        )

    # -- proposals: a random op (with attributes) for a value
    def op_table(self, v: _Val) -> dict[str, float]:
        r = len(v.shape)
        acts = {a: 0.25 for a in ACTIVATIONS}
        acts["prelu"] = 0.4
        seq = self.family in ("sequence", "tokens")
        if r == 1:
            t = {"dense": 4.0, "batch_norm": 1.0, "layer_norm": 1.0, "dropout": 0.5, "reshape": 1.0}
        elif r == 2:
            t = {
                "conv1d": 3.0 if not seq else 1.0,
                "max_pool1d": 1.0,
                "avg_pool1d": 1.0,
                "global_avg_pool": 0.6,
                "global_max_pool": 0.6,
                "batch_norm": 0.8,
                "layer_norm": 0.8,
                "dense": 1.2,
                "flatten": 0.6,
                "permute": 0.8,
                "reshape": 0.4,
                "dropout": 0.3,
                "rnn": 0.6 if not seq else 1.5,
                "lstm": 0.6 if not seq else 1.5,
                "gru": 0.6 if not seq else 1.5,
            }
        elif r == 3:
            t = {
                "conv2d": 4.0,
                "conv_transpose2d": 1.0,
                "max_pool2d": 1.0,
                "avg_pool2d": 1.0,
                "global_avg_pool": 0.5,
                "global_max_pool": 0.5,
                "batch_norm": 1.0,
                "layer_norm": 0.4,
                "dense": 0.4,
                "flatten": 0.8,
                "permute": 0.4,
                "reshape": 0.3,
                "dropout": 0.3,
            }
        else:
            t = {
                "batch_norm": 1.0,
                "global_avg_pool": 1.0,
                "global_max_pool": 1.0,
                "dense": 1.0,
                "layer_norm": 0.5,
                "flatten": 2.0,
                "permute": 0.5,
            }
            acts = {a: 0.1 for a in acts}
        return {**t, **acts}

    def propose(self, v: _Val, scope: _Scope) -> tuple[str, dict]:
        if v.dtype == "int64":
            return "embedding", {"vocab": self.width(scope, 2, 16), "dim": self.width(scope, 1, 6)}
        op = self.pick_weighted(self.op_table(v))
        return op, self.attrs_for(op, v, scope)

    def attrs_for(self, op: str, v: _Val, scope: _Scope) -> dict:
        rng = self.rng
        r = len(v.shape)
        a: dict[str, Any] = {}
        if op == "dense":
            a["units"] = self.width(scope)
            act = self.activation(False, r)
            if act is not None:
                a["activation"] = act
            self.maybe(a, "bias", 0.2, False)
            self.init(a)
        elif op in ("conv1d", "conv2d"):
            n = 1 if op == "conv1d" else 2
            c = v.shape[0] if isinstance(v.shape[0], int) else 1
            g = 1
            if self.chance(0.25):
                g = rng.choice([d for d in range(1, c + 1) if c % d == 0])
            f = self.width(scope)
            if f % g:
                f = g * rng.randint(1, max(1, 6 // g))
            a["filters"] = f
            if g > 1 or self.chance(0.05):
                a["groups"] = g
            a["kernel"] = self.spatial(n, 1, 3)
            if self.chance(0.35):
                a["stride"] = self.spatial(n, 1, 2)
            if self.chance(0.2):
                a["dilation"] = self.spatial(n, 1, 2)
            pad = rng.random()
            if pad < 0.25:
                a["padding"] = "same"
            elif pad < 0.35:
                a["padding"] = "valid"
            elif pad < 0.55:
                a["padding"] = rng.randint(0, 2)
            elif pad < 0.65:
                a["padding"] = [rng.randint(0, 2) for _ in range(n)]
            elif pad < 0.75:
                a["padding"] = [[rng.randint(0, 2), rng.randint(0, 2)] for _ in range(n)]
            act = self.activation(True, r)
            if act is not None:
                a["activation"] = act
            self.maybe(a, "bias", 0.2, False)
            self.init(a)
        elif op == "conv_transpose2d":
            a["filters"] = self.width(scope, 1, 6)
            a["kernel"] = self.spatial(2, 1, 3)
            s = self.spatial(2, 1, 2) if self.chance(0.5) else 1
            if s != 1:
                a["stride"] = s
            if self.chance(0.3):
                a["padding"] = self.spatial(2, 0, 1) if self.chance(0.8) else "valid"
            smax = max(s) if isinstance(s, list) else s
            if smax > 1 and self.chance(0.4):
                a["output_padding"] = (
                    [rng.randint(0, q - 1) for q in s] if isinstance(s, list) else 1
                )
            act = self.activation(True, r)
            if act is not None:
                a["activation"] = act
            self.maybe(a, "bias", 0.2, False)
            self.init(a)
        elif op.startswith(("max_pool", "avg_pool")):
            n = int(op[-2])
            a["size"] = self.spatial(n, 1, 3)
            if self.chance(0.5):
                a["stride"] = self.spatial(n, 1, 2)
            pad = rng.random()
            if pad < 0.2:
                a["padding"] = "same"
            elif pad < 0.3:
                a["padding"] = "valid"
            elif pad < 0.5:
                a["padding"] = 1
            elif pad < 0.6:
                a["padding"] = [[rng.randint(0, 1), rng.randint(0, 1)] for _ in range(n)]
        elif op == "batch_norm":
            self.maybe(a, "eps", 0.3, rng.choice([1e-3, 0.01, 1e-5, 0.1]))
            self.maybe(a, "momentum", 0.2, rng.choice([0.01, 0.5, 0.9]))
        elif op == "layer_norm":
            self.maybe(a, "eps", 0.3, rng.choice([1e-3, 1e-6, 0.01]))
        elif op == "dropout":
            self.maybe(a, "rate", 0.6, rng.choice([0.0, 0.1, 0.25, 0.5, 0.9]))
        elif op == "reshape":
            a["shape"] = self.reshape_target(v)
        elif op == "permute":
            dims = list(range(1, r + 1))
            rng.shuffle(dims)
            if dims == sorted(dims) and r > 1:
                dims.reverse()
            a["dims"] = dims
        elif op in ("softmax", "log_softmax"):
            if self.chance(0.7):
                ax = rng.randint(1, r)
                a["axis"] = ax if self.chance(0.5) else ax - r - 1
        elif op == "leaky_relu":
            self.maybe(a, "alpha", 0.6, rng.choice([0.0, 0.1, 0.2, 0.3, 1.5]))
        elif op == "elu":
            self.maybe(a, "alpha", 0.6, rng.choice([0.1, 0.5, 2.0]))
        elif op in ("rnn", "lstm", "gru"):
            a["units"] = self.width(scope, 1, 5)
            self.maybe(a, "return_sequences", 0.5, self.chance(0.7))
            self.maybe(a, "bidirectional", 0.4, self.chance(0.8))
            self.maybe(a, "num_layers", 0.3, rng.choice([1, 2, 2]))
            self.init(a)
        elif op == "embedding":
            a["vocab"] = self.width(scope, 2, 16)
            a["dim"] = self.width(scope, 1, 6)
        return a

    def reshape_target(self, v: _Val) -> list[int]:
        if not all(isinstance(d, int) for d in v.shape):
            return [-1]
        total = math.prod(v.shape)
        divs = [d for d in range(1, min(total, MAX_DIM) + 1) if total % d == 0]
        rank = self.rng.choice([1, 2, 2, 3, 3])
        dims = []
        rest = total
        for _ in range(rank - 1):
            ok = [d for d in divs if rest % d == 0 and rest // d <= MAX_DIM * 4]
            d = self.rng.choice(ok or [1])
            dims.append(d)
            rest //= d
        dims.append(rest)
        self.rng.shuffle(dims)
        if self.chance(0.3):
            dims[self.rng.randrange(len(dims))] = -1
        return dims

    # -- emitting layers
    def literal(self, scope: _Scope, key: str, value: Any) -> Any:
        """Write an int attribute as a param reference or an expression now and then."""
        if key not in INT_ATTRS or not isinstance(value, int) or isinstance(value, bool):
            return value
        for p, pv in scope.env.items():
            if not isinstance(pv, int) or isinstance(pv, bool) or not self.chance(0.6):
                continue
            if pv == value:
                return f"${p}"
            if pv * 2 == value:
                return f"${{{p} * 2}}"
            if 0 < value - pv <= 3:
                return f"${{{p} + {value - pv}}}"
            if pv > 1 and value == pv // 2:
                return f"${{{p} // 2}}"
        if scope.top and self.chance(0.06):
            p = f"h{len(self.spec_params) + 1}"
            self.spec_params[p] = value
            scope.env[p] = value
            return f"${p}" if self.chance(0.6) else f"${{({p} * 3 - {value}) / 2}}"
        return value

    def emit(
        self,
        scope: _Scope,
        kind: str,
        what: str,
        attrs: dict,
        ins: list[_Val],
        repeat: int = 1,
        name: str | None = None,
        force_inputs: bool = False,
    ) -> list[str]:
        """Append a layer (op or block use) and return the local names of its copies."""
        layer: dict[str, Any] = {kind: what}
        if name is None and self.chance(0.25):
            name = self.fresh_name(scope)
        if name is not None:
            layer["name"] = name
        default = len(ins) == 1 and scope.prev is not None and ins[0] is scope.prev
        if not default or force_inputs or self.chance(0.15):
            layer["inputs"] = [v.ref for v in ins]
            if len(ins) == 1 and self.chance(0.3):
                layer["inputs"] = ins[0].ref
        if repeat > 1:
            layer["repeat"] = repeat
        for k, v in attrs.items():
            layer[k] = self.literal(scope, k, v)
        locals_ = []
        for copy_ in range(1, repeat + 1):
            k = scope.counters[what] = scope.counters.get(what, 0) + 1
            locals_.append(
                f"{what}_{k}" if name is None else name if repeat == 1 else f"{name}_{copy_}"
            )
        scope.taken.update(locals_)
        if name is not None:
            scope.taken.add(name)
        if list(layer) == ["op"] and self.chance(0.6):
            scope.layers.append(what)  # a bare string: the op with default attributes
        else:
            scope.layers.append(layer)
        for v in ins:
            scope.used.add(v.ref)
        return locals_ if name is None or repeat == 1 else [*locals_[:-1], name]

    def add_op(
        self,
        scope: _Scope,
        op: str,
        attrs: dict,
        ins: list[_Val],
        repeat: int = 1,
        force_inputs: bool = False,
    ) -> _Val | None:
        """Check the layer (each copy) against the op's rule; emit it if it fits."""
        shape: Shape = ()
        conc: Shape = ()
        dtype = "float32"
        cur = ins
        done = 0
        for _ in range(repeat):
            res = _trial(op, attrs, cur)
            if res is None:
                break
            shape, conc, w = res
            if self.weights + w > MAX_PARAMS:
                break
            self.weights += w
            done += 1
            cur = [_Val("copy", shape, dtype, conc=conc)]
        if done == 0:
            return None
        refs = self.emit(scope, "op", op, attrs, ins, done, force_inputs=force_inputs)
        v = _Val(refs[-1], shape, dtype, conc=conc)
        scope.values.append(v)
        scope.prev = v
        return v

    # -- steps of a chain
    def step_op(self, scope: _Scope, src: _Val | None = None, tries: int = 12) -> _Val | None:
        v = src or scope.current(self.rng)
        for _ in range(tries):
            op, attrs = self.propose(v, scope)
            repeat = 1
            if op != "embedding" and self.chance(0.1):
                repeat = self.rng.randint(2, 3)
            out = self.add_op(scope, op, attrs, [v], repeat)
            if out is not None:
                return out
        return None

    def same_shape_op(self, scope: _Scope, v: _Val, exact: bool) -> _Val | None:
        """An op on `v` whose output has v's shape (exact) or differs from it on one axis."""
        for _ in range(15):
            op, attrs = self.propose(v, scope)
            if op in ("flatten", "reshape", "permute", "embedding"):
                continue
            if op in ("conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d"):
                attrs.pop("stride", None)
                attrs["padding"] = "same"
                if exact and op.startswith("conv"):
                    c = v.shape[0]
                    if not isinstance(c, int):
                        continue
                    attrs["filters"] = c
                    g = attrs.get("groups", 1)
                    if c % g:
                        attrs.pop("groups")
            if op.startswith(("max_pool", "avg_pool")):
                attrs["stride"] = 1
            if op == "dense" and exact:
                last = v.shape[-1]
                if not isinstance(last, int):
                    continue
                attrs["units"] = last
            if op == "conv_transpose2d":
                k = self.rng.choice([1, 3])
                attrs.update(kernel=k, padding=k // 2)
                attrs.pop("stride", None)
                attrs.pop("output_padding", None)
                if exact and isinstance(v.shape[0], int):
                    attrs["filters"] = v.shape[0]
            if op in ("rnn", "lstm", "gru"):
                attrs["return_sequences"] = True
                if exact:
                    last = v.shape[-1]
                    if not isinstance(last, int) or (attrs.get("bidirectional") and last % 2):
                        continue
                    attrs["units"] = last // 2 if attrs.get("bidirectional") else last
            res = _trial(op, attrs, [v])
            if res is None:
                continue
            shape = res[0]
            if len(shape) == len(v.shape) and any(
                x is None and y is None and cx != cy
                for x, y, cx, cy in zip(shape, v.shape, res[1], v.conc, strict=True)
            ):
                continue  # an unnamed dynamic axis whose length changed
            diff = (
                [i for i in range(len(v.shape)) if shape[i] != v.shape[i]]
                if len(shape) == len(v.shape)
                else None
            )
            if diff is None or (exact and diff) or len(diff) > 1:
                continue
            return self.add_op(scope, op, attrs, [v])
        return None

    def merges_for(self, a: _Val, b: _Val) -> list[tuple[str, dict]]:
        """Merge layers that accept [a, b] (in that order)."""
        if a.dtype != "float32" or b.dtype != "float32" or len(a.shape) != len(b.shape):
            return []
        out: list[tuple[str, dict]] = []
        r = len(a.shape)
        # a dynamic axis only meets the same axis (the loader cannot refuse a dynamic axis
        # against a static size, but the inputs would not fit at run time)
        # (an unnamed one, None, is equal to nothing)
        same = [
            (x == y and x is not None)
            or (x == 1 and isinstance(y, int))
            or (y == 1 and isinstance(x, int))
            for x, y in zip(a.shape, b.shape, strict=True)
        ]
        if all(same) and _trial("add", {}, [a, b]) is not None:
            out += [("add", {}), ("subtract", {}), ("multiply", {})]
        for ax in range(1, r + 1):
            if not all(
                a.shape[i] == b.shape[i] and a.shape[i] is not None for i in range(r) if i != ax - 1
            ):
                continue
            if _trial("concat", {"axis": ax}, [a, b]) is not None:
                out.append(
                    (
                        "concat",
                        {"axis": self.rng.choice([ax, ax - r - 1])}
                        if ax != 1 or self.chance(0.5)
                        else {},
                    )
                )
        return out

    def merge(self, scope: _Scope, a: _Val, b: _Val) -> _Val | None:
        options = self.merges_for(a, b)
        if not options:
            return None
        op, attrs = self.rng.choice(options)
        ins = [a, b] if self.chance(0.5) else [b, a]
        if op in ("add", "multiply", "concat") and self.chance(0.15):
            ins.append(self.rng.choice(ins))  # three inputs, one repeated
        return self.add_op(scope, op, attrs, ins)

    def step_skip(self, scope: _Scope) -> _Val | None:
        """A residual branch: ops from x, then a merge with x."""
        x = scope.current(self.rng)
        if x.dtype != "float32":
            return self.step_op(scope)
        exact = self.chance(0.7)
        y: _Val | None = x
        for _ in range(self.rng.randint(1, 3)):
            nxt = self.same_shape_op(scope, y, exact)
            if nxt is None:
                break
            y = nxt
        if y is x:
            return None
        return self.merge(scope, x, y)

    def step_gate(self, scope: _Scope) -> _Val | None:
        """Broadcasting merges: squeeze-and-excitation gates, per-position gates."""
        x = scope.current(self.rng)
        r = len(x.shape)
        if x.dtype != "float32" or not isinstance(x.shape[0], int):
            return None
        if r >= 2 and self.chance(0.6):
            c = x.shape[0]
            p = self.add_op(
                scope,
                self.rng.choice(["global_avg_pool", "global_max_pool"]),
                {},
                [x],
                force_inputs=True,
            )
            if p is None:
                return None
            d = self.add_op(scope, "dense", {"units": c, "activation": "sigmoid"}, [p])
            if d is None:
                return None
            g = self.add_op(scope, "reshape", {"shape": [c] + [1] * (r - 1)}, [d])
        else:  # one gate per position: dense or conv to a single channel / feature
            if r == 1 or (r == 2 and self.family in ("sequence", "tokens")):
                g = self.add_op(
                    scope, "dense", {"units": 1, "activation": "sigmoid"}, [x], force_inputs=True
                )
            else:
                op = "conv1d" if r == 2 else "conv2d"
                if r > 3:
                    return None
                g = self.add_op(
                    scope,
                    op,
                    {"filters": 1, "kernel": 1, "activation": "sigmoid"},
                    [x],
                    force_inputs=True,
                )
        if g is None:
            return None
        op = self.rng.choice(["multiply", "multiply", "add", "subtract"])
        ins = [x, g] if self.chance(0.6) else [g, x]
        return self.add_op(scope, op, {}, ins)

    def step_merge_any(self, scope: _Scope) -> _Val | None:
        vals = [v for v in scope.values if v.dtype == "float32"]
        if len(vals) < 2:
            return None
        for _ in range(6):
            a, b = self.rng.sample(vals, 2)
            out = self.merge(scope, a, b)
            if out is not None:
                return out
        return None

    def step_fork(self, scope: _Scope) -> _Val | None:
        """An op on an earlier value: a second branch (merged later, or an output)."""
        vals = [v for v in scope.values if v is not scope.prev]
        if not vals:
            return None
        return self.step_op(scope, self.rng.choice(vals))

    def join(self, scope: _Scope, a: _Val, b: _Val) -> _Val | None:
        """Bring b to a's shape family and merge them (two inputs' chains meeting)."""
        out = self.merge(scope, a, b)
        if out is not None:
            return out
        vec = b
        if len(b.shape) >= 2:
            pool = (
                "flatten"
                if not isinstance(b.shape[0], int) or self.chance(0.3)
                else self.rng.choice(["global_avg_pool", "global_max_pool"])
            )
            vec = self.add_op(scope, pool, {}, [b], force_inputs=True)
            if vec is None:
                return None
        target = a.shape[0] if len(a.shape) >= 2 else a.shape[-1]
        if not isinstance(target, int):
            return None
        d = self.add_op(scope, "dense", {"units": target}, [vec], force_inputs=vec is b)
        if d is None:
            return None
        if len(a.shape) >= 2:
            d = self.add_op(scope, "reshape", {"shape": [target] + [1] * (len(a.shape) - 1)}, [d])
            if d is None:
                return None
        op = self.rng.choice(["add", "multiply", "subtract"])
        return self.add_op(scope, op, {}, [a, d] if self.chance(0.5) else [d, a])

    # -- blocks
    def blocks_used(self, layers: list) -> dict[str, dict]:
        """The definitions of the blocks that `layers` use, directly or through other blocks
        (an unused block is an error), in definition order."""
        need: set[str] = set()
        todo = list(layers)
        while todo:
            layer = todo.pop()
            if isinstance(layer, dict) and layer.get("block") in self.blocks:
                name = layer["block"]
                if name not in need:
                    need.add(name)
                    todo.extend(self.blocks[name].spec["layers"])
        return {b.name: b.spec for b in self.blocks.values() if b.name in need}

    def probe_use(
        self, scope: _Scope, blk: _Block, ins: list[_Val], params: dict, repeat: int
    ) -> list[tuple[Shape, Shape]] | None:
        """The output shapes (symbolic, concrete) of one use of `blk`, by lowering a spec with
        just that use."""
        sym = self.probe(scope, blk, [v.shape for v in ins], [v.dtype for v in ins], params, repeat)
        if sym is None:
            return None
        if all(v.shape == v.conc for v in ins):
            conc = [s for s, _ in sym]
        else:
            got = self.probe(
                scope, blk, [v.conc for v in ins], [v.dtype for v in ins], params, repeat
            )
            if got is None:
                return None
            conc = [s for s, _ in got]
        self.weights += sym[0][1]
        return [(s, c) for (s, _), c in zip(sym, conc, strict=True)]

    def probe(
        self,
        scope: _Scope,
        blk: _Block,
        shapes: list[Shape],
        dtypes: list[str],
        params: dict,
        repeat: int,
    ) -> list[tuple[Shape, int]] | None:
        spec_inputs = {
            f"i{j}": {
                "shape": [d if d is not None else f"i{j}_{k}" for k, d in enumerate(shape)],
                "dtype": dt,
            }
            for j, (shape, dt) in enumerate(zip(shapes, dtypes, strict=True))
        }
        layer = {"block": blk.name, "name": "u", "inputs": list(spec_inputs), **params}
        if repeat > 1:
            layer["repeat"] = repeat
        outs = ["u"] if len(blk.outs) == 1 else [f"u.{o}" for o in blk.outs]
        probe = {
            "netspec": 1,
            "name": "probe",
            "params": dict(scope.env),
            "inputs": spec_inputs,
            "blocks": self.blocks_used([layer]),
            "layers": [layer],
            "outputs": outs,
        }
        try:
            g = lower(copy.deepcopy(probe), max_params=MAX_PARAMS - self.weights)
        except SpecError:
            return None
        shapes = [g.value(g.outputs[o]).shape for o in outs]
        if any(_numel(s) > MAX_ELEMS for s in shapes):
            return None
        return [(s, sum(n.param_count + n.buffer_count for n in g.nodes)) for s in shapes]

    def use_block(
        self, scope: _Scope, blk: _Block, ins: list[_Val], params: dict, repeat: int = 1
    ) -> list[_Val] | None:
        while repeat >= 1:
            shapes = self.probe_use(scope, blk, ins, params, repeat)
            if shapes is not None:
                break
            repeat -= 1
        else:
            return None
        refs = self.emit(scope, "block", blk.name, params, ins, repeat, force_inputs=len(ins) > 1)
        if len(blk.outs) == 1:
            v = _Val(refs[-1], shapes[0][0], conc=shapes[0][1])
            scope.values.append(v)
            scope.prev = v
            return [v]
        vals = [
            _Val(f"{refs[-1]}.{o}", s, conc=c) for o, (s, c) in zip(blk.outs, shapes, strict=True)
        ]
        scope.values.extend(vals)
        scope.prev = None  # several outputs: the next layer names the one it takes
        return vals

    def new_block(self, scope: _Scope, ins: list[_Val]) -> tuple[_Block, dict] | None:
        name = next(self.block_words, None)
        if name is None:
            return None
        pnames = ["w", "k2"][: self.rng.randint(0, 2)] if self.chance(0.8) else []
        sample = {p: self.rng.randint(1, 6) for p in pnames}
        defaults: dict[str, int | None] = {
            p: None if self.chance(0.5) else sample[p] for p in pnames
        }
        inner_names = ["x", "y"] if len(ins) == 2 else [self.rng.choice(["x", "inp", "t", "x"])]
        body = _Scope(
            {**self.spec_params, **sample},
            top=False,
            depth=scope.depth + 1,
            widths=list(sample.values()),
        )
        saved = self.weights
        for iname, v in zip(inner_names, ins, strict=True):
            iv = _Val(iname, v.shape, v.dtype, is_input=True, conc=v.conc)
            body.values.append(iv)
            body.taken.add(iname)
        body.prev = body.values[0] if len(ins) == 1 else None
        if len(ins) == 2:
            self.join(body, body.values[0], body.values[1])
        self.chain(body, self.rng.randint(1, 4))
        self.weights = saved  # counted again by the probe of each use
        for v in body.values:  # a second input that no layer took
            if v.is_input and v.ref not in body.used and len(body.values) > 1:
                last = body.prev or body.current(self.rng)
                if self.join(body, last, v) is None:
                    return None
        leaves = [v for v in body.values if v.ref not in body.used and not v.is_input]
        if not leaves:
            return None
        bspec: dict[str, Any] = {}
        if pnames:
            bspec["params"] = defaults
        if len(ins) != 1 or inner_names != ["x"] or self.chance(0.5):
            bspec["inputs"] = inner_names
        if self.chance(0.1):
            bspec["description"] = f"block {name}: {len(body.layers)} layers"
        bspec["layers"] = body.layers
        if (
            len(leaves) > 1
            or self.chance(0.15)
            or (body.prev is None or body.prev is not leaves[-1])
        ):
            outs = [v.ref for v in leaves]
            bspec["outputs"] = outs
        else:
            outs = [""]
        blk = _Block(name, bspec, len(ins), outs, defaults, sample)
        self.blocks[name] = blk
        use_params = {
            p: sample[p]
            for p in pnames
            if defaults[p] is None or sample[p] != defaults[p] or self.chance(0.3)
        }
        return blk, use_params

    def step_block(self, scope: _Scope) -> list[_Val] | None:
        x = scope.current(self.rng)
        reusable = [b for b in self.blocks.values() if b.n_in == 1]
        if reusable and self.chance(0.4):
            blk = self.rng.choice(reusable)
            params = {
                p: (self.rng.randint(1, 6) if self.chance(0.5) else blk.sample[p])
                for p in blk.params
                if blk.params[p] is None or self.chance(0.5)
            }
            return self.use_block(scope, blk, [x], params, self.rng.choice([1, 1, 2]))
        if scope.depth >= 2:
            return None
        ins = [x]
        others = [v for v in scope.values if v is not x and v.dtype == x.dtype == "float32"]
        if others and self.chance(0.25):
            ins.append(self.rng.choice(others))
        made = self.new_block(scope, ins)
        if made is None:
            return None
        blk, params = made
        repeat = self.rng.choice([1, 1, 2, 3]) if blk.n_in == 1 and len(blk.outs) == 1 else 1
        return self.use_block(scope, blk, ins, params, repeat)

    def chain(self, scope: _Scope, steps: int) -> None:
        for _ in range(steps):
            r = self.rng.random()
            if scope.current(self.rng).dtype == "int64":
                self.step_op(scope)
            elif r < 0.45:
                self.step_op(scope)
            elif r < 0.62:
                self.step_skip(scope)
            elif r < 0.70:
                self.step_gate(scope)
            elif r < 0.80:
                self.step_block(scope)
            elif r < 0.88:
                self.step_merge_any(scope)
            else:
                self.step_fork(scope)

    # -- whole specs
    def inputs(self) -> dict[str, _Val]:
        rng = self.rng
        fam = self.family
        names = ["x", "img", "inp", "a", "cond", "seq", "tokens", "feats", "aux"]
        rng.shuffle(names)
        out: dict[str, _Val] = {}

        def one(kind: str) -> _Val:
            name = names.pop()
            if kind == "image":
                shape = (rng.randint(1, 4), rng.randint(3, 10), rng.randint(3, 10))
            elif kind == "signal":
                length: Any = rng.randint(4, 16)
                if self.chance(0.15):
                    length = None
                shape = (rng.randint(1, 4), length)
            elif kind == "vector":
                shape = (rng.randint(1, 10),)
            elif kind == "sequence":
                t: Any = rng.randint(1, 7)
                if self.chance(0.3):
                    t = None if self.chance(0.5) else "steps"
                shape = (t, rng.randint(1, 6))
            else:
                t = rng.randint(2, 8) if self.chance(0.6) else None
                shape = (t,) if self.chance(0.8) else (t, rng.randint(2, 3))
            self.written[name] = list(shape)
            # the loader names an unnamed dynamic axis <input>_<axis>
            shape = tuple(f"{name}_{i + 1}" if d is None else d for i, d in enumerate(shape))
            return _Val(name, shape, "int64" if kind == "tokens" else "float32", True)

        v = one(fam)
        out[v.ref] = v
        if self.chance(0.25):
            kind = fam if self.chance(0.5) else rng.choice(["vector", "sequence", "image"])
            w = one(kind)
            out[w.ref] = w
        if self.chance(0.05):
            w = one("vector")
            out[w.ref] = w
        return out

    def spec(self) -> dict:
        rng = self.rng
        ins = self.inputs()
        top = _Scope(self.spec_params, top=True)
        top.taken.update(ins)
        heads: list[_Val] = []
        for v in ins.values():
            top.values.append(v)
            top.prev = v if len(ins) == 1 else None
            if len(ins) > 1:  # the first layer of each input's chain names it
                first = self.step_op(top, v)
                if first is None:
                    raise SpecError("no layer fits the input")
            self.chain(top, rng.randint(2, 7))
            heads.append(top.prev or top.current(rng))
        if len(heads) > 1 and self.chance(0.7):
            joined = self.join(top, heads[0], heads[1])
            if joined is not None:
                self.chain(top, rng.randint(0, 2))
        for v in ins.values():
            if v.ref not in top.used:
                self.step_op(top, v)
        leaves = [v for v in top.values if v.ref not in top.used and not v.is_input]
        if not leaves or any(v.dtype != "float32" for v in leaves):
            raise SpecError("no float outputs")
        spec: dict[str, Any] = {"netspec": 1, "name": f"rand_{self.family}"}
        if self.chance(0.2):
            spec["description"] = rng.choice(
                ["a random spec", 'random: "quoted" text', "x -> y, {a}, 100%", ""]
            )
        if self.spec_params:
            spec["params"] = dict(self.spec_params)
        spec["inputs"] = {}
        for n, v in ins.items():
            entry: dict[str, Any] = {"shape": self.written[n]}
            if v.dtype != "float32" or self.chance(0.05):
                entry["dtype"] = v.dtype
            spec["inputs"][n] = entry
        used = self.blocks_used(top.layers)
        if used:
            spec["blocks"] = used
        spec["layers"] = top.layers
        refs = [v.ref for v in leaves]
        extra = [v.ref for v in top.values if v.ref not in refs and v.dtype == "float32"]
        if extra and self.chance(0.15):
            refs.insert(rng.randrange(len(refs) + 1), rng.choice(extra))
        if len(refs) > 1 and self.chance(0.3):
            rng.shuffle(refs)
        if len(refs) == 1 and top.prev is not None and refs[0] == top.prev.ref and self.chance(0.5):
            pass  # the default: the last layer
        elif self.chance(0.3):
            names: dict[str, str] = {}
            for j, r in enumerate(refs):
                names[rng.choice(["y", "out", "logits", "probs", "z"]) + str(j)] = r
            if self.chance(0.15):  # one value under two names
                names[f"again{len(names)}"] = refs[0]
            spec["outputs"] = names
        else:
            spec["outputs"] = refs
        return spec


def random_spec(seed: int, family: str | None = None) -> dict:
    """A valid random spec as plain data (see `generate` for the lowered graph too)."""
    return generate(seed, family).spec


def generate(seed: int, family: str | None = None, max_attempts: int = 50) -> Generated:
    """The first valid spec drawn from `seed` (then from derived seeds), with its graph."""
    last: Exception | None = None
    family = family or FAMILIES[seed % len(FAMILIES)]
    for attempt in range(max_attempts):
        sub = seed if attempt == 0 else seed * 1_000_003 + attempt
        gen = _Gen(sub, family)
        try:
            spec = gen.spec()
            graph = lower(copy.deepcopy(spec), max_params=MAX_PARAMS * 4)
        except SpecError as e:
            last = e
            continue
        spec["name"] = f"r{seed}_{family}"
        graph.name = spec["name"]
        return Generated(seed, family, spec, graph, attempt + 1)
    raise RuntimeError(f"no valid spec from seed {seed} in {max_attempts} attempts: {last}")


# -- YAML text ------------------------------------------------------------------------------
def _scalar(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        text = repr(v)
        return text if re.fullmatch(r"-?[0-9.]+(e[-+]?[0-9]+)?", text) else json.dumps(v)
    if isinstance(v, str):
        if _PLAIN.match(v) and v not in _RESERVED:
            return v
        return quote(v)
    raise TypeError(type(v))


def quote(text: str) -> str:
    """A YAML double-quoted scalar: printable ASCII as is, everything else escaped."""
    out = ['"']
    for ch in text:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= o < 0x7F:
            out.append(ch)
        elif o <= 0xFFFF:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


def _flow(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {_flow(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_flow(x) for x in v) + "]"
    return _scalar(v)


def _layers(layers: list, indent: str) -> list[str]:
    return [f"{indent}- {_flow(layer)}" for layer in layers]


def to_yaml(spec: dict) -> str:
    """The spec as YAML text: block style at the top, one flow mapping per layer."""
    lines: list[str] = []
    for key, v in spec.items():
        if key in ("inputs", "params", "blocks") and isinstance(v, dict) and v:
            lines.append(f"{key}:")
            for k, x in v.items():
                if key == "blocks" and isinstance(x, dict):
                    lines.append(f"  {_scalar(k)}:")
                    for bk, bv in x.items():
                        if bk == "layers" and isinstance(bv, list):
                            lines.append("    layers:")
                            lines += _layers(bv, "      ")
                        else:
                            lines.append(f"    {_scalar(bk)}: {_flow(bv)}")
                else:
                    lines.append(f"  {_scalar(k)}: {_flow(x)}")
        elif key == "layers" and isinstance(v, list):
            lines.append("layers:")
            lines += _layers(v, "  ")
        else:
            lines.append(f"{_scalar(key)}: {_flow(v)}")
    return "\n".join(lines) + "\n"


# -- shrinking ------------------------------------------------------------------------------
def _valid(spec: dict) -> bool:
    try:
        lower(copy.deepcopy(spec))
    except SpecError:
        return False
    return True


def _refs_of(layer: Any) -> list[str]:
    if isinstance(layer, dict) and "inputs" in layer:
        ins = layer["inputs"]
        return [ins] if isinstance(ins, str) else list(ins)
    return []


def _explicit(spec: dict) -> dict | None:
    """The same spec with every top-level layer named and given explicit inputs (so layers can
    be removed one by one); None if it cannot be written so."""
    s = copy.deepcopy(spec)
    counters: dict[str, int] = {}
    prev: str | None = next(iter(s["inputs"])) if len(s["inputs"]) == 1 else None
    new = []
    for layer in s["layers"]:
        if isinstance(layer, str):
            layer = {"op": layer}
        kind = layer.get("op", layer.get("block"))
        repeat = layer.get("repeat", 1)
        if not isinstance(repeat, int):
            return None
        start = counters.get(kind, 0)
        counters[kind] = start + repeat
        if "inputs" not in layer:
            if prev is None:
                return None
            layer["inputs"] = [prev]
        if "name" not in layer:
            if repeat == 1:
                layer["name"] = f"{kind}_{start + 1}"
            else:  # keep the default names (n_1 .. n_N are not the same as name: n)
                prev = f"{kind}_{start + repeat}"
                new.append(layer)
                continue
        prev = layer["name"]
        if "block" in layer:
            blk = s.get("blocks", {}).get(kind, {})
            if len(blk.get("outputs", [])) > 1:
                prev = None
        new.append(layer)
    s["layers"] = new
    if "outputs" not in s:
        if prev is None:
            return None
        s["outputs"] = [prev]
    return s


def _rename_refs(spec: dict, old: str, new: str) -> None:
    def fix(r: str) -> str:
        if r == old:
            return new
        if r.startswith(old + "."):
            return new
        return r

    for layer in spec["layers"]:
        if isinstance(layer, dict) and "inputs" in layer:
            ins = layer["inputs"]
            layer["inputs"] = fix(ins) if isinstance(ins, str) else [fix(r) for r in ins]
    outs = spec.get("outputs")
    if isinstance(outs, list):
        spec["outputs"] = list(dict.fromkeys(fix(r) for r in outs))
    elif isinstance(outs, dict):
        spec["outputs"] = {k: fix(r) for k, r in outs.items()}
    elif isinstance(outs, str):
        spec["outputs"] = fix(outs)


def _prune(spec: dict) -> None:
    """Drop unused blocks, params and inputs (when the result stays valid)."""
    for b in list(spec.get("blocks", {})):
        others = {k: v for k, v in spec["blocks"].items() if k != b}
        if f'"{b}"' not in json.dumps(spec["layers"]) + json.dumps(others):
            del spec["blocks"][b]
    if "blocks" in spec and not spec["blocks"]:
        del spec["blocks"]
    text = json.dumps(spec["layers"]) + json.dumps(spec.get("blocks", {}))
    for p in list(spec.get("params", {})):
        if re.search(r"\$\{?[^}\"]*\b" + re.escape(p) + r"\b", text) is None:
            del spec["params"][p]
    if "params" in spec and not spec["params"]:
        del spec["params"]


def _candidates(spec: dict):
    """Smaller variants of an explicit spec, roughly biggest cuts first."""
    layers = spec["layers"]
    outs = spec.get("outputs")
    if "description" in spec:
        s = copy.deepcopy(spec)
        del s["description"]
        yield s
    # fewer outputs
    if isinstance(outs, list) and len(outs) > 1:
        for j in range(len(outs)):
            s = copy.deepcopy(spec)
            del s["outputs"][j]
            yield s
    if isinstance(outs, dict) and len(outs) > 1:
        for k in list(outs):
            s = copy.deepcopy(spec)
            del s["outputs"][k]
            yield s
    # drop an input that only outputs name
    if len(spec["inputs"]) > 1:
        for name in spec["inputs"]:
            s = copy.deepcopy(spec)
            del s["inputs"][name]
            if isinstance(outs, list):
                s["outputs"] = [r for r in outs if r != name]
            elif isinstance(outs, dict):
                s["outputs"] = {k: r for k, r in outs.items() if r != name}
            yield s
    # drop a layer, rewiring its users to its first input
    for i in range(len(layers) - 1, -1, -1):
        layer = layers[i]
        if not isinstance(layer, dict) or "name" not in layer:
            continue
        ins = _refs_of(layer)
        if not ins:
            continue
        for src in dict.fromkeys(ins):
            s = copy.deepcopy(spec)
            del s["layers"][i]
            _rename_refs(s, layer["name"], src)
            yield s
    # drop layers nothing uses (after outputs went away)
    for i in range(len(layers) - 1, -1, -1):
        s = copy.deepcopy(spec)
        del s["layers"][i]
        yield s
    # fewer repeats, fewer inputs of a merge, fewer attributes
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict):
            continue
        if layer.get("repeat", 1) != 1:
            s = copy.deepcopy(spec)
            del s["layers"][i]["repeat"]
            yield s
        ins = _refs_of(layer)
        if len(ins) > 2:
            for j in range(len(ins)):
                s = copy.deepcopy(spec)
                s["layers"][i]["inputs"] = ins[:j] + ins[j + 1 :]
                yield s
        for k in list(layer):
            if k not in ("op", "block", "name", "inputs") and "block" not in layer:
                s = copy.deepcopy(spec)
                del s["layers"][i][k]
                yield s
    # simpler block bodies
    for b, body in spec.get("blocks", {}).items():
        if "description" in body:
            s = copy.deepcopy(spec)
            del s["blocks"][b]["description"]
            yield s
        for j in range(len(body["layers"])):
            lay = body["layers"][j]
            if isinstance(lay, dict):
                for k in list(lay):
                    if k not in ("op", "block", "name", "inputs", "filters", "units"):
                        s = copy.deepcopy(spec)
                        del s["blocks"][b]["layers"][j][k]
                        yield s
            s = copy.deepcopy(spec)
            del s["blocks"][b]["layers"][j]
            yield s
    # smaller inputs
    for name, inp in spec["inputs"].items():
        for j, d in enumerate(inp["shape"]):
            if isinstance(d, int) and d > 1:
                for smaller in sorted({1, 2, d // 2, d - 1}):
                    if smaller < d:
                        s = copy.deepcopy(spec)
                        s["inputs"][name]["shape"][j] = smaller
                        yield s


def shrink(spec: dict, still_fails: Callable[[dict], bool], max_checks: int = 2000) -> dict:
    """A small spec for which `still_fails` holds, by greedy cuts of `spec` (which must fail).

    `still_fails` is only called on valid specs; exceptions it raises count as "no".
    """

    def fails(s: dict) -> bool:
        nonlocal checks
        checks += 1
        _prune(s)
        if not _valid(s):
            return False
        try:
            return bool(still_fails(s))
        except Exception:  # noqa: BLE001 - a candidate that breaks differently is not kept
            return False

    checks = 0
    best = copy.deepcopy(spec)
    ex = _explicit(best)
    if ex is not None and fails(ex):
        best = ex
    progress = True
    while progress and checks < max_checks:
        progress = False
        for cand in _candidates(best):
            if checks >= max_checks:
                break
            if fails(cand):
                best = cand
                progress = True
                break
    _prune(best)
    return best


# -- running a spec on the targets ----------------------------------------------------------
def available_targets() -> list[str]:
    """The targets whose package is there (they are being written one by one): torch first
    (the usual reference), then onnx, then keras (the slowest to build). A package directory
    without `__init__.py`, or one without `generate` and `compile` yet, is not there yet; one
    that fails to import raises."""
    import importlib
    import importlib.util

    from .targets import TARGETS

    out = []
    for name in ("torch", "onnx", "keras"):
        spec = importlib.util.find_spec(TARGETS[name])
        if spec is None or spec.origin is None:
            continue
        mod = importlib.import_module(TARGETS[name])
        if all(hasattr(mod, f) for f in ("generate", "compile", "EMITTERS")):
            out.append(name)
    return out


def to_keras_layout(a: Any) -> Any:
    """Logical (channels-first) -> Keras' boundary layout: per-example rank >= 3 moves axis 1
    last."""
    import numpy as np

    return np.moveaxis(a, 1, -1) if a.ndim >= 4 else a


def from_keras_layout(a: Any) -> Any:
    import numpy as np

    a = np.asarray(a)
    return np.moveaxis(a, -1, 1) if a.ndim >= 4 else a


_ORT_OPTIONS = None


def run_target(target: str, graph: Graph, weights: dict, inputs: dict) -> list:
    """Build `graph` on `target` with `weights` and run it on `inputs` (logical layout, numpy);
    the outputs come back in the spec's order, in the logical layout, as numpy arrays."""
    global _ORT_OPTIONS
    import numpy as np

    from . import api

    if target == "torch":
        import torch

        module = api.compile(graph, "torch", weights)
        with torch.no_grad():
            ys = module(*(torch.from_numpy(np.ascontiguousarray(inputs[k])) for k in graph.inputs))
        ys = ys if isinstance(ys, (tuple, list)) else (ys,)
        return [y.detach().numpy() for y in ys]
    if target == "onnx":
        import onnxruntime as ort

        proto = api.compile(graph, "onnx", weights)
        if _ORT_OPTIONS is None:
            _ORT_OPTIONS = ort.SessionOptions()
            _ORT_OPTIONS.intra_op_num_threads = 1
            _ORT_OPTIONS.inter_op_num_threads = 1
            _ORT_OPTIONS.log_severity_level = 3
        sess = ort.InferenceSession(
            proto.SerializeToString(), _ORT_OPTIONS, providers=["CPUExecutionProvider"]
        )
        return list(sess.run(None, {k: inputs[k] for k in graph.inputs}))
    if target == "keras":
        model = api.compile(graph, "keras", weights)
        ins = [to_keras_layout(inputs[k]) for k in graph.inputs]
        out = model(ins if len(ins) > 1 else ins[0], training=False)
        outs = out if isinstance(out, (list, tuple)) else [out]
        if isinstance(out, dict):
            outs = [out[k] for k in graph.outputs]
        return [from_keras_layout(np.asarray(o)) for o in outs]
    raise ValueError(f"unknown target {target!r}")


def float64_noise(graph: Graph, weights: dict, inputs: dict, outputs32: list) -> list[float]:
    """How far float32 rounding alone moves each output of this spec: the largest difference
    between the PyTorch target's float32 outputs (`outputs32`) and the same module run in
    float64. Near zero for a well-conditioned spec; large where the spec amplifies rounding
    (layer_norm of nearly constant features, differences of nearly equal values), where no
    float32 target can meet the parity bound and a disagreement says nothing about a target."""
    import numpy as np
    import torch

    from . import api

    module = api.compile(graph, "torch", weights).double()
    with torch.no_grad():
        ys = module(
            *(
                torch.from_numpy(np.ascontiguousarray(inputs[k])).double()
                if inputs[k].dtype == np.float32
                else torch.from_numpy(np.ascontiguousarray(inputs[k]))
                for k in graph.inputs
            )
        )
    ys = ys if isinstance(ys, (tuple, list)) else (ys,)
    return [
        float(np.max(np.abs(np.asarray(a, np.float64) - y.numpy()))) if y.numel() else 0.0
        for a, y in zip(outputs32, ys, strict=True)
    ]


# A disagreement within this many times the float32 noise is rounding: other kernels (ONNX
# Runtime's GRU, oneDNN's convolutions) legitimately round several times worse than PyTorch's
# on an ill-conditioned output (seed 8821: 5.7 times, a layer_norm over 2 nearly equal GRU
# features). For a well-conditioned output the noise is ~1e-7 and this changes nothing.
NOISE_FACTOR = 10.0


def disagreements(
    graph: Graph,
    results: dict[str, list],
    reference: str | None = None,
    noise: list[float] | None = None,
) -> list[str]:
    """Each target's outputs against the reference target's (the first by default), with
    the design page's parity bound, widened by `NOISE_FACTOR` times each output's float32
    noise when `noise` is given (see `float64_noise`); one line per output that differs."""
    from .testing import ATOL, assert_close

    names = list(results)
    ref = reference or names[0]
    outs = list(graph.outputs)
    slack = noise or [0.0] * len(outs)
    problems = []
    for t in names:
        if t == ref:
            continue
        if len(results[t]) != len(outs):
            problems.append(f"{t}: {len(results[t])} outputs, {ref}: {len(results[ref])}")
            continue
        for o, a, b, n in zip(outs, results[t], results[ref], slack, strict=True):
            try:
                what = f"{t} vs {ref}, output {o!r}"
                if n:
                    what += f" (float32 noise {n:.2g})"
                assert_close(a, b, what, atol=ATOL + NOISE_FACTOR * n)
            except AssertionError as e:
                problems.append(str(e))
    return problems
