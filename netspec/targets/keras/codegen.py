"""From the IR to the text of a standalone Keras 3 module (functional API).

Generation runs in two passes. The first walks the graph scope by scope (the top level, then each
block use in place), asking each op's emitter for the Keras layers it needs; emitters see tensors
(`T`: a Python variable, the logical shape and the Keras layout) and append `Step`s. The second
pass groups the uses of each block whose bodies have the same structure into one Python function
(a "variant"), turns the values that differ between its uses into function arguments (a block
param when one matches, else an extra argument), and renders everything as text that
`ruff format` leaves as it is.

Layer names are the spec's node paths, dots kept (`layer1_1.conv1`); a helper layer that a node
needs besides its own (padding, cropping, a transpose, a split-off activation, stacked recurrent
layers) is named `<node or value>-<what>` (`conv1-pad`, `relu_1-to_cl`, `lstm-l1`). A `-` cannot
occur in a node path, so helper names never clash with node names.
"""

from __future__ import annotations

import builtins
import difflib
import itertools
import json
import keyword
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...ir import BlockUse, Graph, Node, Shape
from ..pysource import escape as doc_escape
from . import layout, runtime
from .layout import Perm

LINE = 100
RESERVED = {
    "keras",
    "np",
    "name",
    "build_model",
    "load_weights",
    "export_weights",
    "save_weights",
    "WEIGHTS",
    "model",
    "self",
}
# Module-level names a block function must not take: the weights helpers and the builtins the
# generated module calls (all of them, so that no block can shadow one).
MODULE = {"_bias", "_bias_of", "_to_keras", "_from_keras", "_layers", "_gru_gates"} | set(
    dir(builtins)
)


class Expr(str):
    """A value rendered as code, not as a literal (a nested layer constructor)."""


@dataclass(frozen=True)
class Default:
    """A keyword argument equal to Keras' default: left out of the source (in a block function,
    unless another use of the block needs another value)."""

    value: Any


def lit(v: Any) -> str:
    """A Python literal as `ruff format` writes it (double quotes)."""
    if isinstance(v, Expr):
        return str(v)
    if v is None or isinstance(v, bool):
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, tuple):
        inner = ", ".join(lit(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, list):
        return "[" + ", ".join(lit(x) for x in v) + "]"
    raise TypeError(f"no literal for {v!r}")


@dataclass
class T:
    """A tensor while generating: its variable, logical shape, Keras layout, producing layer."""

    var: str
    shape: Shape
    perm: Perm
    layer: str  # full name of the Keras layer that produced it
    dtype: str = "float32"
    base: str = ""  # what a helper layer made from it is named after (a node's local name)

    @property
    def rank(self) -> int:
        return len(self.shape)


@dataclass
class Step:
    """One statement: a layer applied to inputs, or a block function called on inputs."""

    outs: list[str]
    callee: str  # `keras.layers.Conv2D`, a generated class, or "" for a block call
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] | str = ""  # a variable, or a list rendered as `[a, b]`
    suffix: str = ""  # layer name relative to the scope
    use: BlockUse | None = None  # a block call

    def values(self, call_args: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """The values that may differ between uses of a block, by a stable key."""
        if self.use is not None:
            return dict(call_args[self.use.name])
        return {**{f"#{i}": v for i, v in enumerate(self.args)}, **self.kwargs}


@dataclass
class Body:
    """One generated scope: the top level or one block use."""

    use: BlockUse | None
    steps: list[Step]
    params: list[str]  # the input variables (block functions' first arguments)
    in_perms: tuple[Perm, ...]
    outputs: list[T]


class Vars:
    """Python variable names of one scope: unique, never a keyword or a reserved name."""

    def __init__(self, reserved: set[str]):
        self.used = set(reserved)

    def new(self, want: str) -> str:
        base = re.sub(r"\W", "_", want)
        if not base or base[0].isdigit():
            base = "v_" + base
        name = free(base, self.used)
        self.used.add(name)
        return name


ESCAPE = re.compile(r"\\(?:x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|.)|.", re.S)


def wrap_escaped(text: str, width: int) -> list[str]:
    """Escaped docstring text (`pysource.escape`) wrapped at spaces; a word longer than a line is
    cut between escape sequences, never inside one."""
    out = []
    for line in textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False):
        while len(line) > width:
            cut = 0
            for m in ESCAPE.finditer(line):
                if m.end() > width:
                    break
                cut = m.end()
            out.append(line[:cut])
            line = line[cut:]
        out.append(line)
    return out


def free_name(base: str, used: set[str]) -> str:
    """A layer name: `base`, else `base_2`, `base_3`, ... (the first not in `used`)."""
    candidates = itertools.chain([base], (f"{base}_{k}" for k in itertools.count(2)))
    return next(n for n in candidates if n not in used)


def free(base: str, used: set[str]) -> str:
    """`base`, else `base_`, `base_2`, `base_3`, ...: the first that is not used nor a keyword."""
    candidates = itertools.chain([base, base + "_"], (f"{base}_{k}" for k in itertools.count(2)))
    return next(n for n in candidates if n not in used and not keyword.iskeyword(n))


class Scope:
    """What an emitter works with: adds layers to one scope's body."""

    def __init__(self, gen: Generator, prefix: str, reserved: set[str]):
        self.gen = gen
        self.prefix = prefix
        self.steps: list[Step] = []
        self.vars = Vars(RESERVED | gen.globals | reserved)
        gen.scopes.append(self)
        self.tensors: dict[str, T] = {}
        self.converted: dict[tuple[str, tuple[int, ...]], T] = {}

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
        var: str | None = None,
        dtype: str = "float32",
        **kwargs: Any,
    ) -> T:
        """Apply `callee(*args, **kwargs, name=<scope>.<suffix>)` to `inputs`."""
        out = self.vars.new(var or suffix.replace("-", "_"))
        ins = [t.var for t in inputs] if isinstance(inputs, list) else inputs.var
        self.steps.append(Step([out], callee, list(args or []), kwargs, ins, suffix))
        return T(out, shape, perm, self.full(suffix), dtype, suffix)

    def custom(self, cls: str) -> str:
        """A generated layer class (from `runtime.LAYERS`), included once in the module."""
        self.gen.classes.add(cls)
        return cls

    def weights(self, node: Node, kind: str, count: int = 1) -> None:
        """Register a node's canonical weights: a conversion kind and its Keras layers (the node
        path, or `<path>-l<i>` for each of `count` > 1 layers)."""
        self.gen.weights[node.name] = (kind, count)

    def convert(self, t: T, perm: Perm, base: str | None = None) -> T:
        """`t` in layout `perm`: itself, or a Permute (made once per tensor and layout)."""
        if t.perm == perm:
            return t
        dims = layout.transpose(t.perm, perm)
        key = (t.var, dims)  # the same data movement of the same Keras tensor
        if key not in self.converted:
            suffix = f"{base or t.base or t.var}-to_{layout.label(perm)}"
            self.converted[key] = self.layer(
                "keras.layers.Permute", t, suffix, t.shape, perm, [dims], dtype=t.dtype
            )
        made = self.converted[key]
        return T(made.var, t.shape, perm, made.layer, t.dtype, made.base)


Emitter = Callable[[Scope, Node, list[T]], T]


class Generator:
    def __init__(self, graph: Graph, emitters: dict[str, Emitter]):
        self.graph = graph
        self.emitters = emitters
        self.classes: set[str] = set()
        self.weights: dict[str, tuple[str, int]] = {}
        self.bodies: list[Body] = []  # block uses, in the order they were generated
        self.globals = set(runtime.LAYERS) | set(self.block_names().values())
        self.variant_of: dict[str, Variant] = {}
        self.scopes: list[Scope] = []

    def block_names(self) -> dict[str, str]:
        """Block -> function name: the block's, or `<block>_block` where that would shadow a
        module-level name (`build_model`, `keras`, a layer class)."""
        out: dict[str, str] = {}
        blocks = list(dict.fromkeys(u.block for u in self.graph.uses.values()))
        for b in blocks:
            avoid = RESERVED | MODULE | set(runtime.LAYERS) | set(out.values())
            clash = b in avoid or keyword.iskeyword(b)
            out[b] = free(f"{b}_block", avoid | set(blocks)) if clash else b
        return out

    # -- pass 1: emit --------------------------------------------------------------------
    def items(self, use: BlockUse | None) -> list[Node | BlockUse]:
        """The nodes and nested uses directly in a scope, in execution order."""
        return self.graph.scope_items(use)

    def scope_body(self, s: Scope, use: BlockUse | None) -> None:
        for item in self.items(use):
            if isinstance(item, Node):
                xs = [s.tensors[v] for v in item.inputs]
                s.tensors[item.name] = self.emitters[item.op](s, item, xs)
            else:
                self.call(s, item)

    def call(self, s: Scope, use: BlockUse) -> None:
        ins = [s.tensors[v] for v in use.inputs]
        body = self.block(use, ins)
        local = use.name.rsplit(".", 1)[-1]
        names = list(use.outputs)
        if len(names) == 1:
            outs = [s.vars.new(local)]
        else:
            outs = [s.vars.new(f"{local}_{o}") for o in names]
        s.steps.append(Step(outs, "", inputs=[t.var for t in ins], suffix=local, use=use))
        for var, inner, t in zip(outs, use.outputs.values(), body.outputs, strict=True):
            s.tensors[inner] = T(var, t.shape, t.perm, t.layer, t.dtype, var)

    def block(self, use: BlockUse, ins: list[T]) -> Body:
        reserved = set(use.params)
        s = Scope(self, use.name, reserved)
        params = []
        for outer, iname, t in zip(use.inputs, use.input_names, ins, strict=True):
            var = s.vars.new(iname)
            params.append(var)
            s.tensors[outer] = T(var, t.shape, t.perm, t.layer, t.dtype, iname)
        self.scope_body(s, use)
        outs = [s.tensors[v] for v in use.outputs.values()]
        body = Body(use, s.steps, params, tuple(t.perm for t in ins), outs)
        self.bodies.append(body)
        return body

    def top(self) -> tuple[Body, list[tuple[str, T]]]:
        s = Scope(self, "", set())
        params = []
        for name, v in self.graph.inputs.items():
            perm = layout.boundary(v.rank)
            var = s.vars.new(name)
            params.append(var)
            kw: dict[str, Any] = {"shape": layout.keras_shape(v.shape, perm), "name": name}
            if v.dtype != "float32":
                kw["dtype"] = v.dtype
            s.steps.append(Step([var], "keras.Input", kwargs=kw))
            s.tensors[name] = T(var, v.shape, perm, name, v.dtype, name)
        self.scope_body(s, None)
        layer_names = self.layer_names(s)
        outs: list[tuple[str, T]] = []
        for oname, value in self.graph.outputs.items():
            t = s.tensors[value]
            want = layout.boundary(t.rank)
            free = oname not in layer_names
            if t.perm != want:
                dims = layout.transpose(t.perm, want)
                key = (t.var, dims)
                if key in s.converted:  # a layer inside already made this transpose: reuse it
                    made = s.converted[key]
                    t = T(made.var, t.shape, want, made.layer, t.dtype, made.base)
                else:
                    label = layout.label(want)
                    suffix = oname if free else free_name(f"{oname}-to_{label}", layer_names)
                    t = s.layer("keras.layers.Permute", t, suffix, t.shape, want, [dims], var=oname)
                    s.converted[key] = t
            if t.layer != oname and free:
                t = s.layer("keras.layers.Identity", t, oname, t.shape, want, var=oname)
            layer_names.add(t.layer)
            outs.append((oname, t))
        return Body(None, s.steps, params, (), [t for _, t in outs]), outs

    def layer_names(self, s: Scope) -> set[str]:
        names = {*self.graph.inputs, *(st.suffix for st in s.steps if st.use is None)}
        for b in self.bodies:
            names |= {f"{b.use.name}.{st.suffix}" for st in b.steps if st.use is None}
        return names

    # -- pass 2: block functions ---------------------------------------------------------
    def variants(self) -> tuple[list[Variant], dict[str, dict[str, Any]]]:
        """Group block uses into functions, deepest first; returns the variants and, per use,
        the keyword arguments its call passes."""
        fnames = self.block_names()
        call_args: dict[str, dict[str, Any]] = {}
        by_key: dict[tuple, Variant] = {}
        order: list[Variant] = []
        variant_of: dict[str, Variant] = {}
        count: dict[str, int] = {}
        taken = set(RESERVED | MODULE | self.globals).union(*(s.vars.used for s in self.scopes))
        bodies = sorted(self.bodies, key=lambda b: -len(b.use.scope))  # stable: deepest first
        for b in bodies:
            key = (
                b.use.block,
                b.in_perms,
                tuple(b.params),
                tuple(self.structure(st, variant_of) for st in b.steps),
                tuple(t.var for t in b.outputs),
            )
            if key not in by_key:
                k = count[b.use.block] = count.get(b.use.block, 0) + 1
                fn = fnames[b.use.block]
                if k > 1:  # a name no scope uses as a variable (nor another function)
                    fn = free(f"{fn}_{k}", taken)
                    taken.add(fn)
                by_key[key] = Variant(fn, b.use.block, [])
                order.append(by_key[key])
            by_key[key].bodies.append(b)
            variant_of[b.use.name] = by_key[key]
        self.variant_of = variant_of
        module_names = self.globals | {v.fn for v in order}
        for v in order:
            v.globals_ = module_names

        def ensure(v: Variant) -> None:  # nested blocks' arguments first
            if v.done:
                return
            for b in v.bodies:
                for st in b.steps:
                    if st.use is not None:
                        ensure(variant_of[st.use.name])
            v.parameterize(call_args)

        for v in order:
            ensure(v)
        return order, call_args

    def structure(self, st: Step, variant_of: dict[str, Variant]) -> tuple:
        if st.use is not None:
            callee = variant_of[st.use.name].fn
            keys: tuple = ()
        else:
            callee = st.callee
            keys = (len(st.args), *st.kwargs)
        ins = tuple(st.inputs) if isinstance(st.inputs, list) else st.inputs
        return (callee, keys, ins, tuple(st.outs), st.suffix)

    # -- rendering -----------------------------------------------------------------------
    def source(self) -> str:
        top, outs = self.top()
        variants, call_args = self.variants()
        parts = [self.header()]
        parts.append("import keras\nimport numpy as np\n")
        for cls in sorted(self.classes):
            parts.append("\n" + runtime.REGISTER + runtime.LAYERS[cls])
        for v in variants:
            parts.append("\n" + v.render(self, call_args))
        parts.append("\n" + self.render_top(top, outs, call_args))
        parts.append("\n" + self.weights_table())
        parts.append(self.helpers())
        parts.append('\nif __name__ == "__main__":\n    build_model().summary()\n')
        return "\n".join(p.rstrip("\n") + "\n" for p in parts)

    def header(self) -> str:
        g = self.graph
        head = f"{g.name}: {g.description}" if g.description else g.name
        spec = Path(g.source).name if g.source else "a spec"
        text = [
            head,
            "",
            f"Keras 3 model (functional API) generated by netspec from {spec}. It imports keras "
            "and numpy (and safetensors to read or write weights files), never netspec.",
            "",
            "Layout: channels-last, as Keras expects. An input or output of per-example rank 3 "
            "or more has the spec's axis 1 moved last (a spec shape [3, 224, 224] is "
            "(224, 224, 3) here); rank 1 and 2 keep the spec's order. Inside, transposes "
            "(layers named `<value>-to_cl` / `-to_cf`) appear only where a layer needs another "
            "layout.",
            "",
            "Layer names are the spec's node paths with their dots (`layer1_1.conv1`); helper "
            "layers add `-<what>` (`conv1-pad`). load_weights / save_weights read and write "
            "netspec's canonical safetensors files (keys `<node path>.<param>`, PyTorch's "
            "layouts).",
        ]
        lines = []
        for para in text:
            lines += wrap_escaped(doc_escape(para), LINE - 4) or [""]
        usage = [
            "",
            "    model = build_model()",
            f'    load_weights(model, "{g.name}.safetensors")',
        ]
        return '"""' + "\n".join(lines + usage) + '\n"""\n'

    def render_top(self, top: Body, outs: list[tuple[str, T]], call_args) -> str:
        lines = [
            "def build_model():",
            '    """The Keras model; inputs and outputs carry the spec\'s names."""',
        ]
        for st in top.steps:
            lines += render_step(st, "    ", None, call_args, self)
        ins = [lit(Expr(v)) for v in top.params]
        inputs = ins[0] if len(ins) == 1 else "[" + ", ".join(ins) + "]"
        ov = [t.var for _, t in outs]
        outputs = ov[0] if len(ov) == 1 else "[" + ", ".join(ov) + "]"
        lines += call_lines(
            "    return ",
            "keras.Model",
            [f"inputs={inputs}", f"outputs={outputs}", f"name={lit(self.graph.name)}"],
            "",
        )
        return "\n".join(lines) + "\n"

    def weights_table(self) -> str:
        lines = [
            "# Canonical weights: node path -> (conversion, number of Keras layers). The Keras "
            "layer is named",
            "# by the node path; stacked recurrent layers by `<path>-l0`, `<path>-l1`, ...",
        ]
        if not self.weights:
            return "\n".join(lines) + "\nWEIGHTS = {}\n"
        lines.append("WEIGHTS = {")
        for node, (kind, count) in self.weights.items():
            entry = f"    {lit(node)}: ({lit(kind)}, {count}),"
            if len(entry) > LINE:
                entry = f"    {lit(node)}: (\n        {lit(kind)},\n        {count},\n    ),"
            lines.append(entry)
        lines.append("}")
        return "\n".join(lines) + "\n"

    def helpers(self) -> str:
        kinds = {k for k, _ in self.weights.values()}
        keys = []
        for kind in sorted(kinds):
            key = {
                "conv_transpose": "conv",
                "lstm": "recurrent",
                "gru": "recurrent",
                "rnn": "recurrent",
            }.get(kind, kind)
            if key not in keys:
                keys.append(key)
        to = "".join(runtime.TO_KERAS[k] for k in keys)
        frm = "".join(runtime.FROM_KERAS[k] for k in keys)
        parts = []
        if keys and set(keys) & {"dense", "conv", "depthwise"}:
            parts.append(runtime.BIAS)
        if "recurrent" in keys:
            parts.append(runtime.GRU_GATES)
        parts.append(runtime.HELPERS.format(to=to, frm=frm))
        return "\n".join("\n" + p.strip("\n") + "\n" for p in parts)


@dataclass
class Variant:
    """One Python function for the uses of a block that share a body structure."""

    fn: str
    block: str
    bodies: list[Body]
    args: list[str] = field(default_factory=list)  # keyword arguments after (inputs, name)
    code: dict[tuple[int, str], str | None] = field(default_factory=dict)  # (step, key) -> code
    done: bool = False
    globals_: set[str] = field(default_factory=set)  # module-level names (not to be shadowed)
    taken: set[str] = field(default_factory=set)  # the body's variables

    def parameterize(self, call_args: dict[str, dict[str, Any]]) -> None:
        first = self.bodies[0]
        envs = [b.use.params for b in self.bodies]
        taken = set().union(*[set(st.outs) for st in first.steps]) | set(first.params)
        self.taken = taken
        extra: dict[str, list[Any]] = {}
        used_params: dict[str, str] = {}  # block param -> argument name
        for i, st in enumerate(first.steps):
            per_use = [b.steps[i].values(call_args) for b in self.bodies]
            for key in per_use[0]:
                vals = [pu[key] for pu in per_use]
                if all(isinstance(v, Default) for v in vals) and all(
                    _same(v.value, vals[0].value) for v in vals
                ):
                    self.code[(i, key)] = None  # Keras' default everywhere: left out
                    continue
                vals = [v.value if isinstance(v, Default) else v for v in vals]
                hint = positional_name(st.callee, key)
                code = self.match(vals, envs, hint, used_params, extra, taken, st)
                self.code[(i, key)] = code
        order = list(envs[0])  # the block's own order of params
        used_params = dict(sorted(used_params.items(), key=lambda kv: order.index(kv[0])))
        self.args = list(used_params.values()) + list(extra)
        for j, b in enumerate(self.bodies):
            call_args[b.use.name] = {
                **{arg: b.use.params[p] for p, arg in used_params.items()},
                **{a: Expr(lit(vals[j])) for a, vals in extra.items()},
            }
        self.done = True

    def match(self, vals, envs, hint, used_params, extra, taken, st) -> str:
        first = vals[0]
        if all(_same(v, first) for v in vals):
            return lit(first)
        if all(isinstance(v, tuple) and len(v) == len(first) for v in vals):
            cols = [
                self.match([v[k] for v in vals], envs, hint, used_params, extra, taken, st)
                for k in range(len(first))
            ]
            return f"({cols[0]},)" if len(cols) == 1 else "(" + ", ".join(cols) + ")"
        names = sorted(envs[0], key=lambda p: -difflib.SequenceMatcher(None, p, hint).ratio())
        for p in names:
            if all(p in e and _same(e[p], v) for e, v in zip(envs, vals, strict=True)):
                return self.use_param(p, used_params)
        if all(_is_int(v) for v in vals):
            for p in names:
                ps = [e.get(p) for e in envs]
                if not all(_is_int(x) and x > 0 for x in ps):
                    continue
                if all(v % x == 0 for v, x in zip(vals, ps, strict=True)):
                    ks = {v // x for v, x in zip(vals, ps, strict=True)}
                    if len(ks) == 1:
                        return f"{self.use_param(p, used_params)} * {ks.pop()}"
                if all(x % v == 0 for v, x in zip(vals, ps, strict=True) if v):
                    ks = {x // v if v else None for v, x in zip(vals, ps, strict=True)}
                    if len(ks) == 1 and None not in ks:
                        return f"{self.use_param(p, used_params)} // {ks.pop()}"
        base = re.sub(r"\W", "_", f"{st.suffix}_{hint}".replace("-", "_")).strip("_")
        for a, avals in extra.items():
            if all(_same(x, y) for x, y in zip(avals, vals, strict=True)):
                return a
        name, k = base, 1
        while (
            name in taken
            or name in extra
            or name in envs[0]
            or name in RESERVED
            or name in self.globals_
            or keyword.iskeyword(name)
        ):
            k += 1
            name = f"{base}_{k}"
        extra[name] = vals
        return name

    def use_param(self, p: str, used: dict[str, str]) -> str:
        """The function argument for block param `p` (renamed if it would shadow a module name
        such as `keras` or a block function)."""
        if p not in used:
            avoid = RESERVED | self.globals_ | set(used.values()) | self.taken
            used[p] = free(p, avoid) if p in avoid or keyword.iskeyword(p) else p
        return used[p]

    def render(self, gen: Generator, call_args) -> str:
        first = self.bodies[0]
        sig = [*first.params, "name", *self.args]
        lines = call_lines("def ", self.fn, sig, ":")
        n = len(self.bodies)
        lines.append(f'    """The spec\'s `{self.block}` block ({n} use{"s" if n > 1 else ""})."""')
        for i, st in enumerate(first.steps):
            lines += render_step(st, "    ", (self, i), call_args, gen)
        ret = ", ".join(t.var for t in first.outputs)
        lines.append(f"    return {ret}")
        return "\n".join(lines) + "\n"


POSITIONAL = {
    "Conv1D": ("filters", "kernel_size"),
    "Conv2D": ("filters", "kernel_size"),
    "Conv2DTranspose": ("filters", "kernel_size"),
    "DepthwiseConv1D": ("kernel_size",),
    "DepthwiseConv2D": ("kernel_size",),
    "Dense": ("units",),
    "Dropout": ("rate",),
    "Reshape": ("target_shape",),
    "Permute": ("dims",),
    "LSTM": ("units",),
    "GRU": ("units",),
    "SimpleRNN": ("units",),
    "Bidirectional": ("layer",),
    "MaxPooling1D": ("pool_size",),
    "MaxPooling2D": ("pool_size",),
    "AveragePooling1D": ("pool_size",),
    "AveragePooling2D": ("pool_size",),
    "Activation": ("activation",),
}


def positional_name(callee: str, key: str) -> str:
    """A keyword's name, or the name of a positional argument (`#0` of Conv2D: filters)."""
    if not key.startswith("#"):
        return key
    names = POSITIONAL.get(callee.rsplit(".", 1)[-1], ())
    i = int(key[1:])
    return names[i] if i < len(names) else "arg"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def render_step(
    st: Step, indent: str, variant: tuple[Variant, int] | None, call_args, gen: Generator
) -> list[str]:
    """The lines of one statement; in a block function, values come from the variant."""

    def value(key: str, v: Any) -> str | None:
        if variant is None:
            return None if isinstance(v, Default) else lit(v)
        var, i = variant
        return var.code[(i, key)]

    if variant is None:
        name = lit(st.suffix)
    else:
        name = f'f"{{name}}.{st.suffix}"'
    outs = ", ".join(st.outs)
    if st.use is not None:
        vo = gen.variant_of[st.use.name]
        ins = list(st.inputs)
        kws = call_args[st.use.name]
        args = [*ins, name, *[f"{k}={value(k, kws[k])}" for k in kws]]
        return call_lines(f"{indent}{outs} = ", vo.fn, args, "")
    if st.callee == "keras.Input":
        args = [f"{k}={lit(v)}" for k, v in st.kwargs.items()]
        return call_lines(f"{indent}{outs} = ", st.callee, args, "")
    args = [value(f"#{k}", v) for k, v in enumerate(st.args)]
    args += [f"{k}={code}" for k, v in st.kwargs.items() if (code := value(k, v)) is not None]
    args.append(f"name={name}")
    ins = st.inputs if isinstance(st.inputs, str) else "[" + ", ".join(st.inputs) + "]"
    return call_lines(f"{indent}{outs} = ", st.callee, args, f"({ins})")


def call_lines(head: str, callee: str, args: list[str], tail: str) -> list[str]:
    """`head callee(args)tail` laid out as `ruff format` does: on one line if it fits; else,
    when `tail` is a call `(x)` whose opening line fits, split there; else split inside the
    arguments (on one indented line if they fit, else one per line with a trailing comma)."""
    indent = re.match(r"\s*", head).group(0)
    inner = ", ".join(args)
    one = f"{head}{callee}({inner}){tail}"
    if len(one) <= LINE:
        return [one]
    if tail.startswith("(") and len(f"{head}{callee}({inner})(") <= LINE:
        return [f"{head}{callee}({inner})(", *_body(indent, tail[1:-1]), f"{indent})"]
    if len(f"{indent}    {inner}") <= LINE:
        mid = [f"{indent}    {inner}"]
    else:
        mid = [line for a in args for line in _arg(indent + "    ", a)]
    if len(f"{indent}){tail}") <= LINE or not tail.startswith("("):
        return [f"{head}{callee}(", *mid, f"{indent}){tail}"]
    return [f"{head}{callee}(", *mid, f"{indent})(", *_body(indent, tail[1:-1]), f"{indent})"]


def _arg(indent: str, arg: str) -> list[str]:
    """One argument per line; a `key=[...]` list too long for its line is exploded."""
    key, eq, rest = arg.partition("=[")
    if len(f"{indent}{arg},") <= LINE or not eq or not rest.endswith("]"):
        return [f"{indent}{arg},"]
    items = rest[:-1].split(", ")
    return [f"{indent}{key}=[", *[f"{indent}    {a}," for a in items], f"{indent}],"]


def _body(indent: str, body: str) -> list[str]:
    """A call's single argument on its own line(s): a list too long for one line is exploded."""
    if len(f"{indent}    {body}") <= LINE or not body.startswith("["):
        return [f"{indent}    {body}"]
    items = body[1:-1].split(", ")
    return [f"{indent}    [", *[f"{indent}        {a}," for a in items], f"{indent}    ]"]
