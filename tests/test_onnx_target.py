"""The ONNX target: valid models for every op record's example, opsets, model structure,
weights.

Per-op results on ONNX Runtime against the op records' float64 numpy references, and the
emitter table, are tests/test_ops.py's; the opset tests here compare with the same reference
(tools/reference.py).
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
from tools.reference import reference
from tools.testing import (
    assert_close,
    example,
    example_inputs,
    examples,
    random_inputs,
    random_weights,
)

ort = pytest.importorskip("onnxruntime")

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


# -- every op record's examples (tests/test_ops.py compares their results on every target) -----
EXAMPLES = examples()


@pytest.mark.parametrize("key", list(EXAMPLES))
def test_example_model_is_valid_and_keeps_its_weights(key):
    """The checker (full check) and strict shape inference accept the model; the weights read
    back from it exactly."""
    graph = example(key)
    weights = random_weights(graph, seed=3)
    model = T.compile(graph, weights)
    check(model)
    back = T.export_weights(model, graph)
    assert list(back) == list(graph.weight_shapes())
    for k, v in weights.items():
        np.testing.assert_array_equal(back[k], v, err_msg=k)


OPSETS = [13, 14, 16, 18, 20, 22, 24]
# the first example of each op, and every example of the ops whose form depends on the opset
OPSET_CASES = [
    key
    for key, (op, e) in EXAMPLES.items()
    if e is OPS[op].examples[0] or op in ("layer_norm", "gelu", "reshape", "softmax")
]


@pytest.mark.parametrize("opset", OPSETS)
def test_opsets(opset):
    for key in OPSET_CASES:
        op, e = EXAMPLES[key]
        graph = example(key)
        weights = random_weights(graph, seed=5)
        inputs = example_inputs(graph, e, batch=2, seed=7)
        model = T.compile(graph, weights, opset=opset)
        assert model.opset_import[0].version == opset
        check(model)
        got = run_onnx(model, inputs)
        want = reference(graph, weights, inputs)
        for k in want:
            assert_close(got[k], want[k], f"{key} at opset {opset}: {k}")


def test_opset_dependent_forms():
    g = example("layer_norm.sequence")
    assert "LayerNormalization" in op_counts(T.compile(g, opset=17))
    low = op_counts(T.compile(g, opset=16))
    assert "LayerNormalization" not in low and low["ReduceMean"] == 2  # mean, variance
    g = example("gelu.image")
    assert "Erf" in op_counts(T.compile(g, opset=19))
    assert "Gelu" in op_counts(T.compile(g, opset=20))
    reduce13 = [
        n
        for n in T.compile(example("layer_norm.sequence"), opset=13).graph.node
        if n.op_type == "ReduceMean"
    ]
    assert all(len(n.input) == 1 and n.attribute[0].name == "axes" for n in reduce13)


@pytest.mark.parametrize("opset", [12, 0, 99, "17"])
def test_unsupported_opset_is_a_spec_error(opset):
    with pytest.raises(SpecError, match="opset"):
        T.compile(example("layer_norm.sequence"), opset=opset)


def test_hard_sigmoid_and_pool_attributes():
    m = T.compile(example("hard_sigmoid.image"))
    hs = next(n for n in m.graph.node if n.op_type == "HardSigmoid")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in hs.attribute}
    assert attrs["alpha"] == pytest.approx(1 / 6) and attrs["beta"] == 0.5
    m = T.compile(example("avg_pool2d.pad"))
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
    m = T.compile(example("layer_norm.sequence"))
    assert T.owns(m) and not T.owns(object()) and not T.owns({"a": 1})


def test_export_weights_through_the_api_and_a_file(tmp_path):
    g = example("lstm.bi_last_2")
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
    a, b = example("lstm.seq"), example("gru.seq")
    with pytest.raises(SpecError):
        T.export_weights(T.compile(a), b)


def test_recurrent_gate_order_on_the_node():
    """ONNX gate order on the initializers: LSTM i o f c from PyTorch's i f g o."""
    g = example("lstm.last")
    w = random_weights(g, seed=1)
    m = T.compile(g, w)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
    wi = w["lstm_1.weight_ih_l0"]
    i, f, gg, o = np.split(wi, 4)
    np.testing.assert_array_equal(inits["lstm_1/W_l0"][0], np.concatenate([i, o, f, gg]))
    gru = example("gru.last")
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
        # only around recurrent nodes (in, out, between bidirectional layers), for permute
        # and attention
        permutes = sum(n.op == "permute" for n in g.nodes)
        permutes += 4 * sum(n.op == "attention" for n in g.nodes)  # heads of q, k, v, context
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
