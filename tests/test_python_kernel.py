"""The shared Python code-generation kernel (netspec/targets/python/): names, docstring text,
the ruff-like printer and the liveness plan, tested on their own, without a framework."""

from __future__ import annotations

import ast
import random
import subprocess

import pytest
from conftest import ROOT, RUFF, spec

from netspec.targets.python.liveness import plan
from netspec.targets.python.names import KEYWORDS, Namer, camel, identifier, numbered
from netspec.targets.python.pyfmt import BinOp, Call, Kw, Raw, Seq, assign, returns, signature
from netspec.targets.python.text import docstring, escape, wrap


# -- names ---------------------------------------------------------------------------------------
def test_camel():
    assert camel("basic_down") == "BasicDown"
    assert camel("resnet18") == "Resnet18"
    assert camel("3d_net") == "Net3dNet"
    assert camel("__") == "Net"


@pytest.mark.parametrize(
    "want, legal", [("conv1", "conv1"), ("1x", "_1x"), ("a-b.c", "a_b_c"), ("", "v")]
)
def test_identifier(want, legal):
    assert identifier(want) == legal and legal.isidentifier()


def test_namer_reserved_taken_and_class_stems():
    n = Namer(KEYWORDS | {"self", "nn"}, bases={"Basic"})
    assert [n.new(w) for w in ["self", "nn", "class", "x", "x", "x", "self"]] == [
        "self_",
        "nn_",
        "class_",
        "x",
        "x_1",
        "x_2",
        "self__1",
    ]
    # a class stem's numbered forms are taken: a variable never shadows `Basic2`
    assert n.taken("Basic2") and n.taken("BasicBlock") and not n.taken("Basics")
    assert n.new("Basic2") == "Basic2_"


def test_numbered():
    assert numbered("conv", set()) == "conv"
    assert numbered("conv", {"conv", "conv_2"}) == "conv_3"


# -- docstring text ------------------------------------------------------------------------------
HOSTILE = 'ends """ here\\ and \x00 \u2028 \U0001f600 \t tab'


def test_escaped_text_stays_inside_the_docstring():
    lines = wrap(HOSTILE + "\n\n\n" + "second line", 20)
    source = "\n".join(["def f():", *docstring(lines, 1), "    return 1", ""])
    tree = ast.parse(source)
    doc = ast.get_docstring(tree.body[0], clean=False)
    assert len(tree.body) == 1 and "second line" in doc and '"""' in doc
    assert "\n\n\n" not in doc  # blank lines collapse


def test_escape_writes_unprintables_as_escapes():
    assert escape('a"b\\') == 'a\\"b\\\\'
    assert escape("\x00\u2028\U000e0001") == "\\x00\\u2028\\U000e0001"


def test_wrap_cuts_long_words_between_escapes():
    word = "\x01" * 30  # each is `\x01`: four characters
    lines = wrap(word, 10, cut_long=True)
    assert all(len(ln) <= 10 for ln in lines) and "".join(lines) == escape(word)
    assert all(ln.count("\\") * 4 == len(ln) for ln in lines)
    assert wrap(word, 10) == [escape(word)]  # without cut_long: one long line


def test_docstring_one_or_several_lines():
    assert docstring(["short"], 1) == ['    """short"""']
    assert docstring(["a", "", "b"], 0) == ['"""a', "", "b", '"""']
    long = "word " * 30
    lines = docstring([long.strip()], 1)  # too long for one line: text on two, quotes alone
    assert len(lines) == 3 and lines[-1] == '    """' and max(map(len, lines)) <= 100


# -- the printer: ruff's layout ------------------------------------------------------------------
def test_layout_matches_ruff_format():
    """The generated text's layout, on random expressions with long names and deep nesting:
    `ruff format` changes nothing."""
    rng = random.Random(0)

    def name():
        return "v" + "_x" * rng.randint(0, 25)

    def expr(depth=0):
        r = rng.random()
        if depth > 3 or r < 0.25:
            return Raw(name() if rng.random() < 0.7 else str(rng.randint(0, 999)))
        if r < 0.6:
            args = [expr(depth + 1) for _ in range(rng.randint(0, 5))]
            if rng.random() < 0.4:
                args.append(Kw(rng.choice(["dim", "value"]), expr(depth + 1)))
            func = rng.choice(["F.pad", "self." + name(), "torch.cat", name() + ".reshape"])
            return Call(func, tuple(args))
        if r < 0.8:
            return Seq(rng.choice("(["), tuple(expr(depth + 1) for _ in range(rng.randint(1, 6))))
        return BinOp(rng.choice("+-*"), tuple(Raw(name()) for _ in range(rng.randint(2, 5))))

    lines = []
    for i in range(300):
        params = ["self"] + [f"{name()}: int" for _ in range(rng.randint(0, 6))]
        lines += [f"class C{i}:", *signature("f", params, rng.choice([None, "torch.Tensor"]), 1)]
        lines += assign(name() if rng.random() < 0.8 else f"_, {name()}", expr(), 2)
        lines += returns([name() for _ in range(rng.randint(1, 6))], 2)
        lines += ["", ""]
    source = "\n".join(lines).rstrip() + "\n"
    if not RUFF.exists():
        pytest.skip("ruff is not installed")
    r = subprocess.run(
        [str(RUFF), "format", "--diff", "--no-cache", "--stdin-filename", "layout.py", "-"],
        input=source,
        text=True,
        capture_output=True,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stdout[:3000]


# -- liveness ------------------------------------------------------------------------------------
def _plan(graph, inplace=None):
    items = graph.scope_items(None)
    produced = [[it.name] for it in items]
    namer = Namer(KEYWORDS | {"self"})
    args = {k: namer.new(k) for k in graph.inputs}
    want = {it.name: it.local_name for it in items}
    return items, plan(items, produced, args, list(graph.outputs.values()), namer, want, inplace)


def test_liveness_chains_share_a_variable_and_branches_keep_names():
    g = spec(
        "x: {shape: [4]}",
        """
        - {op: dense, name: a, units: 4}
        - {op: relu, name: b}
        - {op: dense, name: c, units: 4}
        - {op: add, name: d, inputs: [b, c]}
        - {op: dense, name: e, units: 2}
        """,
    )
    items, p = _plan(g)
    # `b` is read twice and keeps its name (so `a` stands alone too); c, d, e chain on under
    # the generic name, `out` since the argument holds `x`
    assert p.names["a"] == "a" and p.names["b"] == "b"
    assert p.names["c"] == p.names["d"] == p.names["e"] == "out"
    assert p.names["x"] == "x"
    # a and b die without being rebound: deleted where they are read last
    assert p.dels == {1: ["a"], 3: ["b"]}


def test_liveness_inplace_items_do_not_free_their_input():
    g = spec(
        "x: {shape: [4]}",
        """
        - {op: dense, name: a, units: 4}
        - {op: relu, name: r}
        - {op: dense, name: c, units: 4}
        """,
    )
    _, p = _plan(g, inplace={"r"})
    assert p.inplace == {"r"} and p.names["a"] == p.names["r"] == p.names["c"]
    assert p.dels == {}
