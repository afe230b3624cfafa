"""From the IR to the text of a standalone PyTorch module.

Generation walks the graph one scope at a time: the top level, and each block use. Each op's
emitter (see `emitters`) declares the node's submodule and gives the node's value in `forward`;
a block use inside a scope is a submodule too, whose class comes from the block.

Blocks become `nn.Module` subclasses, processed innermost first. The uses of a block whose
`forward` text and submodule structure are the same share one class; uses that differ get
another class (`Basic`, `Basic2`). A class's `__init__` takes the block's declared params with
their declared defaults, and the model class takes the spec's params with their resolved values
as defaults; each submodule argument is the spec's own expression, a size followed back to the
layer that set it, a literal, or an explicit extra argument where uses differ and the spec wrote
nothing to say why (see `ctor`). Constructor arguments equal to PyTorch's defaults are left out
(`emitters.Default`). Values in `forward` (a reshape's dims, an activation's slope) are
literals: uses that differ there get another class.

Names: submodule attributes are the spec's layer names, so `state_dict()` keys are netspec's
canonical keys. Local variables in `forward` free each intermediate after its last use, the way
a person writes it (`out = self.bn1(out)`, `F.relu(out, inplace=True)`; see `variables`): a run
of values read once shares a generic variable (`x`, or `out` when `x` is an argument), other
values keep their layers' names; all are made legal and unique per function (a name that would
shadow `self`, `torch`, `nn`, `F`, a class of the module or a builtin the source uses gets a
trailing `_`, a repeated one a `_1`, `_2`, ... suffix). The text is laid out the way `ruff
format` lays it out (see `python.pyfmt`).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from typing import Any

from ...errors import SpecError
from ...ir import BlockUse, Graph, Node, Shape
from ...ops.norm import EPSILON as NORM_EPSILON
from ..python.names import ALWAYS, KEYWORDS, Namer, camel, python_builtins
from ..python.pyfmt import (
    INDENT,
    WIDTH,
    Call,
    Expr,
    Kw,
    Raw,
    Seq,
    assign,
    lit,
    returns,
    signature,
    split,
)
from ..python.text import docstring, escape, wrap
from . import variables
from .ctor import Ctor, Decl, Resolver
from .emitters import Emitter, Size, Spec
from .regularize import HELPERS as REGULARIZATION_HELPERS

MODULE_NAMES = {"torch", "nn", "F", "load_file", "load_weights"}
HELPER_NAMES = {
    "PaddedAvgPool",
    "Normalize",
    "Learned",
    "Gather",
    "Attention",
    *REGULARIZATION_HELPERS,
}
# builtins the generated source uses, and E741's ambiguous names (l, I, O)
BUILTINS = {"super", "float", "int", "bool", "tuple", "str", "len", "object", "print"}
RESERVED = KEYWORDS | ALWAYS | MODULE_NAMES | HELPER_NAMES | BUILTINS
LOGITS = "logits"  # forward's keyword: trained outputs before their final sigmoid/softmax
PROBABILITY_OPS = {"sigmoid", "softmax"}
PROBABILITY_CALLS = {"torch.sigmoid", "F.softmax"}
# the spec's `init:` names as torch.nn.init calls (the same distributions as netspec.weights)
INIT_CALLS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "glorot_uniform": ("nn.init.xavier_uniform_", ()),
    "glorot_normal": ("nn.init.xavier_normal_", ()),
    "he_uniform": ("nn.init.kaiming_uniform_", (("nonlinearity", "relu"),)),
    "he_normal": ("nn.init.kaiming_normal_", (("nonlinearity", "relu"),)),
    "lecun_normal": ("nn.init.kaiming_normal_", (("nonlinearity", "linear"),)),
    "normal": ("nn.init.normal_", (("std", 0.05),)),
    "uniform": ("nn.init.uniform_", (-0.05, 0.05)),
    "zeros": ("nn.init.zeros_", ()),
    "ones": ("nn.init.ones_", ()),
}

PADDED_AVG_POOL = '''
class PaddedAvgPool(nn.Module):
    """Average pooling with padding that differs between the two sides of an axis (which
    nn.AvgPool cannot express): each window is divided by the number of real (unpadded)
    elements in it. `padding` is in F.pad's order (last axis first)."""

    def __init__(
        self,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...],
        padding: tuple[int, ...],
    ):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[len(self.padding) // 2 - 1]
        ones = torch.ones_like(x[:1, :1])
        total = pool(F.pad(x, self.padding), self.kernel_size, self.stride)
        count = pool(F.pad(ones, self.padding), self.kernel_size, self.stride)
        return total / count
'''

NORMALIZE = '''
class Normalize(nn.Module):
    """(x - mean) / max(sqrt(variance), 1e-7) per entry of one axis, `trailing` axes before the
    last (0: the last axis). The mean and variance are computed from the training data
    (`netspec train`), never trained: buffers, not parameters."""

    def __init__(self, size: int, trailing: int = 0):
        super().__init__()
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("variance", torch.ones(size))
        self.shape = (-1,) + (1,) * trailing

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        std = self.variance.view(self.shape).sqrt().clamp_min(EPSILON)
        return (x - self.mean.view(self.shape)) / std
'''

LEARNED = '''
class Learned(nn.Module):
    """A learned tensor, the same for every example (netspec's `parameter`): `weight`, expanded
    (not copied) to the batch size of the input."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight.expand(x.shape[0], *self.weight.shape)
'''

GATHER = '''
class Gather(nn.Module):
    """Constant indices taken along one axis (torch.index_select); the indices are a buffer
    that moves with the module but is not part of its weights."""

    def __init__(self, dim: int, indices: tuple[int, ...]):
        super().__init__()
        self.dim = dim
        self.register_buffer("index", torch.tensor(indices), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(self.dim, self.index)
'''

ATTENTION = '''
class Attention(nn.Module):
    """Multi-head attention (netspec's `attention`), batch first: the q/k/v/out projections of
    nn.MultiheadAttention as four [out, in] matrices (`in_proj_weight` is `weight_q`, `weight_k`,
    `weight_v` stacked), computed by F.scaled_dot_product_attention. `mask`: [N, S], nonzero
    where a key is attended; `causal`: query i attends to keys 0..i."""

    def __init__(
        self,
        dim: int,
        heads: int,
        kv_dim: int | None = None,
        bias: bool = True,
        causal: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        kv_dim = dim if kv_dim is None else kv_dim
        self.heads = heads
        self.causal = causal
        self.dropout = dropout
        for name, fan_in in (("q", dim), ("k", kv_dim), ("v", kv_dim), ("out", dim)):
            weight = nn.Parameter(torch.zeros(dim, fan_in))  # drawn by the model's init
            self.register_parameter(f"weight_{name}", weight)
            b = nn.Parameter(torch.zeros(dim)) if bias else None
            self.register_parameter(f"bias_{name}", b)

    def forward(
        self, query: torch.Tensor, kv: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        kv = query if kv is None else kv
        n, t, dim = query.shape
        keep = None if mask is None else (mask != 0)[:, None, None, :]
        if self.causal:
            tril = torch.ones(t, kv.shape[1], dtype=torch.bool, device=query.device).tril()
            keep = tril if keep is None else keep & tril
        heads = (n, -1, self.heads, dim // self.heads)
        q = F.linear(query, self.weight_q, self.bias_q).view(heads).transpose(1, 2)
        k = F.linear(kv, self.weight_k, self.bias_k).view(heads).transpose(1, 2)
        v = F.linear(kv, self.weight_v, self.bias_v).view(heads).transpose(1, 2)
        dropout = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=dropout)
        out = out.transpose(1, 2).reshape(n, t, dim)
        return F.linear(out, self.weight_out, self.bias_out)
'''

# netspec's epsilon (netspec.ops.norm), written as a number in the helper's source
HELPERS = {
    "Attention": ATTENTION,
    "Learned": LEARNED,
    "Gather": GATHER,
    "PaddedAvgPool": PADDED_AVG_POOL,
    "Normalize": NORMALIZE.replace("clamp_min(EPSILON)", f"clamp_min({NORM_EPSILON!r})"),
    **REGULARIZATION_HELPERS,
}

LOAD_WEIGHTS = '''
def load_weights(module: nn.Module, path: str) -> nn.Module:
    """Load netspec's canonical weights (a safetensors file) into `module`, strictly.

    The file's keys are the module's `state_dict()` keys; batch_norm's `num_batches_tracked`
    counters are not in the file and keep their values.
    """
    state = load_file(path)
    for key, value in module.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state.setdefault(key, value)
    module.load_state_dict(state)
    return module
'''


# -- names ------------------------------------------------------------------------------------
def dims(shape: Shape, inputs: dict) -> str:
    """`[N, 3, 224, 224]`; a dynamic axis shows its name, `?` when the spec wrote null."""
    out = ["N"]
    for d in shape:
        if d is None:
            out.append("?")
        elif isinstance(d, str):
            fresh = any(
                d == f"{k}_{j + 1}" and v.shape[j] == d
                for k, v in inputs.items()
                for j in range(len(v.shape))
            )
            out.append("?" if fresh else d)
        else:
            out.append(str(d))
    return "[" + ", ".join(out) + "]"


def logits_nodes(graph: Graph) -> set[str]:
    """The nodes of trained outputs whose loss reads the logits before their final
    sigmoid/softmax (`Objective.reads == "input_logits"`): `forward` gets a `logits` switch."""
    plan = graph.training
    out: set[str] = set()
    for o in getattr(plan, "objectives", ()):
        if o.reads != "input_logits":
            continue
        node = graph.node(graph.outputs[o.output])
        act = node.attrs.get("activation") if node.op not in PROBABILITY_OPS else None
        fused = isinstance(act, dict) and act.get("op") in PROBABILITY_OPS
        where = ("outputs",)
        if node.scope:
            raise SpecError(
                f"output {o.output!r} ends inside a block: its loss cannot read the logits "
                "before its sigmoid/softmax",
                where,
                hint="end the model with the sigmoid/softmax as a layer of its own",
            )
        if graph.consumers(node.name):
            raise SpecError(
                f"output {o.output!r} feeds other layers: its loss cannot read the logits "
                "before its sigmoid/softmax",
                where,
                hint="train an output that no other layer reads",
            )
        if node.op in PROBABILITY_OPS or fused:
            out.add(node.name)
    return out


def param_inits(graph: Graph) -> list[tuple[str, tuple[str, ...], tuple[str, ...], list[str]]]:
    """(init, drawn params, zero biases, module paths) groups, in graph order: what the
    spec's `init:` draws (as `netspec.weights.init_weights` does); fixed starting values
    (batch norm's 1 and 0, PReLU's 0.25) are PyTorch's own defaults."""
    from ...ops import OPS

    groups: dict[tuple, list[str]] = {}
    for node in graph.nodes:
        if node.shares:
            continue  # its owner's module
        start = OPS[node.op].start
        free = [p for p in node.params if p not in start]
        drawn = tuple(p for p in free if not p.startswith("bias"))
        zero = tuple(p for p in free if p.startswith("bias"))
        if drawn or zero:
            key = (node.attrs.get("init", "glorot_uniform"), drawn, zero)
            groups.setdefault(key, []).append(node.name)
    return [(*k, v) for k, v in groups.items()]


# -- scope bodies -----------------------------------------------------------------------------
@dataclass
class Stmt:
    target: str
    expr: Expr
    comment: str = ""
    light: bool = False  # allocates nothing: an in-place activation, an index into a tensor
    unless: str = ""  # `if not <unless>:` around the assignment (the `logits` switch)

    def lines(self, indent: int) -> list[str]:
        if not self.unless:
            return assign(self.target, self.expr, indent, self.comment)
        head = f"{INDENT * indent}if not {self.unless}:"
        return [head, *assign(self.target, self.expr, indent + 1, self.comment)]


@dataclass
class Del:
    """`del a, b`: variables whose values are dead and not rebound."""

    names: list[str]

    def lines(self, indent: int) -> list[str]:
        one = "del " + ", ".join(self.names)
        if len(INDENT * indent + one) <= WIDTH:
            return [INDENT * indent + one]
        return [f"{INDENT * indent}del {n}" for n in self.names]


@dataclass
class Body:
    """One scope's code: forward arguments, submodules, statements and returned variables."""

    args: list[str]
    decls: list[Decl] = field(default_factory=list)
    stmts: list[Stmt | Del] = field(default_factory=list)
    returns: list[str] = field(default_factory=list)
    helpers: set[str] = field(default_factory=set)

    def forward_lines(self, indent: int = 2) -> list[str]:
        lines: list[str] = []
        for s in self.stmts:
            lines += s.lines(indent)
        return lines + returns(self.returns, indent)

    def key(self) -> tuple:
        return (
            tuple(self.args),
            tuple(self.forward_lines()),
            tuple(d.signature() for d in self.decls),
        )


class Emit:
    """What an emitter sees: its node, its inputs' variables and shapes; what it can add.

    `var` (the node's variable) may be the variable of an input that dies here (`out =
    self.bn1(out)`): an emitter that writes several statements reads its inputs in the first
    one only."""

    def __init__(self, scope: ScopeBuilder, node: Node):
        self.node = node
        self.scope = scope
        self.var = scope.vars[node.name]
        # a node that `shares:` calls its owner's module (in the same scope) again
        self.layer = (node.shares or node.name).rsplit(".", 1)[-1]

    def var_of(self, i: int) -> str:
        return self.scope.vars[self.node.inputs[i]]

    @property
    def x(self) -> Raw:
        return Raw(self.var_of(0))

    @property
    def xs(self) -> list[Raw]:
        return [Raw(self.var_of(i)) for i in range(len(self.node.inputs))]

    def shape(self, i: int = 0) -> Shape:
        """Per-example shape of input i."""
        return self.scope.graph.value(self.node.inputs[i]).shape

    def module(self, func: str, *args: Any, **kwargs: Any) -> None:
        if self.node.shares:
            return  # the owner's module, declared once
        self.scope.body.decls.append(Decl(self.layer, func, args, tuple(kwargs.items())))

    def attr(self, name: str, value: Any = None) -> Any:
        """The argument that is the node's attribute `name` (`value`: as PyTorch takes it, when
        that is not the attribute itself): a `Spec` when the spec wrote it with params."""
        v = self.node.attrs[name] if value is None else value
        x = self.node.exprs.get(name)
        if x is None or isinstance(x, dict):
            return v
        items = tuple(self.node.attrs[name]) if isinstance(x, list) else ()
        return Spec(name, x, v, items)

    def size(self, axis: int, i: int = 0) -> Size:
        """The size of axis `axis` (-1: the last) of input i, as a constructor argument."""
        shape = self.shape(i)
        axis %= len(shape)
        kind = "channels" if len(shape) > 1 and axis == 0 else "features"
        return Size(self.node.inputs[i], axis, shape[axis], kind)

    def call(self, *args: Expr) -> Call:
        return Call(f"self.{self.layer}", args)

    @property
    def inplace(self) -> bool:
        """Whether the node's activation may overwrite its input (see `variables`)."""
        return self.node.name in self.scope.plan.inplace

    def stmt(
        self, target: str, expr: Expr, comment: bool | str = False, light: bool = False
    ) -> None:
        """`target = expr`; `comment`: True for the node's shape, or a text of its own."""
        if isinstance(comment, str):
            text = comment
        else:
            text = self.scope.comment(self.node.shape) if comment else ""
        self.scope.body.stmts.append(Stmt(target, expr, text, light))

    def helper(self, name: str) -> None:
        self.scope.body.helpers.add(name)


class ScopeBuilder:
    def __init__(self, gen: Generator, args: list[tuple[str, str]], top: bool):
        self.gen = gen
        self.graph = gen.graph
        self.top = top
        reserved = RESERVED | {LOGITS} if top and gen.logits else RESERVED
        self.namer = Namer(reserved, gen.class_bases)
        self.vars: dict[str, str] = {}
        names = []
        for value, want in args:
            name = self.namer.new(want)
            names.append(name)
            self.vars.setdefault(value, name)
        self.body = Body(names)

    def comment(self, shape: Shape) -> str:
        return dims(shape, self.graph.inputs) if self.top else ""

    def build(self, items: list[Node | BlockUse], outputs: list[str]) -> Body:
        owner: dict[str, str] = {}
        produced: list[list[str]] = []
        want: dict[str, str] = {}
        for item in items:
            if isinstance(item, Node):
                produced.append([item.name])
                want[item.name] = item.local_name
                continue
            local = item.name.rsplit(".", 1)[-1]
            single = len(item.outputs) == 1
            mine = []
            for oname, value in item.outputs.items():
                if value not in self.vars and value not in want:
                    owner[value] = item.name
                    want[value] = local if single else f"{local}_{oname}"
                    mine.append(value)
            produced.append(mine)
        self.plan = variables.plan(items, produced, self.vars, outputs, self.namer, want)
        self.vars = self.plan.names
        for i, item in enumerate(items):
            first = len(self.body.stmts) + 1  # an item reads its inputs in its first statement
            if isinstance(item, Node):
                e = Emit(self, item)
                expr = self.gen.emitters[item.op](item, e)
                if self.top and item.name in self.gen.logits:
                    self.logits_switch(item, e, expr)
                elif expr is not None:
                    light = item.name in self.plan.inplace
                    self.body.stmts.append(Stmt(e.var, expr, self.comment(item.shape), light))
            else:
                self.use(item, owner)
            if i in self.plan.dels:
                self.body.stmts.insert(first, Del(self.plan.dels[i]))
        # a `del` frees memory for what runs after it: none needed when nothing allocates
        stmts = self.body.stmts
        self.body.stmts = [
            s
            for k, s in enumerate(stmts)
            if not isinstance(s, Del)
            or not all(isinstance(t, Del) or t.light for t in stmts[k + 1 :])
        ]
        self.body.returns = [self.vars[v] for v in outputs]
        return self.body

    def logits_switch(self, node: Node, e: Emit, expr: Expr | None) -> None:
        """A trained output whose loss reads its logits: its final sigmoid/softmax runs
        `if not logits:` (`forward(..., logits=True)` gives the values before it)."""
        comment = self.comment(node.shape)
        if node.op in PROBABILITY_OPS:  # its own layer: the input is the logits
            if e.var != e.var_of(0):
                self.body.stmts.append(Stmt(e.var, e.x, light=True))
        elif isinstance(expr, Call) and expr.func in PROBABILITY_CALLS and expr.args:
            self.body.stmts.append(Stmt(e.var, expr.args[0], comment))  # the layer itself
            expr = Call(expr.func, (Raw(e.var), *expr.args[1:]))
        else:  # pragma: no cover - `logits_nodes` picks only these two forms
            raise AssertionError(f"no logits switch for {node.name}")
        if isinstance(expr, Call) and expr.args and expr.args[0] != Raw(e.var):
            expr = Call(expr.func, (Raw(e.var), *expr.args[1:]))
        self.body.stmts.append(Stmt(e.var, expr, comment, unless=LOGITS))

    def use(self, use: BlockUse, owner: dict[str, str]) -> None:
        local = (use.shares or use.name).rsplit(".", 1)[-1]
        if not use.shares:  # a use that `shares:` calls its owner's module again
            cls, kwargs = self.gen.ctor[use.name]
            self.body.decls.append(Decl(local, cls, (), tuple(kwargs)))
        call = Call(f"self.{local}", tuple(Raw(self.vars[v]) for v in use.inputs))
        targets = []
        seen: set[str] = set()
        for value in use.outputs.values():
            mine = owner.get(value) == use.name and value not in seen
            seen.add(value)
            targets.append(self.vars[value] if mine else "_")
        comment = ""
        if len(targets) == 1 and targets[0] != "_":
            comment = self.comment(self.graph.value(next(iter(use.outputs.values()))).shape)
        self.body.stmts.append(Stmt(", ".join(targets), call, comment))


# -- classes ----------------------------------------------------------------------------------
@dataclass
class BlockClass:
    name: str
    block: str
    uses: list[BlockUse]
    body: Body  # the first use's
    ctor: Ctor


# -- the generator ----------------------------------------------------------------------------
def class_namer() -> Namer:
    return Namer(KEYWORDS | MODULE_NAMES | HELPER_NAMES | BUILTINS | python_builtins(True))


def model_class(spec_name: str, namer: Namer | None = None) -> str:
    """The model class's name: the spec's name in CamelCase (`resnet18` -> `Resnet18`), with
    `Model` added when that would shadow a name the module needs (`f` -> `FModel`)."""
    namer = namer or class_namer()
    name = namer.new(camel(spec_name))
    if name != camel(spec_name):
        name = namer.new(camel(spec_name) + "Model")
    return name


class Generator:
    def __init__(self, graph: Graph, emitters: dict[str, Emitter]):
        self.graph = graph
        self.emitters = emitters
        blocks = list(dict.fromkeys(u.block for u in graph.uses.values()))
        self.class_bases = {camel(graph.name)} | {camel(b) for b in blocks}
        self.ctor: dict[str, tuple[str, list[tuple[str, Any]]]] = {}
        self.classes: list[BlockClass] = []
        self.helpers: set[str] = set()
        self.cnamer = class_namer()
        self.class_name = model_class(graph.name, self.cnamer)
        self.logits = logits_nodes(graph)
        self.top = self._build()

    def items(self, use: BlockUse | None) -> list[Node | BlockUse]:
        """The nodes and nested uses directly in a scope, in execution order."""
        return self.graph.scope_items(use)

    def block_order(self) -> list[str]:
        deps: dict[str, list[str]] = {}
        for u in self.graph.uses.values():
            d = deps.setdefault(u.block, [])
            for v in u.uses:
                b = self.graph.uses[v].block
                if b not in d:
                    d.append(b)
        order: list[str] = []

        def visit(b: str) -> None:
            if b in order:
                return
            for d in deps.get(b, []):
                visit(d)
            order.append(b)

        for b in deps:
            visit(b)
        return order

    def body(self, use: BlockUse) -> Body:
        s = ScopeBuilder(self, list(zip(use.inputs, use.input_names, strict=True)), top=False)
        return s.build(self.items(use), list(use.outputs.values()))

    def _build(self) -> Body:
        for block in self.block_order():
            uses = [
                u
                for u in self.graph.uses.values()
                if u.block == block and not self.graph.borrowed(u)
            ]
            groups: dict[tuple, list[tuple[BlockUse, Body]]] = {}
            for u in uses:
                b = self.body(u)
                groups.setdefault(b.key(), []).append((u, b))
            for k, members in enumerate(groups.values()):
                base = camel(block)
                want = base if k == 0 else f"{base}{k + 1}"
                name = self.cnamer.new(want)
                if name != want and k == 0:
                    name = self.cnamer.new(base + "Block")
                r = Resolver(
                    self.graph,
                    self.graph.blocks[block],
                    [u for u, _ in members],
                    [b.decls for _, b in members],
                    RESERVED | self.cnamer.used,
                    self.class_bases,
                )
                ctor = r.resolve()
                cls = BlockClass(name, block, [u for u, _ in members], members[0][1], ctor)
                for m, (u, _) in enumerate(members):
                    self.ctor[u.name] = (name, r.use_args(ctor, m))
                self.classes.append(cls)
                for _, b in members:
                    self.helpers |= b.helpers
        args = [(k, k) for k in self.graph.inputs]
        top = ScopeBuilder(self, args, top=True).build(
            self.items(None), list(self.graph.outputs.values())
        )
        self.helpers |= top.helpers
        r = Resolver(
            self.graph, None, [None], [top.decls], RESERVED | self.cnamer.used, self.class_bases
        )
        self.top_ctor = r.resolve()
        return top

    # -- rendering ----------------------------------------------------------------------------
    def source(self) -> str:
        parts = [self.header()]
        parts += [text.strip("\n") for name, text in HELPERS.items() if name in self.helpers]
        parts += [self.render_block(c) for c in self.classes]
        parts.append(self.render_top())
        parts.append(LOAD_WEIGHTS.strip("\n"))
        return "\n\n\n".join(parts) + "\n"

    def header(self) -> str:
        g = self.graph
        src = g.source or "a spec"
        lines = [f"The `{g.name}` network as a PyTorch module, generated by netspec.", ""]
        if g.description:
            lines += wrap(g.description, WIDTH - 3) + [""]
        lines += wrap(
            f"Generated from {src}; edit the spec and rebuild rather than this file. Load "
            "the weights netspec wrote beside it (its canonical safetensors file, whose keys "
            "are this module's state_dict() keys):",
            WIDTH - 3,
        )
        lines += [
            "",
            f"    model = {self.class_name}()",
            f'    load_weights(model, "{escape(g.name)}.safetensors")',
            "    model.eval()",
        ]
        text = "\n".join(docstring(lines, 0))
        imports = ["import torch"]
        code = self.all_code()
        if re.search(r"(?<![\w.])F\.", code):
            imports.append("import torch.nn.functional as F")
        imports += ["from safetensors.torch import load_file", "from torch import nn"]
        return text + "\n\n" + "\n".join(imports)

    def all_code(self) -> str:
        text = []
        for c in self.classes:
            text += c.body.forward_lines()
        text += self.top.forward_lines()
        text += [HELPERS[name] for name in self.helpers]  # PaddedAvgPool calls F
        return "\n".join(text)

    def forward_sig(self, body: Body, logits: bool = False) -> list[str]:
        params = ["self"] + [f"{a}: torch.Tensor" for a in body.args]
        if logits:
            params.append(f"{LOGITS}: bool = False")  # not keyword-only: torch.onnx.export
            # (TorchScript tracing) passes every argument with a default positionally
        n = len(body.returns)
        ret = "torch.Tensor" if n == 1 else f"tuple[{', '.join(['torch.Tensor'] * n)}]"
        lines = signature("forward", params, ret, 1)
        if max(map(len, lines)) > WIDTH:
            lines = signature("forward", params, "tuple[torch.Tensor, ...]", 1)
        return lines

    def init_code(self) -> list[str]:
        """`__init__`'s last lines: the parameters drawn as the spec's `init:` says."""
        groups = param_inits(self.graph)
        if not groups:
            return []
        taken = {p.name for p in self.top_ctor.params} | RESERVED
        var = next(v for v in ("layer", "module", "layer_", "module_") if v not in taken)
        names = sorted({g[0] for g in groups})
        pad = INDENT * 2
        lines = [f"{pad}# initial weights as the spec says ({', '.join(names)}); biases zero"]
        for init, drawn, zero, paths in groups:
            func, extra = INIT_CALLS[init]
            args = tuple(Kw(a[0], lit(a[1])) if isinstance(a, tuple) else lit(a) for a in extra)
            calls = [(func, p, args) for p in drawn] + [("nn.init.zeros_", p, ()) for p in zero]
            if len(paths) == 1:
                for f, p, a in calls:
                    lines += split("", Call(f, (Raw(f"self.{paths[0]}.{p}"), *a)), 2)
                continue
            seq = Seq("[", tuple(Raw(f"self.{m}") for m in paths))
            lines += split(f"for {var} in ", seq, 2, ":")
            for f, p, a in calls:
                lines += split("", Call(f, (Raw(f"{var}.{p}"), *a)), 3)
        return lines

    def render_block(self, c: BlockClass) -> str:
        uses = ", ".join(u.name for u in c.uses[:4]) + (", ..." if len(c.uses) > 4 else "")
        doc = wrap(f"Block `{c.block}` (used as {uses}).", WIDTH - 7)
        description = self.graph.blocks[c.block].description
        if description:
            doc += ["", *wrap(description, WIDTH - 7)]
        lines = [f"class {c.name}(nn.Module):"]
        lines += docstring(doc, 1)
        lines.append("")
        lines += init_lines(c.ctor, c.body.decls)
        lines += self.forward_sig(c.body)
        lines += c.body.forward_lines()
        return "\n".join(lines)

    def render_top(self) -> str:
        g = self.graph
        lines = [f"class {self.class_name}(nn.Module):"]
        doc = wrap(g.description, WIDTH - 7) if g.description else []
        if not doc:
            doc = [f"The `{g.name}` network."]
        lines += docstring(doc, 1)
        lines.append("")
        lines += init_lines(self.top_ctor, self.top.decls, self.init_code())
        lines += self.forward_sig(self.top, bool(self.logits))
        # "name [shape]" units, wrapped between units, never inside a shape
        ins = [
            f"{a} {dims(v.shape, g.inputs)}"
            for a, v in zip(self.top.args, g.inputs.values(), strict=True)
        ]
        outs = [f"{o} {dims(g.value(v).shape, g.inputs)}" for o, v in g.outputs.items()]
        text = ", ".join(u.replace(" ", "\x00") for u in ins) + " -> "
        text += ", ".join(u.replace(" ", "\x00") for u in outs)
        wrapped = textwrap.wrap(text, WIDTH - 11, break_long_words=False, break_on_hyphens=False)
        doc = [ln.replace("\x00", " ") for ln in wrapped]
        if self.logits:
            outs = [o for o, v in g.outputs.items() if v in self.logits]
            doc += [""] + wrap(
                f"{LOGITS}=True: {', '.join(outs)} before the final sigmoid/softmax (the "
                "logits that training losses read).",
                WIDTH - 11,
            )
        lines += docstring(doc, 2)
        lines += self.top.forward_lines()
        return "\n".join(lines)


def init_lines(ctor: Ctor, decls: list[Decl], tail: list[str] | None = None) -> list[str]:
    """`__init__`: its parameters, the defaults computed from others, the submodules, then
    `tail` (the initial weights; none when the class has neither parameters nor submodules)."""
    if not decls and not ctor.params:
        return []
    lines = signature("__init__", ["self", *ctor.signature()], None, 1)
    lines.append(INDENT * 2 + "super().__init__()")
    for p in ctor.params:
        if p.computed:
            lines += [f"{INDENT * 2}if {p.name} is None:", f"{INDENT * 3}{p.name} = {p.computed}"]
    for i, d in enumerate(decls):
        lines += split(f"self.{d.attr} = ", ctor.call(i, d), 2)
    return [*lines, *(tail or []), ""]
