"""Fuzzing `netspec.loads`: whatever the input, it returns a Graph or raises SpecError.

Inputs: random text (YAML-ish alphabets), random bytes, random spec-shaped data, and random
mutations of every spec in specs/ (deleted / duplicated / retyped keys, swapped values, random op
names, huge / negative / float numbers, strings with `$` and `${}`), as data and as text.
Properties: nothing but SpecError (or SpecErrors) escapes; the error prints with file:line:col;
every call finishes quickly; and whatever netspec accepts, the JSON Schema accepts too.

CI runs a few hundred examples in all. For a long run:

    NETSPEC_FUZZ_LONG=1 .venv/bin/pytest tests/test_fuzz_loader.py      # 5000 per test
    NETSPEC_FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/test_fuzz_loader.py
"""

from __future__ import annotations

import copy
import json
import os
import re
from typing import Any

import jsonschema
import yaml
from conftest import SPECS
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from workcount import CallCounter

import netspec
from netspec import SpecError, SpecErrors, yamlload
from netspec.ops import ACTIVATIONS, INITS, OPS
from netspec.schema import build_schema

LONG = os.environ.get("NETSPEC_FUZZ_LONG") == "1"
EXAMPLES = int(os.environ.get("NETSPEC_FUZZ_EXAMPLES", 5000 if LONG else 50))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # work is bounded below by a call count, the same on every machine
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
MAX_CALLS = 3_000_000  # 40 times what the largest example spec takes (about 75,000)
VALIDATOR = jsonschema.Draft202012Validator(build_schema())
SPEC_DATA = {p.stem: yamlload.parse(p.read_bytes(), str(p)).data for p in SPECS}
SPEC_TEXT = {p.stem: p.read_text("utf-8") for p in SPECS}
LOCATED = re.compile(r"^\S+:\d+:\d+: error: ")


def note(what: str) -> None:
    """Count outcomes for `--hypothesis-show-statistics` (only inside a Hypothesis test)."""
    try:
        event(what)
    except InvalidArgument:
        pass


def check(source: str | bytes, params: dict | None = None) -> netspec.Graph | None:
    """Load; only spec errors may escape, each printable with its location, and fast."""
    graph = None
    work = CallCounter()
    try:
        with work:
            graph = netspec.loads(source, params, file="fuzz.yaml")
    except SpecErrors as e:
        for err in e.errors:
            assert LOCATED.match(str(err)), str(err)
    except SpecError as e:
        text = str(e)
        assert LOCATED.match(text), text
        assert "Traceback" not in text
        note("refused: " + " ".join(re.sub(r"'[^']*'|\d+", "_", e.message).split()[:4]))
    else:
        note("accepted")
    assert work.count < MAX_CALLS, f"took {work.count:,} function calls"
    return graph


def check_data(data: Any, params: dict | None = None) -> None:
    """Dump data as YAML, load it, and hold the schema to what netspec accepted."""
    try:
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)
    except (yaml.YAMLError, RecursionError):  # pragma: no cover - a strategy problem
        assume(False)
    graph = check(text, params)
    if graph is not None and not params:
        parsed = yamlload.parse(text).data
        errors = [e.message for e in VALIDATOR.iter_errors(parsed)]
        assert not errors, f"netspec accepted what the schema rejects: {errors[:3]}\n{text}"


# -- strategies ------------------------------------------------------------------------------

NAMES = [
    "x",
    "y",
    "a",
    "b",
    "hidden",
    "dense_1",
    "relu_1",
    "n",
    "n_1",
    "out",
    "image",
    "tokens",
    "basic",
    "basic_1",
    "forward",
    "training",
    "class",
    "__init__",
    "layers",
    "1x",
    "a.b",
]
KEYS = sorted(
    {
        "netspec",
        "name",
        "description",
        "params",
        "inputs",
        "blocks",
        "layers",
        "outputs",
        "op",
        "block",
        "repeat",
        "shape",
        "dtype",
        "<<",
        "x",
        "hidden",
    }
    | {a for d in OPS.values() for a in d.attrs}
)
NUMBERS = st.one_of(
    st.integers(-3, 300),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 2, 3, 2**31, 2**63 - 1, 2**63, 10**12, 1e-5, 0.5, 1.0, 1e300]),
)
EXPRESSIONS = st.builds(
    lambda parts: "${" + " ".join(parts) + "}",
    st.lists(
        st.sampled_from(
            [
                "hidden",
                "1",
                "0",
                "2.5",
                "+",
                "-",
                "*",
                "/",
                "//",
                "%",
                "(",
                ")",
                "x",
                "__import__",
                "'os'",
                ".",
                "1e400",
                "999999999999",
            ]
        ),
        max_size=8,
    ),
)
STRINGS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "$",
            "${}",
            "${",
            "$hidden",
            "$x",
            "${hidden * 2}",
            "${1/0}",
            "$$",
            '${__import__("os").system("true")}',
            "same",
            "valid",
            "yes",
            "no",
            "on",
            "null",
            "int64",
            "float32",
            "0755",
            "0x10",
            "glorot_uniform",
            "-1",
        ]
    ),
    EXPRESSIONS,
    st.sampled_from(NAMES),
)
OP_NAMES = st.one_of(st.sampled_from(sorted(OPS)), st.sampled_from(["Dense", "conv4d", "dens"]))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, STRINGS, OP_NAMES)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=12,
)


def mostly(usual, rare, odds: int = 8):
    """`usual` about `odds` times in `odds + 1` (one_of does not weigh its branches)."""
    return st.integers(0, odds).flatmap(lambda i: usual if i else rare)


SMALL = st.integers(1, 6)
PLAUSIBLE = {  # values of the right kind, so that shape rules run
    "int": SMALL,
    "float": st.floats(0, 1),
    "bool": st.booleans(),
    "spatial": st.one_of(SMALL, st.lists(SMALL, min_size=1, max_size=2)),
    "padding": st.one_of(
        st.integers(0, 2),
        st.sampled_from(["same", "valid"]),
        st.lists(
            st.one_of(st.integers(0, 2), st.lists(st.integers(0, 2), min_size=2, max_size=2)),
            min_size=1,
            max_size=2,
        ),
    ),
    "activation": st.one_of(
        st.none(),
        st.sampled_from(ACTIVATIONS + ["prelu"]),
        st.builds(lambda op: {"op": op}, st.sampled_from(ACTIVATIONS)),
    ),
    "init": st.sampled_from(INITS),
    "shape": st.lists(st.one_of(SMALL, st.just(-1)), min_size=1, max_size=3),
    "dims": st.one_of(st.permutations([1, 2, 3]), st.lists(st.integers(-1, 4), max_size=3)),
    "axis": st.integers(-3, 3),
    "ints": st.lists(st.integers(-4, 4), max_size=3),
}
REFS = st.lists(
    st.sampled_from(["x", "y", "x.out", "b_1", "dense_1", "relu_1", "n", "n_1"]),
    min_size=1,
    max_size=3,
)


def plausible(a):
    return st.sampled_from(a.choices) if a.kind == "choice" else PLAUSIBLE[a.kind]


def op_layer(op: str):
    attrs = OPS[op].attrs.values()
    required = {a.name: mostly(plausible(a), VALUES, 4) for a in attrs if a.required}
    optional = {a.name: mostly(plausible(a), VALUES, 4) for a in attrs if not a.required}
    optional.update(name=st.sampled_from(NAMES), inputs=REFS, repeat=st.integers(1, 3))
    return st.fixed_dictionaries({"op": st.just(op), **required}, optional=optional)


LAYER = mostly(
    st.sampled_from(sorted(OPS)).flatmap(op_layer),
    st.one_of(
        OP_NAMES,
        st.builds(
            lambda op, rest: {"op": op, **rest},
            OP_NAMES,
            st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=4),
        ),
        st.builds(
            lambda b, rest: {"block": b, **rest},
            st.sampled_from(["b", "c", "relu"]),
            st.dictionaries(
                st.sampled_from(["k", "hidden", "name", "inputs", "repeat"]),
                st.one_of(SMALL, VALUES),
                max_size=3,
            ),
        ),
    ),
    3,
)
SHAPE = st.lists(
    mostly(
        st.integers(1, 12),
        st.one_of(st.integers(-1, 40), st.none(), st.sampled_from(["seq", "$hidden"])),
        3,
    ),
    min_size=1,
    max_size=4,
)
INPUTS = mostly(
    st.fixed_dictionaries({"x": st.fixed_dictionaries({"shape": SHAPE})}),
    st.dictionaries(
        st.sampled_from(["x", "y", "tokens", "class"]),
        st.fixed_dictionaries(
            {"shape": SHAPE}, optional={"dtype": st.sampled_from(["float32", "int64", "int32"])}
        ),
        max_size=2,
    ),
    2,
)
BLOCK = st.fixed_dictionaries(
    {"layers": st.lists(LAYER, min_size=1, max_size=4)},
    optional={
        "params": st.dictionaries(
            st.sampled_from(["k", "hidden", "repeat"]),
            st.one_of(st.none(), NUMBERS, STRINGS),
            max_size=2,
        ),
        "inputs": st.lists(st.sampled_from(["x", "y"]), min_size=1, max_size=2),
        "outputs": st.lists(st.sampled_from(NAMES), max_size=2),
    },
)
SPEC = st.fixed_dictionaries(
    {
        "netspec": mostly(st.just(1), SCALARS, 30),
        "name": mostly(st.just("m"), SCALARS, 30),
        "inputs": INPUTS,
        "layers": st.lists(LAYER, min_size=1, max_size=6),
    },
    optional={
        "params": st.dictionaries(
            st.sampled_from(["hidden", "x", "k"]), st.one_of(NUMBERS, STRINGS), max_size=3
        ),
        "blocks": st.dictionaries(st.sampled_from(["b", "c", "relu"]), BLOCK, max_size=2),
        "outputs": st.one_of(
            st.lists(st.sampled_from(NAMES), max_size=3),
            st.dictionaries(st.sampled_from(NAMES), st.sampled_from(NAMES), max_size=2),
            SCALARS,
        ),
    },
)
YAMLISH = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(":-[]{},&*!|>'\"#%@`$?~ \n\t\r.0123456789abexyz_")), st.characters()
    ),
    max_size=400,
)

# -- text and bytes --------------------------------------------------------------------------


@FUZZ
@given(YAMLISH)
def test_random_yamlish_text(text):
    check(text)


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes(data):
    check(data)


@FUZZ
@given(st.sampled_from(sorted(SPEC_TEXT)), st.data())
def test_text_mutations_of_valid_specs(name, data):
    text = SPEC_TEXT[name]
    lines = text.splitlines(keepends=True)
    for _ in range(data.draw(st.integers(1, 3))):
        kind = data.draw(
            st.sampled_from(
                ["insert", "delete", "duplicate_line", "swap_lines", "replace_token", "truncate"]
            )
        )
        if kind == "insert":
            pos = data.draw(st.integers(0, len(text)))
            text = text[:pos] + data.draw(YAMLISH.filter(lambda s: len(s) < 8)) + text[pos:]
        elif kind == "delete" and text:
            pos = data.draw(st.integers(0, len(text) - 1))
            text = text[:pos] + text[pos + data.draw(st.integers(1, 5)) :]
        elif kind in ("duplicate_line", "swap_lines") and lines:
            i = data.draw(st.integers(0, len(lines) - 1))
            j = data.draw(st.integers(0, len(lines) - 1))
            if kind == "duplicate_line":
                lines.insert(j, lines[i])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            text = "".join(lines)
        elif kind == "replace_token":
            tokens = re.findall(r"[A-Za-z_0-9.$]+", text)
            if tokens:
                old = data.draw(st.sampled_from(tokens))
                new = str(data.draw(st.one_of(STRINGS, NUMBERS, OP_NAMES)))
                text = text.replace(old, new, data.draw(st.integers(1, 3)))
        elif kind == "truncate":
            text = text[: data.draw(st.integers(0, len(text)))]
        lines = text.splitlines(keepends=True)
    check(text)


# -- data ------------------------------------------------------------------------------------


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, (*prefix, i))
    return out


def get(node: Any, path: tuple) -> Any:
    for p in path:
        node = node[p]
    return node


@FUZZ
@given(st.sampled_from(sorted(SPEC_DATA)), st.data())
def test_data_mutations_of_valid_specs(name, data):
    spec = copy.deepcopy(SPEC_DATA[name])
    for _ in range(data.draw(st.integers(1, 4))):
        all_paths = [p for p in paths(spec) if p]
        if not all_paths:
            break
        path = data.draw(st.sampled_from(all_paths))
        parent, last = get(spec, path[:-1]), path[-1]
        kind = data.draw(
            st.sampled_from(
                ["delete", "duplicate", "retype", "swap", "op", "number", "string", "rename"]
            )
        )
        if kind == "delete":
            del parent[last]
        elif kind == "duplicate" and isinstance(parent, list):
            parent.insert(last, copy.deepcopy(parent[last]))
        elif kind == "duplicate" and isinstance(parent, dict):
            parent[data.draw(st.sampled_from(KEYS))] = copy.deepcopy(parent[last])
        elif kind == "retype":
            parent[last] = data.draw(VALUES)
        elif kind == "swap":
            other = data.draw(st.sampled_from(all_paths))
            try:
                value = copy.deepcopy(get(spec, other))
            except (KeyError, IndexError, TypeError):
                continue
            parent[last] = value
        elif kind == "op":
            parent[last] = data.draw(OP_NAMES)
        elif kind == "number":
            parent[last] = data.draw(NUMBERS)
        elif kind == "string":
            parent[last] = data.draw(STRINGS)
        elif kind == "rename" and isinstance(parent, dict):
            value = parent.pop(last)
            parent[data.draw(st.sampled_from(KEYS))] = value
    check_data(spec)


@FUZZ
@given(SPEC)
def test_random_specs(spec):
    check_data(spec)


@FUZZ
@given(
    st.sampled_from(sorted(SPEC_TEXT)),
    st.dictionaries(
        st.sampled_from(["hidden", "classes", "rate", "x", "base"]),
        st.one_of(NUMBERS, STRINGS, st.booleans(), st.none()),
        max_size=2,
    ),
)
def test_param_overrides(name, params):
    check(SPEC_TEXT[name], params)


def test_the_specs_themselves_pass_the_properties():
    for name, text in SPEC_TEXT.items():
        assert check(text) is not None, name
        check_data(json.loads(json.dumps(SPEC_DATA[name])))
