"""The intermediate representation: a typed, topologically ordered graph.

Shapes are per-example (the batch axis is implicit) and channels-first. A dimension is an int,
a str (a named dynamic axis shared by every value that has it) or None (dynamic, unnamed).
Every node produces exactly one value, named by the node's dotted path (`basic_1.conv1`); spec
inputs are values with no producing node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .expr import Expr

Dim = int | str | None
Shape = tuple[Dim, ...]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()  # a block param declared `null`: every use must give it


def dim_str(d: Dim) -> str:
    return "?" if d is None else str(d)


def shape_str(shape: Shape, batch: bool = True) -> str:
    """`[N, 3, 224, 224]` style text; N is the implicit batch axis."""
    dims = (["N"] if batch else []) + [dim_str(d) for d in shape]
    return "[" + ", ".join(dims) + "]"


@dataclass
class Value:
    name: str
    shape: Shape
    dtype: str = "float32"

    @property
    def rank(self) -> int:
        """Per-example rank (the batch axis not counted)."""
        return len(self.shape)


@dataclass
class Node:
    """One layer. `attrs` holds every attribute of the op with defaults filled in and
    normalized (see the op definitions in `netspec.ops`).

    `exprs` keeps how attributes were written when they were written with params: attribute
    name -> an `Expr` for a value written as `$param` or `${...}`; for a list written with some
    items as expressions (`kernel: [$k, 3]`), a list with an Expr or None per item (nested
    likewise: padding pairs); for an activation mapping (`activation: {op: leaky_relu, alpha:
    $a}`), a dict of only the activation's attributes written as expressions (`{"alpha": Expr}`).
    Attributes written as literals (or left to their defaults) are absent. The values in `attrs`
    are the evaluated ones, whatever `exprs` holds.

    Scope of the names in those Exprs: when the node is inside a block use (`scope` is not
    empty), a name is a param of that innermost use's block if the block declares it
    (`graph.blocks[graph.uses[".".join(scope)].block].params`), else a spec-level param
    (`graph.params`); at the top level every name is a spec-level param."""

    name: str  # dotted path, also the output value's name and the weights' key prefix
    op: str
    attrs: dict[str, Any]
    inputs: list[str]  # value names
    shape: Shape = ()
    dtype: str = "float32"
    params: dict[str, tuple[int, ...]] = field(default_factory=dict)  # trainable, canonical
    buffers: dict[str, tuple[int, ...]] = field(default_factory=dict)  # e.g. running stats
    macs: int = 0
    scope: tuple[str, ...] = ()  # names of the enclosing block uses, outermost first
    loc: tuple[int, int] | None = None  # (line, col) of the layer in the spec, 1-based
    exprs: dict[str, Any] = field(default_factory=dict)  # attribute -> Expr (see above)
    # `shares:`: the node whose weights this one applies (never itself a sharer); a sharer's
    # `params`/`buffers` still give the shapes, but it owns no weight keys
    shares: str | None = None

    @property
    def local_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    @property
    def param_count(self) -> int:
        return sum(math.prod(s) for s in self.params.values())

    @property
    def buffer_count(self) -> int:
        return sum(math.prod(s) for s in self.buffers.values())

    def weight_names(self) -> list[str]:
        """Canonical keys of the arrays this node applies (its owner's when it shares),
        parameters first, in a fixed order."""
        return [f"{self.shares or self.name}.{p}" for p in [*self.params, *self.buffers]]


@dataclass
class BlockUse:
    """One use of a block: which nodes it expanded to, for targets that emit blocks as units.

    `args` holds the block params written at this use as expressions (`{block: unit, width: $w}`
    or `width: ${2 * w}`): param -> Expr; params given as literals or left to their defaults are
    absent (`params` has every value). A list (or mapping) value with expressions inside gets a
    mirror of it, as in `Node.exprs`. Names in these Exprs belong to the scope of the use: a
    param of the enclosing use's block if that block declares it (when `scope` is not empty),
    else a spec-level param."""

    name: str  # dotted path of the use (`basic_1`, or `stage_1.basic_2` when nested)
    block: str  # the block's name in the spec
    params: dict[str, Any]  # the block's params as resolved for this use
    inputs: list[str]  # outer value names bound to the block's inputs, in the block's order
    input_names: list[str]  # the block's own names for those inputs
    outputs: dict[str, str]  # block output name -> inner value name
    nodes: list[str]  # names of the nodes directly inside (not inside nested uses)
    uses: list[str] = field(default_factory=list)  # names of nested uses directly inside
    scope: tuple[str, ...] = ()  # enclosing uses
    args: dict[str, Expr] = field(default_factory=dict)  # param -> expression written at the use
    shares: str | None = None  # `shares:`: the earlier use (same block, params) it applies


@dataclass
class BlockParam:
    """A block's declared param. `default` is the value as written under the block's `params:`
    (REQUIRED for `null`); `expr` is set when that default is written with params (an Expr, or a
    list/dict mirroring the value as in `Node.exprs`). Names in a default's expression are this
    block's params declared above it, else spec-level params (never an enclosing block's)."""

    name: str
    default: Any = REQUIRED
    expr: Any = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass
class BlockDef:
    """A block as declared: params in spec order, its input names, its output names (`["out"]`
    when it declares no `outputs:` and outputs its last layer, as `BlockUse.outputs` says)."""

    name: str
    params: dict[str, BlockParam]
    inputs: list[str]
    outputs: list[str]
    description: str = ""


@dataclass
class Graph:
    name: str
    inputs: dict[str, Value]  # spec input name -> value, in the spec's order
    nodes: list[Node]  # topological order
    outputs: dict[str, str]  # output name -> value name, in the spec's order
    description: str = ""
    uses: dict[str, BlockUse] = field(default_factory=dict)  # in spec order
    params: dict[str, Any] = field(default_factory=dict)  # the spec's params as resolved
    source: str = ""  # path of the spec file
    spec_hash: str = ""  # sha256 of the spec text and the resolved params
    blocks: dict[str, BlockDef] = field(default_factory=dict)  # in spec order
    # spec params written as expressions over the params above them (`wide: ${base * 2}`);
    # absent when written as a literal or set by an override (--set, load(params=...))
    param_exprs: dict[str, Any] = field(default_factory=dict)
    # the resolved `training:` section (netspec.train.plan.TrainPlan); None without one
    training: Any = None

    def __post_init__(self) -> None:
        self._by_name = {n.name: n for n in self.nodes}

    def node(self, name: str) -> Node:
        return self._by_name[name]

    def value(self, name: str) -> Value:
        """The value with that name: a spec input or a node's output."""
        if name in self.inputs:
            return self.inputs[name]
        n = self._by_name[name]
        return Value(n.name, n.shape, n.dtype)

    def consumers(self, value_name: str) -> list[Node]:
        return [n for n in self.nodes if value_name in n.inputs]

    def top_nodes(self) -> list[Node]:
        """Nodes outside any block use."""
        return [n for n in self.nodes if not n.scope]

    def _positions(self) -> tuple[dict[str, int], dict[str, int]]:
        """Each node's index and each block use's first node index, computed once per graph
        (they were rebuilt for every `scope_items` call: quadratic in deeply nested specs).
        Recomputed if nodes or uses were added or removed since."""
        cached = getattr(self, "_cached_positions", None)
        if cached is not None and cached[0] == (len(self.nodes), len(self.uses)):
            return cached[1], cached[2]
        index = {n.name: i for i, n in enumerate(self.nodes)}
        first: dict[str, int] = {}

        def position(name: str) -> int:  # nesting is at most MAX_BLOCK_DEPTH deep
            if name not in first:
                u = self.uses[name]
                first[name] = min([index[n] for n in u.nodes] + [position(v) for v in u.uses])
            return first[name]

        for name in self.uses:
            position(name)
        self._cached_positions = ((len(self.nodes), len(self.uses)), index, first)
        return index, first

    def scope_items(self, use: BlockUse | None = None) -> list[Node | BlockUse]:
        """The nodes and nested block uses directly inside `use` (None: the top level), in
        execution order; a use sits where its first node runs."""
        index, first = self._positions()
        if use is None:
            nodes = self.top_nodes()
            uses = [u for u in self.uses.values() if not u.scope]
        else:
            nodes = [self.node(n) for n in use.nodes]
            uses = [self.uses[u] for u in use.uses]
        keyed: list[tuple[int, Node | BlockUse]] = [(index[n.name], n) for n in nodes]
        keyed += [(first[u.name], u) for u in uses]
        return [item for _, item in sorted(keyed, key=lambda kv: kv[0])]

    def borrowed(self, use: BlockUse) -> bool:
        """Whether `use` applies another use's modules: it `shares:` one, or is inside one
        that does (targets that emit a block use as a unit emit no unit for it)."""
        names = [".".join(use.scope[: i + 1]) for i in range(len(use.scope))]
        return any(u.shares for u in [*(self.uses[n] for n in names), use])

    @property
    def param_count(self) -> int:
        return sum(n.param_count for n in self.nodes if not n.shares)

    @property
    def buffer_count(self) -> int:
        return sum(n.buffer_count for n in self.nodes if not n.shares)

    @property
    def macs(self) -> int:
        return sum(n.macs for n in self.nodes)

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every canonical weight key with its shape, in topological order."""
        out: dict[str, tuple[int, ...]] = {}
        for n in self.nodes:
            if n.shares:
                continue  # its weights are its owner's keys
            for p, s in [*n.params.items(), *n.buffers.items()]:
                out[f"{n.name}.{p}"] = s
        return out
