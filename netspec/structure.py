"""A spec's structure, checked against the JSON Schema, with netspec's own error messages.

The schema (`netspec.schema`, generated from the op table) decides what is valid: keys, types,
enums, ranges. This module walks the schema's keywords over the parsed data itself, because a
general JSON Schema library costs more to import than all of `netspec validate` takes, and
because an error must say what netspec says (path, wording, did-you-mean, hint), not which
keyword failed. It understands exactly the keywords the generated schema uses (a test holds the
schema to that list, and holds this walker to the `jsonschema` package's verdicts). Nothing here
evaluates user text: the schema is netspec's own data, and values are only compared.

The first failure in document order is reported; `explain` turns it into a SpecError.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, NamedTuple

from .errors import Path, SpecError, did_you_mean, unknown
from .names import check_identifier, name_hint
from .ops import ACTIVATIONS, OPS, Invalid
from .schema import NO_CONV_ACT, schema

# annotations, and keywords read together with another one (then/else with if)
IGNORED = {"$schema", "$id", "title", "description", "default", "$defs", "then", "else"}


class Failure(NamedTuple):
    path: Path  # where in the data
    keyword: str  # the schema keyword that failed
    schema: dict  # the schema object holding it
    value: Any  # the value it failed on (a key, for propertyNames and additionalProperties)
    defs: tuple[tuple[str, Path], ...]  # the `$defs` entered on the way and where, outermost first
    key: bool = False  # the failure is about a mapping key, not its value


def check(data: Any) -> None:
    """Raise a SpecError for the first structural error in `data`, if any."""
    f = _walker().run(data, _root(), (), ())
    if f is not None:
        raise explain(f, data)


def check_activation(v: Any, path: Path, op: str) -> None:
    """Check an `activation:` value that a param gave (a written one was checked already)."""
    ref = "activation" if op == "dense" else "conv_activation"
    if not _walker().ok(v, _root()["$defs"][ref], path, ()):
        raise _activation_error(v, path, op)


@lru_cache(maxsize=1)
def _root() -> dict:
    return schema()  # read only


@lru_cache(maxsize=1)
def _walker() -> _Walker:
    return _Walker(_root())


def first_failure(data: Any, root: dict) -> Failure | None:
    return _Walker(root).run(data, root, (), ())


def _is_type(v: Any, t: str) -> bool:
    if t == "integer":
        return (isinstance(v, int) and not isinstance(v, bool)) or (
            isinstance(v, float) and v.is_integer()
        )
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return isinstance(v, _TYPES[t])


_TYPES = {"string": str, "object": dict, "array": list, "null": type(None), "boolean": bool}


def equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1."""
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def _unique(items: list) -> bool:
    if all(isinstance(x, str) for x in items):
        return len(set(items)) == len(items)
    return not any(equal(x, y) for i, x in enumerate(items) for y in items[i + 1 :])


@lru_cache(maxsize=256)
def _pattern(p: str) -> re.Pattern:
    return re.compile(p)


class _Walker:
    """Validates data against one schema. Each schema object's keywords are looked up once, in
    the order failures are reported: type and value first, then a mapping's unknown keys,
    missing keys and key names, then its values in the schema's order, then the combinators."""

    def __init__(self, root: dict):
        self.defs = root.get("$defs", {})
        self.plans: dict[int, list] = {}

    def ok(self, v: Any, s: dict, path: Path, defs: tuple) -> bool:
        return self.run(v, s, path, defs) is None

    def run(self, v: Any, s: dict, path: Path, defs: tuple) -> Failure | None:
        plan = self.plans.get(id(s))
        if plan is None:
            plan = self.plans[id(s)] = [
                (getattr(self, step), s.get(kws[0]))
                for step, kws in _STEPS.items()
                if any(k in s for k in kws)
            ]
        for step, arg in plan:
            f = step(v, arg, s, path, defs)
            if f is not None:
                return f
        return None

    def ref(self, v, arg, s, path, defs):
        name = arg.rsplit("/", 1)[1]
        return self.run(v, self.defs[name], path, (*defs, (name, path)))

    def type(self, v, arg, s, path, defs):
        return None if _is_type(v, arg) else Failure(path, "type", s, v, defs)

    def const(self, v, arg, s, path, defs):
        return None if equal(v, arg) else Failure(path, "const", s, v, defs)

    def enum(self, v, arg, s, path, defs):
        return None if any(equal(v, e) for e in arg) else Failure(path, "enum", s, v, defs)

    def pattern(self, v, arg, s, path, defs):
        if isinstance(v, str) and not _pattern(arg).search(v):
            return Failure(path, "pattern", s, v, defs)
        return None

    def bound(self, v, arg, s, path, defs):
        if not _is_type(v, "number"):
            return None
        kw = None  # comparisons with nan are false: JSON Schema lets it through (JSON has none)
        if "minimum" in s and v < s["minimum"]:
            kw = "minimum"
        elif "maximum" in s and v > s["maximum"]:
            kw = "maximum"
        elif "exclusiveMinimum" in s and v <= s["exclusiveMinimum"]:
            kw = "exclusiveMinimum"
        elif "exclusiveMaximum" in s and v >= s["exclusiveMaximum"]:
            kw = "exclusiveMaximum"
        return None if kw is None else Failure(path, kw, s, v, defs)

    def array(self, v, arg, s, path, defs):
        if not isinstance(v, list):
            return None
        if len(v) < s.get("minItems", 0):
            return Failure(path, "minItems", s, v, defs)
        if "maxItems" in s and len(v) > s["maxItems"]:
            return Failure(path, "maxItems", s, v, defs)
        if s.get("uniqueItems") and not _unique(v):
            return Failure(path, "uniqueItems", s, v, defs)
        if "items" in s:
            for i, x in enumerate(v):
                f = self.run(x, s["items"], (*path, i), defs)
                if f is not None:
                    return f
        if "contains" in s:
            n = sum(self.ok(x, s["contains"], (*path, i), defs) for i, x in enumerate(v))
            if n < s.get("minContains", 1) or n > s.get("maxContains", n):
                return Failure(path, "contains", s, v, defs)
        return None

    def mapping(self, v, arg, s, path, defs):  # noqa: C901 - one branch per object keyword
        if not isinstance(v, dict):
            return None
        props = s.get("properties", {})
        if s.get("additionalProperties") is False:
            for k in v:
                if k not in props:
                    return Failure((*path, k), "additionalProperties", s, k, defs, True)
        for k in s.get("required", ()):
            if k not in v:
                return Failure(path, "required", s, k, defs)
        if "propertyNames" in s:
            for k in v:
                if not self.ok(k, s["propertyNames"], (*path, k), defs):
                    return Failure((*path, k), "propertyNames", s, k, defs, True)
        if len(v) < s.get("minProperties", 0):
            return Failure(path, "minProperties", s, v, defs)
        for k, sub in props.items():
            if k in v:
                f = self.run(v[k], sub, (*path, k), defs)
                if f is not None:
                    return f
        extra = s.get("additionalProperties")
        if isinstance(extra, dict):
            for k, x in v.items():
                if k not in props:
                    f = self.run(x, extra, (*path, k), defs)
                    if f is not None:
                        return f
        return None

    def all_of(self, v, arg, s, path, defs):
        for sub in arg:
            f = self.run(v, sub, path, defs)
            if f is not None:
                return f
        return None

    def if_(self, v, arg, s, path, defs):
        branch = s.get("then" if self.ok(v, arg, path, defs) else "else")
        return None if branch is None else self.run(v, branch, path, defs)

    def any_of(self, v, arg, s, path, defs):
        if any(self.ok(v, sub, path, defs) for sub in arg):
            return None
        return Failure(path, "anyOf", s, v, defs)

    def not_(self, v, arg, s, path, defs):
        return Failure(path, "not", s, v, defs) if self.ok(v, arg, path, defs) else None


# each step and the keywords it reads, in the order failures are reported
_STEPS = {
    "ref": ("$ref",),
    "type": ("type",),
    "const": ("const",),
    "enum": ("enum",),
    "pattern": ("pattern",),
    "bound": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"),
    "array": ("minItems", "maxItems", "uniqueItems", "items", "contains"),
    "mapping": (
        "additionalProperties", "required", "propertyNames", "minProperties", "properties"
    ),
    "all_of": ("allOf",),
    "if_": ("if",),
    "any_of": ("anyOf",),
    "not_": ("not",),
}  # fmt: skip
KEYWORDS = {k for ks in _STEPS.values() for k in ks} | {
    "minContains",
    "maxContains",
}  # what the walker reads (and then/else)

# -- wording -----------------------------------------------------------------------------------

TOP_HINTS = {
    "netspec": "start the spec with 'netspec: 1'",
    "name": "add 'name: my_model' (it becomes the class name)",
    "inputs": "add 'inputs: {x: {shape: [8]}}'",
    "layers": "add 'layers:' with a list of layers",
}
LAYER_HINT = "layers is a list: start each layer with '- ', e.g. - {op: dense, units: 8}"
REF_HINT = "names are identifiers; 'use.output' names an output of a block use"
_REF = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
SECTIONS = ("params", "inputs", "blocks")  # the top level's mappings


def kind(v: Any) -> str:
    """A value as an error message names it: `a list`, `the number 3`, `nothing (null)`."""
    if v is None:
        return "nothing (null)"
    if isinstance(v, bool):
        return f"a boolean ({'true' if v else 'false'})"
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, str):
        text = repr(v)
        return f"the string {text if len(text) <= 60 else text[:56] + '...'}"
    return f"the number {v!r}"


kind_of = kind  # for functions with a local called `kind`


def show(v: Any) -> str:
    return repr(v) if isinstance(v, str) else kind(v).replace("the number ", "")


def _err(msg: str, path: Path, hint: str | None = None, key: bool = False) -> SpecError:
    return SpecError(msg, path, hint=hint, key=key)


def _is_ref(v: Any) -> bool:
    return isinstance(v, str) and bool(_REF.match(v))


def _at(data: Any, path: Path) -> Any:
    for p in path:
        data = data[p]
    return data


def explain(f: Failure, data: Any) -> SpecError:  # noqa: C901 - one case per place in a spec
    """netspec's error for a schema failure: the same words, paths and hints as everywhere."""
    path, v, kw = f.path, f.value, f.keyword
    last = path[-1] if path else None
    entered = dict(f.defs)  # def name -> where it was entered (the innermost, for nested ones)
    inner = f.defs[-1][0] if f.defs else None
    if not path:
        if kw == "type":
            return _err(
                f"a spec is a mapping with netspec, name, inputs and layers; got {kind(v)}", ()
            )
        if kw == "required":
            return _err(f"missing required key '{v}'", (), TOP_HINTS.get(v))
    if "training" in entered:
        return _training_error(f, data)
    if kw == "additionalProperties":
        return _unknown_key(f, data)
    if kw == "propertyNames":
        return _bad_key(f)
    if last == "description":
        return _err(f"expected a string, got {kind(v)}", path)
    if last == "layers" and kw in ("type", "minItems"):
        return _err(f"expected a non-empty list of layers, got {kind(v)}", path, LAYER_HINT)
    if "layer" in entered:  # layers, attributes and activations
        return _layer_error(f, entered["layer"], data)
    if "input" in entered:
        return _input_error(f)
    if "block" in entered:
        return _block_error(f)
    if path == ("netspec",):
        if isinstance(v, int) and not isinstance(v, bool):
            msg = f"unsupported format version {v}; this netspec reads version 1"
        else:
            msg = f"expected the format version 1, got {kind(v)}"
        return _err(msg, path, "write netspec: 1")
    if inner == "identifier":
        why = check_identifier(v) or f"expected a name, got {kind(v)}"
        hint = "the name becomes the class and model name" if path == ("name",) else name_hint(v)
        return _err(why, path, hint)
    if len(path) == 1 and last in SECTIONS:
        if kw == "minProperties":
            return _err("a spec needs at least one input", path)
        hint = f"fill in '{last}:', or remove it" if v is None else None
        return _err(f"expected {last} (a mapping), got {kind(v)}", path, hint)
    if path[0] == "outputs":
        return _outputs_error(f)
    return _err(f"unexpected {kind(v)}", path)  # pragma: no cover - a schema/wording mismatch


# -- the training section ----------------------------------------------------------------------

TRAINING_EXAMPLE = "e.g. training: {data: data/xor.csv, inputs: {x: [a, b]}, targets: {y: xor}, "
TRAINING_EXAMPLE += "loss: mse, optimizer: adam}"
TRAINING_HINTS = {
    "inputs": "map each model input to data columns, e.g. inputs: {x: [study_hours, sleep_hours]}",
    "targets": "map each trained output to data columns, e.g. targets: {score: score}",
    "loss": "e.g. loss: mse, or loss: categorical_crossentropy for a classifier",
    "optimizer": "e.g. optimizer: adam, or optimizer: {name: sgd, lr: 0.01, momentum: 0.9}",
}
RECORD_EXAMPLE = {
    "optimizer": "e.g. optimizer: adam, or optimizer: {name: sgd, lr: 0.01}",
    "loss": "e.g. loss: mse, or loss: {name: huber, delta: 1.0}",
    "schedule": "e.g. schedule: {name: cosine, warmup: 2}",
    "metric": "e.g. metrics: [accuracy], or metrics: [{name: accuracy, threshold: 0.5}]",
}


# Names other libraries use for a record or an attribute, and netspec's name for them.
ALIASES = {
    "loss": {
        "sparse_categorical_crossentropy": "categorical_crossentropy",
        "cross_entropy": "categorical_crossentropy",
        "crossentropy": "categorical_crossentropy",
        "nll": "categorical_crossentropy",
        "bce": "binary_crossentropy",
        "mean_squared_error": "mse",
        "l2": "mse",
        "mean_absolute_error": "mae",
        "l1": "mae",
        "smooth_l1": "huber",
    },
    "attribute": {
        "learning_rate": "lr",
        "beta_1": "beta1",
        "beta_2": "beta2",
        "epsilon": "eps",
        "rho": "alpha",
        "decay": "weight_decay",
        "clipnorm": "clip_norm",
        "clipvalue": "clip_value",
        "initial_accumulator_value": "initial_accumulator",
        "decay_steps": "t_max",
    },
}
ALIAS_NOTES = {
    "sparse_categorical_crossentropy": "categorical_crossentropy takes integer labels as well "
    "as one-hot rows",
}


def _alias(kind: str, word: Any, allowed) -> str | None:
    """A hint naming netspec's word for another library's name, if `word` is one."""
    meant = ALIASES[kind].get(word) if isinstance(word, str) else None
    if meant is None or meant not in allowed:
        return None
    note = ALIAS_NOTES.get(word)
    return f"netspec calls it '{meant}'" + (f" ({note})" if note else "")


def _an(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _record_of(inner: str | None):
    """(kind, Record) for a `<kind>_<name>` definition of the training schema, else None."""
    from .train import tables

    if inner is None or "_" not in inner:
        return None
    kind, name = inner.split("_", 1)
    table = tables().get(kind)
    return (kind, table[name]) if table and name in table else None


def _needs(kind: str, rec, attr: str, path: Path) -> SpecError:
    a = rec.attrs[attr]
    return _err(
        f"{kind} '{rec.name}' needs '{attr}' ({a.doc})",
        path,
        f"e.g. {{name: {rec.name}, {attr}: ...}}",
    )


def _training_error(f: Failure, data: Any) -> SpecError:  # noqa: C901 - one case per key
    from .train import tables
    from .train.plan import SETTINGS, STOPPING, WEIGHT

    path, v, kw = f.path, f.value, f.keyword
    inner = f.defs[-1][0]
    last = path[-1]
    found = _record_of(inner)
    if kw == "additionalProperties":  # an unknown key
        allowed = [k for k in f.schema.get("properties", {}) if k != "name"]
        if found:
            kind, rec = found
            guess = did_you_mean(v, allowed)
            hint = _alias("attribute", v, allowed) or (
                f"did you mean '{guess}'?"
                if guess
                else f"{kind} '{rec.name}' takes " + (", ".join(allowed) or "no attributes")
            )
            return _err(f"{kind} '{rec.name}' has no attribute '{v}'", path, hint, key=True)
        what = "the training section" if inner == "training" else "early_stopping"
        guess = did_you_mean(v, allowed)
        hint = f"did you mean '{guess}'?" if guess else f"{what} takes: " + ", ".join(allowed)
        return _err(f"unknown key {v!r} in {what}", path, hint, key=True)
    if kw == "propertyNames":
        why = check_identifier(v) or f"{v!r} is not a valid name"
        return _err(why, path, name_hint(v), key=True)
    if found:  # a record's mapping: a required attribute missing, or a value
        kind, rec = found
        if kw == "required":
            return _needs(kind, rec, v, path)
        a = WEIGHT if last == "weight" and kind == "loss" else rec.attrs[last]
        return _attr_error(a, v, path)
    if inner in RECORD_EXAMPLE:  # a record's name, or the mapping around it
        kind = inner
        table = tables()[kind]
        if kw == "required":
            return _err(f"{_an(kind)} mapping needs 'name'", path, RECORD_EXAMPLE[kind])
        if isinstance(v, str) and v in table:  # a bare name of a record with required attrs
            rec = table[v]
            return _needs(kind, rec, next(n for n, a in rec.attrs.items() if a.required), path)
        if isinstance(v, str) and v.startswith("$"):
            return _err(
                f"{_an(kind)}'s name cannot be a param ({v})",
                path,
                f"write the name itself ({', '.join(table)}); params can give its attributes",
            )
        if isinstance(v, str):
            err = unknown(kind, v, table, path)
            err.hint = (_alias(kind, v, table) if kind in ALIASES else None) or err.hint
            return err
        if last == "name":
            return _err(f"expected {_an(kind)} name, got {kind_of(v)}", path, RECORD_EXAMPLE[kind])
        return _err(
            f"expected {_an(kind)} name or a mapping with 'name', got {kind_of(v)}",
            path,
            RECORD_EXAMPLE[kind],
        )
    if inner == "losses":
        if kw == "minProperties":
            return _err("expected a loss", path, RECORD_EXAMPLE["loss"])
        return _err(
            f"expected a loss name, a mapping with 'name', or a loss per trained output, "
            f"got {kind_of(v)}",
            path,
            RECORD_EXAMPLE["loss"],
        )
    if inner == "metrics":
        if len(path) > 2:
            return _err(
                f"expected a list of metrics for output {last!r}, got {kind_of(v)}",
                path,
                "e.g. {" + str(last) + ": [accuracy]}",
            )
        return _err(f"expected a list of metrics, got {kind_of(v)}", path, RECORD_EXAMPLE["metric"])
    if inner == "columns":
        if isinstance(v, list) and v:
            j, c = next((j, c) for j, c in enumerate(v) if not (isinstance(c, str) and c.strip()))
            return _err(f"expected a column name, got {kind_of(c)}", (*path, j))
        if v == []:
            return _err("expected at least one column name", path, "e.g. [study_hours]")
        return _err(
            f"expected a column name or a list of column names, got {kind_of(v)}",
            path,
            "e.g. x: [study_hours, sleep_hours] (stacked side by side) or y: score",
        )
    if inner == "early_stopping":
        if path[-1] == "early_stopping":
            return _err(
                f"expected early-stopping settings (a mapping), got {kind_of(v)}",
                path,
                "e.g. early_stopping: {monitor: val_loss, patience: 10}",
            )
        if last == "monitor":
            return _err(
                f"expected a history key such as val_loss, got {kind_of(v)}",
                path,
                "e.g. monitor: val_accuracy",
            )
        return _attr_error(STOPPING[last], v, path)
    # the section itself, or one of its own keys
    if path == ("training",):
        if kw == "required":
            return _err(f"the training section needs '{v}'", path, TRAINING_HINTS.get(v))
        hint = "fill in 'training:', or remove it" if v is None else TRAINING_EXAMPLE
        return _err(f"expected the training section (a mapping), got {kind_of(v)}", path, hint)
    if last in SETTINGS:
        return _attr_error(SETTINGS[last], v, path)
    if last == "data":
        return _err(
            f"expected a data file or sklearn:NAME, got {kind_of(v)}",
            path,
            "e.g. data: data/xor.csv (relative to the spec's folder), or sklearn:iris",
        )
    if last in ("inputs", "targets"):
        what = "inputs" if last == "inputs" else "outputs"
        if kw == "minProperties":
            return _err(f"expected at least one of the model's {what}", path, TRAINING_HINTS[last])
        return _err(
            f"expected a mapping of model {what} to data columns, got {kind_of(v)}",
            path,
            TRAINING_HINTS[last],
        )
    if last in ("validation", "test"):
        hint = f"{last}: 0.2 holds out 20% of the examples, or name a data file"
        return _err(f"expected a fraction in [0, 1) or a data file, got {show(v)}", path, hint)
    return _err(f"unexpected {kind_of(v)}", path)  # pragma: no cover - a schema/wording mismatch


def _unknown_key(f: Failure, data: Any) -> SpecError:
    k, path = f.value, f.path
    allowed = list(f.schema.get("properties", {}))
    inner = f.defs[-1][0] if f.defs else None
    if inner and inner.startswith("op_") and inner[3:] in OPS:
        return _unknown_attribute(k, inner[3:], path)
    what = {None: "the spec", "input": "an input", "block": "a block"}.get(inner, inner)
    guess = did_you_mean(k, allowed)
    hint = f"did you mean '{guess}'?" if guess else f"{what} takes: " + ", ".join(allowed)
    return _err(f"unknown key {k!r} in {what}", path, hint, key=True)


def _unknown_attribute(k: str, op: str, path: Path) -> SpecError:
    attrs = list(OPS[op].attrs)
    keys = ["op", "name", "inputs", "repeat", "when", "shares"]
    guess = did_you_mean(k, [*attrs, *keys])
    if guess:
        hint = f"did you mean '{guess}'?"
    else:
        takes = ", ".join(attrs) if attrs else "no attributes"
        hint = f"{op} takes {takes} (besides {', '.join(keys)})"
        owners = [o for o, d in OPS.items() if k in d.attrs]
        if owners:
            hint = f"'{k}' is an attribute of {', '.join(owners)}; " + hint
    return _err(f"unknown attribute {k!r} for op {op}", path, hint, key=True)


def _bad_key(f: Failure) -> SpecError:
    k, path = f.value, f.path
    section = path[-2] if len(path) >= 2 else None
    if section == "params" and len(path) == 4:  # a block's params
        if k in f.schema["propertyNames"].get("not", {}).get("enum", ()):
            return _err(
                f"a block param cannot be called {k!r} (it is a key of every block use)",
                path,
                f"rename it, e.g. '{k}s'",
                key=True,
            )
    if section == "params":
        return _err(
            f"{k!r} is not a valid param name",
            path,
            "param names are [A-Za-z_][A-Za-z0-9_]*",
            key=True,
        )
    if section == "blocks" and k in OPS:
        return _err(
            f"block name {k!r} is also an op",
            path,
            "rename the block; a layer refers to it with block: NAME",
            key=True,
        )
    why = check_identifier(k) or f"{k!r} is not a valid name"
    return _err(why, path, name_hint(k), key=True)


def _layer_error(f: Failure, lpath: Path, data: Any) -> SpecError:  # noqa: C901 - per layer key
    path, v, kw = f.path, f.value, f.keyword
    layer = _at(data, lpath)
    rest = path[len(lpath) :]
    if not rest:
        if isinstance(layer, str) and layer in OPS:  # a bare name: all attributes default
            a = next(a for a in OPS[layer].attrs.values() if a.required)
            return _missing_attribute(layer, a, lpath)
        if isinstance(layer, str):
            return _op_name_error(layer, (*lpath, "op"), data)
        if kw == "type":
            return _err(
                f"a layer is an op name or a mapping, got {kind(layer)}",
                lpath,
                "e.g. - {op: dense, units: 8} or - relu",
            )
        if kw == "not":
            return _err("a layer has either 'op' or 'block', not both", lpath)
        if kw == "required" and v == "op":
            return _err(
                "a layer needs 'op' (or 'block' for a block use)",
                lpath,
                "e.g. {op: dense, units: 8}",
            )
        if kw == "required":
            return _missing_attribute(layer["op"], OPS[layer["op"]].attrs[v], lpath)
    key = rest[0]
    kpath = (*lpath, key)
    raw = layer[key]
    if key == "op":
        if not isinstance(raw, str):
            return _err(f"expected an op name, got {kind(raw)}", kpath, "e.g. op: dense")
        return _op_name_error(raw, kpath, data)
    if key == "block":
        return _err(f"expected a block name, got {kind(raw)}", kpath, "e.g. block: basic")
    if key == "repeat":
        return _err(f"expected a positive integer, got {show(raw)}", kpath)
    if key == "when":
        return _err(
            f"expected true, false or a ${{condition}}, got {show(raw)}",
            kpath,
            "e.g. when: ${stride > 1}",
        )
    if key == "name":
        return _err(
            check_identifier(raw) or f"expected a name, got {kind(raw)}", kpath, name_hint(raw)
        )
    if key == "inputs":
        if raw is None:
            return _err(
                "expected a list of layer or input names, got nothing (null)",
                kpath,
                "remove 'inputs:' to take the layer above",
            )
        if isinstance(raw, list) and raw:
            j, r = next((j, r) for j, r in enumerate(raw) if not _is_ref(r))
            if not isinstance(r, str):
                return _err(f"expected a layer or input name, got {kind(r)}", (*kpath, j))
            return _err(f"{r!r} is not a layer or input name", (*kpath, j), REF_HINT)
        if isinstance(raw, str):
            return _err(f"{raw!r} is not a layer or input name", kpath, REF_HINT)
        if raw == []:
            return _err("expected at least one layer or input name", kpath, "e.g. inputs: [x]")
        return _err(f"expected a list of names, got {kind(raw)}", kpath)
    a = OPS[layer["op"]].attrs[key]
    if a.kind == "activation":
        return _activation_error(raw, kpath, layer["op"])
    return _attr_error(a, raw, kpath)


def _missing_attribute(op: str, a, lpath: Path) -> SpecError:
    return _err(
        f"missing required attribute '{a.name}' ({a.expected()})",
        lpath,
        f"e.g. {{op: {op}, {a.name}: ...}}",
    )


def _attr_error(a, v: Any, path: Path) -> SpecError:
    try:
        a.check(v)
    except Invalid as e:
        return _err(e.message, path, e.hint)
    return _err(f"expected {a.expected()}, got {show(v)}", path)


def _op_name_error(name: str, path: Path, data: Any) -> SpecError:
    blocks = data.get("blocks") if isinstance(data, dict) else None
    if isinstance(blocks, dict) and name in blocks:
        return _err(f"{name!r} is a block, not an op", path, f"write block: {name}")
    return unknown("op", name, OPS, path)


def _activation_error(v: Any, path: Path, op: str) -> SpecError:
    name = v.get("op") if isinstance(v, dict) else v
    if not isinstance(v, (str, dict)) or name is None:
        return _err(
            f"expected an activation op's name or a mapping with 'op', got {kind(v)}",
            path,
            "e.g. activation: relu, or activation: {op: leaky_relu, alpha: 0.2}",
        )
    if name == "prelu":
        return _err(
            "prelu has weights, so it cannot be an activation attribute",
            path,
            "write a prelu layer after this one",
        )
    if name not in ACTIVATIONS:
        err = unknown("activation", name, ACTIVATIONS, path)
        if err.hint is None:
            err.hint = "activations: " + ", ".join(ACTIVATIONS)
        return err
    if op != "dense" and name in NO_CONV_ACT:
        return _err(
            f"{name} is not allowed as a conv activation (which axis it "
            "normalizes would be ambiguous)",
            path,
            f"remove it and add a {name} layer with its axis, e.g. {{op: {name}, axis: 1}}",
        )
    attrs = OPS[name].attrs
    for k, x in v.items():  # a mapping: one of its keys or values is wrong
        if k != "op" and k not in attrs:
            allowed = ["op", *attrs]
            guess = did_you_mean(k, allowed)
            hint = (
                f"did you mean '{guess}'?"
                if guess
                else f"a {name} activation takes: " + ", ".join(allowed)
            )
            return _err(f"unknown key {k!r} in a {name} activation", (*path, k), hint, key=True)
        if k != "op" and not (isinstance(x, str) and x.startswith("$")):
            try:
                attrs[k].check(x)
            except Invalid as e:
                return _err(e.message, (*path, k), e.hint)
    return _err(f"expected an activation, got {kind(v)}", path)  # pragma: no cover


def _input_error(f: Failure) -> SpecError:
    path, v, kw = f.path, f.value, f.keyword
    ipath = path[:2]
    rest = path[2:]
    if not rest:
        if kw == "required":
            return _err("missing 'shape'", ipath, "per-example shape, e.g. shape: [8]")
        return _err(
            f"expected an input such as {{shape: [3, 32, 32]}} (a mapping), got {kind(v)}", ipath
        )
    if rest == ("shape",):
        return _err(
            f"expected a list of per-example sizes, got {kind(v)}",
            path,
            "e.g. [3, 224, 224]; null for a dynamic axis",
        )
    if rest[0] == "shape":
        if isinstance(v, str):
            return _err(f"{v!r} is not a valid axis name", path)
        return _err(f"expected a positive size, null or an axis name, got {v!r}", path)
    return unknown("dtype", v, f.schema.get("enum", ["float32", "int64"]), path)


def _block_error(f: Failure) -> SpecError:
    path, v, kw = f.path, f.value, f.keyword
    bpath = path[:2]
    rest = path[2:]
    if not rest:
        if kw == "required":
            return _err(f"missing '{v}'", bpath)
        return _err(f"expected a block (a mapping), got {kind(v)}", bpath)
    if rest == ("params",):
        hint = "fill in 'params:', or remove it" if v is None else None
        return _err(f"expected block params (a mapping), got {kind(v)}", path, hint)
    if rest[0] == "inputs":
        if len(rest) == 2:
            return _err(
                check_identifier(v) or f"expected a name, got {kind(v)}", path, name_hint(v)
            )
        if kw == "uniqueItems":
            return _err("block input names must be unique", path)
        return _err("expected a list of input names", path)
    if rest[0] == "outputs":
        if len(rest) == 1:
            return _err(f"expected a list of layer names, got {kind(v)}", path)
        return _err(
            f"expected a layer name, got {kind(v)}",
            path,
            "list names of the block's layers, e.g. outputs: [conv2, skip]",
        )
    return _err(f"unexpected {kind(v)}", path)  # pragma: no cover


def _outputs_error(f: Failure) -> SpecError:
    path, v = f.path, f.value
    if len(path) == 1 and isinstance(v, list) and v:
        j, r = next((j, r) for j, r in enumerate(v) if not _is_ref(r))
        f = f._replace(path=(*path, j), value=r)
        path, v = f.path, f.value
    elif len(path) == 1 and isinstance(v, dict) and v:
        for k, r in v.items():
            if not re.match(r"[A-Za-z_][A-Za-z0-9_]*$", k):
                why = check_identifier(k) or f"{k!r} is not a valid name"
                return _err(why, (*path, k), name_hint(k), key=True)
            if not _is_ref(r):
                f = f._replace(path=(*path, k), value=r)
                path, v = f.path, f.value
                break
    if len(path) == 1:
        if v == []:
            return _err(
                "expected at least one output",
                path,
                "name at least one layer, or leave out 'outputs:' for the last layer",
            )
        if isinstance(v, dict) and not v:
            return _err("expected at least one output", path)
        if isinstance(v, str):
            return _err(f"{v!r} is not a layer name", path, "names are identifiers")
        return _err(
            f"expected a list of layer names or a mapping, got {kind(v)}",
            path,
            "remove 'outputs:' to output the last layer"
            if v is None
            else "e.g. outputs: [logits] or outputs: {probs: softmax_1}",
        )
    if not isinstance(v, str):
        return _err(f"expected a layer name, got {kind(v)}", path)
    return _err(f"{v!r} is not a layer name", path, REF_HINT)
