"""Lowering a parsed spec into the IR: params, blocks, repeat, references, attributes, shapes.

The spec's structure (keys, types, literal values) is checked first, against the JSON Schema
(`netspec.structure`); what is left here is what a schema cannot say: names that Python or a
target refuses, expressions and the values they give, references, blocks, shapes and limits.
Every check reports the YAML path of the offending node; `load()` turns paths into file, line
and column. Layers are lowered top to bottom, so a reference can only name something earlier:
cycles cannot be written, and a forward reference is reported as one.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from . import expr, structure
from .errors import Path, SpecError, did_you_mean, path_str, unknown
from .ir import REQUIRED, BlockDef, BlockParam, BlockUse, Graph, Node, Value
from .names import check_identifier, name_hint
from .ops import OPS, Ctx, Invalid
from .schema import USE_KEYS
from .structure import show as _show

MAX_NODES = 100_000
MAX_BLOCK_DEPTH = 32  # blocks using blocks: deeper nesting is refused (and would overflow)
MAX_PARAMS = 1_000_000_000  # refused above this unless raised (4 GB of float32 weights)


@dataclass
class Scope:
    """Names visible while lowering one list of layers (the top level or a block body)."""

    prefix: tuple[str, ...]  # enclosing use names
    env: dict[str, Any]  # params visible here
    names: dict[str, str] = field(default_factory=dict)  # local name -> value name
    multi: dict[str, list[str]] = field(default_factory=dict)  # use with several outputs
    later: dict[str, Path] = field(default_factory=dict)  # names defined further down
    defined: dict[str, tuple[Path, bool]] = field(default_factory=dict)  # name -> (path, key)
    counters: dict[str, int] = field(default_factory=dict)
    left_out: set[str] = field(default_factory=set)  # names of layers `when:` left out
    prev: str | None = None
    context: str = ""  # " (in block use 'basic_2')" for errors inside block bodies

    def full(self, local: str) -> str:
        return ".".join((*self.prefix, local))


class Lowerer:
    def __init__(self, data: Any, overrides: dict[str, Any] | None, max_params: int, where=None):
        self.where = where or (lambda path, key=False: None)
        self.data = data
        self.overrides = overrides or {}
        self.max_params = max_params
        self.nodes: list[Node] = []
        self.node_by_name: dict[str, Node] = {}
        self.uses: dict[str, BlockUse] = {}
        self.block_stack: list[str] = []
        self.total_params = 0
        self.values: dict[str, Value] = {}
        self.graph_inputs: set[str] = set()
        self.node_paths: dict[str, Path] = {}
        self.spec_env: dict[str, Any] = {}
        self.blocks: dict[str, Any] = {}
        self.fresh: set[str] = set()  # axis names made up for `null` input dims
        self.param_exprs: dict[str, Any] = {}
        self.block_defs: dict[str, BlockDef] = {}
        self.used_blocks: set[str] = set()
        self.dims: dict[str, int] = {}  # sizes given to dynamic input axes (inspect --dims)

    # -- helpers -------------------------------------------------------------------------
    def err(self, msg: str, path: Path, hint: str | None = None, key: bool = False) -> SpecError:
        return SpecError(msg, path, hint=hint, key=key)

    def written(self, v: Any, path: Path) -> Any:
        """The expressions in a value as written (see `expr.find`), None if it holds none."""
        try:
            return expr.find(v)
        except expr.ExprError as e:
            raise self.err(e.message, path, e.hint) from None

    def resolve(self, v: Any, env: dict, path: Path) -> Any:
        try:
            return expr.resolve(v, env)
        except expr.ExprError as e:
            raise self.err(e.message, path, e.hint) from None

    # -- top level -----------------------------------------------------------------------
    def run(self) -> Graph:
        d = self.data
        structure.check(d)  # keys, types and literal values: the JSON Schema
        name = d["name"]
        why = check_identifier(name)  # Python keywords, torch.nn.Module attributes
        if why:
            raise self.err(why, ("name",), "the name becomes the class and model name")
        desc = d.get("description", "")
        env = self.spec_env = self.params(d.get("params", {}))
        inputs = self.inputs(d["inputs"])
        self.values.update(inputs)
        self.graph_inputs = set(inputs)
        self.blocks = d.get("blocks", {})
        for bname, b in self.blocks.items():
            why = check_identifier(bname)
            if why:
                raise self.err(why, ("blocks", bname), key=True)
            self.check_block(bname, b)
        scope = Scope((), env)
        for iname in inputs:
            scope.names[iname] = iname
            scope.defined[iname] = (("inputs", iname), True)
        if len(inputs) == 1:
            scope.prev = next(iter(inputs))
        layers = d["layers"]
        self.lower_layers(layers, ("layers",), scope)
        outputs = self.outputs(d["outputs"] if "outputs" in d else _ABSENT, scope)
        for bname in self.blocks:
            if bname not in self.used_blocks:
                raise self.err(
                    f"block '{bname}' is not used by any layer",
                    ("blocks", bname),
                    f"remove it, or use it: {{block: {bname}}}",
                    key=True,
                )
        graph = Graph(name, inputs, self.nodes, outputs, desc, self.uses, env)
        graph.blocks = self.block_defs
        graph.param_exprs = self.param_exprs
        self.check_used(graph)
        if "training" in d:
            from .train.lowerplan import lower_training

            graph.training = lower_training(d["training"], graph, env)
        return graph

    def params(self, raw: dict) -> dict[str, Any]:
        for k, v in self.overrides.items():
            if k not in raw:
                guess = did_you_mean(k, raw)
                if guess:
                    hint = f"did you mean '{guess}'?"
                elif raw:
                    hint = "the spec's params: " + ", ".join(raw)
                else:
                    hint = "the spec declares no params"
                raise self.err(
                    f"--set {k}=...: the spec has no param {k!r}",
                    ("params",),
                    hint,
                    key="params" in self.data,
                )
            if isinstance(v, int) and not isinstance(v, bool) and abs(v) > expr.MAX_INT:
                raise self.err(f"--set {k}=...: the integer is out of range", ("params", k))
        env: dict[str, Any] = {}
        for k, v in raw.items():
            written = None if k in self.overrides else self.written(v, ("params", k))
            if written is not None:
                self.param_exprs[k] = written
            v = self.overrides.get(k, v)
            try:
                env[k] = expr.resolve(v, env)
            except expr.ExprError as e:
                hint = e.hint
                if e.name is not None and e.name in raw:
                    e.message = (
                        f"param {e.name!r} is declared below {k!r}; a param can only "
                        "use the params above it"
                    )
                    hint = f"move '{e.name}' above '{k}'"
                raise self.err(e.message, ("params", k), hint) from None
        return env

    def inputs(self, raw: dict) -> dict[str, Value]:
        out: dict[str, Value] = {}
        for iname, spec in raw.items():
            path = ("inputs", iname)
            why = check_identifier(iname)
            if why:
                raise self.err(why, path, name_hint(iname), key=True)
            dims: list = []
            for i, dim in enumerate(spec["shape"]):
                if dim is None:
                    dims.append(f"{iname}_{i + 1}")
                    self.fresh.add(dims[-1])
                elif expr.is_ref(dim):
                    dim = self.resolve(dim, self.spec_env, (*path, "shape", i))
                    if isinstance(dim, float) and dim.is_integer():
                        dim = int(dim)
                    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
                        raise self.err(
                            f"expected a positive size, got {dim!r}", (*path, "shape", i)
                        )
                    dims.append(dim)
                else:  # a size (JSON's 8.0 is 8) or an axis name
                    dims.append(dim if isinstance(dim, str) else int(dim))
            out[iname] = Value(iname, tuple(dims), spec.get("dtype", "float32"))
        if self.dims:
            axes = {d for v in out.values() for d in v.shape if isinstance(d, str)}
            for k in self.dims:
                if k not in axes:
                    raise unknown("dynamic axis", k, axes, ("inputs",))
            for iname, v in out.items():
                shape = tuple(self.dims.get(d, d) if isinstance(d, str) else d for d in v.shape)
                out[iname] = Value(iname, shape, v.dtype)
        return out

    def check_block(self, bname: str, b: dict) -> None:
        path = ("blocks", bname)
        params = b.get("params", {})
        declared = {
            p: BlockParam(p, REQUIRED if v is None else v, self.written(v, (*path, "params", p)))
            for p, v in params.items()
        }
        ins = b.get("inputs", ["x"])
        for i, n in enumerate(ins):
            why = check_identifier(n)
            if why:
                raise self.err(why, (*path, "inputs", i), name_hint(n))
        outs = list(b.get("outputs", ["out"]))
        self.block_defs[bname] = BlockDef(
            bname, declared, list(ins), outs, b.get("description", "")
        )

    # -- layers --------------------------------------------------------------------------
    def lower_layers(self, layers: list, path: Path, scope: Scope) -> None:
        for i, layer in enumerate(layers):
            if isinstance(layer, dict) and isinstance(layer.get("name"), str):
                scope.later.setdefault(layer["name"], (*path, i))
        for i, raw in enumerate(layers):
            lpath = (*path, i)
            if isinstance(raw, str):
                raw = {"op": raw}
            kkey = "block" if "block" in raw else "op"
            kind = raw[kkey]
            if "when" in raw and not self.when(raw, lpath, scope, kind):
                continue
            repeat = self.resolve(raw.get("repeat", 1), scope.env, (*lpath, "repeat"))
            if isinstance(repeat, float) and repeat.is_integer():
                repeat = int(repeat)
            if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
                raise self.err(
                    f"expected a positive integer, got {_show(repeat)}", (*lpath, "repeat")
                )
            if len(self.nodes) + repeat > MAX_NODES:  # each copy is at least one layer
                raise self.too_many(lpath, scope, f" (repeat: {repeat})")
            name = raw.get("name")
            if "name" in raw:
                why = check_identifier(name)
                if why:
                    raise self.err(why, (*lpath, "name"), name_hint(name))
                if repeat > 1:
                    self.check_free(name, lpath, scope, f"'{name}' (the last copy)")
            for copy in range(1, repeat + 1):
                kk = scope.counters[kind] = scope.counters.get(kind, 0) + 1
                if name is None:
                    local = f"{kind}_{kk}"
                    what = (
                        f"'{local}' (the default name of {kind} number {kk} in this scope, "
                        "counting named ones too)"
                    )
                else:
                    local = name if repeat == 1 else f"{name}_{copy}"
                    what = f"'{local}'" + (f" (copy {copy} of {repeat})" if repeat > 1 else "")
                self.check_free(local, lpath, scope, what, name is not None)
                refs = raw.get("inputs") if copy == 1 else None
                if kkey == "block":
                    self.use(raw, lpath, local, refs, scope)
                else:
                    self.layer(raw, lpath, local, refs, scope)
                scope.defined[local] = (lpath, False)
                if len(self.nodes) > MAX_NODES:
                    raise self.too_many(lpath, scope, "")
            if name is not None and repeat > 1:
                scope.names[name] = scope.names[f"{name}_{repeat}"]
                scope.defined[name] = (lpath, False)

    def when(self, raw: dict, lpath: Path, scope: Scope, kind: str) -> bool:
        """A layer's `when:` condition. False: the layer is left out and passes its first input
        on (its name, if any, names that input: a left-out `add` of a residual passes the main
        path on); default names count it all the same, so the layers after it keep theirs."""
        wpath = (*lpath, "when")
        cond = self.resolve(raw["when"], scope.env, wpath)
        if not isinstance(cond, bool):
            raise self.err(
                f"expected true or false, got {_show(cond)}",
                wpath,
                "write a comparison, e.g. when: ${stride > 1}",
            )
        if cond:
            return True
        ins = self.refs(raw.get("inputs"), lpath, scope, None)
        repeat = raw.get("repeat", 1)
        scope.counters[kind] = scope.counters.get(kind, 0) + (
            repeat if isinstance(repeat, int) and not isinstance(repeat, bool) else 1
        )
        name = raw.get("name")
        if name is not None:
            why = check_identifier(name)
            if why:
                raise self.err(why, (*lpath, "name"), name_hint(name))
            if name not in scope.names and name not in scope.multi:  # else an alternative's
                scope.names[name] = ins[0]
                scope.defined[name] = (lpath, False)
                scope.left_out.add(name)
        scope.prev = ins[0]
        return False

    def too_many(self, lpath: Path, scope: Scope, why: str) -> SpecError:
        return self.err(
            f"the spec expands to more than {MAX_NODES:,} layers{why}{scope.context}",
            lpath,
            "check repeat counts and nested blocks",
        )

    def check_free(
        self, local: str, lpath: Path, scope: Scope, what: str, named: bool = True
    ) -> None:
        """Refuse a second definition of a name in one scope, pointing at the first (a layer
        that `when:` left out gives its name up to a later one: alternatives share a name)."""
        if local in scope.left_out:
            scope.left_out.discard(local)
            return
        if local not in scope.names and local not in scope.multi:
            return
        first, key = scope.defined.get(local, ((), False))
        pos = self.where(first, key) if first else None
        at = f" at line {pos[0]}, column {pos[1]}" if pos else ""
        kind = "input" if key else "layer"
        if named:
            npath, hint = (*lpath, "name"), "every input and layer in a scope needs its own name"
        else:
            npath, hint = lpath, "give this layer a name of its own with name:"
        raise self.err(
            f"duplicate name: {what} is already the name of the {kind}{at} "
            f"({path_str(first)})" + scope.context,
            npath,
            hint,
        )

    def refs(self, refs: Any, lpath: Path, scope: Scope, want: int | None) -> list[str]:
        """Resolve a layer's `inputs` (or the default: the layer above) to value names."""
        if refs is None:
            if scope.prev is None:
                if not self.nodes and scope.prefix == ():
                    raise self.err(
                        "the spec has several inputs, so the first layer needs 'inputs:'",
                        lpath,
                        "e.g. inputs: [a, b]",
                    )
                raise self.err("this layer needs 'inputs:' (there is no single layer above)", lpath)
            return [scope.prev]
        if isinstance(refs, str):
            refs = [refs]
        out = []
        for j, r in enumerate(refs):
            rpath = (*lpath, "inputs", j)
            if r in scope.names:
                out.append(scope.names[r])
            elif r in scope.multi:
                raise self.err(
                    f"{r!r} has several outputs; name one of them",
                    rpath,
                    "write " + " or ".join(f"'{r}.{o}'" for o in scope.multi[r]),
                )
            elif r in scope.later and scope.later[r] == lpath:
                raise self.err(
                    f"this layer takes its own output {r!r}: a layer can only take the layers "
                    "above it (a network spec has no cycles)",
                    rpath,
                    "for a recurrence use rnn, lstm or gru; otherwise name an earlier layer",
                )
            elif r in scope.later:
                pos = self.where(scope.later[r])
                at = f" (line {pos[0]})" if pos else ""
                raise self.err(
                    f"{r!r} is defined below this layer{at}: a layer can only take the layers "
                    "above it, so a forward reference or a cycle cannot be written",
                    rpath,
                    f"move this layer below '{r}', or take an earlier layer",
                )
            else:
                hint = None
                head = r.split(".", 1)[0]
                if "." in r and head in scope.names and f"{head}.out" not in scope.names:
                    hint = (
                        f"'{head}' is a block use: only its block's outputs are visible "
                        "outside it (list them under the block's outputs:)"
                    )
                err = unknown("layer or input", r, list(scope.names), rpath)
                if hint and not (err.hint or "").startswith("did you mean"):
                    err.hint = hint
                raise err
        return out

    def layer(self, raw: dict, lpath: Path, local: str, refs: Any, scope: Scope) -> None:
        opname = raw["op"]
        d = OPS[opname]
        attrs: dict[str, Any] = {}
        exprs: dict[str, Any] = {}
        for a in d.attrs.values():
            apath = (*lpath, a.name)
            if a.name not in raw:
                attrs[a.name] = a.default
                continue
            # the schema checked literal values; a value an expression gave is checked here
            v = self.resolve(raw[a.name], scope.env, apath)
            if a.kind == "activation":
                attrs[a.name] = self.activation(v, apath, scope, opname)
            else:
                try:
                    attrs[a.name] = a.check(v)
                except Invalid as e:
                    hint = e.hint or _slash_hint(raw[a.name], v)
                    raise self.err(e.message, apath, hint) from None
            written = self.written(raw[a.name], apath)
            if written is not None:
                exprs[a.name] = written
        ins = self.refs(refs, lpath, scope, d.max_inputs)
        n = len(ins)
        if n < d.min_inputs or (d.max_inputs is not None and n > d.max_inputs):
            if d.max_inputs == d.min_inputs:
                need = f"exactly {d.min_inputs}"
            elif d.max_inputs is None:
                need = f"at least {d.min_inputs}"
            else:
                need = f"{d.min_inputs} to {d.max_inputs}"
            ipath = (*lpath, "inputs") if "inputs" in raw else lpath
            raise self.err(
                f"{opname} takes {need} input{'s' if need != 'exactly 1' else ''}, got {n}", ipath
            )
        values = [self.values[v] for v in ins]
        for v in values:
            if v.dtype != d.input_dtype:
                if d.input_dtype == "int64":
                    continue  # the rule says what it needs
                raise self.err(
                    f"{opname} takes float32 values, but '{v.name}' is {v.dtype}",
                    lpath,
                    "int64 token ids go through an embedding layer first",
                )
        full = scope.full(local)
        ctx = Ctx(full, opname, attrs, values, lpath)
        ctx.fresh = self.fresh
        try:
            shape = d.rule(ctx)
        except SpecError as e:
            if scope.context and scope.context not in e.message:
                e.message += scope.context
            if e.note is None and ("conv" in opname or "pool" in opname):
                e.note = self.channels_last_note()
            raise
        act = attrs.get("activation")
        if act and "axis" in act:  # softmax/log_softmax on dense: normalize like the op does
            rank = len(shape)
            ax = act["axis"] + rank + 1 if act["axis"] < 0 else act["axis"]
            if not 1 <= ax <= rank:
                raise self.err(
                    f"axis {act['axis']} is out of range for an output of "
                    f"per-example rank {rank} (axis 0 is the batch; valid: "
                    f"1..{rank} or -{rank}..-1)",
                    (*lpath, "activation"),
                )
            act["axis"] = ax
        node = Node(
            full,
            opname,
            attrs,
            ins,
            tuple(shape),
            ctx.dtype,
            ctx.params,
            ctx.buffers,
            ctx.macs,
            scope.prefix,
            exprs=exprs,
        )
        if "shares" in raw:
            node.shares = self.layer_owner(raw["shares"], node, lpath, scope)
        self.add(node, lpath)
        scope.names[local] = full
        scope.prev = full

    def channels_last_note(self) -> str | None:
        """When a convolution or pooling fails and an image input looks channels-last
        (`[8, 8, 1]`: a last axis of 1 to 4 smaller than the first), say that shapes are
        channels-first."""
        for name in sorted(self.graph_inputs):
            shape = self.values[name].shape
            if (
                len(shape) in (2, 3, 4)
                and all(isinstance(d, int) for d in shape)
                and 1 <= shape[-1] <= 4 < shape[0]
            ):
                first = [shape[-1], *shape[:-1]]
                return (
                    f"shapes are channels-first ([C, H, W]); input '{name}' is {list(shape)}, "
                    f"which looks channels-last: write {first}"
                )
        return None

    def add(self, node: Node, lpath: Path) -> None:
        known = [d for d in node.shape if isinstance(d, int) and not isinstance(d, bool)]
        if known and (max(known) > expr.MAX_INT or math.prod(known) > expr.MAX_INT):
            raise self.err(
                f"the output shape {list(node.shape)} is too large: sizes are 64-bit "
                f"integers (at most 2**63 - 1 values per example)",
                lpath,
                "check the padding, stride, kernel or units: one of them is far too large",
            )
        if not node.shares:
            self.total_params += node.param_count + node.buffer_count
        if self.total_params > self.max_params:
            raise self.err(
                f"the weights would need {self.total_params:,} numbers "
                f"({_gb(self.total_params)} of float32), more than the limit of "
                f"{self.max_params:,} ({_gb(self.max_params)})",
                lpath,
                "make the layers smaller, or raise the limit with --max-params N if this is "
                "intended",
            )
        node.loc = self.where(lpath)
        self.nodes.append(node)
        self.node_by_name[node.name] = node
        self.values[node.name] = Value(node.name, node.shape, node.dtype)
        self.node_paths[node.name] = lpath

    def activation(self, v: Any, path: Path, scope: Scope, op: str) -> dict | None:
        """Normalize `activation:` to None or {op: name, **attrs with defaults}."""
        if v is None:
            return None
        structure.check_activation(v, path, op)  # a value given by a param is checked here
        if isinstance(v, str):
            v = {"op": v}
        out: dict[str, Any] = {"op": v["op"]}
        for a in OPS[v["op"]].attrs.values():
            if a.name in v:
                val = self.resolve(v[a.name], scope.env, (*path, a.name))
                try:
                    out[a.name] = a.check(val)
                except Invalid as e:
                    raise self.err(e.message, (*path, a.name), e.hint) from None
            else:
                out[a.name] = a.default
        return out

    # -- shared weights ------------------------------------------------------------------
    def owner_name(self, name: str, what: str, lpath: Path, scope: Scope) -> str:
        """The full name of the earlier layer or block use `shares: name` names in this scope."""
        spath = (*lpath, "shares")
        full = scope.full(name)
        if name in scope.later and name not in scope.names and name not in scope.multi:
            raise self.err(
                f"shares: {name!r} is defined below this {what}: only an earlier one's weights "
                "can be shared",
                spath,
                f"move this {what} below '{name}'",
            )
        if name not in scope.names and name not in scope.multi:
            here = [n for n in scope.names if n not in self.graph_inputs]
            err = unknown(what, name, here, spath)
            if not err.hint:
                err.hint = f"shares: names an earlier {what} of this scope" + (
                    " (" + ", ".join(here[:6]) + ")" if here else ", and there is none"
                )
            raise err
        if name in self.graph_inputs or (full not in self.uses and scope.names.get(name) != full):
            raise self.err(
                f"shares: {name!r} is not a {what} in this scope" + scope.context,
                spath,
                f"name an earlier {what} of this scope whose weights this one should apply",
            )
        return full

    def layer_owner(self, name: str, node: Node, lpath: Path, scope: Scope) -> str:
        spath = (*lpath, "shares")
        full = self.owner_name(name, "layer", lpath, scope)
        if full in self.uses:
            raise self.err(
                f"shares: {name!r} is a block use; a layer shares another layer's weights",
                spath,
                "to share a whole block, write shares: on a block use of the same block",
            )
        owner = self.node_by_name[full]
        self.check_same(owner, node, spath, name)
        return owner.shares or owner.name

    def check_same(self, owner: Node, node: Node, spath: Path, name: str) -> None:
        if owner.op != node.op:
            raise self.err(
                f"shares: {name!r} is a {owner.op} layer; a {node.op} cannot apply its weights",
                spath,
                f"name an earlier {node.op} layer",
            )
        if not node.params and not node.buffers:
            raise self.err(
                f"shares: a {node.op} layer has no weights to share",
                spath,
                "remove shares:",
            )
        mine = {k: v for k, v in node.attrs.items() if k != "init"}
        theirs = {k: v for k, v in owner.attrs.items() if k != "init"}
        diff = [k for k in mine if mine[k] != theirs.get(k)]
        if diff or {**node.params, **node.buffers} != {**owner.params, **owner.buffers}:
            what = (
                f"attribute {diff[0]!r} differs ({_show(theirs.get(diff[0]))} there, "
                f"{_show(mine[diff[0]])} here)"
                if diff
                else "the weight shapes differ (its input has another shape)"
            )
            raise self.err(
                f"shares: {owner.name!r} cannot lend its weights to this layer: {what}",
                spath,
                "a layer that shares weights needs the same attributes and input shape",
            )

    def share_use(self, name: str, use: BlockUse, nodes: list[Node], lpath: Path, scope: Scope):
        """Make every node of `use` (nested ones too) apply the same node of the owner use."""
        spath = (*lpath, "shares")
        full = self.owner_name(name, "block use", lpath, scope)
        owner = self.uses.get(full)
        if owner is None:
            raise self.err(
                f"shares: {name!r} is a layer; a block use shares another use's weights",
                spath,
                "to share one layer, write shares: on a layer",
            )
        if owner.block != use.block or owner.params != use.params:
            why = (
                f"it is a use of block '{owner.block}'"
                if owner.block != use.block
                else "its block params differ"
            )
            raise self.err(
                f"shares: {name!r} cannot lend its weights to this use of '{use.block}': {why}",
                spath,
                "a block use that shares weights needs the same block and params",
            )
        use.shares = owner.shares or owner.name
        k = len(use.name)
        for node in nodes:
            twin = self.node_by_name.get(owner.name + node.name[k:])
            if twin is None:
                raise self.err(
                    f"shares: {name!r} has no layer {node.name[k + 1 :]!r} (a when: "
                    "condition left it out there)",
                    spath,
                    "a block use that shares weights needs the same layers",
                )
            if node.params or node.buffers:
                self.check_same(twin, node, spath, name)
                node.shares = twin.shares or twin.name
                self.total_params -= node.param_count + node.buffer_count

    # -- blocks --------------------------------------------------------------------------
    def use(self, raw: dict, lpath: Path, local: str, refs: Any, scope: Scope) -> None:
        bname = raw["block"]
        if bname not in self.blocks:
            if bname in OPS:
                raise self.err(
                    f"{bname!r} is an op, not a block", (*lpath, "block"), f"write op: {bname}"
                )
            raise unknown("block", bname, self.blocks, (*lpath, "block"))
        if bname in self.block_stack:
            chain = " -> ".join([*self.block_stack, bname])
            raise self.err(
                f"block {bname!r} uses itself ({chain}), which would never end",
                (*lpath, "block"),
                "a block can use other blocks, but not itself",
            )
        if len(self.block_stack) >= MAX_BLOCK_DEPTH:
            raise self.err(
                f"blocks nested more than {MAX_BLOCK_DEPTH} levels deep "
                f"({' -> '.join(self.block_stack[:3])} -> ...)",
                (*lpath, "block"),
                "flatten some of the blocks into their users",
            )
        b = self.blocks[bname]
        bpath = ("blocks", bname)
        declared = b.get("params", {})
        self.used_blocks.add(bname)
        for k in raw:
            if k not in USE_KEYS and k not in declared:
                guess = did_you_mean(k, [*declared, *USE_KEYS])
                if guess:
                    hint = f"did you mean '{guess}'?"
                elif declared:
                    hint = f"block '{bname}' takes: " + ", ".join(declared)
                else:
                    hint = f"block '{bname}' has no params"
                raise self.err(f"block '{bname}' has no param {k!r}", (*lpath, k), hint, key=True)
        params: dict[str, Any] = {}
        args: dict[str, Any] = {}
        benv = {**self.spec_env}
        for p, default in declared.items():
            if p in raw:
                params[p] = self.resolve(raw[p], scope.env, (*lpath, p))
                written = self.written(raw[p], (*lpath, p))
                if written is not None:
                    args[p] = written
            elif default is None:
                pos = self.where((*bpath, "params", p), True)
                at = f" at line {pos[0]}" if pos else ""
                raise self.err(
                    f"missing block param '{p}': block '{bname}' declares it "
                    f"null{at}, so every use must give it",
                    lpath,
                    f"e.g. {{block: {bname}, {p}: ...}}",
                )
            else:
                params[p] = self.resolve(default, {**benv, **params}, (*bpath, "params", p))
        inames = b.get("inputs", ["x"])
        if refs is None and len(inames) > 1:
            raise self.err(
                f"block '{bname}' takes {len(inames)} inputs ({', '.join(inames)}); "
                "give them with 'inputs:'",
                lpath,
            )
        ins = self.refs(refs, lpath, scope, None)
        if len(ins) != len(inames):
            raise self.err(
                f"block '{bname}' takes {len(inames)} input(s) "
                f"({', '.join(inames)}), got {len(ins)}",
                (*lpath, "inputs"),
            )
        full = scope.full(local)
        inner = Scope((*scope.prefix, local), {**benv, **params})
        inner.context = f" (in block use '{full}' at {path_str(lpath)})"
        for j, (iname, v) in enumerate(zip(inames, ins, strict=True)):
            inner.names[iname] = v
            inner.defined[iname] = ((*bpath, "inputs", j) if "inputs" in b else bpath, False)
        inner.prev = ins[0] if len(ins) == 1 else None
        start_nodes = len(self.nodes)
        use = BlockUse(full, bname, params, ins, list(inames), {}, [], [], scope.prefix, args)
        self.uses[full] = use
        if scope.prefix:  # nested: the enclosing use lists it (in spec order)
            self.uses[".".join(scope.prefix)].uses.append(full)
        self.block_stack.append(bname)
        self.lower_layers(b["layers"], (*bpath, "layers"), inner)
        self.block_stack.pop()
        use.nodes = [n.name for n in self.nodes[start_nodes:] if n.scope == inner.prefix]
        if "shares" in raw:
            self.share_use(raw["shares"], use, self.nodes[start_nodes:], lpath, scope)
        outs = b.get("outputs")
        if outs is None:
            last = inner.prev
            if last is None or last in ins:
                raise self.err(f"block '{bname}' has no layer to output", bpath)
            use.outputs = {"out": last}
            scope.names[local] = last
        else:
            for j, o in enumerate(outs):
                if o not in inner.names:
                    raise unknown("block output", o, list(inner.names), (*bpath, "outputs", j))
                use.outputs[o] = inner.names[o]
            if len(outs) == 1:
                scope.names[local] = use.outputs[outs[0]]
            else:
                scope.multi[local] = list(outs)
                for o in outs:
                    scope.names[f"{local}.{o}"] = use.outputs[o]
        scope.prev = scope.names.get(local)

    # -- outputs and reachability --------------------------------------------------------
    def outputs(self, raw: Any, scope: Scope) -> dict[str, str]:
        if raw is _ABSENT:
            if scope.prev is None:
                last = self.data["layers"][-1]
                nm = last.get("name") if isinstance(last, dict) else None
                raise self.err(
                    "the last layer has several outputs, so 'outputs:' must name them",
                    ("layers",),
                    f"e.g. outputs: [{nm or '...'}.out1, ...]",
                )
            local = next(k for k, v in reversed(scope.names.items()) if v == scope.prev)
            return {local: scope.prev}
        items: list[tuple[str, str, Path]]
        if isinstance(raw, list):
            items = [(r, r, ("outputs", j)) for j, r in enumerate(raw)]
        elif isinstance(raw, dict):
            items = [(k, v, ("outputs", k)) for k, v in raw.items()]
        else:
            items = [(raw, raw, ("outputs",))]
        out: dict[str, str] = {}
        for oname, ref, opath in items:
            if isinstance(raw, dict):
                why = check_identifier(oname)
                if why:
                    raise self.err(why, opath, name_hint(oname), key=True)
            if ref in scope.multi:
                raise self.err(
                    f"{ref!r} has several outputs; name one of them",
                    opath,
                    "write " + " or ".join(f"'{ref}.{o}'" for o in scope.multi[ref]),
                )
            if ref not in scope.names:
                raise unknown("layer or input", ref, list(scope.names), opath)
            if oname in out:
                raise self.err(f"duplicate output {oname!r}", opath)
            if oname in self.graph_inputs and scope.names[ref] != oname:
                # ONNX and Keras share one namespace for graph inputs and outputs
                raise self.err(
                    f"output name {oname!r} is also the name of an input",
                    opath,
                    hint="give the output another name",
                    key=isinstance(raw, dict),
                )
            out[oname] = scope.names[ref]
        return out

    def check_used(self, graph: Graph) -> None:
        needed: set[str] = set(graph.outputs.values())
        for n in reversed(graph.nodes):
            if n.name in needed:
                needed.update(n.inputs)
        for iname in graph.inputs:
            if iname not in needed:
                raise self.err(
                    f"input '{iname}' is not used by any output",
                    ("inputs", iname),
                    "remove it, or feed it to a layer",
                    key=True,
                )
        for n in graph.nodes:
            if n.name not in needed:
                raise SpecError(
                    f"layer '{n.name}' does not feed any output",
                    self.node_paths[n.name],
                    hint="remove it, list it under outputs:, or use it as an input",
                )


def lower(
    data: Any,
    overrides: dict[str, Any] | None = None,
    max_params: int = MAX_PARAMS,
    where=None,
    dims: dict[str, int] | None = None,
) -> Graph:
    """Lower parsed spec data to a Graph; raises SpecError with a YAML path. `where(path)`
    gives a layer's (line, col) for `Node.loc`. `dims` gives sizes to the inputs' dynamic
    axes (`seq`, or `x_2` for the second axis of input `x` written `null`), for `inspect`."""
    low = Lowerer(data, overrides, max_params, where)
    low.dims = dict(dims or {})
    return low.run()


def spec_hash(text: str, params: dict[str, Any]) -> str:
    h = hashlib.sha256(text.encode("utf-8"))
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _gb(numbers: int) -> str:
    if numbers.bit_length() > 1000:  # a float cannot hold it
        return "over 1e290 GB"
    gb = numbers * 4 / 1e9
    return f"{gb:.1f} GB" if gb < 1e4 else f"{gb:.3g} GB"


_ABSENT = object()  # an optional key that is not there


def _slash_hint(raw: Any, v: Any) -> str | None:
    if isinstance(v, float) and isinstance(raw, str) and "/" in raw and "//" not in raw:
        return "'/' gives a float; use '//' for integer division"
    return None
