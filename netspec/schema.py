"""The JSON Schema of the spec language, derived from the op table.

`schemas/netspec.schema.json` is this function's output (a test keeps the two equal). Editors use
it through `# yaml-language-server: $schema=...`; netspec's own validation reads the same op
definitions and adds what a schema cannot say (references, cycles, shapes).
"""

from __future__ import annotations

import json

from .lower import BLOCK_KEYS, DTYPES
from .ops import ACTIVATIONS, FAMILY_ORDER, OPS
from .ops.base import PARAM_REF

SCHEMA_ID = "https://netspec.dev/schemas/netspec-1.schema.json"
IDENT = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}
REF = {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$"}


def _ordered_ops() -> list[str]:
    return [o.name for f in FAMILY_ORDER for o in OPS.values() if o.family == f]


def _op_schema(name: str) -> dict:
    d = OPS[name]
    props: dict = {
        "op": {"const": name},
        "name": {"$ref": "#/$defs/identifier"},
        "inputs": {"$ref": "#/$defs/refs"},
        "repeat": {"anyOf": [{"type": "integer", "minimum": 1}, PARAM_REF]},
    }
    for a in d.attrs.values():
        props[a.name] = a.json_schema()
    schema = {
        "type": "object",
        "description": d.doc,
        "properties": props,
        "required": ["op", *[a.name for a in d.attrs.values() if a.required]],
        "additionalProperties": False,
    }
    return schema


def build_schema() -> dict:
    names = _ordered_ops()
    op_refs = [
        {
            "if": {"properties": {"op": {"const": n}}, "required": ["op"]},
            "then": {"$ref": f"#/$defs/op_{n}"},
        }
        for n in names
    ]
    act_map = {
        "type": "object",
        "required": ["op"],
        "properties": {"op": {"enum": ACTIVATIONS}},
        "allOf": [
            {
                "if": {"properties": {"op": {"const": a}}},
                "then": {
                    "properties": {k: v.json_schema() for k, v in OPS[a].attrs.items()},
                    "additionalProperties": False,
                    "required": ["op"],
                },
            }
            for a in ACTIVATIONS
        ],
    }
    for branch in act_map["allOf"]:
        branch["then"]["properties"]["op"] = {"const": branch["if"]["properties"]["op"]["const"]}
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
        "activation": {"anyOf": [{"type": "null"}, {"enum": ACTIVATIONS}, act_map]},
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
            },
            "description": "a use of a block; the block's params are given beside 'block'",
        },
        "layer": {
            "anyOf": [
                {"enum": names, "description": "an op with default attributes"},
                {"$ref": "#/$defs/op_layer"},
                {"$ref": "#/$defs/block_use"},
            ]
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
                    "propertyNames": {"not": {"enum": ["name", "inputs", "repeat", "block"]}},
                    "description": "block params; null marks a param required at each use",
                },
                "inputs": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/identifier"}},
                "layers": {"$ref": "#/$defs/layers"},
                "outputs": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"$ref": "#/$defs/identifier"},
                },
            },
        },
    }
    assert set(defs["block"]["properties"]) == set(BLOCK_KEYS)
    for n in names:
        defs[f"op_{n}"] = _op_schema(n)
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
                "propertyNames": IDENT,
                "additionalProperties": {"$ref": "#/$defs/block"},
            },
            "layers": {"$ref": "#/$defs/layers"},
            "outputs": {
                "anyOf": [
                    REF,
                    {"type": "array", "minItems": 1, "items": REF},
                    {"type": "object", "propertyNames": IDENT, "additionalProperties": REF},
                ]
            },
        },
        "$defs": defs,
    }


def schema_text() -> str:
    return json.dumps(build_schema(), indent=2) + "\n"
