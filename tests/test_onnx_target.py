"""The ONNX target: emitter table, per-op parity on ONNX Runtime, model structure, weights.

Per-op parity compares ONNX Runtime (CPU) on netspec's ONNX against two independent
computations of the same spec and weights: the float64 reference in tests/reference/functional.py
(`torch.nn.functional`, not netspec's code; padding, pooling and recurrent conventions spelled out
from the design page), and the PyTorch target (`netspec.compile(graph, "torch", weights)`).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
from conftest import ROOT, SPECS, spec

import netspec
from netspec.errors import SpecError
from netspec.ops import OPS
from netspec.targets import onnx as T
from netspec.testing import assert_close, random_inputs, random_weights

ort = pytest.importorskip("onnxruntime")
try:  # the float64 reference and the PyTorch target need torch; the rest of this file does not
    import torch

    from tests.reference.functional import reference
except ImportError:  # pragma: no cover - the test extras install torch
    torch = reference = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

RECURRENT = {"LSTM", "GRU", "RNN"}


# -- helpers --------------------------------------------------------------------------------
def session(model: onnx.ModelProto):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def run_onnx(model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    sess = session(model)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, inputs), strict=True))


def check(model: onnx.ModelProto) -> None:
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in model.graph.node:
        out[n.op_type] = out.get(n.op_type, 0) + 1
    return out


# -- the cases: small specs that exercise every op and its attribute variants ----------------
IMG = "x: {shape: [4, 9, 7]}"
SEQ = "x: {shape: [6, 5]}"
CASES: dict[str, tuple[str, str] | tuple[str, str, str]] = {
    "conv2d_same_stride2_odd": (
        IMG,
        """
        - {op: conv2d, filters: 6, kernel: 3, stride: 2, padding: same, activation: relu}
        - {op: conv2d, filters: 3, kernel: [2, 4], stride: [3, 2], padding: same}""",
    ),
    "conv2d_asym_dilation_groups": (
        IMG,
        """
        - {op: conv2d, filters: 6, kernel: 3, padding: [[1, 2], [0, 1]], dilation: [2, 1],
           groups: 2, bias: false}
        - {op: conv2d, filters: 6, kernel: 3, padding: same, dilation: 2, groups: 6,
           activation: {op: leaky_relu, alpha: 0.2}}
        - {op: conv2d, filters: 2, kernel: 1, padding: valid, activation: elu}""",
    ),
    "conv1d": (
        "x: {shape: [4, 11]}",
        """
        - {op: conv1d, filters: 4, kernel: 5, stride: 3, padding: same, activation: tanh}
        - {op: conv1d, filters: 8, kernel: 2, dilation: 2, groups: 4, padding: [[2, 0]]}
        - {op: conv1d, filters: 3, kernel: 3, padding: 1, activation: sigmoid}""",
    ),
    "conv_transpose2d": (
        "x: {shape: [3, 5, 4]}",
        """
        - {op: conv_transpose2d, filters: 4, kernel: 3, stride: 2, padding: 1,
           output_padding: 1, activation: relu}
        - {op: conv_transpose2d, filters: 2, kernel: [3, 4], stride: [2, 3], padding: [0, 1],
           output_padding: [1, 2], bias: false, activation: tanh}""",
    ),
    "max_pool2d": (
        IMG,
        """
        - {op: max_pool2d, size: 3, stride: 2, padding: 1}
        - {op: max_pool2d, size: 2, stride: 1, padding: same}""",
        "[max_pool2d_1, max_pool2d_2]",
    ),
    "max_pool_padding_never_wins": (
        IMG,
        """
        - {op: relu}
        - {op: multiply, inputs: [relu_1, relu_1]}
        - {op: add, inputs: [multiply_1, x]}
        - {op: max_pool2d, size: 3, stride: 2, padding: same}""",
    ),
    "avg_pool2d": (
        IMG,
        """
        - {op: avg_pool2d, size: 3, stride: 2, padding: 1}
        - {op: avg_pool2d, size: [2, 3], stride: 1, padding: same}
        - {op: avg_pool2d, size: 2}""",
    ),
    "pool1d": (
        "x: {shape: [3, 10]}",
        """
        - {op: max_pool1d, size: 3, stride: 2, padding: [[1, 0]]}
        - {op: avg_pool1d, size: 3, stride: 2, padding: [[0, 1]]}
        - {op: avg_pool1d, size: 2, padding: same}""",
    ),
    "batch_norm_ranks": (
        IMG,
        """
        - {op: batch_norm, name: bn3, eps: 0.001, momentum: 0.01}
        - {op: reshape, shape: [4, 63]}
        - {op: batch_norm, name: bn2}
        - {op: flatten}
        - {op: dense, units: 5}
        - {op: batch_norm, name: bn1, eps: 0.1}""",
    ),
    "layer_norm": (
        "x: {shape: [3, 8]}",
        """
        - {op: layer_norm, name: ln2}
        - {op: flatten}
        - {op: layer_norm, name: ln1, eps: 0.01}""",
    ),
    "shape_ops": (
        IMG,
        """
        - {op: dropout, rate: 0.3}
        - {op: permute, dims: [2, 3, 1]}
        - {op: reshape, shape: [-1, 4, 7]}
        - {op: permute, dims: [3, 1, 2]}
        - {op: flatten}
        - {op: dense, units: 3}""",
    ),
    "merges_broadcast": (
        """
        a: {shape: [4, 1, 5]}
        b: {shape: [1, 3, 5]}
        c: {shape: [4, 3, 1]}""",
        """
        - {op: add, name: s, inputs: [a, b, c]}
        - {op: subtract, name: d, inputs: [c, a]}
        - {op: multiply, name: m, inputs: [a, b, c]}
        - {op: multiply, name: m2, inputs: [s, d]}
        - {op: subtract, name: out, inputs: [m2, m]}""",
    ),
    "concat_axes": (
        """
        a: {shape: [2, 3, 4]}
        b: {shape: [2, 3, 4]}""",
        """
        - {op: concat, name: c1, inputs: [a, b]}
        - {op: concat, name: c2, inputs: [a, b], axis: 2}
        - {op: concat, name: c3, inputs: [a, b, a], axis: -1}""",
        "[c1, c2, c3]",
    ),
    "dense_rank3": (
        "x: {shape: [3, 4, 5]}",
        """
        - {op: dense, units: 6, activation: gelu}
        - {op: dense, units: 2, bias: false}
        - {op: dense, units: 3, activation: {op: softmax, axis: 2}}""",
    ),
    "embedding": (
        "t: {shape: [null], dtype: int64}",
        """
        - {op: embedding, vocab: 11, dim: 4}
        - {op: dense, units: 3}""",
    ),
    "outputs_named_and_aliased": (
        "x: {shape: [3]}",
        """
        - {op: dense, name: hidden, units: 4}
        - {op: dropout, name: drop}
        - {op: identity, name: same}
        - {op: dense, name: head, units: 2, inputs: [hidden]}""",
        "{first: drop, second: head, third: hidden, hidden2: hidden, ident: same, head: x}",
    ),
}

ACTIVATIONS = [
    "relu",
    "sigmoid",
    "tanh",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "silu",
    "softplus",
    "hard_sigmoid",
    "identity",
    "softmax",
    "log_softmax",
]
CASES["activations"] = (
    "x: {shape: [3, 5]}",
    "\n".join(
        [f"- {{op: {a}, name: {a}_layer, inputs: [x]}}" for a in ACTIVATIONS]
        + [
            "- {op: prelu, name: prelu_layer, inputs: [x]}",
            "- {op: leaky_relu, name: lrelu2, alpha: 0.3, inputs: [x]}",
            "- {op: elu, name: elu2, alpha: 0.5, inputs: [x]}",
            "- {op: softmax, name: softmax1, axis: 1, inputs: [x]}",
            "- {op: log_softmax, name: lsm1, axis: -2, inputs: [x]}",
            "- {op: flatten, name: flat, inputs: [x]}",
            "- {op: prelu, name: prelu1}",
        ]
    ),
    "["
    + ", ".join(
        [f"{a}_layer" for a in ACTIVATIONS]
        + ["prelu_layer", "lrelu2", "elu2", "softmax1", "lsm1", "prelu1"]
    )
    + "]",
)
CASES["dense_activations"] = (
    "x: {shape: [4]}",
    "\n".join(
        f"- {{op: dense, name: d_{a}, units: 3, inputs: [x], activation: {a}}}" for a in ACTIVATIONS
    ),
    "[" + ", ".join(f"d_{a}" for a in ACTIVATIONS) + "]",
)
CASES["conv_activations"] = (
    "x: {shape: [2, 5]}",
    "\n".join(
        f"- {{op: conv1d, name: c_{a}, filters: 2, kernel: 2, inputs: [x], activation: {a}}}"
        for a in ACTIVATIONS
        if "softmax" not in a
    ),
    "[" + ", ".join(f"c_{a}" for a in ACTIVATIONS if "softmax" not in a) + "]",
)

for _op in ("lstm", "gru", "rnn"):
    for _bi in (False, True):
        for _layers in (1, 2):
            for _seq in (False, True):
                CASES[f"{_op}_{'bi' if _bi else 'uni'}_l{_layers}_{'seq' if _seq else 'last'}"] = (
                    SEQ,
                    f"- {{op: {_op}, units: 3, bidirectional: {str(_bi).lower()}, "
                    f"num_layers: {_layers}, return_sequences: {str(_seq).lower()}}}",
                )
CASES["recurrent_stack_dynamic"] = (
    "x: {shape: [null, 4]}",
    """
    - {op: gru, units: 3, return_sequences: true, bidirectional: true}
    - {op: lstm, units: 2, return_sequences: true}
    - {op: rnn, units: 2, bidirectional: true}""",
)

CASES["global_pools"] = (
    IMG,
    """
    - {op: global_avg_pool, name: gap}
    - {op: global_max_pool, name: gmp, inputs: [x]}
    - {op: reshape, name: r, shape: [4, 63], inputs: [x]}
    - {op: global_max_pool, name: gmp1}
    - {op: global_avg_pool, name: gap1, inputs: [r]}""",
    "[gap, gmp, gmp1, gap1]",
)


def case_graph(name: str) -> netspec.Graph:
    inputs, layers, *outputs = CASES[name]
    return spec(inputs, layers, outputs[0] if outputs else "", name=name)


def case_inputs(name: str, graph) -> dict[str, np.ndarray]:
    x = random_inputs(graph, batch=2, seed=7)
    if name == "activations":  # reach softplus' and selu's large-value branches too
        x["x"][0, 0] = [-30.0, -3.0, 0.0, 3.0, 30.0]
    if name == "max_pool_padding_never_wins":
        x["x"] = -np.abs(x["x"]) - 1.0  # everything negative; the layers square and add
    return x


def torch_target(graph, weights, inputs) -> dict[str, np.ndarray] | None:
    """The PyTorch target's outputs, or None while it is not there yet."""
    try:
        module = netspec.compile(graph, "torch", weights)
    except ModuleNotFoundError as e:
        if "netspec.targets.torch" in str(e):
            return None
        raise
    with torch.no_grad():
        ys = module(*(torch.from_numpy(inputs[k]) for k in graph.inputs))
    if not isinstance(ys, tuple | list):
        ys = (ys,)
    return {o: y.numpy() for o, y in zip(graph.outputs, ys, strict=True)}


# -- tests ------------------------------------------------------------------------------------
@needs_torch
def test_torch_target_is_there_for_parity():
    """test_op_parity compares with the PyTorch target too once it exists."""
    g = case_graph("layer_norm")
    if torch_target(g, random_weights(g), random_inputs(g)) is None:
        pytest.skip(
            "the PyTorch target (netspec/targets/torch) is not there yet: test_op_parity "
            "compares with the float64 reference only"
        )


def test_every_op_has_an_emitter():
    missing = sorted(set(OPS) - set(T.EMITTERS))
    assert not missing, f"ops without an ONNX emitter: {missing}"
    assert not set(T.EMITTERS) - set(OPS)


def test_every_op_is_exercised_by_the_cases():
    used = set()
    for name in CASES:
        g = case_graph(name)
        used |= {n.op for n in g.nodes}
        used |= {n.attrs["activation"]["op"] for n in g.nodes if n.attrs.get("activation")}
    assert set(OPS) <= used, sorted(set(OPS) - used)


@needs_torch
@pytest.mark.parametrize("name", list(CASES))
def test_op_parity(name):
    graph = case_graph(name)
    weights = random_weights(graph, seed=3)
    inputs = case_inputs(name, graph)
    model = T.compile(graph, weights)
    check(model)
    got = run_onnx(model, inputs)
    assert list(got) == list(graph.outputs)
    want = reference(graph, weights, inputs)
    for k in want:
        assert_close(got[k], want[k], f"{name}: ONNX Runtime vs float64 reference, {k}")
    via_torch = torch_target(graph, weights, inputs)
    if via_torch is not None:
        for k in want:
            assert_close(got[k], via_torch[k], f"{name}: ONNX Runtime vs PyTorch target, {k}")
    # weights read back exactly
    back = T.export_weights(model, graph)
    assert list(back) == list(graph.weight_shapes())
    for k, v in weights.items():
        np.testing.assert_array_equal(back[k], v, err_msg=k)


OPSETS = [13, 14, 16, 18, 20, 22, 24]
OPSET_CASES = [n for n in CASES if not n.startswith(("lstm", "gru", "rnn"))] + [
    "lstm_bi_l2_seq",
    "gru_bi_l2_last",
    "rnn_uni_l2_seq",
]


@needs_torch
@pytest.mark.parametrize("opset", OPSETS)
def test_opsets(opset):
    for name in OPSET_CASES:
        graph = case_graph(name)
        weights = random_weights(graph, seed=5)
        inputs = case_inputs(name, graph)
        model = T.compile(graph, weights, opset=opset)
        assert model.opset_import[0].version == opset
        check(model)
        got = run_onnx(model, inputs)
        want = reference(graph, weights, inputs)
        for k in want:
            assert_close(got[k], want[k], f"{name} at opset {opset}: {k}")


def test_opset_dependent_forms():
    g = case_graph("layer_norm")
    assert "LayerNormalization" in op_counts(T.compile(g, opset=17))
    low = op_counts(T.compile(g, opset=16))
    assert "LayerNormalization" not in low and low["ReduceMean"] == 4
    g = case_graph("activations")
    assert "Erf" in op_counts(T.compile(g, opset=19))
    assert "Gelu" in op_counts(T.compile(g, opset=20))
    reduce13 = [
        n
        for n in T.compile(case_graph("layer_norm"), opset=13).graph.node
        if n.op_type == "ReduceMean"
    ]
    assert all(len(n.input) == 1 and n.attribute[0].name == "axes" for n in reduce13)


@pytest.mark.parametrize("opset", [12, 0, 99, "17"])
def test_unsupported_opset_is_a_spec_error(opset):
    with pytest.raises(SpecError, match="opset"):
        T.compile(case_graph("layer_norm"), opset=opset)


def test_hard_sigmoid_and_pool_attributes():
    m = T.compile(case_graph("activations"))
    hs = next(n for n in m.graph.node if n.op_type == "HardSigmoid")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in hs.attribute}
    assert attrs["alpha"] == pytest.approx(1 / 6) and attrs["beta"] == 0.5
    m = T.compile(case_graph("avg_pool2d"))
    for n in m.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        assert attrs["count_include_pad"] == 0 and "auto_pad" not in attrs
    g = spec(
        "x: {shape: [1, 8, 9]}",
        "- {op: conv2d, filters: 1, kernel: 3, stride: 2, padding: same}",
        name="same",
    )
    attrs = {
        a.name: onnx.helper.get_attribute_value(a) for a in T.compile(g).graph.node[0].attribute
    }
    assert attrs["pads"] == [0, 1, 1, 1] and "auto_pad" not in attrs  # TF's rule: extra after


def test_io_names_dims_and_metadata():
    g = spec(
        "a: {shape: [seq, 3]}\nb: {shape: [null, 2]}",
        """
        - {op: dense, name: da, units: 2, inputs: [a]}
        - {op: concat, name: both, inputs: [da, b], axis: 1}
        - {op: lstm, name: rnn, units: 2, return_sequences: true, inputs: [da]}""",
        "{joined: both, seq_out: rnn}",
        name="io",
    )
    m = T.compile(g)
    check(m)

    def dims(vi):
        return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]

    assert [(i.name, dims(i)) for i in m.graph.input] == [
        ("a", ["batch", "seq", 3]),
        ("b", ["batch", "b_1", 2]),
    ]
    outs = {o.name: dims(o) for o in m.graph.output}
    assert list(outs) == ["joined", "seq_out"]
    assert outs["seq_out"] == ["batch", "seq", 2]
    assert outs["joined"][0] == "batch" and outs["joined"][2] == 2
    assert not {i.name for i in m.graph.input} & {t.name for t in m.graph.initializer}
    assert m.producer_name == "netspec" and m.producer_version == netspec.__version__
    props = {p.key: p.value for p in m.metadata_props}
    assert props["netspec_version"] == netspec.__version__
    assert props["spec_hash"] == g.spec_hash and len(g.spec_hash) == 64
    assert m.opset_import[0].version == T.DEFAULT_OPSET == 17
    mlp = netspec.load(ROOT / "specs" / "mlp.yaml")
    assert T.compile(mlp).doc_string == mlp.description
    assert m.ir_version == 8  # the oldest IR that carries opset 17: old runtimes load it


def test_generate_is_the_textual_form():
    g = netspec.load(ROOT / "specs" / "resnet18.yaml")
    text = netspec.generate(g, target="onnx")
    assert len(text) < 50_000  # weights are not inlined
    assert "Conv" in text and '"layer2_1.conv1.weight"' in text and "mlp" not in text
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    parsed = onnx.parser.parse_model(body)
    built = T.compile(g)
    assert [n.op_type for n in parsed.graph.node] == [n.op_type for n in built.graph.node]
    assert [t.name for t in parsed.graph.initializer] == [t.name for t in built.graph.initializer]


def test_owns():
    m = T.compile(case_graph("layer_norm"))
    assert T.owns(m) and not T.owns(object()) and not T.owns({"a": 1})


def test_export_weights_through_the_api_and_a_file(tmp_path):
    g = case_graph("lstm_bi_l2_seq")
    w = random_weights(g, seed=11)
    m = netspec.compile(g, "onnx", w)
    out = tmp_path / "w.safetensors"
    netspec.save_weights(m, g, out)
    from safetensors.numpy import load_file

    back = load_file(str(out))
    assert set(back) == set(w)
    for k in w:
        np.testing.assert_array_equal(back[k], w[k])
    (path,) = T.write(g, w, tmp_path)
    back = T.export_weights(path, g)
    for k in w:
        np.testing.assert_array_equal(back[k], w[k])


def test_export_weights_refuses_another_model():
    a, b = case_graph("lstm_uni_l1_seq"), case_graph("gru_uni_l1_seq")
    with pytest.raises(SpecError):
        T.export_weights(T.compile(a), b)


def test_recurrent_gate_order_on_the_node():
    """ONNX gate order on the initializers: LSTM i o f c from PyTorch's i f g o."""
    g = case_graph("lstm_uni_l1_last")
    w = random_weights(g, seed=1)
    m = T.compile(g, w)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
    wi = w["lstm_1.weight_ih_l0"]
    i, f, gg, o = np.split(wi, 4)
    np.testing.assert_array_equal(inits["lstm_1/W_l0"][0], np.concatenate([i, o, f, gg]))
    gru = case_graph("gru_uni_l1_last")
    w = random_weights(gru, seed=1)
    node = next(n for n in T.compile(gru, w).graph.node if n.op_type == "GRU")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["linear_before_reset"] == 1


# -- the example specs ---------------------------------------------------------------------------
@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_example_spec_structure(path):
    g = netspec.load(path)
    m = T.compile(g)
    check(m)
    counts = op_counts(m)
    rec_layers = sum(n.attrs["num_layers"] for n in g.nodes if n.op in ("lstm", "gru", "rnn"))
    assert sum(counts.get(op, 0) for op in RECURRENT) == rec_layers
    if counts.get("Transpose"):
        # only around recurrent nodes (in, out, between bidirectional layers) and for permute
        permutes = sum(n.op == "permute" for n in g.nodes)
        allowed = permutes + sum(
            2 + n.attrs["bidirectional"] * (n.attrs["num_layers"] - 1)
            for n in g.nodes
            if n.op in ("lstm", "gru", "rnn")
        )
        assert counts["Transpose"] <= allowed, counts
    assert counts.get("BatchNormalization", 0) == sum(n.op == "batch_norm" for n in g.nodes)
    names = {t.name for t in m.graph.initializer}
    assert not names & {i.name for i in m.graph.input}
    assert [i.name for i in m.graph.input] == list(g.inputs)
    assert [o.name for o in m.graph.output] == list(g.outputs)


def test_resnet18_node_counts():
    m = T.compile(netspec.load(ROOT / "specs" / "resnet18.yaml"))
    assert op_counts(m) == {
        "Conv": 20,
        "BatchNormalization": 20,
        "Relu": 17,
        "MaxPool": 1,
        "Add": 8,
        "GlobalAveragePool": 1,
        "Flatten": 1,
        "Gemm": 1,
    }


def test_build_onnx_never_imports_torch_or_tensorflow(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        from netspec.cli import main
        rc = main(["build", {str(ROOT / "specs" / "char_lstm.yaml")!r}, "--target", "onnx",
                   "-o", {str(tmp_path)!r}, "-q"])
        import netspec.targets.onnx.run
        bad = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "tensorflow",
                                                                   "keras"))
        print(rc, bad)
    """)
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == "0" and r.stdout.strip().endswith("[]"), r.stdout
    assert (tmp_path / "char_lstm.onnx").is_file()


# -- large models: external data ---------------------------------------------------------------
def test_external_data_above_the_threshold(tmp_path):
    g = netspec.load(ROOT / "specs" / "lenet5.yaml")
    w = random_weights(g)
    (tmp_path / "small").mkdir()
    small = T.write(g, w, tmp_path / "small")
    assert [p.name for p in small] == ["lenet5.onnx"]
    out = tmp_path / "big"
    out.mkdir()
    files = T.write(g, w, out, external_threshold=100_000)  # lenet5 holds ~250 kB of weights
    assert [p.name for p in files] == ["lenet5.onnx", "lenet5.onnx.data"]
    assert sorted(p.name for p in out.iterdir()) == ["lenet5.onnx", "lenet5.onnx.data"]
    header = onnx.load(str(files[0]), load_external_data=False)
    locations = {
        e.value for t in header.graph.initializer for e in t.external_data if e.key == "location"
    }
    assert locations == {"lenet5.onnx.data"}  # relative, inside the output directory
    assert files[0].stat().st_size < 10_000
    size = files[1].stat().st_size
    T.write(g, w, out, external_threshold=100_000)  # again: replaced, not appended to
    assert files[1].stat().st_size == size
    onnx.checker.check_model(str(files[0]), full_check=True)
    x = random_inputs(g)
    sess = ort.InferenceSession(str(files[0]), providers=["CPUExecutionProvider"])
    assert_close(sess.run(None, x)[0], run_onnx(T.compile(g, w), x)["fc3"], "external data")
    back = T.export_weights(files[0], g)
    for k in w:
        np.testing.assert_array_equal(back[k], w[k])


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_write_streams_exactly_the_serialized_model(path, tmp_path):
    # write() never serializes the weights through protobuf; its file must still be the very
    # bytes SerializeToString() gives (field order, lengths, little-endian raw data)
    g = netspec.load(path)
    w = random_weights(g, 3)
    (out,) = T.write(g, w, tmp_path)
    assert out.read_bytes() == T.compile(g, w).SerializeToString()


def test_external_data_is_aligned_and_reads_back(tmp_path):
    g = netspec.load(ROOT / "specs" / "resnet18.yaml")
    w = random_weights(g)
    onnx_path, data = T.write(g, w, tmp_path, external_threshold=1_000_000)
    header = onnx.load(str(onnx_path), load_external_data=False)
    where = {
        t.name: {e.key: int(e.value) for e in t.external_data if e.key != "location"}
        for t in header.graph.initializer
        if t.data_location == onnx.TensorProto.EXTERNAL
    }
    assert len(where) > 20 and all(
        t.name in where for t in header.graph.initializer if t.name.endswith("conv1.weight")
    )
    end = 0
    for name, e in where.items():  # in order, no overlap, large ones at 4 KiB boundaries
        assert e["offset"] >= end and e["length"] == w[name].nbytes, name
        if e["length"] >= 1 << 20:
            assert e["offset"] % 4096 == 0, name
        end = e["offset"] + e["length"]
    assert data.stat().st_size == end
    back = T.export_weights(onnx_path, g)
    for k in w:
        np.testing.assert_array_equal(back[k], w[k])
    x = random_inputs(g)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert_close(sess.run(None, x)[0], run_onnx(T.compile(g, w), x)["fc"], "external data")


def test_build_cli_writes_external_data_inside_the_output_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(T, "EXTERNAL_THRESHOLD", 100_000)  # as if lenet5 were > 2 GB
    from netspec.cli import main

    out = tmp_path / "o"
    assert (
        main(
            [
                "build",
                str(ROOT / "specs" / "lenet5.yaml"),
                "-t",
                "onnx",
                "-o",
                str(out),
                "-q",
                "--opset",
                "18",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "lenet5.onnx",
        "lenet5.onnx.data",
        "lenet5.safetensors",
    ]
    m = onnx.load(str(out / "lenet5.onnx"))
    assert m.opset_import[0].version == 18
    g = netspec.load(ROOT / "specs" / "lenet5.yaml")
    back = T.export_weights(m, g)
    w = netspec.init_weights(g, 0)
    for k in w:
        np.testing.assert_array_equal(back[k], w[k])
