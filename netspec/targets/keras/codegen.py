"""From the IR to the text of a standalone Keras 3 module written like keras.applications.

Generation runs in two passes. The first walks the graph scope by scope (the top level, then each
block use in place), asking each op's emitter for the Keras layers it needs; emitters see tensors
(`T`: the logical shape and the Keras layout of one Keras tensor) and append `Step`s. A value the
spec wrote with params stays an expression (`Code`). The second pass renders each scope as a
function: a block is `def unit(x, width, name, stride=1)` with the block's declared params (its
declared defaults; `name` prefixes its layers' names), the top level is
`def build_model(classes=1000)` with the spec params its code uses. Variables come from the
shared liveness plan, so a value read once continues an `x = layers.Conv2D(...)(x)` chain.

Uses of a block whose rendered bodies differ (Keras' layers depend on input sizes: padding 1 with
stride 2 is Keras' 'same' on an odd size, a ZeroPadding layer on an even one) get one function
each (`unit`, `unit_2`); uses with the same body share one.

Layer names are the spec's node paths, dots kept (`layer1_1.conv1`); a helper layer that a node
needs besides its own (padding, cropping, a transpose, a split-off activation, stacked recurrent
layers) is named `<node or value>-<what>` (`conv1-pad`, `relu_1-to_cl`, `lstm-l1`). A `-` cannot
occur in a node path, so helper names never clash with node names.
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ...expr import Expr, ExprError
from ...ir import BlockUse, Graph, Node, Shape
from ..python import liveness
from ..python.names import ALWAYS, KEYWORDS, Namer, numbered, python_builtins
from ..python.pyfmt import WIDTH, quote, returns, signature
from ..python.text import docstring, wrap
from . import layout, runtime
from .layout import Perm
from .printer import call_lines

# module-level names of every generated module (the conversions' are added per module)
MODULE = frozenset(
    {
        "keras",
        "layers",
        "np",
        "build_model",
        "load_weights",
        "export_weights",
        "save_weights",
        "CONVERSIONS",
        "_parts",
        "reuse",
        "made",
    }
)
REUSE = '''
def reuse(made, key, layer):
    """The layer made under `key` by an earlier use (a layer or block use that `shares:` its
    weights applies it again), else `layer`, recorded under `key` for later uses."""
    return made.setdefault(key, layer)
'''


@dataclass(frozen=True)
class Code:
    """A value the spec wrote with params: rendered as the spec's expression in the function
    that uses it (block params by their argument names)."""

    value: Any
    expr: Expr


@dataclass(frozen=True)
class Default:
    """A keyword argument equal to Keras' default: left out of the source."""

    value: Any


@dataclass(frozen=True)
class Ctor:
    """A layer constructed as an argument of another (`Bidirectional(LSTM(4))`)."""

    callee: str
    args: list[Any]
    kwargs: dict[str, Any]


@dataclass
class T:
    """A tensor while generating: one Keras tensor (`id`), its logical shape and Keras layout."""

    id: str
    shape: Shape
    perm: Perm
    layer: str  # full name of the Keras layer that produced it
    dtype: str = "float32"
    base: str = ""  # what a helper layer made from it is named after (a node's local name)
    nonnegative: bool = False  # never below 0 (a max pool may pad it with zeros)

    @property
    def rank(self) -> int:
        return len(self.shape)

    def relabeled(self, shape: Shape, perm: Perm, base: str) -> T:
        """The same Keras tensor read with other logical axes (permute moves no data)."""
        return replace(self, shape=shape, perm=perm, base=base)


@dataclass
class Step:
    """One statement: a layer applied to inputs, a block function called on inputs, an Input."""

    outs: list[str]  # tensor ids it binds
    callee: str  # `layers.Conv2D`, a generated class; "" for a block call
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)  # tensor ids
    many: bool = False  # inputs passed as a list `[a, b]`
    suffix: str = ""  # layer name relative to the scope
    use: BlockUse | None = None  # a block call
    want: list[str] = field(default_factory=list)  # variable names wanted for `outs`
    weights: Any = None  # the emitter's Conversion for a layer with weights
    weights_key: str = ""  # the Keras class its weights are converted by
    share: str = ""  # `shares:`: the owner's local name, its key in `made` (see `reuse`)


class Scope:
    """What an emitter works with: adds layers to one scope's body (the top level or a block
    use), and turns attributes the spec wrote with params into `Code`."""

    def __init__(self, gen: Generator, use: BlockUse | None):
        self.gen = gen
        self.use = use
        self.prefix = use.name if use else ""
        self.steps: list[Step] = []
        self.tensors: dict[str, T] = {}  # IR value -> tensor
        self.converted: dict[tuple[str, tuple[int, ...]], T] = {}
        self.env = {**gen.graph.params, **(use.params if use else {})}
        self.declared = gen.graph.blocks[use.block].params if use else {}
        self.current: Node | None = None  # the node being emitted

    def full(self, suffix: str) -> str:
        return f"{self.prefix}.{suffix}" if self.prefix else suffix

    def layer(
        self,
        callee: str,
        inputs: list[T] | T,
        suffix: str,
        shape: Shape,
        perm: Perm,
        args: list[Any] | None = None,
        dtype: str = "float32",
        weights: Any = None,
        weights_key: str = "",
        **kwargs: Any,
    ) -> T:
        """Apply `callee(*args, **kwargs, name=<scope>.<suffix>)` to `inputs`; `weights`: the
        conversion of its weights (`weights_key`: the Keras class it converts, when not
        `callee`'s)."""
        out = self.gen.new_id()
        many = isinstance(inputs, list)
        ins = [t.id for t in inputs] if many else [inputs.id]
        key = weights_key or callee.rsplit(".", 1)[-1]
        node = self.current
        share = ""
        in_made = self.use is not None and self.use.block in self.gen.made_blocks
        if weights and node is not None and (in_made or node.name in self.gen.involved):
            share = (node.shares or node.name).rsplit(".", 1)[-1]
        self.steps.append(
            Step(
                [out],
                callee,
                list(args or []),
                kwargs,
                ins,
                many,
                suffix,
                want=[suffix.replace("-", "_")],
                weights=weights,
                weights_key=key if weights else "",
                share=share,
            )
        )
        return T(out, shape, perm, self.full(suffix), dtype, suffix)

    def custom(self, cls: str) -> str:
        """A generated layer class (from `runtime.LAYERS`), included once in the module."""
        self.gen.classes.add(cls)
        return cls

    def convert(self, t: T, perm: Perm, base: str | None = None) -> T:
        """`t` in layout `perm`: itself, or a Permute (made once per tensor and layout)."""
        if t.perm == perm:
            return t
        dims = layout.transpose(t.perm, perm)
        key = (t.id, dims)  # the same data movement of the same Keras tensor
        if key not in self.converted:
            suffix = f"{base or t.base or t.id}-to_{layout.label(perm)}"
            self.converted[key] = self.layer(
                "layers.Permute", t, suffix, t.shape, perm, [dims], dtype=t.dtype
            )
        made = self.converted[key]
        return replace(made, shape=t.shape, nonnegative=t.nonnegative)

    # -- values the spec wrote with params -------------------------------------------------
    def code(self, value: Any, expr: Any) -> Any:
        """`Code` when `expr` is an expression that gives exactly `value` here (Python computes
        it as netspec does), else the plain value."""
        if not isinstance(expr, Expr):
            return value
        if self.use is not None and not set(expr.names()) & set(self.declared):
            return value  # only spec params, which a block function writes as their values
        try:
            got = expr.evaluate(self.env)
        except ExprError:
            return value
        return Code(value, expr) if _same(got, value) else value

    def attr(self, node: Node, name: str) -> Any:
        """A scalar attribute: as the spec wrote it (`Code`) or its value."""
        return self.code(node.attrs[name], node.exprs.get(name))

    def spatial(self, node: Node, name: str) -> Any:
        """A per-axis attribute (kernel, stride...) as Keras users write it: one value when all
        axes agree (`3`, `k`), else a tuple; items the spec wrote with params stay `Code`."""
        value, written = node.attrs[name], node.exprs.get(name)
        if isinstance(written, list):
            items = [self.code(v, e) for v, e in zip(value, written, strict=False)]
            items += list(value[len(items) :])
        else:
            items = [self.code(v, written) for v in value]
        keys = {_key(i) for i in items}
        return items[0] if len(keys) == 1 else tuple(items)


def _key(v: Any) -> tuple:
    return ("code", v.expr.text) if isinstance(v, Code) else ("value", type(v), v)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


Emitter = Callable[[Scope, Node, list[T]], T]


@dataclass
class Body:
    """One generated scope: the top level or one block use."""

    scope: Scope
    args: list[str]  # tensor ids of its inputs
    outputs: list[str]  # tensor ids it returns


@dataclass
class BlockSig:
    """A block's function interface: argument names of its inputs and params."""

    inputs: list[str]
    params: dict[str, str]  # block param -> argument name
    required: list[str]
    defaults: dict[str, str]  # param -> default source (`None` for an expression default)
    # params whose default is computed in the body: an expression over earlier params, or a
    # mapping (never a mutable default)
    computed: dict[str, Expr | str]


class Generator:
    def __init__(self, graph: Graph, emitters: dict[str, Emitter]):
        self.graph = graph
        self.emitters = emitters
        self.classes: set[str] = set()
        self.bodies: list[Body] = []  # block uses, in the order they were generated
        self.ids = itertools.count()
        self.fn_of: dict[str, str] = {}  # block use -> its function
        self.fn_params: dict[str, list[str]] = {}  # block function -> the block params it takes
        # trained output -> the layer whose input is its logits (a loss reads them, from_logits)
        self.logits: dict[str, str] = {}
        self.renamed = False  # a layer with weights is `<node>-logits` (see split_logits)
        self.torch_batch_norm = False  # a model that trains uses TorchBatchNormalization
        # `shares:`: the nodes that share weights or lend them; the blocks whose functions
        # take `made` (the layers that uses which share weights apply again, see `reuse`)
        self.involved = {n.shares for n in graph.nodes if n.shares}
        self.involved |= {n.name for n in graph.nodes if n.shares}
        needs: set[str] = set()
        for u in sorted(graph.uses.values(), key=lambda u: -len(u.scope)):
            if any(n in self.involved for n in u.nodes) or any(v in needs for v in u.uses):
                needs.add(u.name)
        self.made_blocks = {graph.uses[u].block for u in needs}

    def new_id(self) -> str:
        return f"t{next(self.ids)}"

    # -- pass 1: emit --------------------------------------------------------------------
    def scope_body(self, s: Scope) -> None:
        for item in self.graph.scope_items(s.use):
            if isinstance(item, Node):
                xs = [s.tensors[v] for v in item.inputs]
                s.current = item
                s.tensors[item.name] = self.emitters[item.op](s, item, xs)
                s.current = None
            else:
                self.call(s, item)

    def call(self, s: Scope, use: BlockUse) -> None:
        ins = [s.tensors[v] for v in use.inputs]
        inner = Scope(self, use)
        args = []
        for outer, iname, t in zip(use.inputs, use.input_names, ins, strict=True):
            made = replace(t, id=self.new_id(), base=iname)
            inner.tensors[outer] = made
            args.append(made.id)
        self.scope_body(inner)
        results = [inner.tensors[v] for v in use.outputs.values()]
        self.bodies.append(Body(inner, args, [t.id for t in results]))
        local = use.name.rsplit(".", 1)[-1]
        names = list(use.outputs)
        want = [local] if len(names) == 1 else [f"{local}_{o}" for o in names]
        outs = [self.new_id() for _ in names]
        s.steps.append(Step(outs, "", inputs=[t.id for t in ins], use=use, want=want))
        # a helper layer made from an output is named after the use (`pr.s-to_cf`): unique
        bases = [local] if len(names) == 1 else [f"{local}.{o}" for o in names]
        for out, value, t, base in zip(outs, use.outputs.values(), results, bases, strict=True):
            s.tensors[value] = replace(t, id=out, base=base)

    def top(self) -> tuple[Body, list[str]]:
        s = Scope(self, None)
        ins = []
        for name, v in self.graph.inputs.items():
            perm = layout.boundary(v.rank)
            t = T(self.new_id(), v.shape, perm, name, v.dtype, name)
            kw: dict[str, Any] = {"shape": layout.keras_shape(v.shape, perm), "name": name}
            if v.dtype != "float32":
                kw["dtype"] = v.dtype
            s.steps.append(Step([t.id], "layers.Input", kwargs=kw, want=[name]))
            s.tensors[name] = t
            ins.append(t.id)
        self.scope_body(s)
        self.split_logits(s)
        taken = self.layer_names(s)
        outs = []
        for oname, value in self.graph.outputs.items():
            t = s.tensors[value]
            want = layout.boundary(t.rank)
            free = oname not in taken
            if t.perm != want:
                dims = layout.transpose(t.perm, want)
                key = (t.id, dims)
                if key in s.converted:  # a layer inside already made this transpose: reuse it
                    t = s.converted[key]
                else:
                    label = layout.label(want)
                    suffix = oname if free else numbered(f"{oname}-to_{label}", taken)
                    t = s.layer("layers.Permute", t, suffix, t.shape, want, [dims])
                    s.converted[key] = t
            if t.layer != oname and free:  # the model's output carries the output's name
                t = s.layer("layers.Identity", t, oname, t.shape, want)
            taken.add(t.layer)
            outs.append(t.id)
        return Body(s, ins, outs), outs

    def split_logits(self, s: Scope) -> None:
        """Where the training plan reads an output's logits (`reads == "input_logits"`), its
        final softmax/sigmoid is a layer of its own named after the output, so a training model
        can take the logits as that layer's input (`self.logits`) while the model's outputs keep
        the spec's names. A softmax/sigmoid written inline in a layer (`activation=`) is split
        off: the layer keeps its node path unless the output is named like it, then it is
        `<node>-logits` (the weights loader strips that suffix)."""
        plan = self.graph.training
        if plan is None:
            return
        taken = self.layer_names(s)
        for o in plan.objectives:
            if o.reads != "input_logits":
                continue
            value = self.graph.outputs[o.output]
            t = s.tensors[value]
            step = next((st for st in s.steps if t.id in st.outs), None)
            if step is None:
                continue  # made inside a block function: the loss reads probabilities
            act = step.kwargs.get("activation")
            if step.callee in ("layers.Softmax", "layers.Activation") and (
                step.callee == "layers.Softmax" or step.args == ["sigmoid"]
            ):
                self.logits[o.output] = s.full(step.suffix)
                continue
            if act not in ("softmax", "sigmoid"):
                continue
            step.kwargs["activation"] = Default(None)
            suffix = o.output
            if step.suffix == o.output:
                step.suffix = numbered(f"{o.output}-logits", taken)
                step.want = [step.suffix.replace("-", "_")]
                self.renamed = True
            elif o.output in taken:
                suffix = numbered(f"{step.suffix}-activation", taken)
            taken |= {step.suffix, suffix}
            if act == "softmax":
                made = s.layer("layers.Softmax", t, suffix, t.shape, t.perm)
            else:
                made = s.layer("layers.Activation", t, suffix, t.shape, t.perm, ["sigmoid"])
            made.nonnegative = True
            s.tensors[value] = made
            self.logits[o.output] = s.full(suffix)

    def trains(self) -> None:
        """A model whose spec trains: batch norm is TorchBatchNormalization (PyTorch's training
        statistics; inference is Keras's own) and parameters start as the spec's `init:` says."""
        if self.graph.training is None:
            return
        for st in self.all_steps(self.top_body):
            if st.callee == "layers.BatchNormalization":
                st.callee = st.weights_key = "TorchBatchNormalization"
                self.torch_batch_norm = True

    def initializers(self) -> None:
        """Keras initializers with the meaning of each node's `init:` (netspec.weights): given
        only where Keras's default differs (its recurrent kernels start orthogonal, an LSTM's
        forget-gate bias at 1, an embedding uniform in +-0.05, a PReLU slope at 0)."""
        bodies = [*self.bodies, self.top_body]
        for b in bodies:
            for st in b.scope.steps:
                if st.weights is None:
                    continue
                name = b.scope.full(st.suffix.partition("-")[0])
                node = self.graph._by_name.get(name)
                if node is None:
                    continue
                kw = init_kwargs(st.weights_key, node)
                if not kw:
                    continue
                if st.args and isinstance(st.args[0], Ctor):  # Bidirectional(LSTM(...))
                    inner = st.args[0]
                    st.args[0] = replace(inner, kwargs={**inner.kwargs, **kw})
                else:
                    st.kwargs.update(kw)

    def layer_names(self, s: Scope) -> set[str]:
        names = {*self.graph.inputs, *(st.suffix for st in s.steps if st.callee)}
        for b in self.bodies:
            names |= {b.scope.full(st.suffix) for st in b.scope.steps if st.callee}
        return names

    # -- pass 2: render ------------------------------------------------------------------
    def source(self) -> str:
        top, outs = self.top()
        self.top_body = top
        self.trains()
        self.initializers()
        conversions = self.conversions()
        module = set(MODULE) | set(runtime.LAYERS)
        for c in conversions.values():
            module |= {c.to_keras.__name__, c.from_keras.__name__}
        self.module_names = Namer(module | KEYWORDS | python_builtins() | ALWAYS)
        blocks = list(dict.fromkeys(b.scope.use.block for b in self.bodies))
        self.block_fn = {}
        for b in blocks:
            fn = b if not self.module_names.taken(b) else b + "_block"
            self.block_fn[b] = self.module_names.new(fn)
        self.reserved = module | set(self.block_fn.values()) | KEYWORDS | ALWAYS
        self.sigs = {b: self.block_sig(b) for b in blocks}
        functions = self.block_functions()

        parts = [self.header()]
        imports = "import keras\nimport numpy as np\nfrom keras import layers\n"
        if self.torch_batch_norm:  # its copied source uses keras.ops as `ops`
            imports = imports.replace("import layers", "import layers, ops")
        parts.append(imports)
        for cls in sorted(self.classes):
            parts.append("\n" + runtime.REGISTER + runtime.LAYERS[cls])
        if self.torch_batch_norm:
            from .classes import class_source  # read, not imported: it imports keras

            bn = class_source("train_layers.py", "TorchBatchNormalization")
            parts.append("\n" + runtime.REGISTER + "\n" + bn)
        if self.involved:
            parts.append(REUSE)
        parts += ["\n" + f for f in functions]
        parts.append("\n" + self.render_top(top, outs))
        parts.append("\n" + self.weights_code(conversions))
        parts.append('\nif __name__ == "__main__":\n    build_model().summary()\n')
        return "\n".join(p.rstrip("\n") + "\n" for p in parts)

    def all_steps(self, top: Body | None = None) -> list[Step]:
        steps = [st for b in self.bodies for st in b.scope.steps]
        return steps + (top.scope.steps if top else [])

    def conversions(self) -> dict[str, Any]:
        """Keras class -> conversion, for the layers with weights in this model."""
        out: dict[str, Any] = {}
        for st in self.all_steps(self.top_body):
            if st.weights is not None:
                out.setdefault(st.weights_key, st.weights)
        return dict(sorted(out.items()))

    # block functions
    def block_sig(self, block: str) -> BlockSig:
        bdef = self.graph.blocks[block]
        namer = Namer(self.reserved | {"name"})
        inputs = [namer.new(i) for i in bdef.inputs]
        params = {p: namer.new(p) for p in bdef.params}
        required, defaults, computed = [], {}, {}
        for p, bp in bdef.params.items():
            if bp.required or (bp.expr is not None and not isinstance(bp.expr, Expr)):
                required.append(p)
            elif isinstance(bp.expr, Expr):
                defaults[p], computed[p] = "None", bp.expr
            elif isinstance(bp.default, dict):
                defaults[p], computed[p] = "None", source(bp.default)
            else:
                defaults[p] = source(_tuples(bp.default))
        return BlockSig(inputs, params, required, defaults, computed)

    def block_functions(self) -> list[str]:
        """One function per distinct rendered body of each block, deepest uses first (a body
        calls the functions of the uses inside it). A function takes the block params its body
        is written with; the others are fixed in its layers (the docstring says to what)."""
        fns: dict[tuple, str] = {}
        uses_of: dict[str, list[BlockUse]] = {}
        order: list[tuple] = []
        count: dict[str, int] = {}
        for b in sorted(self.bodies, key=lambda b: -len(b.scope.use.scope)):
            use = b.scope.use
            lines, used = self.render_block(b)
            key = (use.block, tuple(lines), tuple(used))
            if key not in fns:
                k = count[use.block] = count.get(use.block, 0) + 1
                fns[key] = self.variant_name(use.block, k)
                self.fn_params[fns[key]] = used
                order.append(key)
                uses_of[fns[key]] = []
            self.fn_of[use.name] = fns[key]
            uses_of[fns[key]].append(use)
        return [
            self.render_function(fns[key], key[0], list(key[1]), uses_of[fns[key]]) for key in order
        ]

    def variant_name(self, block: str, k: int) -> str:
        """The block's function name, then `<name>_2`, `<name>_3`... (the first that is no
        module-level name and no variable a scope wants: the spec's names come first)."""
        base = self.block_fn[block]
        if k == 1:
            return base
        wanted = {w for st in self.all_steps(self.top_body) for w in st.want}
        wanted |= {n for sig in self.sigs.values() for n in [*sig.inputs, *sig.params.values()]}
        for i in itertools.count(k):
            name = f"{base}_{i}"
            if not self.module_names.taken(name) and name not in wanted:
                return self.module_names.new(name)
        raise AssertionError  # pragma: no cover

    def render_function(self, fn: str, block: str, body: list[str], uses: list[BlockUse]) -> str:
        sig = self.sigs[block]
        used = self.fn_params[fn]
        params = [
            *sig.inputs,
            *[sig.params[p] for p in sig.required if p in used],
            "name",
            *(["made"] if block in self.made_blocks else []),
            *[f"{sig.params[p]}={sig.defaults[p]}" for p in sig.defaults if p in used],
        ]
        lines = signature(fn, params, None, 0)
        names = [u.name for u in uses]
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        doc = f"The spec's `{block}` block (used as {shown})"
        fixed = [
            f"{p}: {yaml_text(uses[0].params[p])}"
            for p in self.graph.blocks[block].params
            if p not in used and all(_same(u.params[p], uses[0].params[p]) for u in uses)
        ]
        if fixed:
            doc += ", with " + ", ".join(fixed)
        text = wrap(doc + ".", WIDTH - 7, cut_long=True)
        description = self.graph.blocks[block].description
        if description:
            text = [*wrap(description, WIDTH - 4, cut_long=True), "", *text]
        lines += docstring(text, 1)
        return "\n".join(lines + body) + "\n"

    def render_block(self, b: Body) -> tuple[list[str], list[str]]:
        """The body's lines and the block params it is written with (in declared order)."""
        use = b.scope.use
        sig = self.sigs[use.block]
        namer = Namer(self.reserved | set(self.fn_params) | {"name"})
        namer.used |= {*sig.inputs, *sig.params.values()}
        args = dict(zip(b.args, sig.inputs, strict=True))
        declared = self.graph.blocks[use.block].params
        used: set[str] = set()

        def rename(n: str) -> str:
            if n in declared:
                used.add(n)
                return sig.params[n]
            return source(self.graph.params[n])  # a spec param: its value

        steps = self.render_steps(b, namer, args, b.outputs, rename, layer_name=_in_block)
        steps += returns([self.names[o] for o in b.outputs], 1)
        prologue: list[str] = []
        for p in reversed(list(sig.computed)):  # a computed default may use an earlier one
            if p in used:
                e = sig.computed[p]
                value = e.render(rename) if isinstance(e, Expr) else e
                prologue[:0] = [
                    f"    if {sig.params[p]} is None:",
                    f"        {sig.params[p]} = {value}",
                ]
        return prologue + steps, [p for p in declared if p in used]

    # the top level
    def render_top(self, top: Body, outs: list[str]) -> str:
        used: list[str] = []

        def collect(n: str) -> str:
            used.append(n)
            return n

        scratch = Namer(set())
        self.render_steps(top, scratch, {}, outs + top.args, collect, layer_name=_at_top)
        params = [p for p in self.graph.params if p in used]
        namer = Namer(self.reserved | set(self.fn_params))
        kwargs = {p: namer.new(p) for p in params}
        lines = signature(
            "build_model",
            [f"{kwargs[p]}={source(_tuples(self.graph.params[p]))}" for p in params],
            None,
            0,
        )
        doc = ["The Keras model; its inputs and outputs carry the spec's names."]
        if params:
            note = (
                "Keyword arguments: the spec's params that its layers are written with "
                "(defaults: the values this file was generated with)."
            )
            doc += ["", *wrap(note, WIDTH - 4)]
        lines += docstring(doc, 1)
        if self.involved:
            lines.append("    made = {}  # layers that shares: applies again (see reuse)")
        lines += self.render_steps(
            top, namer, {}, outs + top.args, lambda n: kwargs[n], layer_name=_at_top
        )
        names = self.names
        ins = [names[i] for i in top.args]
        inputs = ins[0] if len(ins) == 1 else "[" + ", ".join(ins) + "]"
        ov = [names[o] for o in outs]
        outputs = ov[0] if len(ov) == 1 else "[" + ", ".join(ov) + "]"
        lines += call_lines(
            "    return ",
            "keras.Model",
            [f"inputs={inputs}", f"outputs={outputs}", f"name={quote(self.graph.name)}"],
            "",
        )
        return "\n".join(lines) + "\n"

    def render_steps(
        self,
        b: Body,
        namer: Namer,
        args: dict[str, str],
        returned: list[str],
        rename: Callable[[str], str],
        layer_name: Callable[[str], str],
    ) -> list[str]:
        """The statements of one scope; variables from the liveness plan (`self.names`)."""
        steps = b.scope.steps
        items: list[Node | BlockUse] = [
            Node(f"step{i}", "keras", {}, list(st.inputs)) for i, st in enumerate(steps)
        ]
        produced = [st.outs for st in steps]
        want = {o: w for st in steps for o, w in zip(st.outs, st.want, strict=True)}
        plan = liveness.plan(items, produced, args, returned, namer, want)
        self.names = names = plan.names

        def code(v: Any) -> str:
            return source(v, rename)

        lines = []
        for st in steps:
            target = ", ".join(names[o] for o in st.outs)
            if st.use is not None:
                sig = self.sigs[st.use.block]
                call = [names[i] for i in st.inputs]
                takes = self.fn_params[self.fn_of[st.use.name]]
                given = self.call_args(st.use)
                call += [f"{sig.params[p]}={code(given[p])}" for p in takes if p in given]
                call.append(f"name={layer_name(st.use.name.rsplit('.', 1)[-1])}")
                if st.use.block in self.made_blocks:  # the layers of the use it shares
                    key = (st.use.shares or st.use.name).rsplit(".", 1)[-1]
                    call.append(f"made=reuse(made, {quote(key)}, {{}})")
                lines += call_lines(f"    {target} = ", self.fn_of[st.use.name], call, "")
                continue
            if st.callee == "layers.Input":
                kws = [f"{k}={source(v)}" for k, v in st.kwargs.items()]
                lines += call_lines(f"    {target} = ", st.callee, kws, "")
                continue
            call = [code(v) for v in st.args]
            call += [f"{k}={code(v)}" for k, v in st.kwargs.items() if not isinstance(v, Default)]
            call.append(f"name={layer_name(st.suffix)}")
            ins = [names[i] for i in st.inputs]
            given = "[" + ", ".join(ins) + "]" if st.many else ins[0]
            if st.share:  # one layer object for the owner and every use that shares it
                made = f"{st.callee}({', '.join(call)})"
                reused = ["made", quote(st.share), made]
                lines += call_lines(f"    {target} = ", "reuse", reused, f"({given})")
                continue
            lines += call_lines(f"    {target} = ", st.callee, call, f"({given})")
        return lines

    def call_args(self, use: BlockUse) -> dict[str, Any]:
        """The block params a use passes: those it wrote with params (as `Code`), and those
        whose value differs from the block's default."""
        out: dict[str, Any] = {}
        outer = self.graph.uses[".".join(use.scope)] if use.scope else None
        env = {**self.graph.params, **(outer.params if outer else {})}
        for p, bp in self.graph.blocks[use.block].params.items():
            value = use.params[p]
            written = use.args.get(p)
            if isinstance(written, Expr):
                try:
                    ok = _same(written.evaluate(env), value)
                except ExprError:
                    ok = False
                if ok:
                    out[p] = Code(value, written)
                    continue
            if not bp.required and written is None:
                if isinstance(bp.expr, Expr):
                    try:
                        default = bp.expr.evaluate({**self.graph.params, **use.params})
                    except ExprError:
                        default = None
                elif bp.expr is None:
                    default = bp.default
                else:
                    default = None
                if _same(default, value):
                    continue
            out[p] = _tuples(value)
        return out

    # the module's text around the functions
    def header(self) -> str:
        g = self.graph
        spec = Path(g.source).name if g.source else "a spec"
        text = [
            f"{g.name}: {g.description}" if g.description else g.name,
            "",
            f"Keras 3 model (functional API) generated by netspec from {spec}; it imports keras "
            "and numpy (and safetensors to read or write weights files), never netspec.",
            "",
            self.layout_note(),
            "",
            self.names_note(),
        ]
        lines: list[str] = []
        for para in text:
            lines += wrap(para, WIDTH - 4, cut_long=True) if para else [""]
        usage = [
            "",
            "    model = build_model()",
            f"    load_weights(model, {quote(g.name + '.safetensors')})",
        ]
        return "\n".join(docstring([*lines, *usage], 0)) + "\n"

    def layout_note(self) -> str:
        """Where the spec's inputs and outputs are channels-last, named from this spec."""
        g = self.graph
        moved = [(n, v.shape) for n, v in g.inputs.items() if v.rank >= 3]
        moved += [(n, g.value(v).shape) for n, v in g.outputs.items() if len(g.value(v).shape) >= 3]
        text = "Layout: channels-last, as Keras expects."
        if moved:
            name, shape = moved[0]
            spec_shape = "[" + ", ".join(str(d) for d in shape) + "]"
            keras_shape = layout.keras_shape(shape, layout.boundary(len(shape)))
            shown = "(" + ", ".join("None" if d is None else str(d) for d in keras_shape) + ")"
            text += (
                f" An input or output of per-example rank 3 or more has the spec's axis 1 moved "
                f"last (`{name}`, {spec_shape} in the spec, is {shown} here); rank 1 and 2 keep "
                "the spec's order."
            )
        else:
            text += " This model's inputs and outputs keep the spec's axis order."
        permutes = [
            st.suffix for st in self.all_steps(self.top_body) if st.callee == "layers.Permute"
        ]
        if permutes:
            text += (
                f" Inside, transposes (`Permute` layers such as `{permutes[0]}`) appear only where "
                "a layer needs another layout."
            )
        return text

    def names_note(self) -> str:
        g = self.graph
        inner = next((n for n in g.nodes if n.scope), None) or (g.nodes[0] if g.nodes else None)
        text = "Layer names are the spec's node paths"
        text += f" (`{inner.name}`)" if inner else ""
        helpers = [
            (b.scope.full(st.suffix) if b.scope.use else st.suffix)
            for b in [*self.bodies, self.top_body]
            for st in b.scope.steps
            if st.callee and "-" in st.suffix and st.callee != "layers.Permute"
        ]
        if helpers:
            text += f"; helper layers add `-<what>` (`{helpers[0]}`)"
        keys = list(g.weight_shapes())
        text += (
            ". load_weights / save_weights read and write netspec's canonical safetensors files "
            "(keys `<node path>.<param>`"
        )
        text += f", such as `{keys[0]}`" if keys else ""
        return text + "; PyTorch's layouts)."

    def weights_code(self, conversions: dict[str, Any]) -> str:
        """The used conversions' own source, the table of them, the loader."""
        parts = []
        for c in dict.fromkeys(conversions.values()):
            parts += [inspect.getsource(c.to_keras), inspect.getsource(c.from_keras)]
        table = ["# Keras layer class -> (canonical -> Keras, Keras -> canonical)"]
        if conversions:
            table.append("CONVERSIONS = {")
            for cls, c in conversions.items():
                table.append(f"    {quote(cls)}: ({c.to_keras.__name__}, {c.from_keras.__name__}),")
            table.append("}")
        else:
            table.append("CONVERSIONS = {}")
        parts.append("\n".join(table) + "\n")
        recurrent = any(st.weights_key in RECURRENT for st in self.all_steps(self.top_body))
        parts.append(runtime.weights_code(recurrent, self.renamed))
        return "\n\n".join(p.strip("\n") + "\n" for p in parts)


RECURRENT = {"LSTM", "GRU", "SimpleRNN"}

# netspec's init (netspec.weights._draw) as Keras initializers with the same distribution
INITIALIZERS: dict[str, Any] = {
    "glorot_uniform": "glorot_uniform",
    "he_uniform": "he_uniform",
    "glorot_normal": Ctor(
        "keras.initializers.VarianceScaling",
        [1.0],
        {"mode": "fan_avg", "distribution": "untruncated_normal"},
    ),
    "he_normal": Ctor(
        "keras.initializers.VarianceScaling",
        [2.0],
        {"mode": "fan_in", "distribution": "untruncated_normal"},
    ),
    "lecun_normal": Ctor(
        "keras.initializers.VarianceScaling",
        [1.0],
        {"mode": "fan_in", "distribution": "untruncated_normal"},
    ),
    "normal": "random_normal",  # stddev 0.05
    "uniform": "random_uniform",  # +-0.05
    "zeros": "zeros",
    "ones": "ones",
}
KERNEL_ARG = {
    "Dense": "kernel_initializer",
    "Conv1D": "kernel_initializer",
    "Conv2D": "kernel_initializer",
    "Conv2DTranspose": "kernel_initializer",
    "DepthwiseConv1D": "depthwise_initializer",
    "DepthwiseConv2D": "depthwise_initializer",
    "Embedding": "embeddings_initializer",
    "Learned": "initializer",  # netspec's parameter (custom_layers.Learned)
    "Attention": "kernel_initializer",  # every kernel of the MultiHeadAttention inside
}
# others: glorot_uniform
KERAS_DEFAULT = {"embeddings_initializer": "random_uniform", "initializer": "zeros"}


# Keras computes fans from its own layout: a depthwise kernel [*kernel, channels, multiplier]
# and an embedding table [vocab, dim] get other fans than netspec's (PyTorch's) from
# [channels * multiplier, 1, *kernel] and [vocab, dim] (fan_in = dim)
# a learned tensor and the attention kernels [in, heads, head_dim] too (attention's key and
# value kernels start with the query's spread)
OTHER_FANS = {"DepthwiseConv1D", "DepthwiseConv2D", "Embedding", "Learned", "Attention"}
FAN_FREE = {"normal", "uniform", "zeros", "ones"}


def explicit_initializer(init: str, shape: tuple[int, ...]) -> Any:
    """netspec's `init` for a canonical weight `shape` with its limit or spread written out
    (netspec.weights._draw)."""
    receptive = math.prod(shape[2:]) if len(shape) > 1 else 1
    fan_in, fan_out = (shape[1] * receptive, shape[0] * receptive) if len(shape) > 1 else shape * 2
    scale = {
        "glorot_uniform": 6.0 / (fan_in + fan_out),
        "he_uniform": 6.0 / fan_in,
        "glorot_normal": 2.0 / (fan_in + fan_out),
        "he_normal": 2.0 / fan_in,
        "lecun_normal": 1.0 / fan_in,
    }[init]
    if init.endswith("uniform"):
        limit = math.sqrt(scale)
        return Ctor("keras.initializers.RandomUniform", [-limit, limit], {})
    return Ctor("keras.initializers.RandomNormal", [], {"stddev": math.sqrt(scale)})


def init_kwargs(keras_class: str, node: Node) -> dict[str, Any]:
    """The initializer keywords a layer needs to start as `node`'s `init:` says."""
    name = node.attrs.get("init", "glorot_uniform")
    init = INITIALIZERS.get(name)
    if init is None:
        return {}
    kw: dict[str, Any] = {}
    symmetric = keras_class == "Embedding" and name.startswith("glorot")  # fan_in + fan_out
    if keras_class in OTHER_FANS and name not in FAN_FREE and not symmetric:
        weight = node.params["weight_q" if keras_class == "Attention" else "weight"]
        kw[KERNEL_ARG[keras_class]] = explicit_initializer(name, tuple(weight))
    elif keras_class in KERNEL_ARG:
        arg = KERNEL_ARG[keras_class]
        if init != KERAS_DEFAULT.get(arg, "glorot_uniform"):
            kw[arg] = init
    elif keras_class in RECURRENT:
        if init != "glorot_uniform":
            kw["kernel_initializer"] = init
        kw["recurrent_initializer"] = init  # Keras: orthogonal
        if keras_class == "LSTM":
            kw["unit_forget_bias"] = False  # netspec's biases start at 0
    elif keras_class == "PReLU":
        kw["alpha_initializer"] = Ctor("keras.initializers.Constant", [0.25], {})
    return kw


def _at_top(suffix: str) -> str:
    return quote(suffix)


def _in_block(suffix: str) -> str:
    return f"name + {quote('.' + suffix)}"


def _tuples(v: Any) -> Any:
    """Lists as tuples (a default argument is never a mutable list)."""
    if isinstance(v, (list, tuple)):
        return tuple(_tuples(x) for x in v)
    return v


def source(v: Any, rename: Callable[[str], str] | None = None) -> str:
    """Python source for an argument value (`rename` renders the names in `Code`)."""
    if isinstance(v, Code):
        return v.expr.render(rename) if rename else source(v.value)
    if isinstance(v, Ctor):
        args = [source(a, rename) for a in v.args]
        args += [
            f"{k}={source(x, rename)}" for k, x in v.kwargs.items() if not isinstance(x, Default)
        ]
        return f"{v.callee}({', '.join(args)})"
    if v is None or isinstance(v, bool):
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return quote(v)
    if isinstance(v, tuple):
        inner = ", ".join(source(x, rename) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, list):
        return "[" + ", ".join(source(x, rename) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{source(k)}: {source(x, rename)}" for k, x in v.items()) + "}"
    raise TypeError(f"no literal for {v!r}")


def yaml_text(v: Any) -> str:
    """A param's value as a spec writes it (for docstrings): `3`, `same`, `[3, 1]`, `{op: relu}`."""
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {yaml_text(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(yaml_text(x) for x in v) + "]"
    if v is None or isinstance(v, bool):
        return {None: "null", True: "true", False: "false"}[v]
    return str(v)
