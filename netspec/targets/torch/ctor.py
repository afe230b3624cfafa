"""Constructor arguments of the generated classes, from what the spec wrote (never guessed back
from numbers).

A block class's `__init__` takes the block's declared params, in declared order, with the
declared defaults (a default written as an expression over the params above it becomes `None`,
computed in the body). Each submodule argument is, in this order of preference:

- the spec's own expression, when the attribute (or a block param at a nested use) was written
  with params and that expression gives the value PyTorch takes (`nn.Conv2d(..., width // 4,
  1)`; `padding: $p` with `p: same` does not: netspec resolved it to numbers);
- for a size the spec does not write (a layer's input channels or features, a `Size`): the
  expression of the layer that set it, found by following the value back through ops that
  keep that size (the op record's `keeps_size`) to the op attribute that sets it (`sets_size`),
  also out of nested block uses; when it comes from a block input, a literal if every use of
  the class agrees, else an extra argument for that input's size (`in_channels`, or
  `<input>_channels` for a block with several inputs) that each caller computes in its own
  scope the same way;
- a literal, when every use of the class has the same value (left out when it is PyTorch's
  default);
- else an explicit extra argument named `<layer>_<argument>` that each use passes by value.

Names in an expression are the enclosing block's params where it declares them, else spec-level
params: a block class that needs a spec-level param takes it as an extra argument (passed down
by its callers as `hidden=hidden`). Extra arguments come first in the signature (as
torchvision's `BasicBlock(inplanes, planes, ...)`), then the declared params.

The model class takes the spec's params as keyword arguments with the resolved values as
defaults (`def __init__(self, hidden: int = 8)`, `nn.Linear(2, hidden)`); sizes netspec
computed from them without an expression stay numbers (a flattened size, say).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...expr import Expr as SpecExpr
from ...expr import parse
from ...ir import REQUIRED, BlockDef, BlockUse, Graph, Node
from ...ops import OPS
from ..python.names import Namer
from ..python.pyfmt import Call, Expr, Kw, Raw, flat, lit
from .emitters import Default, Size, Spec


@dataclass
class Decl:
    """`self.<attr> = <func>(*args, **kwargs)`; an argument may be a literal, a `Default`, a
    `Spec` or a `Size` (see `emitters`)."""

    attr: str
    func: str
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]

    def signature(self) -> tuple:
        return (self.attr, self.func, len(self.args), tuple(k for k, _ in self.kwargs))

    def slots(self) -> list[tuple[Any, Any]]:
        """(slot, value) of every argument; slot is an index or a keyword."""
        return [*enumerate(self.args), *self.kwargs]


@dataclass
class Param:
    """An `__init__` parameter of a generated class."""

    name: str
    values: list[Any]  # per use of the class: what the use passes (see `Resolver.use_args`)
    default: Any = REQUIRED  # a literal default
    computed: str = ""  # a default computed in the body from the params above it


@dataclass
class Ctor:
    """A class's constructor: its parameters and each submodule's arguments as code."""

    params: list[Param] = field(default_factory=list)
    codes: list[list[Expr | None]] = field(default_factory=list)  # per decl, per slot

    def call(self, i: int, d: Decl) -> Call:
        """The constructor call of submodule `i`; arguments left to PyTorch's defaults are
        left out."""
        args: list[Expr | Kw] = []
        for (slot, _), code in zip(d.slots(), self.codes[i], strict=True):
            if code is not None:
                args.append(Kw(slot, code) if isinstance(slot, str) else code)
        return Call(d.func, tuple(args))

    def signature(self) -> list[str]:
        """`__init__`'s parameters after `self`: extra (required) ones first; a declared param
        without a default after one with a default makes them keyword-only (`*`)."""
        optional = [p.default is not REQUIRED or bool(p.computed) for p in self.params]
        first = optional.index(True) if True in optional else len(optional)
        star = not all(optional[first:])
        out: list[str] = []
        for i, p in enumerate(self.params):
            ann = annotation(p.values + ([] if p.default is REQUIRED else [p.default]))
            if p.computed:
                text = f"{p.name}: {ann} | None = None"
            elif p.default is REQUIRED:
                text = f"{p.name}: {ann}"
            else:
                text = f"{p.name}: {ann} = {flat(lit(literal(p.default)))}"
            if star and i == first:
                out.append("*")
            out.append(text)
        return out


class Resolver:
    """The constructor of one generated class, from its uses (`None`: the model class, with
    the spec's params) and their bodies' submodules."""

    def __init__(
        self,
        graph: Graph,
        block: BlockDef | None,
        uses: list[BlockUse | None],
        decls: list[list[Decl]],
        reserved: set[str],
        bases: set[str],
    ):
        self.graph = graph
        self.block = block
        self.uses = uses
        self.decls = decls  # per use: its body's submodules
        self.namer = Namer(reserved, bases)
        own = block.params if block is not None else graph.params
        self.declared = {p: self.namer.new(p) for p in own}
        self.extra: dict[Any, Param] = {}  # key -> an extra parameter, in order of need

    # -- names and values in this scope -------------------------------------------------------
    def rename(self, name: str, spec_level: bool) -> str:
        if self.block is None or (not spec_level and name in self.block.params):
            return self.declared[name]
        key = ("spec", name)
        if key not in self.extra:
            values = [Spec(name, parse("$" + name), self.graph.params[name], spec_level=True)]
            self.extra[key] = Param(self.namer.new(name), values * len(self.uses))
        return self.extra[key].name

    def env(self, k: int, spec_level: bool) -> dict[str, Any]:
        use = self.uses[k]
        if spec_level or use is None:
            return self.graph.params
        return {**self.graph.params, **use.params}

    def render(self, s: Spec) -> str:
        def rename(name: str) -> str:
            return self.rename(name, s.spec_level)

        if isinstance(s.expr, SpecExpr):
            return s.expr.render(rename)
        items = [
            x.render(rename) if isinstance(x, SpecExpr) else flat(lit(literal(item)))
            for x, item in zip(s.expr, s.items, strict=True)
        ]
        return f"({items[0]},)" if len(items) == 1 else "(" + ", ".join(items) + ")"

    def renders(self, specs: list[Spec]) -> bool:
        """Whether the expression gives every use's value (and is the same expression)."""
        first = _text(specs[0].expr)
        for k, s in enumerate(specs):
            if _text(s.expr) != first:
                return False
            try:
                raw = _evaluate(s, self.env(k, s.spec_level))
            except Exception:  # an expression that does not give a value here
                return False
            if _key(_norm(raw)) != _key(_norm(value(s.value))):
                return False
        return True

    # -- one argument ---------------------------------------------------------------------------
    def code(self, vals: list[Any], layer: str, slot: Any) -> Expr | None:
        """The code of one argument given its value at each use (None: left out)."""
        v0 = vals[0]
        want = f"{layer}_{slot if isinstance(slot, str) else _slot_name(v0, slot)}"
        if isinstance(v0, Spec):
            if self.renders(vals):
                return Raw(self.render(v0))
            return self.plain([v.value for v in vals], want)
        if isinstance(v0, Size):
            return self.size(vals, want)
        return self.plain(vals, want)

    def plain(self, vals: list[Any], want: str) -> Expr | None:
        if len({_key(v) for v in vals}) == 1:
            return None if isinstance(vals[0], Default) else lit(literal(vals[0]))
        key = ("derived", want)
        while key in self.extra:
            key = ("derived", key[1] + "_")
        self.extra[key] = Param(self.namer.new(want), [value(v) for v in vals])
        return Raw(self.extra[key].name)

    def size(self, vals: list[Size], want: str) -> Expr | None:
        traced = [trace(self.graph, u, v.of, v.axis) for u, v in zip(self.uses, vals, strict=True)]
        t0 = traced[0]
        if t0 is not None and t0[0] == "expr" and all(t == t0 for t in traced):
            specs = [Spec(v.name, t0[1], v.value, spec_level=t0[2]) for v in vals]
            if self.renders(specs):
                return Raw(self.render(specs[0]))
        same = len({_key(v.value) for v in vals}) == 1
        if not same and t0 is not None and t0[0] == "input" and all(t == t0 for t in traced):
            idx = t0[1]
            key = ("size", idx, vals[0].name)
            if key not in self.extra:
                inputs = self.block.inputs if self.block is not None else []
                base = "in" if len(inputs) == 1 else inputs[idx]
                use_vals = [
                    Size(u.inputs[idx], v.axis, v.value, v.name)
                    for u, v in zip(self.uses, vals, strict=True)
                ]
                self.extra[key] = Param(self.namer.new(f"{base}_{vals[0].name}"), use_vals)
            return Raw(self.extra[key].name)
        return self.plain([v.value for v in vals], want)

    # -- the whole class --------------------------------------------------------------------
    def resolve(self) -> Ctor:
        ctor = Ctor()
        for i, decl in enumerate(self.decls[0]):
            row = []
            for j, (slot, _) in enumerate(decl.slots()):
                vals = [d[i].slots()[j][1] for d in self.decls]
                code = self.code(vals, decl.attr, slot)
                if code is None and not isinstance(slot, str):
                    code = lit(literal(value(vals[0])))  # a positional argument stays
                row.append(code)
            ctor.codes.append(row)
        declared = []
        own = self.block.params if self.block is not None else {}
        for p, name in self.declared.items():
            if self.block is None:
                v = self.graph.params[p]
                if isinstance(v, dict):  # not a mutable default: set in the body
                    declared.append(Param(name, [v], computed=flat(lit(v))))
                else:
                    declared.append(Param(name, [v], default=v))
                continue
            bp = own[p]
            par = Param(name, [u.params[p] for u in self.uses])
            if bp.expr is not None:
                par.computed = self.render(Spec(p, bp.expr, None))
            elif isinstance(bp.default, dict):  # not a mutable default: set in the body
                par.computed = flat(lit(bp.default))
            elif not bp.required:
                par.default = bp.default
            declared.append(par)
        ctor.params = [*self.extra.values(), *declared]
        return ctor

    def use_args(self, ctor: Ctor, k: int) -> list[tuple[str, Any]]:
        """What use `k` of the class passes, by keyword: values for the caller's own
        resolution (a `Spec` for an expression written at the use, a `Size`, a literal, a
        `Default` for a declared param left to its default)."""
        use = self.uses[k]
        assert use is not None and self.block is not None
        out = [(p.name, p.values[k]) for p in ctor.params[: len(self.extra)]]
        for p, name in self.declared.items():
            bp = self.block.params[p]
            v = use.params[p]
            x = use.args.get(p)
            if x is not None and not isinstance(x, dict):
                items = tuple(v) if isinstance(x, list) else ()
                out.append((name, Spec(p, x, v, items)))
                continue
            if bp.expr is not None:
                env = {**self.graph.params, **use.params}
                try:
                    default = _evaluate(Spec(p, bp.expr, None), env)
                except Exception:  # a default this use does not need
                    default = REQUIRED
            else:
                default = bp.default
            if not bp.required and _key(_norm(default)) == _key(_norm(v)):
                out.append((name, Default(v)))
            else:
                out.append((name, v))
        return out


# -- following a size back ----------------------------------------------------------------------
def trace(graph: Graph, use: BlockUse | None, of: str, axis: int) -> tuple | None:
    """Where the size of axis `axis` of value `of` comes from, in the scope of `use` (None:
    the top level): ("expr", Expr, spec_level) for an attribute written with params, ("lit",
    value) for one written as a literal, ("input", i) for the use's i-th input, None when
    nothing the spec wrote sets it (a spec input, a flatten, a concat...)."""
    inside = set(use.nodes) if use is not None else {n.name for n in graph.top_nodes()}
    nested = (
        [graph.uses[u] for u in use.uses]
        if use is not None
        else [u for u in graph.uses.values() if not u.scope]
    )
    while True:
        if use is not None and of in use.inputs:
            return ("input", use.inputs.index(of))
        if of in inside:
            n = graph.node(of)
            rank = len(n.shape)
            sets = OPS[n.op].sets_size
            if sets is not None:
                at, attr = sets
                if at % rank != axis or n.attrs.get(attr) != n.shape[axis]:
                    return None
                x = n.exprs.get(attr)
                if x is None:
                    return ("lit", n.attrs[attr])
                return ("expr", x, False) if isinstance(x, SpecExpr) else None
            if not _keeps(graph, n, axis):
                return None
            of = n.inputs[0]
            continue
        owner = next((u for u in nested if of in u.outputs.values()), None)
        if owner is None:
            return None
        inner = trace(graph, owner, of, axis)
        if inner is None or inner[0] == "lit":
            return inner
        if inner[0] == "input":
            of = owner.inputs[inner[1]]
            continue
        x, spec_level = inner[1], inner[2]
        declared = graph.blocks[owner.block].params
        if spec_level or not any(name in declared for name in x.names()):
            return ("expr", x, True)
        if x.whole:  # the nested block's param: what the use wrote for it
            name = x.names()[0]
            arg = owner.args.get(name)
            if arg is None:
                return ("lit", owner.params[name])
            return ("expr", arg, False) if isinstance(arg, SpecExpr) else None
        return None


def _keeps(graph: Graph, n: Node, axis: int) -> bool:
    kept = OPS[n.op].keeps_size
    if kept is None or not n.inputs:
        return False
    if kept == "channels" and axis != 0:
        return False
    shape = graph.value(n.inputs[0]).shape
    return axis < len(shape) and shape[axis] == n.shape[axis]


# -- values -------------------------------------------------------------------------------------
def _evaluate(s: Spec, env: dict[str, Any]) -> Any:
    if isinstance(s.expr, SpecExpr):
        return s.expr.evaluate(env)
    if len(s.expr) != len(s.items):
        raise ValueError("items")
    out = []
    for x, item in zip(s.expr, s.items, strict=True):
        if isinstance(x, SpecExpr):
            out.append(x.evaluate(env))
        elif x is None:
            out.append(item)
        else:
            raise ValueError("nested")
    return tuple(out)


def _text(x: Any) -> Any:
    if isinstance(x, SpecExpr):
        return x.text
    if isinstance(x, list):
        return tuple(_text(i) for i in x)
    return x


def _slot_name(v: Any, i: int) -> str:
    if isinstance(v, Size):
        return f"in_{v.name}"
    if isinstance(v, Spec):
        return v.name
    return f"arg{i}"


def _key(v: Any) -> Any:
    """A comparison key that tells 1, 1.0 and True apart (and sees through `Default`)."""
    v = value(v)
    if isinstance(v, (tuple, list)):
        return ("seq", tuple(_key(x) for x in v))
    if isinstance(v, dict):
        return ("map", tuple((k, _key(x)) for k, x in v.items()))
    return (type(v).__name__, v)


def _norm(v: Any) -> Any:
    """A value as emitters write it (a list of equal items is one item)."""
    v = value(v)
    if isinstance(v, list):
        v = tuple(v)
    if isinstance(v, tuple) and v and len(set(map(_key, v))) == 1:
        return v[0]
    return v


def value(v: Any) -> Any:
    """The value of an argument (through `Default`, `Spec`, `Size`)."""
    if isinstance(v, Default):
        return value(v.value)
    if isinstance(v, Spec):
        return value(v.value)
    if isinstance(v, Size):
        return v.value
    return v


def literal(v: Any) -> Any:
    """A value as a literal can write it: lists as tuples (no mutable defaults)."""
    v = value(v)
    if isinstance(v, (list, tuple)):
        return tuple(literal(x) for x in v)
    return v


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def annotation(values: list[Any]) -> str:
    kinds = set()
    for v in map(value, values):
        if isinstance(v, bool):
            kinds.add("bool")
        elif isinstance(v, int):
            kinds.add("int")
        elif isinstance(v, float):
            kinds.add("float")
        elif isinstance(v, (tuple, list)) and all(_is_int(x) for x in v):
            kinds.add("tuple[int, ...]")
        elif isinstance(v, str):
            kinds.add("str")
        else:
            kinds.add("object")
    if kinds == {"int", "float"}:
        return "float"
    order = ["bool", "int", "float", "tuple[int, ...]", "str", "object"]
    return " | ".join(k for k in order if k in kinds)
