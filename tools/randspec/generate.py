"""Random valid specs, for differential testing of the targets against each other.

`random_spec(seed)` returns a spec as plain data (dicts, lists, scalars) that `netspec.lower`
accepts; `to_yaml(spec)` writes it as YAML text that `netspec.loads` reads back to the same data.
A seed always gives the same spec (Python's `random.Random`, seeded once).

Specs are built layer by layer against the op table's own shape rules: each candidate layer's
attributes are drawn by the op's own sampler (`OpDef.sample`, given a `Draw`), checked, and its
output shape computed by `OPS[op].rule`, exactly as the loader does; how often an op is proposed
for a value of a given rank is the op's `OpDef.weights`. A block use's output shape comes from
lowering a one-use probe spec. So almost every spec is valid by construction; the whole spec is
lowered at the end anyway, and a refused one is replaced by the next candidate
(`Generated.attempts` counts them).

Families (`FAMILIES`): `image` ([C, H, W] conv stacks; now and then a volume [C, D, H, W]),
`signal` ([C, L] 1-D convolutions), `vector` ([F]), `sequence` ([T, F] with recurrent layers; T
may be dynamic) and `tokens` (int64 ids into an embedding). Graphs are chains with forks:
residual and gated skips (add, subtract, multiply with broadcasting, concat), several inputs
joined or kept apart, several outputs, repeated layers, and blocks (one or two inputs, one or
several outputs, params, repeat, nested uses). Sizes stay small (at most `MAX_ELEMS` numbers
per example in any value, `MAX_PARAMS` weights), so a spec runs in milliseconds on any target.
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass, field
from typing import Any

from netspec.errors import SpecError
from netspec.ir import Graph, Shape, Value
from netspec.lower import lower
from netspec.ops import ACTIVATIONS, INITS, OPS, Ctx, Invalid
from netspec.schema import NO_CONV_ACT

from .yamltext import to_yaml

FAMILIES = ("image", "signal", "vector", "sequence", "tokens")
MAX_ELEMS = 1024  # numbers per example in any value (dynamic axes counted as DYN)
MAX_DIM = 24  # largest static axis a layer may produce
MAX_PARAMS = 12_000
DYN = 5  # the size `tools.testing.random_inputs` gives dynamic axes
WORDS = """stem head proj skip gate mix body neck tail feat enc dec a b h z trunk side left right
up down core""".split()
CONV_ACTS = [a for a in ACTIVATIONS if a not in NO_CONV_ACT]  # as the schema allows
SEQ_FAMILIES = ("sequence", "tokens")  # ops' `seq_weights` apply


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


# -- what an op's sampler sees ---------------------------------------------------------------
class Draw:
    """The generator's helpers for an op's sampler (`OpDef.sample(draw, shape)`), bound to the
    scope the layer is drawn in. Every random choice goes through `rng`, so a seed fixes it."""

    def __init__(self, gen: _Gen, scope: _Scope):
        self.gen = gen
        self.scope = scope
        self.rng = gen.rng

    def chance(self, p: float) -> bool:
        return self.gen.chance(p)

    def width(self, lo: int = 1, hi: int = 8) -> int:
        """A size from lo to hi, often one of the enclosing block's params."""
        return self.gen.width(self.scope, lo, hi)

    def spatial(self, n: int, lo: int, hi: int, p_list: float = 0.2) -> int | list[int]:
        """An int, or (sometimes) one per spatial axis."""
        return self.gen.spatial(n, lo, hi, p_list)

    def maybe(self, attrs: dict, key: str, p: float, value: Any) -> None:
        """Set `attrs[key] = value` with probability p."""
        self.gen.maybe(attrs, key, p, value)

    def init(self, attrs: dict) -> None:
        """Now and then a weight initializer other than the default."""
        self.gen.init(attrs)

    def activation(self, attrs: dict, conv: bool, shape: Shape) -> None:
        """Now and then an `activation:` (drawn by that activation op's own sampler)."""
        if not self.chance(0.35):
            return
        name = self.rng.choice(CONV_ACTS if conv else ACTIVATIONS)
        extra = OPS[name].sample(self, shape)
        attrs["activation"] = {"op": name, **extra} if extra else name

    def reshape_target(self, shape: Shape) -> list[int]:
        """A per-example shape with the same number of elements (sometimes with a -1)."""
        return self.gen.reshape_target(shape)


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
        """The ops that take this value, by their records' weights for its rank."""
        seq = self.family in SEQ_FAMILIES
        table = {}
        for name, d in OPS.items():
            w = d.weight(len(v.shape), seq) if d.input_dtype == v.dtype else 0.0
            if w > 0:
                table[name] = w
        return table

    def propose(self, v: _Val, scope: _Scope) -> tuple[str, dict]:
        op = self.pick_weighted(self.op_table(v))
        return op, self.attrs_for(op, v, scope)

    def attrs_for(self, op: str, v: _Val, scope: _Scope) -> dict:
        return OPS[op].sample(Draw(self, scope), v.shape)

    def reshape_target(self, shape: Shape) -> list[int]:
        if not all(isinstance(d, int) for d in shape):
            return [-1]
        total = math.prod(shape)
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
    def literal(self, scope: _Scope, op: str | None, key: str, value: Any) -> Any:
        """Write a width attribute (`Attr.width`) of op `op` (None: a block use's param) as a
        param reference or an expression now and then."""
        attr = OPS[op].attrs.get(key) if op is not None else None
        if attr is None or not attr.width or not isinstance(value, int) or isinstance(value, bool):
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
            layer[k] = self.literal(scope, what if kind == "op" else None, k, v)
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
            op, drawn = self.propose(v, scope)
            keep = OPS[op].keep_shape
            attrs = keep(Draw(self, scope), drawn, v.shape, exact) if keep else drawn
            if attrs is None:
                continue
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
        # a @ b^T (b's last two axes swapped by a permute first): attention-like scores
        if (
            r >= 2
            and all(same[:-2])
            and a.shape[-1] == b.shape[-1]
            and isinstance(a.shape[-1], int)
        ):
            out.append(("matmul", {}))
        return out

    def merge(self, scope: _Scope, a: _Val, b: _Val) -> _Val | None:
        options = self.merges_for(a, b)
        if not options:
            return None
        op, attrs = self.rng.choice(options)
        if op == "matmul":
            r = len(b.shape)
            bt = self.add_op(scope, "permute", {"dims": [*range(1, r - 1), r, r - 1]}, [b])
            return None if bt is None else self.add_op(scope, op, attrs, [a, bt])
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
                if self.chance(0.15):  # a volume [C, D, H, W], for the 3-D ops
                    shape = (shape[0], rng.randint(2, 5), shape[1], shape[2])
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
