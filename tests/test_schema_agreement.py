"""The JSON Schema decides a spec's structure: netspec and the `jsonschema` package agree.

Three parties see the same specs: the `jsonschema` package (the reference for what the schema
means), netspec's own schema walker (`netspec.structure`, which validation runs), and
`netspec.loads` (the whole validation). For every spec:

- the walker's verdict equals `jsonschema`'s, exactly;
- what the schema rejects, netspec rejects with the walker's (first) error;
- what the schema accepts and netspec still rejects is refused for a reason no schema can
  express, and the reason is named: each error is put in one class of `NETSPEC_ONLY` (names that
  Python or a target refuses, references, expressions and the values they give, shapes, limits,
  non-finite numbers). An error in no class fails the test: it would be a structural check that
  the schema is missing.

Specs: tests/invalid/*, specs/*, and Hypothesis-made random specs and mutations of specs/*
(wrong keys, wrong types, out-of-range values), from the strategies of test_fuzz_loader.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from conftest import ROOT, SPECS
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from test_fuzz_loader import EXAMPLES, KEYS, NUMBERS, OP_NAMES, SPEC, SPEC_DATA, STRINGS, VALUES

import netspec
from netspec import SpecError, expr, structure, yamlload
from netspec.lower import lower
from netspec.ops import OPS
from netspec.schema import build_schema, schema
from netspec.train import tables
from netspec.train.plan import SETTINGS, STOPPING

INVALID = ROOT / "tests" / "invalid"
SCHEMA = build_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
AGREE = settings(
    max_examples=max(EXAMPLES, 100),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# What the schema cannot say, by class. A message of netspec's that fits none of these, on a
# spec the schema accepts, is a disagreement.
NETSPEC_ONLY = {
    "names": r"Python keyword|torch\.nn\.Module|starts with '__'|duplicate (name|output)"
    r"|output name .* is also the name of an input",
    "references": r"unknown (layer or input|block|param) |is defined below|takes its own output"
    r"|has several outputs|is an op, not a block|is a block, not an op|has no param"
    r"|missing block param|uses itself|is not used by any|does not feed any output"
    r"|needs 'inputs:'|several inputs|takes .*input|no layer to output|--set ",
    "expressions": r"expression|is declared below|not a number, so it cannot",
    "shapes": r"rank|shape|axis|kernel|padding|groups|channels|window|dynamic|permutation"
    r"|reshape|token ids|float32 values|output_padding|stride|dilation|larger than|spatial",
    "limits": r"more than|the limit of|nested more than|beyond 64-bit",
    "non-finite numbers (JSON has none)": r"\bnan\b|\binf\b",
    "training (the model, the losses and the history decide)": r"the model has no (input|output)"
    r"|has no data|not a trained output|no loss for|does not fit output|early-stopping monitor"
    r"|early stopping monitors|leave no examples|classes on the last axis|class axis"
    r"|dynamic last axis|Nesterov|scikit-learn data set|data format|listed twice|two keys",
}


def netspec_only(err: SpecError, data: Any) -> str | None:
    """The class of an error that the schema could not have found, or None."""
    try:
        at = data
        for p in err.path:
            at = at[p]
    except (KeyError, IndexError, TypeError):
        at = None
    try:
        if expr.find(at) is not None:
            return "a value given by a param or an expression"
    except expr.ExprError:
        return "expressions"
    for reason, pattern in NETSPEC_ONLY.items():
        if re.search(pattern, err.message):
            return reason
    return None


def verdicts(data: Any, params: dict | None = None) -> tuple[bool, str]:
    """Check the three parties on `data`; return the schema's verdict and netspec's outcome."""
    schema_ok = VALIDATOR.is_valid(data)
    failure = structure.first_failure(data, schema())
    assert (failure is None) == schema_ok, (failure, list(VALIDATOR.iter_errors(data))[:2])
    try:
        lower(data, params)
    except SpecError as e:
        if not schema_ok:  # refused with the schema's first failure, in netspec's words
            mine = structure.explain(failure, data)
            assert (mine.message, mine.path, mine.hint) == (e.message, e.path, e.hint)
            return False, "structural: " + _shape(e.message)
        reason = netspec_only(e, data)
        assert reason is not None, f"the schema accepts this, netspec refuses it: {e}"
        return True, reason
    assert schema_ok, "netspec accepted what the schema rejects"
    return True, "accepted"


def _shape(message: str) -> str:
    return " ".join(re.sub(r"'[^']*'|\d+", "_", message).split()[:4])


def note(what: str) -> None:
    try:
        event(what)
    except Exception:  # outside a Hypothesis test
        pass


# -- the schema itself ----------------------------------------------------------------------


def keywords(node: Any) -> set[str]:
    out: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            out.add(k)
            if k in ("properties", "$defs"):
                for sub in v.values():
                    out |= keywords(sub)
            elif k not in ("enum", "const", "default", "required"):
                out |= keywords(v)
    elif isinstance(node, list):
        for x in node:
            out |= keywords(x)
    return out


def test_schema_is_valid_draft_2020_12_and_uses_only_walked_keywords():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    used = keywords(SCHEMA)
    assert used <= structure.KEYWORDS | structure.IGNORED, used - structure.KEYWORDS
    assert schema() == SCHEMA


def test_layers_are_discriminated_by_op_and_block():
    """An editor reports the wrong key of the op that was meant, not "no branch matched"."""
    layer = SCHEMA["$defs"]["layer"]
    assert "anyOf" not in layer and "oneOf" not in layer
    bad = {"netspec": 1, "name": "m", "inputs": {"x": {"shape": [2]}}}
    bad["layers"] = [{"op": "dense", "units": 4, "unit": 4}]
    [error] = VALIDATOR.iter_errors(bad)
    assert "'unit' was unexpected" in error.message
    bad["layers"] = [{"op": "conv2d", "filters": 0, "kernel": 3}]
    [error] = VALIDATOR.iter_errors(bad)
    assert list(error.absolute_path) == ["layers", 0, "filters"]
    assert "not valid under any" in error.message  # the value: `0` or a `$param`
    assert [c.message for c in error.context] == [
        "0 is less than the minimum of 1",
        "0 is not of type 'string'",
    ]


# -- tests/invalid: every spec classified ---------------------------------------------------

# The schema rejects these (and netspec reports the schema's first failure).
STRUCTURAL = {
    "block_output_not_a_name",
    "block_param_reserved",
    "dropout_rate_one",
    "empty_outputs",
    "missing_attribute",
    "missing_layers",
    "missing_name",
    "negative_units",
    "not_a_mapping",
    "null_name",
    "octal_name",
    "op_not_a_name",
    "prelu_activation",
    "repeat_zero",
    "softmax_conv_activation",
    "unknown_activation",
    "unknown_attribute",
    "unknown_attribute_far",
    "unknown_dtype",
    "unknown_op",
    "unknown_op_case",
    "version_true",
    "wrong_type_float",
    "wrong_type_list",
    "wrong_type_string",
    "wrong_version",
    "yaml11_bool",
    "yaml11_bool_on",
    "zero_filters",
    "zero_input_size",
    "block_as_op",  # an unknown op to the schema; netspec's words say it is a block
    "training_bad_attribute",
    "training_column_not_a_name",
    "training_fraction_out_of_range",
    "training_missing_optimizer",
    "training_negative_lr",
    "training_null",
    "training_schedule_needs_step_size",
    "training_unknown_key",
    "training_unknown_optimizer",
    "training_wrong_loss_name",
}
# The YAML reader refuses these before there is data to validate.
YAML_LEVEL = {
    "alias_bomb",
    "comments_only",
    "control_character",
    "duplicate_key",
    "duplicate_key_top",
    "empty",
    "huge_integer",
    "merge_key",
    "nesting_too_deep",
    "not_utf8",
    "python_tag",
    "recursive_alias",
    "several_documents",
    "tab",
    "yaml_syntax",
    "yaml_unquoted_expression",
}
CASES = sorted(INVALID.glob("*.yaml"))


def parsed(spec: Path) -> Any:
    return yamlload.parse(spec.read_bytes(), str(spec)).data


@pytest.mark.parametrize("spec", CASES, ids=[p.stem for p in CASES])
def test_invalid_specs_are_classified(spec):
    if spec.stem in YAML_LEVEL:
        with pytest.raises(SpecError):
            parsed(spec)
        return
    data = parsed(spec)
    failure = structure.first_failure(data, SCHEMA)
    schema_ok = VALIDATOR.is_valid(data)
    assert (failure is None) == schema_ok
    assert (not schema_ok) == (spec.stem in STRUCTURAL)
    if spec.stem in STRUCTURAL:
        return
    args = spec.read_text("utf-8").split("# args:", 1)
    params = {}
    if len(args) > 1:  # `--set NAME=VALUE`: netspec-only by construction (an unknown param)
        for item in re.findall(r"--set (\S+)=(\S+)", args[1].splitlines()[0]):
            params[item[0]] = yaml.safe_load(item[1])
    with pytest.raises(SpecError) as e:
        netspec.loads(spec.read_bytes(), params, file=str(spec))
    assert netspec_only(e.value, data) is not None, str(e.value)


# -- specs/ and random specs ------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_example_specs_agree(spec):
    assert verdicts(parsed(spec)) == (True, "accepted")


def roundtrip(data: Any) -> Any:
    """The data as netspec reads it back from YAML (so that all three see the same)."""
    try:
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)
        return yamlload.parse(text).data
    except (yaml.YAMLError, RecursionError, SpecError):
        assume(False)


@AGREE
@given(SPEC)
def test_random_specs_agree(spec):
    note(verdicts(roundtrip(spec))[1])


MUTATIONS = ["delete", "retype", "rename", "number", "string", "op", "wrong_key", "range"]


@AGREE
@given(st.sampled_from(sorted(SPEC_DATA)), st.data())
def test_mutated_specs_agree(name, data):
    spec = copy.deepcopy(SPEC_DATA[name])
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in _paths(spec) if p]
        path = data.draw(st.sampled_from(paths))
        parent, last = _get(spec, path[:-1]), path[-1]
        kind = data.draw(st.sampled_from(MUTATIONS))
        if kind == "delete":
            del parent[last]
        elif kind == "retype":
            parent[last] = data.draw(VALUES)
        elif kind == "number":
            parent[last] = data.draw(NUMBERS)
        elif kind == "string":
            parent[last] = data.draw(STRINGS)
        elif kind == "op":
            parent[last] = data.draw(OP_NAMES)
        elif kind == "rename" and isinstance(parent, dict):
            parent[data.draw(st.sampled_from(KEYS))] = parent.pop(last)
        elif kind == "wrong_key" and isinstance(parent, dict):
            parent[data.draw(st.sampled_from([*KEYS, "unit", "filter", "kernal"]))] = 1
        elif kind == "range" and isinstance(parent, dict) and str(parent.get("op")) in OPS:
            attrs = list(OPS[parent["op"]].attrs.values())
            if attrs:
                a = data.draw(st.sampled_from(attrs))
                parent[a.name] = data.draw(st.sampled_from([0, -1, 1, 2.5, 1e9, -0.5, True, []]))
    note(verdicts(roundtrip(spec))[1])


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _get(node: Any, path: tuple) -> Any:
    for p in path:
        node = node[p]
    return node


# -- training sections: random valid ones and hostile ones -----------------------------------

TRAINING = SCHEMA["$defs"]["training"]["properties"]
MODELS = {  # a model for the sections to train: one regression output, one class output
    "regression": {
        "netspec": 1,
        "name": "m",
        "params": {"lr": 0.01, "opt": "adam"},
        "inputs": {"x": {"shape": [3]}},
        "layers": [{"op": "dense", "name": "y", "units": 1}],
    },
    "classes": {
        "netspec": 1,
        "name": "m",
        "params": {"lr": 0.01, "opt": "adam"},
        "inputs": {"x": {"shape": [3]}, "z": {"shape": [2]}},
        "layers": [
            {"op": "concat", "inputs": ["x", "z"]},
            {"op": "dense", "name": "logits", "units": 4},
            {"op": "softmax", "name": "p"},
            {"op": "dense", "name": "q", "units": 1, "inputs": ["logits"], "activation": "sigmoid"},
        ],
        "outputs": ["p", "q"],
    },
}


def attr_value(a):
    if a.kind == "choice":
        return st.sampled_from(list(a.choices))
    if a.kind == "bool":
        return st.booleans()
    lo = 0 if a.minimum is None else a.minimum
    hi = 1 if a.maximum is None else a.maximum
    if a.kind == "int":
        return st.integers(int(lo), int(min(hi, lo + 5)) if a.maximum is None else int(hi))
    return st.floats(lo, max(lo, min(hi, lo + 1)))


def record(kind: str, extra: dict | None = None):
    """A record's name, or a mapping with some of its attributes (values in range)."""

    def one(name):
        rec = tables()[kind][name]
        attrs = {n: attr_value(a) for n, a in rec.attrs.items()}
        required = {n: attrs.pop(n) for n, a in rec.attrs.items() if a.required}
        mapping = st.fixed_dictionaries(
            {"name": st.just(name), **required}, optional={**attrs, **(extra or {})}
        )
        if required:
            return mapping
        return st.one_of(st.just(name), mapping)

    return st.sampled_from(sorted(tables()[kind])).flatmap(one)


COLUMNS = st.one_of(
    st.sampled_from(["a", "b", "score", "data"]),
    st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3),
)
FRACTION = st.one_of(st.sampled_from([0, 0.1, 0.2, 0.5]), st.sampled_from(["val.csv", "t.npz"]))
MONITORS = st.sampled_from(
    ["loss", "val_loss", "accuracy", "val_accuracy", "mae", "p_accuracy", "val_q_loss", "acc"]
)


@st.composite
def training_spec(draw):
    kind = draw(st.sampled_from(sorted(MODELS)))
    spec = copy.deepcopy(MODELS[kind])
    outputs = ["y"] if kind == "regression" else ["p", "q"]
    inputs = list(spec["inputs"])
    trained = draw(st.lists(st.sampled_from(outputs), min_size=1, unique=True))
    loss = record("loss", {"weight": st.floats(0, 2)})
    t: dict = {
        "inputs": {i: draw(COLUMNS) for i in inputs},
        "targets": {o: draw(COLUMNS) for o in trained},
        "loss": draw(st.one_of(loss, st.fixed_dictionaries({o: loss for o in trained}))),
        "optimizer": draw(record("optimizer")),
    }
    optional = {
        "data": st.sampled_from(["data.csv", "../d/x.npz", "sklearn:iris", "a.npy"]),
        "schedule": record("schedule"),
        "metrics": st.lists(record("metric"), max_size=3),
        "validation": FRACTION,
        "test": FRACTION,
        "early_stopping": st.fixed_dictionaries(
            {}, optional={"monitor": MONITORS, **{n: attr_value(a) for n, a in STOPPING.items()}}
        ),
        **{n: attr_value(a) for n, a in SETTINGS.items()},
    }
    for k, strategy in optional.items():
        if draw(st.booleans()):
            t[k] = draw(strategy)
    spec["training"] = t
    return spec


@AGREE
@given(training_spec())
def test_random_training_sections_agree(spec):
    note(verdicts(roundtrip(spec))[1])


HOSTILE = st.one_of(
    VALUES,
    st.sampled_from(
        [
            "$lr",
            "${lr * 2}",
            "${lr - 1}",
            "$opt",
            "$nope",
            -1,
            0,
            1,
            1.5,
            "adm",
            "sgd",
            "step",
            "sparse_categorical_crossentropy",
            {"name": "sgd"},
            {"name": "step"},
            {"lr": 0.1},
            {"x": "mse"},
            [],
            {},
            None,
            True,
            "sklearn:nope",
            "data.txt",
            "val_loss",
        ]
    ),
)
TRAINING_KEYS = [*TRAINING, "epoch", "lr", "name", "weight", "monitor", "x", "y", "p"]


@AGREE
@given(training_spec(), st.data())
def test_hostile_training_sections_agree(spec, data):
    """Random values, keys and params put anywhere in a training section."""
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in _paths(spec["training"], ("training",)) if len(p) > 1]
        path = data.draw(st.sampled_from(paths))
        parent, last = _get(spec, path[:-1]), path[-1]
        kind = data.draw(st.sampled_from(["delete", "value", "rename", "wrong_key"]))
        if kind == "delete":
            del parent[last]
        elif kind == "value":
            parent[last] = data.draw(HOSTILE)
        elif kind == "rename" and isinstance(parent, dict):
            parent[data.draw(st.sampled_from(TRAINING_KEYS))] = parent.pop(last)
        elif kind == "wrong_key" and isinstance(parent, dict):
            parent[data.draw(st.sampled_from(TRAINING_KEYS))] = data.draw(HOSTILE)
    note(verdicts(roundtrip(spec))[1])


def test_training_schema_is_discriminated_by_name():
    """An editor reports the wrong attribute of the optimizer that was meant."""
    bad = copy.deepcopy(MODELS["regression"])
    bad["training"] = {
        "inputs": {"x": "a"},
        "targets": {"y": "b"},
        "loss": "mse",
        "optimizer": {"name": "sgd", "lr": 0.1, "learning_rate": 0.1},
    }
    [error] = VALIDATOR.iter_errors(bad)
    assert "'learning_rate' was unexpected" in error.message
    assert list(error.absolute_path) == ["training", "optimizer"]
    bad["training"]["optimizer"] = {"name": "adam", "beta1": 1.0}
    [error] = VALIDATOR.iter_errors(bad)
    assert list(error.absolute_path) == ["training", "optimizer", "beta1"]
    for kind in ("optimizer", "loss", "schedule", "metric"):
        assert set(SCHEMA["$defs"][kind]["else"]["properties"]["name"]["enum"]) == set(
            tables()[kind]
        )
