"""The Keras target: emitter table, generated source, layouts, weights, per-op parity.

Parity compares the Keras model (channels-last at its boundary; inputs and outputs are moved to
the logical layout here) on the same random weights and inputs against:
- the float64 reference in tools/reference.py (the op records' numpy references, independent of
  every target's code),
- ONNX Runtime (CPU) on netspec's ONNX model,
- the PyTorch target,
all within the design page's bound `|a - b| <= 1e-5 + 1e-4 |b|` (`assert_close`).

One TensorFlow import per test session (module-scoped fixture); models are tiny.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, SPECS, ruff_clean, spec

import netspec
from netspec.weights import write_weights
from tools.reference import reference
from tools.testing import assert_close, example, examples, random_inputs, random_weights

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


# -- helpers ------------------------------------------------------------------------------
def to_keras(a: np.ndarray) -> np.ndarray:
    """Logical (channels-first) -> the Keras boundary layout (channels-last from rank 3)."""
    return np.moveaxis(a, 1, -1) if a.ndim >= 4 else a


def from_keras(a) -> np.ndarray:
    a = np.asarray(a)
    return np.moveaxis(a, -1, 1) if a.ndim >= 4 else a


def run_keras(model, graph, inputs) -> list[np.ndarray]:
    ins = [to_keras(inputs[k]) for k in graph.inputs]
    out = model(ins if len(ins) > 1 else ins[0], training=False)
    outs = out if isinstance(out, (list, tuple)) else [out]
    return [from_keras(o) for o in outs]


@pytest.fixture(scope="module")
def K(keras):
    from netspec.targets import keras as target

    return target


# -- the independent reference: tools/reference.py (the op records' numpy references) ------
def float64_reference(graph, w, inputs) -> list[np.ndarray]:
    return list(reference(graph, w, inputs).values())


def onnx_outputs(graph, w, inputs):
    ort = pytest.importorskip("onnxruntime")
    proto = netspec.compile(graph, "onnx", w)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, inputs)


def torch_target_outputs(graph, w, inputs):
    if importlib.util.find_spec("netspec.targets.torch") is None:
        pytest.skip("the PyTorch target (netspec.targets.torch) does not exist yet")
    torch = pytest.importorskip("torch")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    module = netspec.compile(graph, "torch", w)
    args = [torch.tensor(inputs[k]) for k in graph.inputs]
    with torch.no_grad():
        out = module(*args)
    outs = out if isinstance(out, (list, tuple)) else [out]
    return [o.detach().cpu().numpy() for o in outs]


def check_parity(K, graph, seed: int = 0, batch: int = 2):
    """Keras against the float64 reference and ONNX Runtime (and the PyTorch target when it
    exists), on random weights and inputs."""
    w = random_weights(graph, seed)
    x = random_inputs(graph, batch=batch, seed=seed)
    model = K.compile(graph, w)
    got = run_keras(model, graph, x)
    ref = float64_reference(graph, w, x)
    names = list(graph.outputs)
    for name, a, b in zip(names, got, ref, strict=True):
        assert_close(a, b, f"{graph.name}.{name}: keras vs float64 reference")
    for name, a, b in zip(names, got, onnx_outputs(graph, w, x), strict=True):
        assert_close(a, b, f"{graph.name}.{name}: keras vs onnxruntime")
    return model, w, x, got


# -- per-op cases: tests/test_ops.py runs every op record's examples here too -----------------
IMG = "x: {shape: [3, 9, 11]}"


# -- graphs with blocks, several inputs and outputs ----------------------------------------
BLOCKS = """
unit:
  params: {filters: null, stride: 1}
  inputs: [x]
  layers:
    - {op: conv2d, name: conv, filters: $filters, kernel: 3, stride: $stride, padding: same,
       bias: false}
    - {op: batch_norm, name: bn}
    - {op: relu, name: act}
bottleneck:
  params: {filters: null, stride: 1}
  inputs: [x]
  layers:
    - {block: unit, name: a, filters: $filters, stride: $stride}
    - {op: conv2d, name: expand, filters: "${filters * 4}", kernel: 1}
    - {op: conv2d, name: skip, inputs: [x], filters: "${filters * 4}", kernel: 1,
       stride: $stride}
    - {op: add, name: sum, inputs: [expand, skip]}
pair:
  inputs: [a, b]
  layers:
    - {op: add, name: s, inputs: [a, b]}
    - {op: multiply, name: p, inputs: [a, b]}
  outputs: [s, p]
"""


def blocks_graph():
    return spec(
        "image: {shape: [3, 12, 12]}\nside: {shape: [5]}",
        """
        - {block: bottleneck, name: b1, filters: 2, inputs: [image]}
        - {block: bottleneck, name: b2, filters: 3, stride: 2}
        - {block: bottleneck, name: b3, filters: 3}
        - {op: global_avg_pool, name: pool}
        - {op: dense, name: proj, units: 12, inputs: [side]}
        - {block: pair, name: pr, inputs: [pool, proj]}
        - {op: concat, name: both, inputs: [pr.s, pr.p]}
        - {op: dense, name: head, units: 4}
        """,
        outputs="{scores: head, features: b3, summed: pr.s}",
        blocks=BLOCKS,
        name="blocks",
    )


def test_blocks_several_inputs_and_outputs(K, keras):
    graph = blocks_graph()
    model, *_ = check_parity(K, graph)
    assert [t.name for t in model.inputs] == ["image", "side"] or model.input_names == [
        "image",
        "side",
    ]
    assert model.output_names == ["scores", "features", "summed"]
    src = K.generate(graph)
    # one function per block; the uses of `bottleneck` differ in filters and stride, which
    # become arguments (the expansion `filters * 4` is recognized)
    assert "def bottleneck(x, name, filters, stride):" in src
    assert "def unit(x, name, filters, stride):" in src
    assert "filters * 4" in src
    assert src.count("def pair(") == 1 and "return s, p" in src
    assert 'b1 = bottleneck(image, "b1", filters=2, stride=1)' in src


def test_block_variants_with_other_structure(K):
    """Uses of one block whose Keras layers differ become separate functions: padding 1 with
    stride 2 is Keras' `same` on an odd size but needs a ZeroPadding layer on an even one.
    Values that differ within one structure become arguments (`c_padding` here)."""
    graph = spec(
        "x: {shape: [3, 9, 9]}\ny: {shape: [3, 8, 8]}",
        """
        - {block: b, name: u1, pad: 1, inputs: [x]}
        - {block: b, name: u2, pad: 1, inputs: [y]}
        - {block: b, name: u3, pad: 0, inputs: [x]}
        """,
        blocks="""
        b:
          params: {pad: null}
          inputs: [x]
          layers:
            - {op: conv2d, name: c, filters: 3, kernel: 3, stride: 2, padding: $pad}
        """,
        outputs="[u1, u2, u3]",
    )
    src = K.generate(graph)
    assert "def b(x, name, c_padding):" in src and "def b_2(x, name):" in src
    assert 'u3 = b(x, "u3", c_padding="valid")' in src
    check_parity(K, graph)


# -- the example specs ---------------------------------------------------------------------
@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_spec_parity(K, path):
    check_parity(K, netspec.load(path), batch=1)


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_spec_parity_torch_target(K, path):
    graph = netspec.load(path)
    w = random_weights(graph, 0)
    x = random_inputs(graph, batch=1)
    want = torch_target_outputs(graph, w, x)
    got = run_keras(K.compile(graph, w), graph, x)
    for name, a, b in zip(graph.outputs, got, want, strict=True):
        assert_close(a, b, f"{graph.name}.{name}: keras vs the PyTorch target")


def test_torch_target_parity_on_variants(K):
    """A few of the per-op graphs against the PyTorch target as well."""
    for case in [
        "conv2d.same_s2_odd",
        "conv2d.asym_pairs",
        "conv2d.depthwise",
        "conv_transpose2d.mixed",
        "max_pool2d.pad",
        "avg_pool2d.asym",
        "flatten.after_conv",
        "dense.after_permute",
        "gru.bi_last_2",
        "lstm.bi_seq",
        "rnn.stack_seq",
        "softmax.channels",
    ]:
        graph = example(case)
        w = random_weights(graph, 1)
        x = random_inputs(graph, seed=1)
        got = run_keras(K.compile(graph, w), graph, x)
        for name, a, b in zip(graph.outputs, got, torch_target_outputs(graph, w, x), strict=True):
            assert_close(a, b, f"{case}.{name}: keras vs the PyTorch target")


# -- generated source ----------------------------------------------------------------------
def all_graphs():
    graphs = [netspec.load(p) for p in SPECS]
    graphs += [example(key) for key in examples()]
    return graphs + [blocks_graph()]


def test_source_is_standalone_and_ruff_clean(K):
    for g in all_graphs():
        src = K.generate(g)
        assert "netspec" not in [
            line.split()[1].split(".")[0]
            for line in src.splitlines()
            if line.startswith(("import ", "from "))
        ], g.name
        assert "Lambda" not in src, g.name
        ruff_clean(src, g.name)


def test_generate_needs_no_framework():
    code = (
        "import sys, netspec; g = netspec.load(sys.argv[1]); "
        "netspec.generate(g, 'keras'); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "specs" / "resnet18.yaml")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr


def test_layer_names_are_node_paths(K):
    graph = netspec.load(ROOT / "specs" / "resnet18.yaml")
    src = K.generate(graph)
    for n in graph.nodes:
        if n.params:
            assert f'"{n.name}"' in src  # in the weights table
    assert 'name=f"{name}.conv1"' in src and 'layer2_1 = basic_down(layer1_2, "layer2_1"' in src


def test_transposes_only_where_needed(K):
    # an image network that stays channels-last: no transpose at all
    assert "Permute" not in K.generate(netspec.load(ROOT / "specs" / "resnet18.yaml"))
    assert "Permute" not in K.generate(netspec.load(ROOT / "specs" / "dcgan_generator.yaml"))
    # flatten of a channels-last tensor: one transpose to logical order before Flatten
    src = K.generate(example("flatten.after_conv"))
    assert src.count("keras.layers.Permute((3, 1, 2)") == 1
    # flatten of [C, 1, 1]: the same element order, no transpose
    assert "Permute" not in K.generate(example("flatten.unit_spatial"))
    # permute to [H, W, C] of a channels-last tensor moves no data
    assert "Permute" not in K.generate(example("flatten.after_permute"))


def test_boundary_layouts(K, keras):
    model = K.compile(example("conv1d.same_s2"), random_weights(example("conv1d.same_s2")))
    assert tuple(model.inputs[0].shape) == (None, 4, 11)  # rank 2 keeps the logical order
    assert tuple(model.outputs[0].shape) == (None, 3, 6)
    graph = netspec.load(ROOT / "specs" / "resnet18.yaml")
    src = K.generate(graph)
    assert 'keras.Input(shape=(224, 224, 3), name="image")' in src


# -- weights --------------------------------------------------------------------------------
def test_weights_round_trip(K, keras):
    """canonical -> Keras -> canonical is exact; for LSTM and SimpleRNN the one Keras bias comes
    back as bias_ih (the sum) with a zero bias_hh, and that form round-trips exactly again."""
    graphs = [blocks_graph()] + [
        example(c)
        for c in [
            "conv2d.depthwise",
            "conv1d.depthwise",
            "conv_transpose2d.mixed",
            "conv2d.groups",
            "lstm.after_embedding",
            "gru.bi_last_2",
            "rnn.stack_seq",
            "lstm.bi_seq",
            "prelu.image",
            "prelu.sequence",
            "layer_norm.image",
            "batch_norm.vector",
        ]
    ]
    for g in graphs:
        w = random_weights(g, 3)
        model = K.compile(g, w)
        back = K.export_weights(model, g)
        assert list(back) == list(g.weight_shapes())
        for k, a in w.items():
            node = g.node(k.rpartition(".")[0])
            if node.op in ("lstm", "rnn") and "bias_" in k:
                continue
            np.testing.assert_array_equal(back[k], a, err_msg=f"{g.name}: {k}")
        for n in g.nodes:
            if n.op in ("lstm", "rnn"):
                for p in n.params:
                    if p.startswith("bias_ih"):
                        hh = p.replace("bias_ih", "bias_hh")
                        k, kh = f"{n.name}.{p}", f"{n.name}.{hh}"
                        np.testing.assert_allclose(back[k], w[k] + w[kh], rtol=1e-6)
                        assert not back[kh].any()
        again = K.export_weights(K.compile(g, back), g)
        for k in back:
            np.testing.assert_array_equal(again[k], back[k], err_msg=f"{g.name}: {k}")


def test_export_then_compile_same_function(K, keras):
    g = example("lstm.bi_seq")
    w = random_weights(g, 5)
    x = random_inputs(g)
    a = run_keras(K.compile(g, w), g, x)[0]
    b = run_keras(K.compile(g, K.export_weights(K.compile(g, w), g)), g, x)[0]
    assert_close(a, b)


def test_save_weights_api_and_owns(K, keras, tmp_path):
    g = example("conv2d.depthwise")
    w = random_weights(g, 2)
    model = netspec.compile(g, "keras", w)
    assert K.owns(model) and not K.owns(object()) and not K.owns(w)
    netspec.save_weights(model, g, tmp_path / "w.safetensors")
    from safetensors.numpy import load_file

    got = load_file(str(tmp_path / "w.safetensors"))
    for k in w:
        np.testing.assert_array_equal(got[k], w[k])


def test_written_module_runs_standalone(K, keras, tmp_path):
    """`write` gives a module a user can import on its own; its load_weights reads netspec's
    safetensors file, and the model saves and reloads in Keras' safe mode (no Lambda)."""
    graph = spec(
        IMG,
        """
        - {op: conv2d, filters: 4, kernel: 3, activation: hard_sigmoid}
        - {op: max_pool2d, size: 3, stride: 2, padding: 1}
        - {op: avg_pool2d, size: 2, stride: 1, padding: [[0, 1], [1, 0]]}
        - {op: log_softmax, axis: 1}
        """,
        name="customs",
    )
    for g in [graph]:
        w = random_weights(g, 4)
        x = random_inputs(g)
        paths = K.write(g, w, tmp_path)
        assert [p.name for p in paths] == [f"{g.name}_keras.py"]
        write_weights(w, g, tmp_path / "w.safetensors")
        spec_ = importlib.util.spec_from_file_location("user_model", paths[0])
        mod = importlib.util.module_from_spec(spec_)
        spec_.loader.exec_module(mod)
        model = mod.build_model()
        mod.load_weights(model, tmp_path / "w.safetensors")
        want = run_keras(K.compile(g, w), g, x)[0]
        assert_close(run_keras(model, g, x)[0], want)
        model.save(tmp_path / "m.keras")
        again = keras.models.load_model(tmp_path / "m.keras")  # safe_mode=True
        assert_close(run_keras(again, g, x)[0], want)
        mod.save_weights(model, tmp_path / "back.safetensors")
        from safetensors.numpy import load_file

        back = load_file(str(tmp_path / "back.safetensors"))
        for k in w:
            np.testing.assert_array_equal(back[k], w[k])


def test_compile_runs_the_generated_text(K, keras, monkeypatch):
    """compile executes exactly what generate returns."""
    g = spec(IMG, "- relu")
    seen = []
    real = K.generate

    def spy(graph):
        seen.append(real(graph))
        return seen[-1].replace('name="t"', 'name="from_generate"')

    monkeypatch.setattr(K, "generate", spy)
    model = K.compile(g, random_weights(g))
    assert seen and model.name == "from_generate"


def test_keras_momentum_and_eps_spelled_out(K):
    src = K.generate(example("batch_norm.image"))
    assert "momentum=0.99, epsilon=0.001" in src
    src = K.generate(example("batch_norm.vector"))
    assert "momentum=0.9, epsilon=1e-05" in src


def test_same_padding_uses_keras_same_only_when_exact(K):
    same = K.generate(example("conv2d.same_s2_odd"))
    assert 'padding="same"' in same and "ZeroPadding" not in same
    # padding 1, stride 2: TensorFlow's `same` pads (1, 1) on an odd size, (0, 1) on an even one
    odd = K.generate(spec(IMG, "- {op: conv2d, filters: 4, kernel: 3, stride: 2, padding: 1}"))
    assert 'padding="same"' in odd and "ZeroPadding" not in odd
    even = "x: {shape: [3, 8, 8]}"
    torch_style = K.generate(
        spec(even, "- {op: conv2d, filters: 4, kernel: 3, stride: 2, padding: 1}")
    )
    assert "ZeroPadding2D(padding=1" in torch_style and 'padding="same"' not in torch_style


def test_names_that_collide(K, keras):
    """Names that would shadow module names are renamed in the source (never in the model):
    an input called `keras`, a block called `build_model`, a node called like a second variant
    of a block. An output that needs a boundary transpose and whose name is a node's keeps the
    node's name on the node's layer; the transpose is `<name>-to_cl`."""
    graph = spec(
        "keras: {shape: [3, 8, 8]}",
        """
        - {block: unit, name: u0, filters: 2}
        - {block: build_model, name: bm, np: 3}
        - {op: conv2d, name: unit_2, filters: 3, kernel: 1}
        - {block: unit, name: u9, filters: 4, stride: 2}
        - {op: permute, name: p, dims: [2, 3, 1]}
        """,
        blocks="""
        unit:
          params: {filters: null, stride: 1}
          inputs: [x]
          layers:
            - {op: conv2d, name: conv, filters: $filters, kernel: 3, stride: $stride, padding: 1}
            - {op: relu, name: act}
        build_model:
          params: {np: null}
          inputs: [x]
          layers:
            - {block: unit, name: inner, filters: $np}
            - {op: conv2d, name: c, filters: $np, kernel: 1}
        """,
        outputs="{unit_2: p, out2: u9, keras_out: unit_2}",
    )
    src = K.generate(graph)
    assert "def build_model_block(x, name):" in src and "def unit_2_2(x, name):" in src
    assert 'keras_ = keras.Input(shape=(8, 8, 3), name="keras")' in src
    model, *_ = check_parity(K, graph)
    assert model.output_names == ["unit_2-to_cl", "out2", "keras_out"]
    assert [t.name for t in model.inputs] == ["keras"]


def test_weights_from_a_file_and_options(K, keras, tmp_path):
    g = example("gru.bi_seq")
    w = random_weights(g, 6)
    write_weights(w, g, tmp_path / "w.safetensors")
    x = random_inputs(g)
    a = run_keras(netspec.compile(g, "keras", tmp_path / "w.safetensors"), g, x)[0]
    assert_close(a, run_keras(K.compile(g, w), g, x)[0], atol=0, rtol=0)
    with pytest.raises(netspec.errors.SpecError):
        netspec.compile(g, "keras", w, opset=13)


def test_layout_rules():
    from netspec.targets.keras import layout as L

    assert L.boundary(3) == (1, 2, 0) and L.boundary(2) == (0, 1) and L.boundary(1) == (0,)
    assert L.transpose((1, 2, 0), (0, 1, 2)) == (3, 1, 2)  # channels-last -> logical
    assert L.transpose((0, 1, 2), (1, 2, 0)) == (2, 3, 1)
    assert L.axis((1, 2, 0), 1) == -1 and L.axis((1, 2, 0), 2) == 1 and L.axis((0, 1), 2) == -1
    assert L.shared_axes((1, 2, 0)) == [1, 2] and L.shared_axes((0,)) == []
    # permute [H, W, C] of a channels-last [C, H, W] tensor relabels it as logical order
    assert L.permuted((1, 2, 0), (2, 3, 1)) == (0, 1, 2)
    assert L.order_equivalent((4, 1, 1), (1, 2, 0), (0, 1, 2))
    assert not L.order_equivalent((4, 2, 1), (1, 2, 0), (0, 1, 2))
    assert L.reshape_output((6, 1, 1)) == (1, 2, 0) and L.reshape_output((3, 4, 4)) == (0, 1, 2)
    assert L.last_axis_last((1, 2, 0)) == (1, 0, 2)
    assert L.common([(0, 1, 2), (1, 2, 0), (1, 2, 0)]) == (1, 2, 0)


def test_blocks_named_like_helpers_and_builtins(K, keras):
    """A block called like a generated helper (`_bias`) or a builtin the module calls (`sorted`,
    `tuple`, used by PaddedMaxPool) gets a `_block` function name and shadows nothing."""
    graph = spec(
        "x: {shape: [2, 5, 5]}",
        """
        - {block: _bias}
        - {block: sorted}
        - {block: tuple}
        """,
        blocks="""
        _bias:
          layers:
            - {op: conv2d, filters: 3, kernel: 1}
        sorted:
          layers:
            - {op: max_pool2d, size: 2, stride: 1, padding: [[0, 1], [1, 0]]}
        tuple:
          layers:
            - relu
        """,
    )
    src = K.generate(graph)
    assert "def _bias_block(" in src and "def sorted_block(" in src
    assert "def tuple_block(" in src
    check_parity(K, graph)


def test_output_reuses_the_transpose_a_layer_made(K, keras):
    """A value that is an output and also transposed for a later layer gets one Permute."""
    graph = spec(
        "x: {shape: [2, 3]}",
        """
        - {op: conv1d, filters: 4, kernel: 1}
        - {op: lstm, units: 2}
        """,
        outputs="[conv1d_1, lstm_1]",
    )
    assert K.generate(graph).count('name="conv1d_1-to_cf"') == 1
    check_parity(K, graph)


def test_broadcasting_add_never_a_bias_add(K, keras):
    """keras.ops.add (TensorFlow) turns x + [N, 1] into a bias_add over the batch: a broadcasting
    add is a BroadcastAdd; an add of equal static shapes stays keras.layers.Add."""
    graph = spec(
        "x: {shape: [2]}",
        """
        - {op: dense, inputs: [x], units: 1}
        - {op: add, inputs: [x, dense_1]}
        - {op: add, inputs: [x, x]}
        """,
        outputs="[add_1, add_2]",
    )
    src = K.generate(graph)
    assert 'BroadcastAdd(name="add_1")' in src and 'keras.layers.Add(name="add_2")' in src
    check_parity(K, graph, batch=2)


def test_layer_norm_does_not_cancel(K, keras):
    """Over an axis of size 1 layer_norm is exactly its bias (Keras' LayerNormalization is off
    by about |x| * gamma / sqrt(eps) * 2^-24)."""
    graph = spec("x: {shape: [1]}", "- {op: layer_norm, eps: 1e-12}")
    w = {k: np.full(v, 3.0, np.float32) for k, v in graph.weight_shapes().items()}
    model = K.compile(graph, w)
    x = np.array([[1000.0], [-77.5]], np.float32)
    np.testing.assert_array_equal(np.asarray(model(x)), np.full((2, 1), 3.0, np.float32))


def test_long_escaped_description_wraps_between_escapes(K):
    """A description word longer than a line is cut between escape sequences, never inside one
    (`\\U0001342f` cut in two is a SyntaxError)."""
    import ast

    word = '\\"' * 9 + "0\\x1f\\U00018cd6\\U0002ebe1" * 8
    graph = netspec.loads(
        f'netspec: 1\nname: d\ndescription: "{word}"\n'
        "inputs:\n  x: {shape: [2]}\nlayers:\n  - relu\n"
    )
    src = K.generate(graph)
    doc = ast.get_docstring(ast.parse(src))
    assert doc.replace("\n", "").startswith("d:" + graph.description)
    assert max(len(line) for line in src.splitlines()) <= 100
