"""Hostile names and descriptions against every target (hypothesis).

One spec shape with a slot for every kind of name a user writes -- the spec's name, inputs,
layers, a block, its input, its param and its layers, a block use (repeated), a spec param,
outputs -- filled with names drawn to break generated code: Python builtins and keywords
(`self`, `torch`, `nn`, `F`, `keras`, `np`, `x`, `input`, `print`, `super`, `None_`,
`__class__`), every identifier the targets' own generated sources use, names that differ only
by case, very long names, non-ASCII letters and non-identifiers; and descriptions with quotes,
triple quotes, backslashes, newlines, NUL, `{}` and `%s`.

The loader must refuse what the spec's `[A-Za-z_][A-Za-z0-9_]*` rule refuses (keywords, names
starting with `__`, names a target cannot use as an attribute, duplicates) with a SpecError,
never another exception, and accept every other spec. For each accepted spec:
- the torch and keras sources parse (`ast.parse`), import only the allowlist, call no
  eval/exec/compile/open/__import__ and no getattr/setattr/delattr on a computed name, and the
  description cannot change the code: the AST with the description replaced is the same except
  for string constants;
- (`test_build_and_run`) the torch and keras models build from that source and run a forward
  pass, the ONNX model passes `onnx.checker` (full check) and runs in ONNX Runtime, inputs and
  outputs carry the spec's names, and the targets agree.

CI mode is deterministic and moderate; `NETSPEC_HOSTILE_LONG=1` (or a number N: N times the
examples) runs many more, randomly; `NETSPEC_HOSTILE_TARGETS=torch,onnx` runs only those
targets. The module prints how many names it ran (run pytest with -s to see it).
"""

from __future__ import annotations

import ast
import builtins
import keyword
import os
import re
import warnings
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import netspec
from netspec.errors import SpecError
from netspec.names import check_identifier
from tools import randspec
from tools.testing import random_inputs, random_weights

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TARGETS = randspec.available_targets()
if os.environ.get("NETSPEC_HOSTILE_TARGETS"):  # e.g. torch,onnx: only those
    TARGETS = [t for t in TARGETS if t in os.environ["NETSPEC_HOSTILE_TARGETS"].split(",")]
PY_TARGETS = [t for t in TARGETS if t in ("torch", "keras")]
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z", re.ASCII)

_long = os.environ.get("NETSPEC_HOSTILE_LONG", "")
LONG = _long not in ("", "0")
SCALE = int(_long) if _long.isdigit() and int(_long) > 1 else 20
SOURCE_EXAMPLES = 400 * (SCALE if LONG else 1)
BUILD_EXAMPLES = 50 * (SCALE if LONG else 1)
REFUSE_EXAMPLES = 400 * (SCALE if LONG else 1)
PROFILE = settings(
    deadline=None,
    derandomize=not LONG,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

ALLOWED_IMPORTS = {
    "torch",
    "torch.nn",
    "torch.nn.functional",
    "numpy",
    "keras",
    "math",
    "typing",
    "__future__",
    "pathlib",
}
BANNED_CALLS = {
    "eval",
    "exec",
    "compile",
    "open",
    "__import__",
    "globals",
    "locals",
    "vars",
    "breakpoint",
    "input",
}
ATTR_CALLS = {"getattr", "setattr", "delattr", "hasattr"}

COUNTS: Counter[str] = Counter()

# -- the names --------------------------------------------------------------------------------
NASTY = """self cls torch nn F functional keras np numpy x y h c out input inputs output outputs
print super None_ True_ False_ __class__ __init__ __dict__ __name__ _ __ ___ _x x_ type object
list dict tuple int float str len range sum max min abs id iter next map zip open eval exec
compile getattr setattr globals locals vars math typing pathlib Path annotations safetensors
load_file save_file safe_open forward training train eval state_dict load_state_dict module
modules parameters children apply cuda cpu to half double register_buffer weight bias
running_mean running_var build_model load_weights save_weights export_weights WEIGHTS Model
Input Layer layers ops Sequential Module ModuleList Parameter Tensor tensor cat stack reshape
permute transpose batch const value tmp result ret args kwargs name names seq steps model
weights x_to_cl x_to_cf add concat dense conv2d relu lstm gru rnn embedding softmax identity
Dense Conv2D Permute Add Concatenate LSTM GRU Embedding Identity PaddedMaxPool main __main__
match case _1 a1 A1 X T N i j k v w b z keyword builtins sys os subprocess shutil importlib
Lambda lambda_ pass_ class_ def_ return_ import_ from_ async_ await_ yield_ global_ nonlocal_
""".split()
KEYWORDS = list(keyword.kwlist) + list(keyword.softkwlist)
NOT_IDENT = [
    "",
    "1x",
    "x-y",
    "x.y",
    "x y",
    "x\ny",
    "x$",
    "$x",
    "naïve",
    "名前",
    "Ωmega",
    "x\u0301",
    "ﬁ",
    "x\u200b",
    "٣",
    "x\x00",
    "é",
    "self.x",
    "a/b",
    "../x",
    "x;import os",
    "__import__('os')",
    "${x}",
    "'x'",
    '"x"',
    "x:",
    "-x",
    "\t",
    "x\\y",
]


def _source_identifiers() -> list[str]:
    """Every name the targets' generated sources use for a spec with a block and a recurrent
    layer: helper functions, variables, arguments, attributes, classes."""
    spec = netspec.loads(randspec.to_yaml(template(dict(DEFAULTS), "d")))
    found: set[str] = set()
    for t in PY_TARGETS:
        try:
            tree = ast.parse(netspec.generate(spec, t))
        except Exception:  # noqa: BLE001 - a target still being written
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                found.add(node.id)
            elif isinstance(node, ast.Attribute):
                found.add(node.attr)
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                found.add(node.name)
            elif isinstance(node, ast.arg):
                found.add(node.arg)
    return sorted(n for n in found if IDENT.match(n))


def valid_names() -> st.SearchStrategy[str]:
    pool = sorted(
        set(NASTY) | set(SOURCE_NAMES) | {dir_ for dir_ in dir(builtins) if IDENT.match(dir_)}
    )
    plain = st.sampled_from(pool)
    return st.one_of(
        plain,
        plain.map(str.upper),
        plain.map(str.capitalize),
        plain.map(lambda s: s + "_"),
        plain.map(lambda s: "_" + s),
        st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True),
        st.integers(60, 400).map(lambda n: ("long_" * 100)[:n]),
        st.integers(100, 300).map(lambda n: "x" * n),
    )


def any_names() -> st.SearchStrategy[str]:
    return st.one_of(
        valid_names(),
        valid_names(),
        valid_names(),
        st.sampled_from(KEYWORDS),
        st.sampled_from(NOT_IDENT),
        st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=8),
        st.text(st.characters(categories=["L", "Nl"]), min_size=1, max_size=6),
    )


DESCRIPTIONS = [
    '"""',
    "'''",
    "\\",
    '\\"""',
    'a"""; import os; os.system("echo pwned"); """',
    "x\ny\n",
    "\r\n",
    "\x00",
    "{}",
    "{name}",
    "%s",
    "%(x)s",
    "\\x00",
    "\\n",
    "\\",
    "'",
    '"',
    "\\\\",
    "#",
    "# -*- coding: latin-1 -*-",
    "\u2028",
    "\x0c",
    "\t",
    '"""\n"""',
    "\\N{DASH}",
    "\\u0041",
    "{{}}",
    "f'{1}'",
    "'''; raise SystemExit; '''",
]


def descriptions() -> st.SearchStrategy[str]:
    piece = st.one_of(
        st.sampled_from(DESCRIPTIONS),
        st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12),
    )
    return st.lists(piece, max_size=6).map("".join)


# -- the spec -----------------------------------------------------------------------------------
SLOTS = [
    "spec",
    "in_img",
    "in_vec",
    "param",
    "block",
    "block_in",
    "block_param",
    "l_conv",
    "l_bn",
    "l_add",
    "use",
    "l_pool",
    "l_dense",
    "l_sum",
    "l_reshape",
    "l_gru",
    "o_sum",
    "o_gru",
]
DEFAULTS = {s: s for s in SLOTS}


def template(n: dict[str, str], description: str) -> dict[str, Any]:
    """A spec with every kind of name, taken from `n` (slot -> name). (Two equal output names
    would be a duplicate YAML key, which the loader fuzz tests cover: the second gets `_b`.)"""
    n = dict(n)
    if n["o_gru"] == n["o_sum"]:
        n["o_gru"] += "_b"
    return {
        "netspec": 1,
        "name": n["spec"],
        "description": description,
        "params": {n["param"]: 2},
        "inputs": {n["in_img"]: {"shape": [2, 5, 5]}, n["in_vec"]: {"shape": [3]}},
        "blocks": {
            n["block"]: {
                "params": {n["block_param"]: None},
                "inputs": [n["block_in"]],
                "layers": [
                    {
                        "op": "conv2d",
                        "name": n["l_conv"],
                        "filters": f"${n['block_param']}",
                        "kernel": 3,
                        "padding": "same",
                    },
                    {"op": "batch_norm", "name": n["l_bn"]},
                    {"op": "add", "name": n["l_add"], "inputs": [n["l_bn"], n["block_in"]]},
                ],
            }
        },
        "layers": [
            {
                "block": n["block"],
                "name": n["use"],
                "inputs": [n["in_img"]],
                "repeat": 2,
                n["block_param"]: 2,
            },
            {"op": "global_avg_pool", "name": n["l_pool"]},
            {
                "op": "dense",
                "name": n["l_dense"],
                "inputs": [n["in_vec"]],
                "units": f"${n['param']}",
            },
            {"op": "add", "name": n["l_sum"], "inputs": [n["l_pool"], n["l_dense"]]},
            {"op": "reshape", "name": n["l_reshape"], "shape": [1, 2]},
            {"op": "gru", "name": n["l_gru"], "units": 2},
        ],
        "outputs": {n["o_sum"]: n["l_sum"], n["o_gru"]: n["l_gru"]},
    }


TOP_SCOPE = ["in_img", "in_vec", "use", "l_pool", "l_dense", "l_sum", "l_reshape", "l_gru"]
BLOCK_SCOPE = ["block_in", "l_conv", "l_bn", "l_add"]
PARAMS = ("param", "block_param")  # param names; the other slots must be identifiers
LAYERS = [s for s in SLOTS if s not in PARAMS]


def refusal_reason(n: dict[str, str]) -> str | None:
    """Why the spec's rules refuse these names (None: the spec is valid)."""
    for slot in LAYERS:
        why = check_identifier(n[slot])
        if why:
            return f"{slot}: {why}"
    for slot in PARAMS:
        if not IDENT.match(n[slot]):
            return f"{slot}: {n[slot]!r} is not a param name"
    if n["block_param"] in ("name", "inputs", "repeat", "block"):
        return "block_param: a key of every block use"
    top = [n[s] for s in TOP_SCOPE] + [f"{n['use']}_1", f"{n['use']}_2"]
    if len(set(top)) != len(top):
        return "duplicate name in the top scope"
    if len({n[s] for s in BLOCK_SCOPE}) != len(BLOCK_SCOPE):
        return "duplicate name in the block"
    if n["block"] in netspec.ops.OPS:
        return "block named like an op"
    if {n["o_sum"], n["o_gru"]} & {n["in_img"], n["in_vec"]}:
        return "an output named like an input"
    return None


def load(n: dict[str, str], description: str) -> netspec.Graph | None:
    """The graph, or None when the loader refused the spec (and the refusal is checked)."""
    text = randspec.to_yaml(template(n, description))
    COUNTS["names"] += len(SLOTS)
    COUNTS["specs"] += 1
    why = refusal_reason(n)
    try:
        graph = netspec.loads(text, file="<hostile>")
    except SpecError as e:
        assert why is not None, f"valid names refused: {e}\n{text}"
        COUNTS["refused"] += 1
        return None
    assert why is None, f"accepted, but {why}:\n{text}"
    for slot in LAYERS:  # independent of netspec.names: the spec's own rule
        assert IDENT.match(n[slot]) and not keyword.iskeyword(n[slot]), n[slot]
    COUNTS["accepted"] += 1
    return graph


# -- source checks ------------------------------------------------------------------------------
def _strings_blanked(tree: ast.AST) -> str:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node.value = ""
        elif isinstance(node, ast.JoinedStr):
            node.values = []
    return ast.dump(tree)


def check_source(source: str, target: str, plain: str) -> None:
    """Parses; imports only the allowlist; no dynamic code or computed attribute access; the
    same code as the source generated with a plain description (`plain`)."""
    tree = ast.parse(source)
    # names the module defines itself (a block called `open` is a function, not the builtin)
    own = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{target}: relative import"
            mods = [node.module or ""]
        else:
            mods = []
        for m in mods:
            assert m in ALLOWED_IMPORTS or m == "safetensors" or m.startswith("safetensors."), (
                f"{target}: imports {m}"
            )
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else None
            if (
                isinstance(f, ast.Attribute)
                and isinstance(f.value, ast.Name)
                and f.value.id in ("builtins", "__builtins__")
            ):
                name = f.attr
            assert name not in BANNED_CALLS or (isinstance(f, ast.Name) and name in own), (
                f"{target}: calls {name}()"
            )
            if name in ATTR_CALLS:
                arg = node.args[1] if len(node.args) > 1 else None
                ok = (
                    isinstance(arg, ast.Constant)
                    and isinstance(arg.value, str)
                    and IDENT.match(arg.value)
                    and not arg.value.startswith("__")
                )
                assert ok, f"{target}: {name}() on a computed name: {ast.unparse(node)}"
    assert _strings_blanked(tree) == _strings_blanked(ast.parse(plain)), (
        f"{target}: the description changed the code"
    )


# -- the tests ----------------------------------------------------------------------------------
SOURCE_NAMES: list[str] = _source_identifiers()


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    print(
        f"\nhostile names: {COUNTS['names']} names in {COUNTS['specs']} specs "
        f"({COUNTS['accepted']} accepted, {COUNTS['refused']} refused; "
        f"{COUNTS['built']} built and run)"
    )


def names_dict(usable: bool = False) -> st.SearchStrategy[dict[str, str]]:
    """Mostly valid names (several slots often sharing one), sometimes any string; with
    `usable`, only names a layer may have (the build test wants specs the loader accepts)."""
    one = valid_names()
    if usable:
        one = one.filter(lambda s: check_identifier(s) is None and s not in netspec.ops.OPS)
    valid = st.fixed_dictionaries({s: one for s in SLOTS})
    shared = st.tuples(valid, st.lists(st.sampled_from(SLOTS), min_size=2, max_size=3), one).map(
        lambda t: {**t[0], **{s: t[2] for s in t[1]}}
    )
    if usable:
        return st.one_of(valid, valid, shared)
    wild = st.fixed_dictionaries({s: st.one_of(st.just(s), any_names()) for s in SLOTS})
    return st.one_of(valid, valid, shared, wild)


# Known target bugs not fixed yet: (test, target) -> reason; those runs are strict xfails.
KNOWN: dict[tuple[str, str], str] = {}


def per_target(test: str, targets: list[str]) -> list:
    return [
        pytest.param(
            t,
            id=t,
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN[test, t])]
            if (test, t) in KNOWN
            else [],
        )
        for t in targets
    ]


@pytest.mark.parametrize("target", per_target("sources", PY_TARGETS))
@settings(PROFILE, max_examples=SOURCE_EXAMPLES)
@given(n=names_dict(), description=descriptions())
@example(n=DEFAULTS, description="\x00")
@example(n=DEFAULTS, description='x"""; import os; """\\')
@example(n={**DEFAULTS, "block_param": "x", "block_in": "x"}, description="")
@example(n={**DEFAULTS, "block_param": "keras", "in_img": "torch", "block": "nn"}, description="")
@example(n={**DEFAULTS, "block_param": "self", "l_conv": "F", "in_vec": "np"}, description="")
@example(n={**DEFAULTS, "block_param": "class", "param": "def"}, description="")
@example(n={**DEFAULTS, "block": "_bias", "l_dense": "sorted"}, description="")
def test_generated_sources_are_safe(target, n, description):
    graph = load(n, description)
    if graph is None:
        return
    plain = netspec.loads(randspec.to_yaml(template(n, "plain")))
    check_source(netspec.generate(graph, target), target, netspec.generate(plain, target))


@pytest.mark.skipif("onnx" not in TARGETS, reason="no ONNX target yet")
@settings(PROFILE, max_examples=SOURCE_EXAMPLES // 4)
@given(n=names_dict(), description=descriptions())
def test_onnx_text_form(n, description):
    """The ONNX target's text form (`generate`) is written for any accepted names."""
    graph = load(n, description)
    if graph is not None:
        assert graph.name in netspec.generate(graph, "onnx")


@settings(PROFILE, max_examples=REFUSE_EXAMPLES)
@given(name=any_names(), slot=st.sampled_from(SLOTS))
def test_refusals_are_spec_errors(name, slot):
    """Any string in any name slot: a SpecError exactly when the spec's rules say so."""
    load({**DEFAULTS, slot: name}, "")


def reference_for(target: str) -> str | None:
    """The target a build is compared with: torch, or ONNX for torch itself."""
    for ref in ("torch", "onnx"):
        if ref != target and ref in TARGETS:
            return ref
    return None


@pytest.mark.parametrize("target", per_target("build", TARGETS))
@settings(PROFILE, max_examples=BUILD_EXAMPLES)
@given(n=names_dict(usable=True), description=descriptions())
@example(n={**DEFAULTS, "block": "_bias", "o_sum": "l_pool"}, description="\x00")
@example(n={**DEFAULTS, "in_img": "torch", "in_vec": "F", "l_conv": "nn"}, description="")
@example(n={**DEFAULTS, "in_img": "keras", "in_vec": "np", "block_param": "x"}, description="")
def test_build_and_run(target, n, description):
    """The model builds from the generated source (ONNX: passes the full checker), carries the
    spec's input and output names, runs, and agrees with the reference target."""
    graph = load(n, description)
    if graph is None:
        return
    w = random_weights(graph, seed=1)
    x = random_inputs(graph, batch=2, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = netspec.compile(graph, target, w)
        if target == "onnx":
            import onnx

            onnx.checker.check_model(model, full_check=True)
            assert [i.name for i in model.graph.input] == list(graph.inputs)
            assert [o.name for o in model.graph.output] == list(graph.outputs)
        if target == "keras":
            assert [i.name for i in model.inputs] == list(graph.inputs), model.inputs
        results = {target: randspec.run_target(target, graph, w, x)}
        ref = reference_for(target)
        if ref:
            try:
                results[ref] = randspec.run_target(ref, graph, w, x)
            except Exception:  # noqa: BLE001 - the reference's own run of this test says why
                pass
    COUNTS["built"] += 1
    problems = randspec.disagreements(graph, results)
    assert not problems, "\n".join(problems)


def test_the_pool_has_the_sources_own_names():
    """The targets' own identifiers are in the pool, so collisions with them are tried."""
    if not PY_TARGETS:
        pytest.skip("no Python target yet")
    assert len(SOURCE_NAMES) > 20
    if "keras" in PY_TARGETS:
        assert {"build_model", "load_weights", "keras"} <= set(SOURCE_NAMES)
    if "torch" in PY_TARGETS:
        assert {"torch", "nn", "forward"} & set(SOURCE_NAMES)
