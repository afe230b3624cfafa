"""The `attention` op against independent implementations, after copying their weights into
netspec's canonical layout (netspec/ops/attention.py): Hugging Face `transformers`' BERT encoder
layer and GPT-2 block (built from configs, nothing downloaded), `torch.nn.TransformerEncoderLayer`,
`torch.nn.MultiheadAttention` (cross-attention with kdim/vdim, key-padding and causal masks) and
`keras.layers.MultiHeadAttention`. Each: equal parameter counts, and outputs of every installed
target within the parity bound of the spec language. Also: ONNX's native `Attention` operator
(opset 23 and later) runs on ONNX Runtime and agrees with the float64 reference on every example
of the op record.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

import netspec
from netspec.ops import OPS
from tools import randspec
from tools.reference import reference
from tools.testing import assert_close, example_graph, example_inputs, random_weights

torch = pytest.importorskip("torch")

TARGETS = randspec.available_targets()
N, T, D, HEADS = 2, 6, 16, 4


def load(text: str) -> netspec.Graph:
    return netspec.loads("netspec: 1\nname: t\n" + text)


def count(graph: netspec.Graph) -> int:
    return sum(math.prod(s) for s in graph.weight_shapes().values())


def key_mask(rng: np.random.Generator, n: int, s: int) -> np.ndarray:
    """1 where a key is attended, 0 where padded; every row keeps its first key."""
    m = (rng.random((n, s)) > 0.4).astype(np.float32)
    m[:, 0] = 1.0
    return m


def check_targets(graph, weights, inputs, want, what):
    for target in TARGETS:
        got = randspec.run_target(target, graph, weights, inputs)[0]
        assert_close(got, want, f"{what}: {target}")


def t2n(t) -> np.ndarray:
    return t.detach().numpy().astype(np.float32)


POST_NORM = """
inputs:
  x: {{shape: [{t}, {d}]}}
  mask: {{shape: [{t}]}}
layers:
  - {{op: attention, name: attention, heads: {h}, inputs: [x, x, mask]}}
  - {{op: add, name: res1, inputs: [attention, x]}}
  - {{op: layer_norm, name: ln1, eps: {eps}}}
  - {{op: dense, name: intermediate, units: {ff}, activation: gelu}}
  - {{op: dense, name: output, units: {d}}}
  - {{op: add, name: res2, inputs: [output, ln1]}}
  - {{op: layer_norm, name: ln2, eps: {eps}}}
"""


def canonical_qkv(prefix: str, wq, wk, wv, wo, bq, bk, bv, bo) -> dict:
    arrays = dict(weight_q=wq, weight_k=wk, weight_v=wv, weight_out=wo)
    arrays |= dict(bias_q=bq, bias_k=bk, bias_v=bv, bias_out=bo)
    return {f"{prefix}.{k}": t2n(v) for k, v in arrays.items()}


@pytest.mark.slow  # importing transformers takes most of it
def test_bert_layer():
    transformers = pytest.importorskip("transformers")
    from transformers.models.bert.modeling_bert import BertLayer

    cfg = transformers.BertConfig(
        hidden_size=D,
        num_attention_heads=HEADS,
        intermediate_size=32,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    ref = BertLayer(cfg).eval()
    graph = load(POST_NORM.format(t=T, d=D, h=HEADS, eps=1e-12, ff=32))
    assert count(graph) == sum(p.numel() for p in ref.parameters())
    sd = ref.state_dict()
    a = "attention.self."
    w = canonical_qkv(
        "attention",
        *(sd[f"{a}{n}.weight"] for n in ("query", "key", "value")),
        sd["attention.output.dense.weight"],
        *(sd[f"{a}{n}.bias"] for n in ("query", "key", "value")),
        sd["attention.output.dense.bias"],
    )
    for ours, theirs in [
        ("ln1", "attention.output.LayerNorm"),
        ("intermediate", "intermediate.dense"),
        ("output", "output.dense"),
        ("ln2", "output.LayerNorm"),
    ]:
        w[f"{ours}.weight"], w[f"{ours}.bias"] = (
            t2n(sd[f"{theirs}.weight"]),
            t2n(sd[f"{theirs}.bias"]),
        )
    rng = np.random.default_rng(1)
    x = rng.normal(size=(N, T, D)).astype(np.float32)
    m = key_mask(rng, N, T)
    additive = torch.from_numpy((1.0 - m)[:, None, None, :] * np.finfo(np.float32).min)
    with torch.no_grad():
        out = ref(torch.from_numpy(x), attention_mask=additive)
    want = t2n(out[0] if isinstance(out, tuple) else out)
    check_targets(graph, w, {"x": x, "mask": m}, want, "BERT layer")


PRE_NORM_CAUSAL = """
inputs:
  x: {{shape: [{t}, {d}]}}
layers:
  - {{op: layer_norm, name: ln_1}}
  - {{op: attention, name: attn, heads: {h}, causal: true}}
  - {{op: add, name: res1, inputs: [attn, x]}}
  - {{op: layer_norm, name: ln_2}}
  - {{op: dense, name: c_fc, units: {ff}, activation: gelu}}
  - {{op: dense, name: c_proj, units: {d}}}
  - {{op: add, name: res2, inputs: [c_proj, res1]}}
"""


@pytest.mark.slow
def test_gpt2_block():
    """GPT-2's block with `activation_function="gelu"` (netspec's gelu is the exact erf form;
    GPT-2's default gelu_new is the tanh approximation). Its Conv1D weights are [in, out]."""
    transformers = pytest.importorskip("transformers")
    from transformers.models.gpt2.modeling_gpt2 import GPT2Block

    cfg = transformers.GPT2Config(
        n_embd=D,
        n_head=HEADS,
        n_inner=4 * D,
        n_positions=T,
        activation_function="gelu",
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    ref = GPT2Block(cfg, layer_idx=0).eval()
    graph = load(PRE_NORM_CAUSAL.format(t=T, d=D, h=HEADS, ff=4 * D))
    assert count(graph) == sum(p.numel() for p in ref.parameters())
    sd = ref.state_dict()
    qkv_w = sd["attn.c_attn.weight"].T  # [3D, D]: q, k, v stacked, [out, in]
    qkv_b = sd["attn.c_attn.bias"]
    w = canonical_qkv(
        "attn",
        *qkv_w.split(D),
        sd["attn.c_proj.weight"].T,
        *qkv_b.split(D),
        sd["attn.c_proj.bias"],
    )
    for name in ("ln_1", "ln_2"):
        w[f"{name}.weight"], w[f"{name}.bias"] = t2n(sd[f"{name}.weight"]), t2n(sd[f"{name}.bias"])
    for ours, theirs in [("c_fc", "mlp.c_fc"), ("c_proj", "mlp.c_proj")]:
        w[f"{ours}.weight"] = t2n(sd[f"{theirs}.weight"].T)
        w[f"{ours}.bias"] = t2n(sd[f"{theirs}.bias"])
    x = np.random.default_rng(2).normal(size=(N, T, D)).astype(np.float32)
    causal = torch.full((T, T), float("-inf")).triu(1)[None, None]
    with torch.no_grad():
        out = ref(torch.from_numpy(x), attention_mask=causal)
    want = t2n(out[0] if isinstance(out, tuple) else out)
    check_targets(graph, w, {"x": x}, want, "GPT-2 block")


def test_torch_transformer_encoder_layer():
    torch.manual_seed(0)
    ref = torch.nn.TransformerEncoderLayer(
        D, HEADS, dim_feedforward=32, activation="gelu", batch_first=True
    ).eval()
    graph = load(POST_NORM.format(t=T, d=D, h=HEADS, eps=1e-5, ff=32))
    assert count(graph) == sum(p.numel() for p in ref.parameters())
    sd = ref.state_dict()
    w = canonical_qkv(
        "attention",
        *sd["self_attn.in_proj_weight"].split(D),
        sd["self_attn.out_proj.weight"],
        *sd["self_attn.in_proj_bias"].split(D),
        sd["self_attn.out_proj.bias"],
    )
    for ours, theirs in [
        ("ln1", "norm1"),
        ("intermediate", "linear1"),
        ("output", "linear2"),
        ("ln2", "norm2"),
    ]:
        w[f"{ours}.weight"], w[f"{ours}.bias"] = (
            t2n(sd[f"{theirs}.weight"]),
            t2n(sd[f"{theirs}.bias"]),
        )
    rng = np.random.default_rng(3)
    x = rng.normal(size=(N, T, D)).astype(np.float32)
    m = key_mask(rng, N, T)
    with torch.no_grad():
        want = t2n(ref(torch.from_numpy(x), src_key_padding_mask=torch.from_numpy(m == 0)))
    check_targets(graph, w, {"x": x, "mask": m}, want, "TransformerEncoderLayer")


CROSS = """
inputs:
  x: {shape: [4, 8]}
  memory: {shape: [7, 5]}
  mask: {shape: [7]}
layers:
  - {op: attention, name: attention, heads: 2, causal: true, inputs: [x, memory, mask]}
"""


def test_torch_multihead_attention_cross_with_masks():
    """kdim = vdim != embed_dim: PyTorch keeps q_proj_weight, k_proj_weight, v_proj_weight."""
    torch.manual_seed(0)
    ref = torch.nn.MultiheadAttention(8, 2, kdim=5, vdim=5, batch_first=True).eval()
    graph = load(CROSS)
    assert count(graph) == sum(p.numel() for p in ref.parameters())
    sd = ref.state_dict()
    w = canonical_qkv(
        "attention",
        sd["q_proj_weight"],
        sd["k_proj_weight"],
        sd["v_proj_weight"],
        sd["out_proj.weight"],
        *sd["in_proj_bias"].split(8),
        sd["out_proj.bias"],
    )
    rng = np.random.default_rng(4)
    x = rng.normal(size=(N, 4, 8)).astype(np.float32)
    mem = rng.normal(size=(N, 7, 5)).astype(np.float32)
    m = key_mask(rng, N, 7)
    causal = torch.ones(4, 7, dtype=torch.bool).tril().logical_not()  # True: not attended
    with torch.no_grad():
        y, _ = ref(
            torch.from_numpy(x),
            torch.from_numpy(mem),
            torch.from_numpy(mem),
            key_padding_mask=torch.from_numpy(m == 0),
            attn_mask=causal,
            need_weights=False,
        )
    check_targets(graph, w, {"x": x, "memory": mem, "mask": m}, t2n(y), "MultiheadAttention")


def test_keras_multi_head_attention():
    """keras.layers.MultiHeadAttention (built apart from netspec) with weights from netspec's
    conversion agrees with every target."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keras = pytest.importorskip("keras")
    from netspec.targets.keras.emitters import attention_from_keras, attention_to_keras

    graph = load(CROSS.replace("causal: true, ", ""))
    w = random_weights(graph, seed=5)
    layer = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    rng = np.random.default_rng(6)
    x = rng.normal(size=(N, 4, 8)).astype(np.float32)
    mem = rng.normal(size=(N, 7, 5)).astype(np.float32)
    m = key_mask(rng, N, 7)
    layer(x, mem)  # builds it
    assert count(graph) == sum(int(np.prod(v.shape)) for v in layer.weights)
    canon = {k.split(".")[1]: v for k, v in w.items()}
    arrays = attention_to_keras(**canon)
    layer.set_weights([a.reshape(v.shape) for a, v in zip(arrays, layer.weights, strict=True)])
    back = attention_from_keras(*[np.asarray(v) for v in layer.weights])
    assert set(back) == set(canon)
    for k, v in canon.items():
        np.testing.assert_array_equal(back[k], v)
    mask = np.broadcast_to((m != 0)[:, None, :], (N, 4, 7))
    want = np.asarray(layer(x, mem, attention_mask=mask))
    check_targets(graph, w, {"x": x, "memory": mem, "mask": m}, want, "Keras MultiHeadAttention")


@pytest.mark.parametrize("opset", [23, 24])
@pytest.mark.parametrize("case", [e.name for e in OPS["attention"].examples])
def test_onnx_native_attention_runs_on_onnx_runtime(case, opset):
    ort = pytest.importorskip("onnxruntime")
    from netspec.targets.onnx import MAX_OPSET

    if opset > MAX_OPSET:
        pytest.skip(f"onnx has opsets up to {MAX_OPSET}")
    e = next(x for x in OPS["attention"].examples if x.name == case)
    graph = example_graph("attention", e)
    w = random_weights(graph, seed=3)
    x = example_inputs(graph, e, batch=2, seed=4)
    proto = netspec.compile(graph, "onnx", w, opset=opset)
    assert "Attention" in [n.op_type for n in proto.graph.node]
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    got = sess.run(None, {k: x[k] for k in graph.inputs})[0]
    want = next(iter(reference(graph, w, x).values()))
    assert_close(got, want, f"attention.{case} at opset {opset}")


def test_masked_examples_mask_some_keys():
    """The record's masked examples really pad keys (a relu of normal noise), never all."""
    for e in OPS["attention"].examples:
        if "mask" not in e.inputs:
            continue
        graph = example_graph("attention", e)
        m = np.maximum(example_inputs(graph, e, batch=2, seed=4)["mask"], 0)
        zeros = (m == 0).sum(axis=1)
        assert (zeros > 0).all() and (zeros < m.shape[1]).all(), e.name


def test_onnx_dynamic_causal_mask_needs_opset_14():
    from netspec.errors import SpecError

    e = next(x for x in OPS["attention"].examples if x.name == "dynamic")
    graph = example_graph("attention", e)
    with pytest.raises(SpecError, match="opset 14 or later"):
        netspec.compile(graph, "onnx", opset=13)
    ops = [n.op_type for n in netspec.compile(graph, "onnx", opset=14).graph.node]
    assert "Trilu" in ops and "Attention" not in ops
