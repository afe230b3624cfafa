"""`netspec graph`, `netspec view` and the terminal printers."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import ROOT, SPECS, netspec_view, run_cli

import netspec
from netspec.render import build_diagram, render
from netspec.render.layout import layout
from netspec.render.model import describe

SVG = "{http://www.w3.org/2000/svg}"

# Two inputs, three outputs, nested blocks, a skip connection and ordered merges.
MULTI = """
netspec: 1
name: two_heads
inputs:
  image: {shape: [3, 16, 16]}
  meta: {shape: [5]}
blocks:
  conv_bn:
    params: {filters: null}
    inputs: [x]
    layers:
      - {op: conv2d, name: conv, filters: $filters, kernel: 3, padding: 1}
      - {op: batch_norm, name: bn}
      - relu
  stage:
    params: {filters: null}
    inputs: [x]
    layers:
      - {block: conv_bn, name: a, filters: $filters}
      - {block: conv_bn, name: b, filters: $filters}
      - {op: add, inputs: [b, x]}
layers:
  - {block: conv_bn, name: stem, filters: 8, inputs: [image]}
  - {block: stage, name: s1, filters: 8}
  - {op: global_avg_pool, name: gap}
  - {op: dense, name: meta_fc, units: 8, activation: relu, inputs: [meta]}
  - {op: concat, name: joined, inputs: [gap, meta_fc]}
  - {op: dense, name: logits, units: 10, inputs: [joined]}
  - {op: dense, name: prior, units: 10, inputs: [meta]}
  - {op: subtract, name: delta, inputs: [logits, prior]}
  - {op: dense, name: box, units: 4, inputs: [joined]}
outputs: {scores: logits, box: box, delta: delta}
"""


@pytest.fixture(scope="module")
def multi():
    return netspec.loads(MULTI, file="two_heads.yaml")


def _parse_svg(text: str) -> ET.Element:
    root = ET.fromstring(text.encode("utf-8"))  # raises on malformed XML
    assert root.tag == SVG + "svg"
    return root


def _named(root: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-name"): g for g in root.iter(SVG + "g") if g.get("data-name")}


def _rect(el: ET.Element) -> tuple[float, float, float, float]:
    r = el if el.tag == SVG + "rect" else el.find(SVG + "rect")
    return tuple(float(r.get(k)) for k in ("x", "y", "width", "height"))


def _overlap(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _inside(inner, outer) -> bool:
    return (
        outer[0] <= inner[0]
        and inner[0] + inner[2] <= outer[0] + outer[2]
        and outer[1] <= inner[1]
        and inner[1] + inner[3] <= outer[1] + outer[3]
    )


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_every_spec_renders_to_svg_naming_every_node(spec):
    graph = netspec.load(spec)
    root = _parse_svg(render(graph, "svg"))
    named = _named(root)
    expected = {n.name for n in graph.nodes} | set(graph.inputs)
    expected |= {f"output:{o}" for o in graph.outputs}
    assert set(named) == expected
    for name, g in named.items():  # each box says what it is: its local name and a tooltip
        texts = [t.text for t in g.iter(SVG + "text")]
        assert any(name.rsplit(".", 1)[-1].split(":")[-1] in (t or "") for t in texts), name
        assert g.find(SVG + "title") is not None
    for n in graph.nodes:  # and its output shape
        assert any("[N, " in (t.text or "") for t in named[n.name].iter(SVG + "text"))
    boxes = [_rect(g) for g in named.values()]
    for i, a in enumerate(boxes):
        for b in boxes[:i]:
            assert not _overlap(a, b)
    edges = [p for p in root.iter(SVG + "path") if p.get("data-from")]
    assert len(edges) >= len(graph.nodes)  # every node has at least one way in


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_collapsed_blocks_are_one_box_each(spec):
    graph = netspec.load(spec)
    named = _named(_parse_svg(render(graph, "svg", collapse_blocks=True)))
    tops = {u for u in graph.uses if not graph.uses[u].scope}
    expected = {n.name for n in graph.top_nodes()} | tops | set(graph.inputs)
    expected |= {f"output:{o}" for o in graph.outputs}
    assert set(named) == expected
    assert all(named[u].get("data-kind") == "block" for u in tops)


def test_clusters_nest_and_enclose_their_nodes(multi):
    root = _parse_svg(render(multi, "svg"))
    clusters = {
        g.get("data-cluster"): _rect(g) for g in root.iter(SVG + "g") if g.get("data-cluster")
    }
    assert set(clusters) == {"stem", "s1", "s1.a", "s1.b"}
    assert _inside(clusters["s1.a"], clusters["s1"])
    assert _inside(clusters["s1.b"], clusters["s1"])
    assert not _overlap(clusters["s1.a"], clusters["s1.b"])
    assert not _overlap(clusters["stem"], clusters["s1"])
    named = _named(root)
    assert _inside(_rect(named["s1.a.conv"]), clusters["s1.a"])
    assert _inside(_rect(named["s1.add_1"]), clusters["s1"])
    assert not _overlap(_rect(named["s1.add_1"]), clusters["s1.b"])
    for name in ("gap", "joined", "meta", "output:box"):  # outside every cluster
        assert not any(_overlap(_rect(named[name]), c) for c in clusters.values()), name


def test_skip_connection_runs_beside_the_block_not_through_it(multi):
    lay = layout(build_diagram(multi))
    (skip,) = [r for r in lay.routes if r.edge.src == "stem.relu_1" and r.edge.dst == "s1.add_1"]
    # It passes six ranks, so it bends around the boxes on its way: none is crossed.
    xs = [x for x, _ in skip.points[1:-1]]
    assert len(xs) >= 6
    for name in ("s1.a.conv", "s1.a.bn", "s1.b.conv", "s1.b.relu_1"):
        box = lay.boxes[name]
        assert all(not box.x <= x <= box.x + box.w for x in xs), name
    # The main chain is one straight column.
    chain = ["stem.conv", "stem.bn", "s1.a.conv", "s1.b.relu_1", "s1.add_1"]
    assert len({round(lay.boxes[n].cx, 3) for n in chain}) == 1


def test_several_inputs_and_outputs_and_ordered_merges(multi):
    d = build_diagram(multi)
    assert [b.id for b in d.boxes.values() if b.kind == "input"] == ["image", "meta"]
    outs = [b for b in d.boxes.values() if b.kind == "output"]
    assert [(b.title, b.shape) for b in outs] == [
        ("scores", "[N, 10]"),
        ("box", "[N, 4]"),
        ("delta", "[N, 10]"),
    ]
    labels = {(e.src, e.dst): e.label for e in d.edges}
    assert labels[("gap", "joined")] == "1" and labels[("meta_fc", "joined")] == "2"
    assert labels[("logits", "delta")] == "1" and labels[("prior", "delta")] == "2"
    assert labels[("stem.relu_1", "s1.add_1")] == ""  # add is commutative: no numbers
    svg = render(multi, "svg")
    assert re.search(r">1</text>", svg) and re.search(r">2</text>", svg)


def test_collapsed_edges_connect_the_block_boxes(multi):
    d = build_diagram(multi, collapse_blocks=True)
    pairs = {(e.src, e.dst) for e in d.edges}
    assert ("image", "stem") in pairs and ("stem", "s1") in pairs and ("s1", "gap") in pairs
    assert not any(e.src == e.dst for e in d.edges)
    assert d.clusters == {}


def test_describe_shows_key_attributes():
    g = netspec.load(ROOT / "specs" / "resnet18.yaml")
    assert describe(g.node("conv1")) == "conv2d 64, 7×7, stride 2, pad 3"
    assert describe(g.node("maxpool")) == "max_pool2d 3×3, stride 2, pad 1"
    assert describe(g.node("layer2_1.downsample_conv")) == "conv2d 128, 1×1, stride 2"
    assert describe(g.node("fc")) == "dense 1000"
    lstm = netspec.load(ROOT / "specs" / "char_lstm.yaml")
    ops = {n.op: describe(n) for n in lstm.nodes}
    assert ops["lstm"].startswith("lstm 128, 2 layers")
    assert ops["embedding"] == "embedding 65→32"


def test_dot_names_every_node_in_its_cluster(multi):
    text = render(multi, "dot")
    assert text.startswith('digraph "two_heads" {') and text.rstrip().endswith("}")
    for n in multi.nodes:
        assert f'"{n.name}" [label=' in text
    assert 'subgraph "cluster_s1" {' in text and 'subgraph "cluster_s1.a" {' in text
    assert text.index('"cluster_s1"') < text.index('"cluster_s1.a"') < text.index('"s1.a.conv"')
    assert '"gap" -> "joined" [label="1"];' in text
    assert text.count("{") == text.count("}")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
@pytest.mark.parametrize("spec", ["resnet18", "keras_mobilenetv2"])
def test_graphviz_reads_the_dot(spec, tmp_path):
    text = render(netspec.load(ROOT / "specs" / f"{spec}.yaml"), "dot")
    r = subprocess.run(["dot", "-Tsvg"], input=text, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    ET.fromstring(r.stdout.encode())


def test_mermaid_is_well_formed(multi):
    text = render(multi, "mermaid")
    lines = text.splitlines()
    assert lines[:4] == ["---", 'title: "two_heads"', "---", "flowchart TB"]
    assert sum(ln.strip().startswith("subgraph ") for ln in lines) == 4
    assert sum(ln.strip() == "end" for ln in lines) == 4
    ids = re.findall(r"^\s+(n\d+)[\[(]", text, re.M)
    assert len(ids) == len(multi.nodes) + 2 + 3  # nodes, inputs, outputs
    for label in re.findall(r'\["(.*?)"\]', text):
        assert '"' not in label
    assert '-->|"1"|' in text
    fenced = render(multi, "markdown")
    assert fenced.startswith("```mermaid\n") and fenced.endswith("```\n")


def test_labels_are_escaped():
    spec = MULTI.replace("name: two_heads", 'name: two_heads\ndescription: "a <b> & \\"c\\""')
    g = netspec.loads(spec)
    root = _parse_svg(render(g, "svg"))
    assert root.find(SVG + "title").text == 'two_heads: a <b> & "c"'
    assert "#lt;b#gt; #amp;" not in render(g, "mermaid").split("flowchart")[0]
    assert 'a <b> & \\"c\\"' in render(g, "dot")


def test_rendering_imports_no_framework():
    code = (
        "import sys, netspec\n"
        "from netspec.render import render\n"
        "g = netspec.load(sys.argv[1])\n"
        "for f in ('svg', 'dot', 'mermaid'): render(g, f)\n"
        "bad = [m for m in ('torch', 'tensorflow', 'keras', 'onnx') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "specs" / "resnet18.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr


# --- the CLI ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ext", "head"),
    [
        (".svg", "<?xml"),
        (".dot", "digraph"),
        (".gv", "digraph"),
        (".mmd", "---"),
        (".md", "```mermaid"),
    ],
)
def test_graph_format_follows_the_extension(tmp_path, ext, head):
    out = tmp_path / f"g{ext}"
    rc, stdout, stderr = run_cli(["graph", ROOT / "specs" / "mlp.yaml", "-o", out])
    assert (rc, stderr) == (0, "")
    assert stdout.strip() == str(out)
    assert out.read_text(encoding="utf-8").startswith(head)


def test_graph_format_option_and_stdout(tmp_path):
    rc, stdout, _ = run_cli(["graph", ROOT / "specs" / "mlp.yaml", "-f", "mermaid", "-o", "-"])
    assert rc == 0 and "flowchart TB" in stdout
    rc, stdout, _ = run_cli(["graph", ROOT / "specs" / "mlp.yaml", "-o", "-"])
    assert rc == 0 and _parse_svg(stdout) is not None


def test_graph_collapse_and_params(tmp_path):
    out = tmp_path / "r.svg"
    rc, _, _ = run_cli(
        [
            "graph",
            ROOT / "specs" / "resnet18.yaml",
            "--collapse-blocks",
            "--set",
            "classes=7",
            "-o",
            out,
        ]
    )
    assert rc == 0
    named = _named(_parse_svg(out.read_text(encoding="utf-8")))
    assert "layer2_1" in named and "layer2_1.conv1" not in named
    assert "[N, 7]" in ET.tostring(named["fc"], encoding="unicode")


def test_graph_usage_errors(tmp_path):
    rc, _, err = run_cli(["graph", ROOT / "specs" / "mlp.yaml", "-o", tmp_path / "g.txt"])
    assert rc == 2 and "cannot tell the format" in err and ".svg" in err
    assert not (tmp_path / "g.txt").exists()
    rc, _, err = run_cli(["graph", tmp_path / "missing.yaml", "-o", tmp_path / "g.svg"])
    assert rc == 2 and "cannot read the spec" in err
    rc, _, err = run_cli(["graph", ROOT / "specs" / "mlp.yaml", "-o", tmp_path / "no/dir/g.svg"])
    assert rc == 2 and "cannot write" in err


def test_graph_spec_error_is_reported_with_its_location(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "netspec: 1\nname: bad\ninputs: {x: {shape: [2]}}\nlayers:\n  - {op: dense, unitz: 3}\n"
    )
    rc, _, err = run_cli(["graph", bad, "-o", tmp_path / "g.svg"])
    assert rc == 2 and "bad.yaml:5" in err and "units" in err
    assert not (tmp_path / "g.svg").exists()


def test_graph_png(tmp_path):
    pytest.importorskip("resvg_py")
    out = tmp_path / "g.png"
    rc, _, err = run_cli(["graph", ROOT / "specs" / "lenet5.yaml", "-o", out, "--scale", "1"])
    assert rc == 0, err
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    svg = _parse_svg(render(netspec.load(ROOT / "specs" / "lenet5.yaml"), "svg"))
    width = int.from_bytes(data[16:20], "big")
    assert width == int(float(svg.get("width")))


def test_graph_png_without_resvg_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "resvg_py", None)  # import fails as if not installed
    rc, _, err = run_cli(["graph", ROOT / "specs" / "mlp.yaml", "-o", tmp_path / "g.png"])
    assert rc == 2
    assert "resvg-py" in err and ".svg" in err and ".dot" in err and ".mmd" in err
    assert not (tmp_path / "g.png").exists()


def test_view_without_netron_says_what_to_do(monkeypatch):
    monkeypatch.setitem(sys.modules, "netron", None)
    rc, _, err = run_cli(["view", ROOT / "specs" / "mlp.yaml", "--no-browser"])
    assert rc == 2 and "pip install" in err and "netron" in err


def test_view_missing_onnx_file(tmp_path):
    pytest.importorskip("netron")
    rc, _, err = run_cli(["view", tmp_path / "nothing.onnx", "--no-browser"])
    assert rc == 2 and "no such file" in err


def test_view_serves_the_built_model(tmp_path):
    """`netspec view SPEC` builds the ONNX and Netron serves it: the page and the model bytes
    come back over HTTP."""
    pytest.importorskip("netron")
    onnx = pytest.importorskip("onnx")
    import urllib.request

    with netspec_view(ROOT / "specs" / "mlp.yaml") as (proc, port, line):
        assert f"mlp.onnx at http://localhost:{port}" in line, line + proc.stderr.read()
        with urllib.request.urlopen(f"http://localhost:{port}/", timeout=10) as r:
            assert r.status == 200 and b"netron" in r.read().lower()
        with urllib.request.urlopen(f"http://localhost:{port}/data/mlp.onnx", timeout=10) as r:
            model = onnx.load_from_string(r.read())
        assert [i.name for i in model.graph.input] == ["x"]
        assert [o.name for o in model.graph.output] == ["out"]


# --- terminal output ---------------------------------------------------------------------


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_inspect_is_plain_when_piped():
    from netspec.inspect_table import plain_inspect
    from netspec.render.term import print_inspect

    g = netspec.load(ROOT / "specs" / "resnet18.yaml")
    out = io.StringIO()
    print_inspect(g, out)
    assert out.getvalue() == plain_inspect(g)


def test_inspect_is_a_rich_table_on_a_terminal():
    pytest.importorskip("rich")
    from netspec.render.term import print_inspect

    g = netspec.load(ROOT / "specs" / "resnet18.yaml")
    out = _Tty()
    print_inspect(g, out)
    text = out.getvalue()
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert "\x1b[" in text  # coloured
    assert "┃ name" in plain and "output shape" in plain
    assert "layer2_1.downsample_conv" in plain and "11,689,512" in plain
    # Aligned: every table row has its column rules at the same places.
    rows = [ln for ln in plain.splitlines() if ln.startswith("│")]
    assert len(rows) == len(g.nodes) + 1
    assert len({tuple(i for i, c in enumerate(r) if c == "│") for r in rows}) == 1


def test_progress_is_silent_when_piped_and_shown_on_a_terminal():
    from netspec.render.term import progress

    out = io.StringIO()
    with progress(["torch", "onnx"], out) as step:
        step("torch")
        step("onnx")
    assert out.getvalue() == ""
    pytest.importorskip("rich")
    tty = _Tty()
    with progress(["torch", "onnx"], tty) as step:
        step("torch")
        step("onnx")
    assert "building" in tty.getvalue()


def test_cli_inspect_stays_plain_when_piped():
    rc, out, _ = run_cli(["inspect", ROOT / "specs" / "mlp.yaml"])
    assert rc == 0 and "\x1b[" not in out and out.splitlines()[1].startswith("name")


def test_inspect_shows_the_training_plan():
    """Plain, JSON and terminal output each show the plan; a spec without one shows none."""
    import json

    rc, out, _ = run_cli(["inspect", ROOT / "specs" / "iris.yaml", "--set", "lr=0.02"])
    assert rc == 0
    tail = out.split("training:\n", 1)[1]
    assert "  loss: categorical_crossentropy on species\n" in tail
    assert "  optimizer: adam (lr 0.02)\n" in tail  # --set reaches it; zero attributes left out
    assert "  data: sklearn:iris (validation 0.2, test 0.2)\n" in tail
    assert "early stopping: on val_loss, patience 20" in tail
    rc, out, _ = run_cli(["inspect", ROOT / "specs" / "iris.yaml", "--json"])
    assert json.loads(out)["training"]["run"] == "150 epochs of batches of 16, seed 0"
    rc, out, _ = run_cli(["inspect", ROOT / "specs" / "mlp.yaml", "--json"])
    assert json.loads(out)["training"] is None
    pytest.importorskip("rich")
    from netspec.render.term import print_inspect

    tty = _Tty()
    print_inspect(netspec.load(ROOT / "specs" / "exam_score.yaml"), tty)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", tty.getvalue())
    assert "optimizer sgd (lr 0.01, momentum 0.9)" in plain


def test_layout_is_deterministic():
    g = netspec.load(ROOT / "specs" / "keras_mobilenetv2.yaml")
    assert render(g, "svg") == render(g, "svg")


@pytest.mark.parametrize(("name", "collapse"), [("resnet18", False), ("resnet18-blocks", True)])
def test_docs_pictures_are_current(name, collapse):
    """docs/images/*.svg are what `netspec graph specs/resnet18.yaml` draws now."""
    committed = ROOT / "docs" / "images" / f"{name}.svg"
    g = netspec.load(ROOT / "specs" / "resnet18.yaml")
    flag = " --collapse-blocks" if collapse else ""
    assert committed.read_text(encoding="utf-8") == render(g, "svg", collapse_blocks=collapse), (
        f"regenerate: netspec graph specs/resnet18.yaml{flag} -o docs/images/{name}.svg"
    )


def test_paths_are_not_written_outside_output(tmp_path):
    # Only the file named is written: nothing else appears beside it.
    out = tmp_path / "only.svg"
    run_cli(["graph", ROOT / "specs" / "xor.yaml", "-o", out])
    assert sorted(Path(tmp_path).iterdir()) == [out]
