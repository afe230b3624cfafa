"""The JSON Schema of the spec language, derived from the op table.

`schemas/netspec.schema.json` is this function's output (a test keeps the two equal). Editors use
it through `# yaml-language-server: $schema=...`, and netspec validates every spec's structure
against it (`netspec.structure`) before lowering checks what a schema cannot say (references,
names, expressions, shapes). Layers are told apart by `op` / `block` with if/then, so that a
validator reports the wrong key or value of the op that was meant, not "no branch matched".
"""

from __future__ import annotations

import json
from functools import lru_cache

from .ops import ACTIVATIONS, FAMILY_ORDER, OPS
from .ops.base import PARAM_REF
from .train import tables

SCHEMA_ID = "https://netspec.dev/schemas/netspec-1.schema.json"
IDENT = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}
REF = {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$"}
DTYPES = ["float32", "int64"]
USE_KEYS = [
    "block",
    "name",
    "inputs",
    "repeat",
    "when",
    "shares",
]  # keys of every block use: no block param's
WHEN = {
    "anyOf": [{"type": "boolean"}, PARAM_REF],
    "description": "the layer is there only when this is true (usually a ${condition} on "
    "params); when false it passes its one input on",
}
SHARES = {
    "$ref": "#/$defs/identifier",
    "description": "reuse the weights of this earlier layer (or block use) in the same scope: "
    "same op (or block) and attributes; the weights are stored once, under its name",
}
NO_CONV_ACT = ["softmax", "log_softmax"]  # which axis they normalize would be ambiguous


def activations(op: str) -> list[str]:
    """The activation names `op`'s `activation:` takes (a conv takes no softmax)."""
    return ACTIVATIONS if op == "dense" else [a for a in ACTIVATIONS if a not in NO_CONV_ACT]


def _ordered_ops() -> list[str]:
    return [o.name for f in FAMILY_ORDER for o in OPS.values() if o.family == f]


def _op_schema(name: str) -> dict:
    d = OPS[name]
    props: dict = {
        "op": {"const": name},
        "name": {"$ref": "#/$defs/identifier"},
        "inputs": {"$ref": "#/$defs/refs"},
        "repeat": {"anyOf": [{"type": "integer", "minimum": 1}, PARAM_REF]},
        "when": WHEN,
        "shares": SHARES,
    }
    for a in d.attrs.values():
        props[a.name] = a.json_schema()
        if a.kind == "activation" and name != "dense":
            props[a.name] = _swap_ref(props[a.name], "#/$defs/conv_activation")
    schema = {
        "type": "object",
        "description": d.doc,
        "properties": props,
        "required": ["op", *[a.name for a in d.attrs.values() if a.required]],
        "additionalProperties": False,
    }
    return schema


def _swap_ref(s: dict, ref: str) -> dict:
    return {
        "anyOf": [{**b, "$ref": ref} if "$ref" in b else b for b in s["anyOf"]],
        **{k: v for k, v in s.items() if k != "anyOf"},
    }


def _activation(names: list[str]) -> dict:
    """`activation:` is a name or a mapping `{op: name, ...attributes}`."""
    mapping = {
        "type": "object",
        "required": ["op"],
        "properties": {"op": {"enum": names}},
        "allOf": [
            {
                "if": {"properties": {"op": {"const": a}}, "required": ["op"]},
                "then": {
                    "properties": {"op": {"const": a}}
                    | {k: v.json_schema() for k, v in OPS[a].attrs.items()},
                    "additionalProperties": False,
                },
            }
            for a in names
        ],
    }
    return {
        "if": {"type": "string"},
        "then": {"enum": names},
        "else": {"anyOf": [{"type": "null"}, mapping]},
    }


@lru_cache(maxsize=1)
def _cached() -> str:
    return json.dumps(build_schema())


def schema() -> dict:
    """The schema, built once per process (a fresh copy each call)."""
    return json.loads(_cached())


def build_schema() -> dict:
    names = _ordered_ops()
    op_refs = [
        {
            "if": {"properties": {"op": {"const": n}}, "required": ["op"]},
            "then": {"$ref": f"#/$defs/op_{n}"},
        }
        for n in names
    ]
    defs: dict = {
        "identifier": IDENT,
        "param_ref": PARAM_REF,
        "refs": {"anyOf": [REF, {"type": "array", "minItems": 1, "items": REF}]},
        "padding": {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"enum": ["same", "valid"]},
                {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 3,
                    "items": {
                        "anyOf": [
                            {"type": "integer", "minimum": 0},
                            PARAM_REF,
                            {
                                "type": "array",
                                "minItems": 2,
                                "maxItems": 2,
                                "items": {"anyOf": [{"type": "integer", "minimum": 0}, PARAM_REF]},
                            },
                        ]
                    },
                },
            ]
        },
        "activation": _activation(ACTIVATIONS),
        "conv_activation": _activation(activations("conv2d")),
        "input": {
            "type": "object",
            "required": ["shape"],
            "additionalProperties": False,
            "properties": {
                "shape": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "anyOf": [
                            {"type": "integer", "minimum": 1},
                            {"type": "null"},
                            IDENT,
                            PARAM_REF,
                        ]
                    },
                    "description": "per-example shape, channels-first; null or a name marks a "
                    "dynamic axis",
                },
                "dtype": {"enum": DTYPES, "default": "float32"},
            },
        },
        "op_layer": {
            "type": "object",
            "required": ["op"],
            "properties": {"op": {"enum": names}},
            "allOf": op_refs,
        },
        "block_use": {
            "type": "object",
            "required": ["block"],
            "not": {"required": ["op"]},
            "properties": {
                "block": {"$ref": "#/$defs/identifier"},
                "name": {"$ref": "#/$defs/identifier"},
                "inputs": {"$ref": "#/$defs/refs"},
                "repeat": {"anyOf": [{"type": "integer", "minimum": 1}, PARAM_REF]},
                "when": WHEN,
                "shares": SHARES,
            },
            "description": "a use of a block; the block's params are given beside 'block'",
        },
        "layer": {
            "if": {"type": "string"},
            "then": {
                "enum": [n for n in names if not any(a.required for a in OPS[n].attrs.values())],
                "description": "an op with default attributes",
            },
            "else": {
                "type": "object",
                "if": {"required": ["block"]},
                "then": {"$ref": "#/$defs/block_use"},
                "else": {"$ref": "#/$defs/op_layer"},
            },
        },
        "layers": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/layer"}},
        "block": {
            "type": "object",
            "required": ["layers"],
            "additionalProperties": False,
            "properties": {
                "description": {"type": "string"},
                "params": {
                    "type": "object",
                    "propertyNames": {**IDENT, "not": {"enum": USE_KEYS}},
                    "description": "block params; null marks a param required at each use",
                },
                "inputs": {
                    "type": "array",
                    "minItems": 1,
                    "uniqueItems": True,
                    "items": {"$ref": "#/$defs/identifier"},
                },
                "layers": {"$ref": "#/$defs/layers"},
                "outputs": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"$ref": "#/$defs/identifier"},
                },
            },
        },
    }
    for n in names:
        defs[f"op_{n}"] = _op_schema(n)
    defs.update(training_defs())
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "netspec model spec, version 1",
        "description": "A neural network written once, compiled to PyTorch, Keras and ONNX.",
        "type": "object",
        "required": ["netspec", "name", "inputs", "layers"],
        "additionalProperties": False,
        "properties": {
            "netspec": {"const": 1, "description": "format version"},
            "name": {"$ref": "#/$defs/identifier"},
            "description": {"type": "string"},
            "params": {
                "type": "object",
                "propertyNames": IDENT,
                "description": "named values, overridable with --set",
            },
            "inputs": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": IDENT,
                "additionalProperties": {"$ref": "#/$defs/input"},
            },
            "blocks": {
                "type": "object",
                "propertyNames": {**IDENT, "not": {"enum": names}},
                "additionalProperties": {"$ref": "#/$defs/block"},
            },
            "layers": {"$ref": "#/$defs/layers"},
            "training": {"$ref": "#/$defs/training"},
            "outputs": {
                "anyOf": [
                    REF,
                    {"type": "array", "minItems": 1, "items": REF},
                    {
                        "type": "object",
                        "minProperties": 1,
                        "propertyNames": IDENT,
                        "additionalProperties": REF,
                    },
                ]
            },
        },
        "$defs": defs,
    }


RECORD_KINDS = ("optimizer", "loss", "schedule", "metric")
NON_BLANK = {"type": "string", "pattern": r"\S"}


def _records(kind: str) -> dict:
    """`<kind>`: a record's name, or a mapping discriminated by `name` (like layers by `op`),
    and one `<kind>_<name>` definition per record. A bare name is only allowed for records
    without required attributes."""
    from .train.plan import WEIGHT

    records = tables()[kind]
    defs: dict = {}
    for n, r in records.items():
        s = r.json_schema()
        props = {"name": {"const": n}, **s["properties"]}
        if kind == "loss":
            props["weight"] = WEIGHT.json_schema()
        d: dict = {
            "type": "object",
            "properties": props,
            "required": ["name", *s.get("required", [])],
            "additionalProperties": False,
        }
        if r.doc:
            d["description"] = r.doc
        defs[f"{kind}_{n}"] = d
    defs[kind] = {
        "if": {"type": "string"},
        "then": {
            "enum": [n for n, r in records.items() if not any(a.required for a in r.attrs.values())]
        },
        "else": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"enum": list(records)}},
            "allOf": [
                {
                    "if": {"properties": {"name": {"const": n}}, "required": ["name"]},
                    "then": {"$ref": f"#/$defs/{kind}_{n}"},
                }
                for n in records
            ],
        },
    }
    return defs


def training_defs() -> dict:
    """The `training:` section's definitions, from the record tables and the section's own
    settings (`netspec.train.lowerplan`)."""
    from .train.plan import SETTINGS, STOPPING

    defs: dict = {}
    for kind in RECORD_KINDS:
        defs.update(_records(kind))
    split = {
        "anyOf": [
            {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
            NON_BLANK,
        ],
        "description": "a fraction of the data in [0, 1), or a data file of its own (relative "
        "to the spec's folder)",
        "default": 0,
    }
    stopping = {
        "monitor": {**NON_BLANK, "description": "the history key watched", "default": "val_loss"}
    }
    stopping.update({k: a.json_schema() for k, a in STOPPING.items()})
    defs["columns"] = {
        "anyOf": [NON_BLANK, {"type": "array", "minItems": 1, "items": NON_BLANK}],
        "description": "a column (or array) name, or a list of them stacked side by side",
    }
    defs["losses"] = {
        "if": {"required": ["name"]},
        "then": {"$ref": "#/$defs/loss"},
        "else": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": IDENT,
            "additionalProperties": {"$ref": "#/$defs/loss"},
            "description": "a loss per trained output",
        },
    }
    defs["metrics"] = {
        "if": {"type": "array"},
        "then": {"items": {"$ref": "#/$defs/metric"}},
        "else": {
            "type": "object",
            "propertyNames": IDENT,
            "additionalProperties": {"type": "array", "items": {"$ref": "#/$defs/metric"}},
            "description": "metrics per trained output",
        },
    }
    defs["early_stopping"] = {
        "type": "object",
        "additionalProperties": False,
        "properties": stopping,
    }
    mapping = {
        "type": "object",
        "minProperties": 1,
        "propertyNames": IDENT,
        "additionalProperties": {"$ref": "#/$defs/columns"},
    }
    props: dict = {
        "data": {
            **NON_BLANK,
            "description": "the data file (.csv, .tsv, .npz, .npy; relative to the spec's "
            "folder) or sklearn:NAME",
        },
        "inputs": {**mapping, "description": "model input -> data column(s)"},
        "targets": {**mapping, "description": "trained output -> data column(s)"},
        "loss": {"$ref": "#/$defs/losses"},
        "optimizer": {"$ref": "#/$defs/optimizer"},
        "schedule": {"$ref": "#/$defs/schedule"},
    }
    props.update({k: a.json_schema() for k, a in SETTINGS.items()})
    props["metrics"] = {"$ref": "#/$defs/metrics"}
    props["validation"] = split
    props["test"] = split
    props["early_stopping"] = {"$ref": "#/$defs/early_stopping"}
    defs["training"] = {
        "type": "object",
        "required": ["inputs", "targets", "loss", "optimizer"],
        "additionalProperties": False,
        "properties": props,
        "description": "how the model is trained (docs/spec-language.md, Training)",
    }
    return defs


def schema_text() -> str:
    return json.dumps(build_schema(), indent=2) + "\n"
