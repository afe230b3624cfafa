"""Lowering a parsed spec into the IR: params, blocks, repeat, references, attributes, shapes.

Every check reports the YAML path of the offending node; `load()` turns paths into file, line
and column. Layers are lowered top to bottom, so a reference can only name something earlier:
cycles cannot be written, and a forward reference is reported as one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from . import expr
from .errors import Path, SpecError, path_str, unknown
from .ir import BlockUse, Graph, Node, Value
from .names import check_identifier
from .ops import ACTIVATIONS, OPS, Ctx, Invalid

TOP_KEYS = ["netspec", "name", "description", "params", "inputs", "blocks", "layers", "outputs"]
LAYER_KEYS = ["op", "name", "inputs", "repeat"]
USE_KEYS = ["block", "name", "inputs", "repeat"]
BLOCK_KEYS = ["params", "inputs", "layers", "outputs", "description"]
DTYPES = ["float32", "int64"]
MAX_NODES = 100_000
MAX_PARAMS = 1_000_000_000  # refused above this unless raised (4 GB of float32 weights)
NO_CONV_ACT = {"softmax", "log_softmax"}


@dataclass
class Scope:
    """Names visible while lowering one list of layers (the top level or a block body)."""

    prefix: tuple[str, ...]  # enclosing use names
    env: dict[str, Any]  # params visible here
    names: dict[str, str] = field(default_factory=dict)  # local name -> value name
    multi: dict[str, list[str]] = field(default_factory=dict)  # use with several outputs
    later: set[str] = field(default_factory=set)  # names defined further down (for messages)
    counters: dict[str, int] = field(default_factory=dict)
    prev: str | None = None
    context: str = ""  # " (in block use 'basic_2')" for errors inside block bodies

    def full(self, local: str) -> str:
        return ".".join((*self.prefix, local))


class Lowerer:
    def __init__(self, data: Any, overrides: dict[str, Any] | None, max_params: int,
                 where=None):
        self.where = where or (lambda path: None)
        self.data = data
        self.overrides = overrides or {}
        self.max_params = max_params
        self.nodes: list[Node] = []
        self.uses: dict[str, BlockUse] = {}
        self.block_stack: list[str] = []
        self.total_params = 0
        self.values: dict[str, Value] = {}
        self.node_paths: dict[str, Path] = {}
        self.spec_env: dict[str, Any] = {}
        self.blocks: dict[str, Any] = {}

    # -- helpers -------------------------------------------------------------------------
    def err(self, msg: str, path: Path, hint: str | None = None, key: bool = False) -> SpecError:
        return SpecError(msg, path, hint=hint, key=key)

    def mapping(self, v: Any, path: Path, what: str) -> dict:
        if not isinstance(v, dict):
            raise self.err(f"expected {what} (a mapping), got {_kind(v)}", path)
        return v

    def keys(self, m: dict, allowed: list[str], path: Path, what: str) -> None:
        for k in m:
            if k not in allowed:
                raise unknown(f"key in {what}", k, allowed, (*path, k), key=True)

    def resolve(self, v: Any, env: dict, path: Path) -> Any:
        try:
            return expr.resolve(v, env)
        except expr.ExprError as e:
            raise self.err(e.message, path, e.hint) from None

    # -- top level -----------------------------------------------------------------------
    def run(self) -> Graph:
        d = self.data
        if not isinstance(d, dict):
            raise self.err(f"a spec is a mapping with netspec, name, inputs and layers; got "
                           f"{_kind(d)}", ())
        self.keys(d, TOP_KEYS, (), "the spec")
        for k in ("netspec", "name", "inputs", "layers"):
            if k not in d:
                raise self.err(f"missing required key '{k}'", (), _TOP_HINTS[k])
        if d["netspec"] != 1:
            raise self.err(f"unsupported format version {d['netspec']!r}; this netspec reads "
                           "version 1", ("netspec",), "write netspec: 1")
        name = d["name"]
        why = check_identifier(name)
        if why:
            raise self.err(why, ("name",), "the name becomes the class and model name")
        desc = d.get("description", "")
        if desc is None:
            desc = ""
        if not isinstance(desc, str):
            raise self.err(f"expected a string, got {_kind(desc)}", ("description",))
        env = self.spec_env = self.params(d.get("params"))
        inputs = self.inputs(d["inputs"])
        self.values.update(inputs)
        self.blocks = self.mapping(d.get("blocks") or {}, ("blocks",), "blocks")
        for bname, b in self.blocks.items():
            why = check_identifier(bname)
            if why:
                raise self.err(why, ("blocks", bname), key=True)
            if bname in OPS:
                raise self.err(f"block name {bname!r} is also an op", ("blocks", bname),
                               key=True)
            self.check_block(bname, b)
        scope = Scope((), env)
        for iname, v in inputs.items():
            scope.names[iname] = iname
        if len(inputs) == 1:
            scope.prev = next(iter(inputs))
        layers = d["layers"]
        self.lower_layers(layers, ("layers",), scope)
        outputs = self.outputs(d.get("outputs"), scope)
        graph = Graph(name, inputs, self.nodes, outputs, desc, self.uses, env)
        self.check_used(graph)
        return graph

    def params(self, raw: Any) -> dict[str, Any]:
        raw = self.mapping(raw or {}, ("params",), "params")
        for k in self.overrides:
            if k not in raw:
                raise unknown("param in --set", k, raw, ("params",))
        env: dict[str, Any] = {}
        for k, v in raw.items():
            if not isinstance(k, str) or not expr.NAME.match(k):
                raise self.err(f"{k!r} is not a valid param name", ("params", k), key=True)
            v = self.overrides.get(k, v)
            env[k] = self.resolve(v, env, ("params", k))
        return env

    def inputs(self, raw: Any) -> dict[str, Value]:
        raw = self.mapping(raw, ("inputs",), "inputs")
        if not raw:
            raise self.err("a spec needs at least one input", ("inputs",))
        out: dict[str, Value] = {}
        fresh = 0
        for iname, spec in raw.items():
            path = ("inputs", iname)
            why = check_identifier(iname)
            if why:
                raise self.err(why, path, key=True)
            spec = self.mapping(spec, path, "an input such as {shape: [3, 32, 32]}")
            self.keys(spec, ["shape", "dtype"], path, "an input")
            if "shape" not in spec:
                raise self.err("missing 'shape'", path, "per-example shape, e.g. shape: [8]")
            shape = spec["shape"]
            if not isinstance(shape, list) or not shape:
                raise self.err(f"expected a list of per-example sizes, got {_kind(shape)}",
                               (*path, "shape"), "e.g. [3, 224, 224]; null for a dynamic axis")
            dims: list = []
            for i, dim in enumerate(shape):
                if dim is None:
                    fresh += 1
                    dims.append(f"{iname}_{i + 1}")
                elif isinstance(dim, bool) or not isinstance(dim, (int, str)) or (
                    isinstance(dim, int) and dim < 1
                ):
                    raise self.err(f"expected a positive size, null or an axis name, got "
                                   f"{dim!r}", (*path, "shape", i))
                elif isinstance(dim, str):
                    if expr.is_ref(dim):
                        dim = self.resolve(dim, self.spec_env, (*path, "shape", i))
                        if isinstance(dim, float) and dim.is_integer():
                            dim = int(dim)
                        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
                            raise self.err(f"expected a positive size, got {dim!r}",
                                           (*path, "shape", i))
                    elif not expr.NAME.match(dim):
                        raise self.err(f"{dim!r} is not a valid axis name", (*path, "shape", i))
                    dims.append(dim)
                else:
                    dims.append(dim)
            dtype = spec.get("dtype", "float32")
            if dtype not in DTYPES:
                raise unknown("dtype", dtype, DTYPES, (*path, "dtype"))
            out[iname] = Value(iname, tuple(dims), dtype)
        return out

    def check_block(self, bname: str, b: Any) -> None:
        path = ("blocks", bname)
        b = self.mapping(b, path, "a block")
        self.keys(b, BLOCK_KEYS, path, "a block")
        if "layers" not in b:
            raise self.err("missing 'layers'", path)
        params = self.mapping(b.get("params") or {}, (*path, "params"), "block params")
        for p in params:
            if p in USE_KEYS:
                raise self.err(f"a block param cannot be called {p!r} (it is a key of every "
                               "block use)", (*path, "params", p), key=True)
            if not isinstance(p, str) or not expr.NAME.match(p):
                raise self.err(f"{p!r} is not a valid param name", (*path, "params", p),
                               key=True)
        ins = b.get("inputs", ["x"])
        if not isinstance(ins, list) or not ins:
            raise self.err("expected a list of input names", (*path, "inputs"))
        for i, n in enumerate(ins):
            why = check_identifier(n)
            if why:
                raise self.err(why, (*path, "inputs", i))
        if len(set(ins)) != len(ins):
            raise self.err("block input names must be unique", (*path, "inputs"))
        if not isinstance(b["layers"], list) or not b["layers"]:
            raise self.err("expected a non-empty list of layers", (*path, "layers"))

    # -- layers --------------------------------------------------------------------------
    def lower_layers(self, layers: Any, path: Path, scope: Scope) -> None:
        if not isinstance(layers, list) or not layers:
            raise self.err(f"expected a non-empty list of layers, got {_kind(layers)}", path)
        for i, layer in enumerate(layers):
            if isinstance(layer, dict) and isinstance(layer.get("name"), str):
                scope.later.add(layer["name"])
        for i, raw in enumerate(layers):
            lpath = (*path, i)
            if isinstance(raw, str):
                raw = {"op": raw}
            elif not isinstance(raw, dict):
                raise self.err(f"a layer is an op name or a mapping, got {_kind(raw)}", lpath)
            if "block" in raw and "op" in raw:
                raise self.err("a layer has either 'op' or 'block', not both", lpath)
            if "block" not in raw and "op" not in raw:
                raise self.err("a layer needs 'op' (or 'block' for a block use)", lpath,
                               "e.g. {op: dense, units: 8}")
            repeat = self.resolve(raw.get("repeat", 1), scope.env, (*lpath, "repeat"))
            if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
                raise self.err(f"expected a positive integer, got {repeat!r}",
                               (*lpath, "repeat"))
            name = raw.get("name")
            if name is not None:
                why = check_identifier(name)
                if why:
                    raise self.err(why, (*lpath, "name"))
            kind = raw.get("block") if "block" in raw else raw["op"]
            for copy in range(1, repeat + 1):
                kk = scope.counters[kind] = scope.counters.get(kind, 0) + 1
                if name is None:
                    local = f"{kind}_{kk}"
                else:
                    local = name if repeat == 1 else f"{name}_{copy}"
                if local in scope.names or local in scope.multi:
                    raise self.err(f"duplicate name {local!r} in this scope", (*lpath, "name"),
                                   "every input and layer needs its own name")
                refs = raw.get("inputs") if copy == 1 else None
                if "block" in raw:
                    self.use(raw, lpath, local, refs, scope)
                else:
                    self.layer(raw, lpath, local, refs, scope)
                if len(self.nodes) > MAX_NODES:
                    raise self.err(f"the spec expands to more than {MAX_NODES:,} layers",
                                   lpath, "check repeat counts and nested blocks")
            if name is not None and repeat > 1:
                scope.names[name] = scope.names[f"{name}_{repeat}"]

    def refs(self, refs: Any, lpath: Path, scope: Scope, want: int | None) -> list[str]:
        """Resolve a layer's `inputs` (or the default: the layer above) to value names."""
        if refs is None:
            if scope.prev is None:
                if not self.nodes and scope.prefix == ():
                    raise self.err("the spec has several inputs, so the first layer needs "
                                   "'inputs:'", lpath, "e.g. inputs: [a, b]")
                raise self.err("this layer needs 'inputs:' (there is no single layer above)",
                               lpath)
            return [scope.prev]
        if isinstance(refs, str):
            refs = [refs]
        if not isinstance(refs, list) or not refs:
            raise self.err(f"expected a list of names, got {_kind(refs)}", (*lpath, "inputs"))
        out = []
        for j, r in enumerate(refs):
            rpath = (*lpath, "inputs", j)
            if not isinstance(r, str):
                raise self.err(f"expected a name, got {r!r}", rpath)
            if r in scope.names:
                out.append(scope.names[r])
            elif r in scope.multi:
                raise self.err(
                    f"{r!r} has several outputs; name one of them",
                    rpath,
                    "write " + " or ".join(f"'{r}.{o}'" for o in scope.multi[r]),
                )
            elif r in scope.later:
                raise self.err(
                    f"{r!r} is defined below this layer: a layer can only take earlier layers "
                    "(this would be a cycle or a forward reference)",
                    rpath,
                )
            else:
                raise unknown("reference", r, list(scope.names), rpath)
        return out

    def layer(self, raw: dict, lpath: Path, local: str, refs: Any, scope: Scope) -> None:
        opname = raw["op"]
        if opname not in OPS:
            if isinstance(opname, str) and opname in self.blocks:
                raise self.err(f"{opname!r} is a block, not an op", (*lpath, "op"),
                               f"write block: {opname}")
            raise unknown("op", opname, OPS, (*lpath, "op"))
        d = OPS[opname]
        allowed = [*LAYER_KEYS, *d.attrs]
        self.keys(raw, allowed, lpath, f"a {opname} layer")
        attrs: dict[str, Any] = {}
        for a in d.attrs.values():
            apath = (*lpath, a.name)
            if a.name not in raw:
                if a.required:
                    raise self.err(f"missing required attribute '{a.name}' ({a.expected()})",
                                   lpath, f"e.g. {{op: {opname}, {a.name}: ...}}")
                attrs[a.name] = a.default
                continue
            v = self.resolve(raw[a.name], scope.env, apath)
            try:
                attrs[a.name] = a.check(v)
            except Invalid as e:
                raise self.err(e.message, apath, e.hint) from None
            if a.kind == "activation":
                attrs[a.name] = self.activation(v, apath, scope, conv=opname != "dense")
        if attrs.get("activation") is not None and isinstance(attrs["activation"], str):
            attrs["activation"] = self.activation(attrs["activation"], lpath, scope, False)
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
            raise self.err(f"{opname} takes {need} input{'s' if need != 'exactly 1' else ''}, "
                           f"got {n}", ipath)
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
        try:
            shape = d.rule(ctx)
        except SpecError as e:
            if scope.context and scope.context not in e.message:
                e.message += scope.context
            raise
        act = attrs.get("activation")
        if act and "axis" in act:  # softmax/log_softmax on dense: normalize like the op does
            rank = len(shape)
            ax = act["axis"] + rank + 1 if act["axis"] < 0 else act["axis"]
            if not 1 <= ax <= rank:
                raise self.err(f"axis {act['axis']} is out of range for an output of "
                               f"per-example rank {rank}", (*lpath, "activation"))
            act["axis"] = ax
        node = Node(full, opname, attrs, ins, tuple(shape), ctx.dtype, ctx.params, ctx.buffers,
                    ctx.macs, scope.prefix)
        self.add(node, lpath)
        scope.names[local] = full
        scope.prev = full

    def add(self, node: Node, lpath: Path) -> None:
        self.total_params += node.param_count + node.buffer_count
        if self.total_params > self.max_params:
            gb = self.total_params * 4 / 1e9
            raise self.err(
                f"the weights would need {self.total_params:,} numbers ({gb:.1f} GB of float32), "
                f"more than the limit of {self.max_params:,}",
                lpath,
                "raise the limit with --max-params if this is intended",
            )
        node.loc = self.where(lpath)
        self.nodes.append(node)
        self.values[node.name] = Value(node.name, node.shape, node.dtype)
        self.node_paths[node.name] = lpath

    def activation(self, v: Any, path: Path, scope: Scope, conv: bool) -> dict | None:
        """Normalize `activation:` to None or {op: name, **attrs with defaults}."""
        if v is None:
            return None
        if isinstance(v, str):
            v = {"op": v}
        if not isinstance(v, dict) or "op" not in v:
            raise self.err("expected an activation op's name or a mapping with 'op'", path)
        name = v["op"]
        if name == "prelu":
            raise self.err("prelu has weights, so it cannot be an activation attribute",
                           path, "write a prelu layer after this one")
        if name not in ACTIVATIONS:
            raise unknown("activation", name, ACTIVATIONS, path)
        if conv and name in NO_CONV_ACT:
            raise self.err(f"{name} is not allowed as a conv activation", path,
                           f"write a {name} layer with its axis")
        d = OPS[name]
        self.keys(v, ["op", *d.attrs], path, f"a {name} activation")
        out: dict[str, Any] = {"op": name}
        for a in d.attrs.values():
            if a.name in v:
                val = self.resolve(v[a.name], scope.env, (*path, a.name))
                try:
                    out[a.name] = a.check(val)
                except Invalid as e:
                    raise self.err(e.message, (*path, a.name), e.hint) from None
            else:
                out[a.name] = a.default
        return out

    # -- blocks --------------------------------------------------------------------------
    def use(self, raw: dict, lpath: Path, local: str, refs: Any, scope: Scope) -> None:
        bname = raw["block"]
        if bname not in self.blocks:
            hint_ops = isinstance(bname, str) and bname in OPS
            if hint_ops:
                raise self.err(f"{bname!r} is an op, not a block", (*lpath, "block"),
                               f"write op: {bname}")
            raise unknown("block", bname, self.blocks, (*lpath, "block"))
        if bname in self.block_stack:
            chain = " -> ".join([*self.block_stack, bname])
            raise self.err(f"block {bname!r} uses itself ({chain})", (*lpath, "block"))
        b = self.blocks[bname]
        bpath = ("blocks", bname)
        declared = b.get("params") or {}
        for k in raw:
            if k not in USE_KEYS and k not in declared:
                raise unknown(f"param of block '{bname}'", k, declared, (*lpath, k), key=True)
        params: dict[str, Any] = {}
        benv = {**self.spec_env}
        for p, default in declared.items():
            if p in raw:
                params[p] = self.resolve(raw[p], scope.env, (*lpath, p))
            elif default is None:
                raise self.err(f"missing block param '{p}' (block '{bname}' requires it)",
                               lpath, f"e.g. {{block: {bname}, {p}: ...}}")
            else:
                params[p] = self.resolve(default, {**benv, **params},
                                         (*bpath, "params", p))
        inames = b.get("inputs", ["x"])
        if refs is None and len(inames) > 1:
            raise self.err(f"block '{bname}' takes {len(inames)} inputs ({', '.join(inames)}); "
                           "give them with 'inputs:'", lpath)
        ins = self.refs(refs, lpath, scope, None)
        if len(ins) != len(inames):
            raise self.err(f"block '{bname}' takes {len(inames)} input(s) "
                           f"({', '.join(inames)}), got {len(ins)}", (*lpath, "inputs"))
        full = scope.full(local)
        inner = Scope((*scope.prefix, local), {**benv, **params})
        inner.context = f" (in block use '{full}' at {path_str(lpath)})"
        for iname, v in zip(inames, ins, strict=True):
            inner.names[iname] = v
        inner.prev = ins[0] if len(ins) == 1 else None
        start_nodes = len(self.nodes)
        use = BlockUse(full, bname, params, ins, list(inames), {}, [], [], scope.prefix)
        self.uses[full] = use
        self.block_stack.append(bname)
        self.lower_layers(b["layers"], (*bpath, "layers"), inner)
        self.block_stack.pop()
        use.nodes = [n.name for n in self.nodes[start_nodes:] if n.scope == inner.prefix]
        use.uses = [u for u in self.uses if self.uses[u].scope == inner.prefix]
        outs = b.get("outputs")
        if outs is None:
            last = inner.prev
            if last is None or last in ins:
                raise self.err(f"block '{bname}' has no layer to output", bpath)
            use.outputs = {"out": last}
            scope.names[local] = last
        else:
            if not isinstance(outs, list) or not outs:
                raise self.err("expected a list of layer names", (*bpath, "outputs"))
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
        if raw is None:
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
        items: list[tuple[str, Any, Path]]
        if isinstance(raw, list):
            items = [(r, r, ("outputs", j)) for j, r in enumerate(raw)]
        elif isinstance(raw, dict):
            items = [(k, v, ("outputs", k)) for k, v in raw.items()]
        elif isinstance(raw, str):
            items = [(raw, raw, ("outputs",))]
        else:
            raise self.err(f"expected a list of layer names or a mapping, got {_kind(raw)}",
                           ("outputs",))
        out: dict[str, str] = {}
        for oname, ref, opath in items:
            if not isinstance(ref, str):
                raise self.err(f"expected a layer name, got {ref!r}", opath)
            if isinstance(raw, dict):
                why = check_identifier(oname)
                if why:
                    raise self.err(why, opath, key=True)
            if ref in scope.multi:
                raise self.err(f"{ref!r} has several outputs; name one of them", opath,
                               "write " + " or ".join(f"'{ref}.{o}'" for o in scope.multi[ref]))
            if ref not in scope.names:
                raise unknown("output", ref, list(scope.names), opath)
            if oname in out:
                raise self.err(f"duplicate output {oname!r}", opath)
            out[oname] = scope.names[ref]
        return out

    def check_used(self, graph: Graph) -> None:
        needed: set[str] = set(graph.outputs.values())
        for n in reversed(graph.nodes):
            if n.name in needed:
                needed.update(n.inputs)
        for iname in graph.inputs:
            if iname not in needed:
                raise self.err(f"input '{iname}' is not used by any output", ("inputs", iname),
                               "remove it, or feed it to a layer", key=True)
        for n in graph.nodes:
            if n.name not in needed:
                raise SpecError(
                    f"layer '{n.name}' does not feed any output",
                    self.node_paths[n.name],
                    hint="remove it, list it under outputs:, or use it as an input",
                )


def lower(
    data: Any, overrides: dict[str, Any] | None = None, max_params: int = MAX_PARAMS, where=None
) -> Graph:
    """Lower parsed spec data to a Graph; raises SpecError with a YAML path. `where(path)`
    gives a layer's (line, col) for `Node.loc`."""
    return Lowerer(data, overrides, max_params, where).run()


def spec_hash(text: str, params: dict[str, Any]) -> str:
    h = hashlib.sha256(text.encode("utf-8"))
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _kind(v: Any) -> str:
    if v is None:
        return "nothing (null)"
    if isinstance(v, bool):
        return f"a boolean ({'true' if v else 'false'})"
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, str):
        return f"the string {v!r}"
    return f"the number {v!r}"


_TOP_HINTS = {
    "netspec": "start the spec with 'netspec: 1'",
    "name": "add 'name: my_model' (it becomes the class name)",
    "inputs": "add 'inputs: {x: {shape: [8]}}'",
    "layers": "add 'layers:' with a list of layers",
}
