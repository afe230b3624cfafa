"""From the IR to the text of a standalone PyTorch module.

Generation walks the graph one scope at a time: the top level, and each block use. Each op's
emitter (see `emitters`) declares the node's submodule and gives the node's value in `forward`;
a block use inside a scope is a submodule too, whose class comes from the block.

Blocks become `nn.Module` subclasses, processed innermost first. The uses of a block whose
`forward` text and submodule structure are the same share one class; uses that differ get
another class (`Basic`, `Basic2`). Within a class, a constructor argument that differs between
its uses becomes an `__init__` parameter: the block's own param when one has exactly those
values (`filters`), a product of two params or of a param and a small int (`cin * expansion`,
`filters * 4`), else an argument named after the slot (`in_channels`, or `conv1_in_channels`
when that name is taken). Slots that follow from an input's shape (a layer's input channels or
features) only take a param or another slot's expression, never a product made up for them.
Constructor arguments equal to PyTorch's defaults are left out (`emitters.Default`).

Names: submodule attributes are the spec's layer names, so `state_dict()` keys are netspec's
canonical keys. Local variables in `forward` free each intermediate after its last use, the way
a person writes it (`out = self.bn1(out)`, `F.relu(out, inplace=True)`; see `variables`): a run
of values read once shares a generic variable (`x`, or `out` when `x` is an argument), other
values keep their layers' names; all are made legal and unique per function (a name that would
shadow `self`, `torch`, `nn`, `F`, a class of the module or a builtin the source uses gets a
trailing `_`, a repeated one a `_1`, `_2`, ... suffix). The text is laid out the way `ruff
format` lays it out (see `pyfmt`).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from typing import Any

from ...ir import BlockUse, Graph, Node, Shape
from ..python.names import ALWAYS, KEYWORDS, Namer, camel, python_builtins
from ..python.pyfmt import (
    INDENT,
    WIDTH,
    Call,
    Expr,
    Kw,
    Raw,
    assign,
    flat,
    lit,
    returns,
    signature,
    split,
)
from ..python.text import docstring, escape, wrap
from . import variables
from .emitters import Default, Emitter

MODULE_NAMES = {"torch", "nn", "F", "load_file", "load_weights"}
HELPER_NAMES = {"PaddedAvgPool"}
# builtins the generated source uses, and E741's ambiguous names (l, I, O)
BUILTINS = {"super", "float", "int", "bool", "tuple", "str", "len", "object", "print"}
RESERVED = KEYWORDS | ALWAYS | MODULE_NAMES | HELPER_NAMES | BUILTINS

# Names of the positional constructor arguments, for constructor arguments made parameters.
ARG_NAMES = {
    "nn.Linear": ("in_features", "out_features"),
    "nn.Conv1d": ("in_channels", "out_channels", "kernel_size"),
    "nn.Conv2d": ("in_channels", "out_channels", "kernel_size"),
    "nn.ConvTranspose2d": ("in_channels", "out_channels", "kernel_size"),
    "nn.BatchNorm1d": ("num_features",),
    "nn.BatchNorm2d": ("num_features",),
    "nn.BatchNorm3d": ("num_features",),
    "nn.LayerNorm": ("normalized_shape",),
    "nn.Embedding": ("num_embeddings", "embedding_dim"),
    "nn.RNN": ("input_size", "hidden_size"),
    "nn.LSTM": ("input_size", "hidden_size"),
    "nn.GRU": ("input_size", "hidden_size"),
    "nn.Dropout": ("p",),
    "nn.MaxPool1d": ("kernel_size",),
    "nn.MaxPool2d": ("kernel_size",),
    "nn.AvgPool1d": ("kernel_size",),
    "nn.AvgPool2d": ("kernel_size",),
    "PaddedAvgPool": ("kernel_size",),
}

# Slots whose value follows from the input's shape (not from an attribute the spec wrote): they
# are matched to block params or to other slots' values, never to a product of params.
INPUT_SLOTS = {
    ("nn.Linear", 0),
    ("nn.Conv1d", 0),
    ("nn.Conv2d", 0),
    ("nn.ConvTranspose2d", 0),
    ("nn.BatchNorm1d", 0),
    ("nn.BatchNorm2d", 0),
    ("nn.BatchNorm3d", 0),
    ("nn.LayerNorm", 0),
    ("nn.RNN", 0),
    ("nn.LSTM", 0),
    ("nn.GRU", 0),
    ("nn.PReLU", "num_parameters"),
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
        pool = F.avg_pool1d if len(self.padding) == 2 else F.avg_pool2d
        ones = torch.ones_like(x[:1, :1])
        total = pool(F.pad(x, self.padding), self.kernel_size, self.stride)
        count = pool(F.pad(ones, self.padding), self.kernel_size, self.stride)
        return total / count
'''

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


# -- scope bodies -----------------------------------------------------------------------------
@dataclass
class Decl:
    """`self.<attr> = <func>(*args, **kwargs)` with literal values."""

    attr: str
    func: str
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]

    def signature(self) -> tuple:
        return (self.attr, self.func, len(self.args), tuple(k for k, _ in self.kwargs))

    def slots(self) -> list[tuple[Any, str, Any]]:
        """(slot, name, value) of every argument; slot is an index or a keyword."""
        names = ARG_NAMES.get(self.func, ())
        out: list[tuple[Any, str, Any]] = []
        for i, v in enumerate(self.args):
            out.append((i, names[i] if i < len(names) else f"arg{i}", v))
        out += [(k, k, v) for k, v in self.kwargs]
        return out


@dataclass
class Stmt:
    target: str
    expr: Expr
    comment: str = ""
    light: bool = False  # allocates nothing: an in-place activation, an index into a tensor


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
            if isinstance(s, Del):
                lines += s.lines(indent)
            else:
                lines += assign(s.target, s.expr, indent, s.comment)
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
        self.attr = node.local_name

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
        self.scope.body.decls.append(Decl(self.attr, func, args, tuple(kwargs.items())))

    def call(self, *args: Expr) -> Call:
        return Call(f"self.{self.attr}", args)

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
        self.namer = Namer(RESERVED, gen.class_bases)
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
                if expr is not None:
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

    def use(self, use: BlockUse, owner: dict[str, str]) -> None:
        local = use.name.rsplit(".", 1)[-1]
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
def _key(v: Any) -> Any:
    """A comparison key that tells 1, 1.0 and True apart (and sees through `Default`)."""
    if isinstance(v, Default):
        return _key(v.value)
    if isinstance(v, (tuple, list)):
        return ("seq", tuple(_key(x) for x in v))
    return (type(v).__name__, v)


def _norm(v: Any) -> Any:
    """A block param's value as emitters write it (a list of equal ints is one int)."""
    if isinstance(v, list):
        v = tuple(v)
    if isinstance(v, tuple) and v and len(set(map(_key, v))) == 1:
        return v[0]
    return v


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _value(v: Any) -> Any:
    return v.value if isinstance(v, Default) else v


def _annotation(values: list[Any]) -> str:
    kinds = set()
    for v in map(_value, values):
        if isinstance(v, bool):
            kinds.add("bool")
        elif isinstance(v, int):
            kinds.add("int")
        elif isinstance(v, float):
            kinds.add("float")
        elif isinstance(v, tuple) and all(_is_int(x) for x in v):
            kinds.add("tuple[int, ...]")
        elif isinstance(v, str):
            kinds.add("str")
        else:
            kinds.add("object")
    if kinds == {"int", "float"}:
        return "float"
    order = ["bool", "int", "float", "tuple[int, ...]", "str", "object"]
    return " | ".join(k for k in order if k in kinds)


@dataclass
class Param:
    """An `__init__` parameter of a block class."""

    want: str  # the name before it is made legal and unique
    values: list[Any]  # per use of the class
    required: bool = True
    name: str = ""


@dataclass
class BlockClass:
    name: str
    block: str
    uses: list[BlockUse]
    body: Body  # the first use's
    params: list[Param] = field(default_factory=list)
    slot_expr: dict[tuple[int, Any], tuple] = field(default_factory=dict)

    def expr(self, how: tuple) -> str:
        if how[0] == "param":
            return how[1].name
        if how[0] == "mul":
            return f"{how[1].name} * {how[2].name}"
        return f"{how[1].name} * {how[2]}"

    def decl_call(self, i: int, d: Decl) -> Call:
        return decl_call(
            d, {slot: self.expr(h) for (j, slot), h in self.slot_expr.items() if j == i}
        )


def decl_call(d: Decl, exprs: dict[Any, str]) -> Call:
    """The constructor call of a submodule; `exprs` replaces some arguments by parameters."""
    args: list[Expr | Kw] = []
    for slot, _, v in d.slots():
        if slot in exprs:
            val: Expr = Raw(exprs[slot])
        elif isinstance(v, Default):
            continue
        else:
            val = lit(v)
        args.append(Kw(slot, val) if isinstance(slot, str) else val)
    return Call(d.func, tuple(args))


def parameterize(
    cls: BlockClass, bodies: list[Body], ctor_reserved: set[str], class_bases: set[str]
) -> None:
    """Make the constructor arguments that differ between the class's uses parameters."""
    n = len(cls.uses)
    block_params: dict[str, list[Any]] = {}
    for p in cls.uses[0].params:
        block_params[p] = [_norm(u.params[p]) for u in cls.uses]
    made: dict[str, Param] = {}
    by_values: dict[Any, tuple] = {}
    derived: dict[str, list[Any]] = {}

    def block_param(p: str) -> Param:
        if p not in made:
            made[p] = Param(p, block_params[p])
        return made[p]

    slots = []
    for i, decl in enumerate(bodies[0].decls):
        for j, (slot, slot_name, _) in enumerate(decl.slots()):
            values = [_value(b.decls[i].slots()[j][2]) for b in bodies]
            if len({_key(v) for v in values}) > 1:
                slots.append((i, slot, slot_name, decl, values))
    # attributes the spec wrote first (they may be products of params), then the slots that
    # follow from input shapes (matched to params or to the values of other slots)
    for from_input in (False, True):
        for i, slot, slot_name, decl, values in slots:
            if ((decl.func, slot) in INPUT_SLOTS) != from_input:
                continue
            key = _key(values)
            if key not in by_values:
                how = _match(values, block_params, block_param, products=not from_input)
                if how is None:
                    want = slot_name
                    taken = set(block_params) | set(derived)
                    if want in taken:
                        want = f"{decl.attr}_{slot_name}"
                    while want in taken:
                        want += "_"
                    derived[want] = values
                    made[" " + want] = Param(want, list(values))
                    how = ("param", made[" " + want])
                by_values[key] = how
            cls.slot_expr[(i, slot)] = by_values[key]
    # parameters in order of first use, those that differ between uses first
    ordered: list[Param] = []
    for i, slot, *_ in slots:
        for p in cls.slot_expr[(i, slot)][1:]:
            if isinstance(p, Param) and p not in ordered:
                ordered.append(p)
    for p in ordered:
        p.required = n == 1 or len({_key(v) for v in p.values}) > 1
    ordered = [p for p in ordered if p.required] + [p for p in ordered if not p.required]
    namer = Namer(ctor_reserved, class_bases)
    for p in ordered:
        p.name = namer.new(p.want)
    cls.params = ordered


def _match(
    values: list[Any], block_params: dict[str, list[Any]], block_param, products: bool
) -> tuple | None:
    key = _key(values)
    for p, pv in block_params.items():
        if _key(pv) == key:
            return ("param", block_param(p))
    if not products or not all(_is_int(v) for v in values):
        return None
    ints = {p: pv for p, pv in block_params.items() if all(_is_int(v) for v in pv)}
    names = list(ints)
    for a, p in enumerate(names):
        for q in names[a + 1 :]:
            if [x * y for x, y in zip(ints[p], ints[q], strict=True)] == values:
                return ("mul", block_param(p), block_param(q))
    for p in names:
        for k in range(2, 17):
            if [x * k for x in ints[p]] == values:
                return ("mulk", block_param(p), k)
    return None


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
            uses = [u for u in self.graph.uses.values() if u.block == block]
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
                cls = BlockClass(name, block, [u for u, _ in members], members[0][1])
                parameterize(
                    cls, [b for _, b in members], RESERVED | self.cnamer.used, self.class_bases
                )
                for m, (u, _) in enumerate(members):
                    kwargs = [(p.name, p.values[m]) for p in cls.params if p.required]
                    self.ctor[u.name] = (name, kwargs)
                self.classes.append(cls)
                for _, b in members:
                    self.helpers |= b.helpers
        args = [(k, k) for k in self.graph.inputs]
        top = ScopeBuilder(self, args, top=True).build(
            self.items(None), list(self.graph.outputs.values())
        )
        self.helpers |= top.helpers
        return top

    # -- rendering ----------------------------------------------------------------------------
    def source(self) -> str:
        parts = [self.header()]
        if "PaddedAvgPool" in self.helpers:
            parts.append(PADDED_AVG_POOL.strip("\n"))
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
        if self.helpers:
            text.append("F.")
        return "\n".join(text)

    def forward_sig(self, body: Body) -> list[str]:
        params = ["self"] + [f"{a}: torch.Tensor" for a in body.args]
        n = len(body.returns)
        ret = "torch.Tensor" if n == 1 else f"tuple[{', '.join(['torch.Tensor'] * n)}]"
        lines = signature("forward", params, ret, 1)
        if max(map(len, lines)) > WIDTH:
            lines = signature("forward", params, "tuple[torch.Tensor, ...]", 1)
        return lines

    def render_block(self, c: BlockClass) -> str:
        uses = ", ".join(u.name for u in c.uses[:4]) + (", ..." if len(c.uses) > 4 else "")
        doc = f"Block `{c.block}` (used as {uses})."
        lines = [f"class {c.name}(nn.Module):"]
        lines += docstring(textwrap.wrap(doc, WIDTH - 7, break_long_words=False), 1)
        lines.append("")
        params = ["self"]
        for p in c.params:
            ann = _annotation(p.values)
            params.append(
                f"{p.name}: {ann}" if p.required else f"{p.name}: {ann} = {flat(lit(p.values[0]))}"
            )
        if c.body.decls:  # a block without submodules needs no __init__
            lines += signature("__init__", params, None, 1)
            lines.append(INDENT * 2 + "super().__init__()")
            for i, d in enumerate(c.body.decls):
                lines += split(f"self.{d.attr} = ", c.decl_call(i, d), 2)
            lines.append("")
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
        if self.top.decls:
            lines.append(INDENT + "def __init__(self):")
            lines.append(INDENT * 2 + "super().__init__()")
            for d in self.top.decls:
                lines += split(f"self.{d.attr} = ", decl_call(d, {}), 2)
            lines.append("")
        lines += self.forward_sig(self.top)
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
        lines += docstring(doc, 2)
        lines += self.top.forward_lines()
        return "\n".join(lines)
