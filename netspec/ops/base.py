"""How an op is defined: one record (`OpDef`) per op, registered with `@op(...)`.

A record holds everything about an op that no target owns: its attributes (type, default,
docs), its shape rule, a float64 numpy reference, example cases, how the random-spec generator
samples it and how its weights start. Targets keep only their emitters.

Each attribute kind knows three things about itself: the JSON Schema fragment for editors, the
check that validation runs on a value (after params are substituted), and how the value is
normalized for the IR. The schema, the docs' op table and validation all come from here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ..errors import SpecError
from ..ir import Dim, Shape, Value

REQUIRED = object()
PARAM_REF = {"type": "string", "pattern": r"^\$"}  # `$name` or `${expression}`
ACTIVATIONS: list[str] = []  # filled by ops.activation; valid `activation:` names
INITS = [
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_normal",
    "normal",
    "uniform",
    "zeros",
    "ones",
]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class Invalid(Exception):
    """Raised by an attribute check; the caller adds the location."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass
class Attr:
    """One attribute of an op.

    kind: int | float | bool | spatial | padding | activation | init | shape | dims | axis |
    choice (one of `choices`) | ints (a list of integers, any sign: roll's shifts, gather's
    indices)
    """

    name: str
    kind: str
    default: Any = REQUIRED
    doc: str = ""
    minimum: float | None = None
    maximum: float | None = None
    exclusive_min: bool = False
    exclusive_max: bool = False
    hint: str | None = None  # shown when a value is out of range
    # a layer's size (units, filters, an embedding's vocab and dim): what specs usually write
    # with a param (`units: $hidden`), so the random-spec generator writes it so now and then
    width: bool = False
    nullable: bool = False  # `null` is a value of its own (its meaning in `doc`)
    choices: tuple[str, ...] = ()  # the values of a `choice` attribute

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def expected(self) -> str:
        text = self._expected()
        return f"{text} or null" if self.nullable else text

    def _expected(self) -> str:
        k = self.kind
        if k == "choice":
            return "one of " + ", ".join(self.choices)
        if k == "int":
            if self.minimum == 1:
                return "a positive integer"
            if self.minimum == 0:
                return "a non-negative integer"
            return "an integer"
        if k == "float":
            lo = self.minimum
            if lo is not None and self.maximum is not None:
                op = "<" if self.exclusive_min else "<="
                op2 = "<" if self.exclusive_max else "<="
                return f"a number with {lo:g} {op} value {op2} {self.maximum:g}"
            if lo is not None:
                return f"a number {'>' if self.exclusive_min else '>='} {lo:g}"
            return "a number"
        return {
            "bool": "true or false",
            "spatial": "a positive integer or a list of one per spatial axis"
            if self.minimum is None
            else "a non-negative integer or a list of one per spatial axis",
            "padding": "a non-negative integer, a list (one int or one [before, after] pair "
            "per spatial axis), 'same' or 'valid'",
            "activation": "an activation op's name or a mapping such as "
            "{op: leaky_relu, alpha: 0.2}",
            "init": "one of " + ", ".join(INITS),
            "shape": "a list of positive integers with at most one -1",
            "dims": "a list of axis numbers",
            "axis": "an integer axis",
            "ints": "a list of integers",
        }[k]

    def json_schema(self) -> dict:
        k = self.kind
        if k == "int":
            s: dict = {"type": "integer"}
            if self.minimum is not None:
                s["minimum"] = int(self.minimum)
            if self.maximum is not None:
                s["maximum"] = int(self.maximum)
        elif k == "float":
            s = {"type": "number"}
            if self.minimum is not None:
                s["exclusiveMinimum" if self.exclusive_min else "minimum"] = self.minimum
            if self.maximum is not None:
                s["exclusiveMaximum" if self.exclusive_max else "maximum"] = self.maximum
        elif k == "bool":
            s = {"type": "boolean"}
        elif k == "spatial":
            item = {"type": "integer", "minimum": 1 if self.minimum is None else self.minimum}
            s = {
                "anyOf": [
                    item,
                    {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 3,
                        "items": {"anyOf": [item, PARAM_REF]},
                    },
                ]
            }
        elif k == "padding":
            s = {"$ref": "#/$defs/padding"}
        elif k == "activation":
            s = {"$ref": "#/$defs/activation"}
        elif k == "init":
            s = {"enum": INITS}
        elif k == "choice":
            s = {"enum": list(self.choices)}
        elif k == "shape":
            s = {
                "type": "array",
                "minItems": 1,
                "items": {"anyOf": [{"type": "integer", "minimum": 1}, {"const": -1}, PARAM_REF]},
                "contains": {"const": -1},  # at most one -1
                "minContains": 0,
                "maxContains": 1,
            }
        elif k == "dims":
            s = {
                "type": "array",
                "minItems": 1,
                "items": {"anyOf": [{"type": "integer", "minimum": 1}, PARAM_REF]},
            }
        elif k == "axis":
            s = {"type": "integer"}
        elif k == "ints":
            s = {
                "type": "array",
                "minItems": 1,
                "items": {"anyOf": [{"type": "integer"}, PARAM_REF]},
            }
        else:  # pragma: no cover - a definition error
            raise AssertionError(k)
        if self.nullable:
            s = {"anyOf": [s, {"type": "null"}]}
        if self.doc:
            s = {**s, "description": self.doc}
        if self.default is not REQUIRED and self.default is not None:
            s["default"] = self.default
        return {"anyOf": [s, PARAM_REF]}

    def check(self, v: Any) -> Any:
        """Validate a substituted value; return it in a plain normalized form."""
        if v is None and self.nullable:
            return None
        k = self.kind
        if k == "int":
            if not _is_int(v):
                if isinstance(v, float) and v.is_integer():
                    v = int(v)
                else:
                    hint = None
                    if isinstance(v, str) and not v.strip().lstrip("-").isdigit():
                        hint = "write a number, a $param or a ${expression}"
                    elif isinstance(v, str):
                        hint = "write the number without quotes"
                    raise Invalid(f"expected {self.expected()}, got {_show(v)}", hint)
            if self.minimum is not None and v < self.minimum:
                raise Invalid(f"expected {self.expected()}, got {v}")
            if self.maximum is not None and v > self.maximum:
                raise Invalid(f"expected at most {int(self.maximum)}, got {v}")
            return v
        if k == "float":
            if not _is_num(v) or not math.isfinite(v):
                raise Invalid(f"expected {self.expected()}, got {_show(v)}")
            lo = self.minimum
            if lo is not None and (v <= lo if self.exclusive_min else v < lo):
                raise Invalid(f"expected {self.expected()}, got {v}")
            hi = self.maximum
            if hi is not None and (v >= hi if self.exclusive_max else v > hi):
                raise Invalid(f"expected {self.expected()}, got {v}", self.hint)
            return float(v)
        if k == "bool":
            if not isinstance(v, bool):
                hint = None
                if isinstance(v, str) and v.lower() in ("yes", "no", "on", "off", "y", "n"):
                    meant = "true" if v.lower() in ("yes", "on", "y") else "false"
                    hint = (
                        f"netspec reads YAML 1.2, where {v} is a string, not a boolean "
                        f"(as it was in YAML 1.1): write {meant}"
                    )
                elif v in (0, 1):
                    hint = f"write {'true' if v else 'false'}"
                raise Invalid(f"expected {self.expected()}, got {_show(v)}", hint)
            return v
        if k == "spatial":
            lo = 1 if self.minimum is None else self.minimum
            if _is_int(v) and v >= lo:
                return v
            if isinstance(v, list) and v and all(_is_int(x) and x >= lo for x in v):
                return list(v)
            raise Invalid(f"expected {self.expected()}, got {_show(v)}")
        if k == "padding":
            if v in ("same", "valid"):
                return v
            if _is_int(v) and v >= 0:
                return v
            if (
                isinstance(v, list)
                and v
                and all(
                    (_is_int(x) and x >= 0)
                    or (
                        isinstance(x, list)
                        and len(x) == 2
                        and all(_is_int(y) and y >= 0 for y in x)
                    )
                    for x in v
                )
            ):
                return v
            hint = "did you mean 'same'?" if isinstance(v, str) and v.lower() == "same" else None
            raise Invalid(f"expected {self.expected()}, got {_show(v)}", hint)
        if k == "choice":
            if v not in self.choices:
                from ..errors import did_you_mean

                g = did_you_mean(v, list(self.choices)) if isinstance(v, str) else None
                raise Invalid(
                    f"expected {self.expected()}, got {_show(v)}",
                    f"did you mean '{g}'?" if g else None,
                )
            return v
        if k == "init":
            if v not in INITS:
                from ..errors import did_you_mean

                g = did_you_mean(v, INITS)
                raise Invalid(
                    f"expected {self.expected()}, got {_show(v)}",
                    f"did you mean '{g}'?" if g else None,
                )
            return v
        if k == "shape":
            if (
                not isinstance(v, list)
                or not v
                or not all(_is_int(x) and (x >= 1 or x == -1) for x in v)
            ):
                raise Invalid(f"expected {self.expected()}, got {_show(v)}")
            if v.count(-1) > 1:
                raise Invalid("at most one -1 is allowed in a shape")
            return list(v)
        if k == "dims":
            if not isinstance(v, list) or not v or not all(_is_int(x) for x in v):
                raise Invalid(f"expected {self.expected()}, got {_show(v)}")
            return list(v)
        if k == "ints":
            if not isinstance(v, list) or not v or not all(_is_int(x) for x in v):
                raise Invalid(f"expected {self.expected()}, got {_show(v)}")
            return list(v)
        if k == "axis":
            if not _is_int(v):
                raise Invalid(f"expected {self.expected()}, got {_show(v)}")
            return v
        if k == "activation":  # checked by the loader, which knows the activation ops
            return v
        raise AssertionError(k)  # pragma: no cover


def _show(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    text = repr(v)
    if len(text) > 60:
        text = text[:57] + "..."
    if isinstance(v, (list, dict)):
        return f"a {'list' if isinstance(v, list) else 'mapping'} {text}"
    return text


class Ctx:
    """What a shape rule sees and fills: attributes, input values, and the results."""

    def __init__(self, name: str, op: str, attrs: dict, inputs: list[Value], path: tuple):
        self.name = name
        self.op = op
        self.attrs = attrs
        self.inputs = inputs
        self.path = path
        self.params: dict[str, tuple[int, ...]] = {}
        self.buffers: dict[str, tuple[int, ...]] = {}
        self.macs = 0
        self.dtype = "float32"
        self.fresh: set[str] = set()  # axis names the loader made up for `null` dims

    @property
    def x(self) -> Value:
        return self.inputs[0]

    def fail(self, message: str, attr: str | None = None, hint: str | None = None) -> NoReturn:
        path = self.path + ((attr,) if attr else ())
        raise SpecError(message, path, hint=hint)

    def shape(self, v: Value | None = None) -> str:
        """A value's per-example shape as a user wrote it: `[16, null]`, `[seq, 8]`."""
        v = v or self.x
        dims = ["null" if d is None or d in self.fresh else str(d) for d in v.shape]
        return "[" + ", ".join(dims) + "]"

    def static(self, d: Dim, what: str) -> int:
        """A dimension that must be known when the model is built (a weight's size)."""
        if not isinstance(d, int):
            axis = "a dynamic axis" if d is None or d in self.fresh else f"the dynamic axis {d!r}"
            self.fail(
                f"{self.op} needs a fixed size on {what}, because its weights depend on it, but "
                f"it is {axis} ('{self.x.name}' has shape {self.shape()})",
                hint="give that axis a size in the input's shape, or reduce it first (e.g. "
                "with a recurrent layer or a global pool)",
            )
        return d

    def want_rank(self, lo: int, hi: int | None = None, what: str = "input") -> None:
        r = self.x.rank
        hi = lo if hi is None else hi
        if not lo <= r <= hi:
            need = f"{lo}" if lo == hi else f"{lo} to {hi}"
            self.fail(
                f"{self.op} expects an {what} of per-example rank {need}, got shape "
                f"{self.shape()} from '{self.x.name}' (rank {r})",
                hint="reshape, flatten or permute the input first",
            )


ShapeRule = Callable[[Ctx], Shape]
# The numpy reference of an op: (inputs, normalized attrs, params and buffers) -> output, all
# float64 numpy arrays (int64 ids for an embedding). numpy is imported inside each function, so
# that loading the op table (and `netspec validate`) imports no numpy.
Reference = Callable[[list, dict, dict], Any]
# How the random-spec generator (tools/randspec) draws an op's attributes for an input shape.
# `draw` is the generator's helper (`Draw` in tools/randspec/generate.py): draw.rng,
# chance(p), width(lo, hi), spatial(n, lo, hi), maybe(attrs, key, p, value),
# activation(attrs, conv, shape), init(attrs), reshape_target(shape).
Sampler = Callable[[Any, tuple], dict]


@dataclass
class Example:
    """A small spec that runs this op on every target against its numpy reference.

    `inputs`: the spec's inputs (name -> per-example shape; None is a dynamic axis), `attrs`: the
    op layer's attributes (with `inputs:` when it reads several values), `before`: layers that
    feed it (the op in context, e.g. flatten after a channels-last convolution). Inputs are drawn
    from normal(shift, scale) (int64 ids below the smallest vocabulary).
    """

    name: str
    inputs: dict[str, list]
    attrs: dict = field(default_factory=dict)
    before: list[dict] = field(default_factory=list)
    dtype: str = "float32"
    scale: float = 1.0
    shift: float = 0.0


def ex(
    name: str,
    shapes: list | dict,
    *,
    before: list[dict] | None = None,
    dtype: str = "float32",
    scale: float = 1.0,
    shift: float = 0.0,
    **attrs: Any,
) -> Example:
    """`ex("same_s2", [3, 7, 7], filters=4, ...)`: one input `x`; a dict names several."""
    inputs = shapes if isinstance(shapes, dict) else {"x": shapes}
    return Example(name, inputs, attrs, list(before or []), dtype, scale, shift)


@dataclass
class OpDef:
    """One op of the spec language (see the module docstring)."""

    name: str
    family: str
    attrs: dict[str, Attr]
    rule: ShapeRule
    doc: str = ""
    min_inputs: int = 1
    max_inputs: int | None = 1
    weighted: bool = False  # takes `init`
    input_dtype: str = "float32"
    notes: list[str] = field(default_factory=list)
    ordered_inputs: bool = False  # the order of several inputs changes the result
    reference: Reference | None = None
    examples: list[Example] = field(default_factory=list)
    sample: Sampler | None = None
    # how often the generator proposes the op for a value of per-example rank 1, 2, 3 and 4+
    # (sequence families use `seq_weights` where given)
    weights: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    seq_weights: tuple[float, float, float, float] | None = None
    # how the generator makes a drawn layer keep its input's shape, for a residual branch:
    # (draw, attrs, shape, exact) -> attrs, or None where it cannot (`never`); unset: as drawn
    keep_shape: Callable[[Any, dict, tuple, bool], dict | None] | None = None
    # fixed starting values by param/buffer name (init_weights); other params: biases start
    # at zero, the rest are drawn with the layer's `init`
    start: dict[str, float] = field(default_factory=dict)
    # random test weights (tools/testing.random_weights): name -> ("uniform"|"normal", a, b);
    # other params are normal(0, scale / sqrt(fan_in))
    test_values: dict[str, tuple[str, float, float]] = field(default_factory=dict)
    # Where the sizes of the output come from (facts of the shape rule, which generated code
    # uses to write a layer's input size as the expression that set it):
    # `sets_size`: (axis, attribute): the attribute gives the size of that per-example output
    # axis (0: the channels, -1: the last), when the output has it (`(0, "filters")`);
    # `keeps_size`: "all": the output has the first input's size on every axis where the
    # shapes agree; "channels": on the channel axis (0) only; None: no size is kept.
    sets_size: tuple[int, str] | None = None
    keeps_size: str | None = None
    # the output is never negative, whatever the input (an activation's range): a target may
    # pad it with zeros before a max pool
    nonnegative: bool = False

    def __post_init__(self) -> None:
        assert self.keeps_size in (None, "all", "channels"), (self.name, self.keeps_size)
        assert self.sets_size is None or self.sets_size[1] in self.attrs, self.name

    def attr_names(self) -> list[str]:
        return list(self.attrs)

    def weight(self, rank: int, seq: bool) -> float:
        w = self.seq_weights if seq and self.seq_weights is not None else self.weights
        return w[min(rank, 4) - 1]


OPS: dict[str, OpDef] = {}


def never(draw: Any, attrs: dict, shape: tuple, exact: bool) -> None:
    """`keep_shape` of an op that is no use in a residual branch (it reshapes, or takes ids)."""
    return None


def op(
    name: str,
    family: str,
    attrs: list[Attr] | None = None,
    *,
    doc: str = "",
    min_inputs: int = 1,
    max_inputs: int | None = 1,
    weighted: bool = False,
    input_dtype: str = "float32",
    **record: Any,
):
    """Register an op: `@op("dense", "linear", [Attr(...)], doc=..., reference=...,
    examples=[...], sample=..., weights=(...))` over its shape rule; `record` takes the
    `OpDef` fields after `notes`."""

    def deco(rule: ShapeRule) -> ShapeRule:
        table = {a.name: a for a in attrs or []}
        if weighted:
            table.setdefault("init", Attr("init", "init", "glorot_uniform", "weight initializer"))
        assert name not in OPS, name
        OPS[name] = OpDef(
            name,
            family,
            table,
            rule,
            doc,
            min_inputs,
            max_inputs,
            weighted,
            input_dtype,
            **record,
        )
        return rule

    return deco


def conv_out(size: Dim, k: int, s: int, d: int, pad: tuple[int, int]) -> Dim:
    """Output length of a convolution or pool along one axis (rounding down)."""
    if not isinstance(size, int):
        return None
    return (size + pad[0] + pad[1] - d * (k - 1) - 1) // s + 1


def same_pad(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TensorFlow's `same`: the extra pad goes after."""
    total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2
