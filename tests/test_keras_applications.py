"""specs/keras_resnet50.yaml and specs/keras_mobilenetv2.yaml reproduce keras.applications.

For each: the reference model `keras.applications.X(weights=None)` (nothing is downloaded) gets
random weights (batch_norm statistics included); they are copied into canonical form with a
mapping written here (Keras layer name -> canonical key, Keras layouts -> PyTorch's, independent
of netspec's Keras target); then netspec's Keras model, the PyTorch target and ONNX Runtime on
the ONNX target must give the reference's outputs on a 1x64x64x3 image, within the design
page's bound `|a - b| <= 1e-5 + 1e-4 |b|`. Both the class probabilities (the specs' softmax
classifier, Keras' default) and the logits (`classifier: identity`, Keras'
`classifier_activation=None`) are compared.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import numpy as np
import pytest

import netspec
from tools.testing import assert_close

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parent.parent
SIZE = 64  # the smallest inputs both reference models accept are 32x32; 64 keeps 2x2 at the end


# -- Keras layer name -> canonical node path ------------------------------------------------
def resnet50_node(name: str) -> str:
    """`conv3_block2_1_conv` -> `conv3_block2.conv1`; `conv2_block1_0_bn` -> `...bn0`;
    stem and head layers keep their names (`conv1_conv`, `predictions`)."""
    m = re.fullmatch(r"(conv\d_block\d+)_(\d)_(conv|bn)", name)
    return f"{m[1]}.{m[3]}{m[2]}" if m else name


def mobilenetv2_node(name: str) -> str:
    """`block_3_expand_BN` -> `block_3.expand_bn`; `expanded_conv_project` ->
    `expanded_conv.project`; `Conv1`, `bn_Conv1`, `Conv_1`, `Conv_1_bn`, `predictions` stay."""
    m = re.fullmatch(r"(block_\d+|expanded_conv)_(expand|depthwise|project)(_BN)?", name)
    if m:
        return f"{m[1]}.{m[2]}{'_bn' if m[3] else ''}"
    return name


def canonical(layer, node: str) -> dict[str, np.ndarray]:
    """One reference layer's weights in canonical form (PyTorch's layouts)."""
    cls = type(layer).__name__
    a = [np.asarray(v) for v in layer.get_weights()]
    if cls == "Conv2D":  # [kh, kw, in, out] -> [out, in, kh, kw]
        out = {"weight": a[0].transpose(3, 2, 0, 1)}
    elif cls == "DepthwiseConv2D":  # [kh, kw, channels, 1] -> [channels, 1, kh, kw]
        out = {"weight": a[0].transpose(2, 3, 0, 1)}
    elif cls == "Dense":  # [in, out] -> [out, in]
        out = {"weight": a[0].T}
    elif cls == "BatchNormalization":
        return {
            f"{node}.{p}": v
            for p, v in zip(["weight", "bias", "running_mean", "running_var"], a, strict=True)
        }
    else:
        raise AssertionError(f"unexpected layer with weights: {layer.name} ({cls})")
    if len(a) > 1:
        out["bias"] = a[1]
    return {f"{node}.{p}": np.ascontiguousarray(v) for p, v in out.items()}


def randomize(model, seed: int) -> None:
    """Random weights in Keras' layouts: kernels ~ N(0, 1/fan_in), biases small, batch_norm
    scales, shifts and statistics away from the identity so that layouts and conventions show."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        if type(layer).__name__ == "BatchNormalization":
            c = ws[0].shape
            new = [
                rng.uniform(0.5, 1.5, c),
                rng.normal(0, 0.1, c),
                rng.normal(0, 0.1, c),
                rng.uniform(0.5, 1.5, c),
            ]
        else:
            k = ws[0]
            fan_in = int(np.prod(k.shape[:-1])) if k.ndim > 2 else k.shape[0]
            if type(layer).__name__ == "DepthwiseConv2D":
                fan_in = int(np.prod(k.shape[:2]))
            new = [rng.normal(0, 1 / np.sqrt(fan_in), k.shape)]
            new += [rng.normal(0, 0.05, b.shape) for b in ws[1:]]
        layer.set_weights([w.astype(np.float32) for w in new])


MODELS = {
    "resnet50": ("keras_resnet50.yaml", "ResNet50", resnet50_node),
    "mobilenetv2": ("keras_mobilenetv2.yaml", "MobileNetV2", mobilenetv2_node),
}


@pytest.fixture(scope="module", params=list(MODELS))
def case(request, keras):
    spec_file, app, node_of = MODELS[request.param]
    ref = getattr(keras.applications, app)(weights=None, input_shape=(SIZE, SIZE, 3))
    logits_ref = getattr(keras.applications, app)(
        weights=None, input_shape=(SIZE, SIZE, 3), classifier_activation=None
    )
    randomize(ref, seed=7)
    logits_ref.set_weights(ref.get_weights())
    weights: dict[str, np.ndarray] = {}
    for layer in ref.layers:
        if layer.get_weights():
            weights.update(canonical(layer, node_of(layer.name)))
    image = np.random.default_rng(8).normal(0, 1, (1, SIZE, SIZE, 3)).astype(np.float32)
    return {
        "name": request.param,
        "path": ROOT / "specs" / spec_file,
        "ref": ref,
        "weights": weights,
        "image": image,
        "probs": np.asarray(ref(image, training=False)),
        "logits": np.asarray(logits_ref(image, training=False)),
    }


def load(case, classifier: str = "softmax") -> netspec.Graph:
    return netspec.load(case["path"], params={"size": SIZE, "classifier": classifier})


def test_parameter_counts(case):
    ref = case["ref"]
    trainable = sum(int(np.prod(w.shape)) for w in ref.trainable_weights)
    stats = sum(int(np.prod(w.shape)) for w in ref.non_trainable_weights)
    graph = load(case)
    assert graph.param_count == trainable
    assert graph.buffer_count == stats
    assert graph.param_count + graph.buffer_count == ref.count_params()
    # the mapping covers every canonical key exactly once, with its shape
    assert {k: v.shape for k, v in case["weights"].items()} == graph.weight_shapes()
    # and at the default size as well (nothing here depends on the image size)
    full = netspec.load(case["path"])
    assert full.param_count == trainable and full.inputs["image"].shape == (3, 224, 224)


@pytest.mark.parametrize("classifier", ["softmax", "identity"])
def test_keras_target_matches_reference(case, classifier, keras):
    graph = load(case, classifier)
    model = netspec.compile(graph, "keras", case["weights"])
    got = np.asarray(model(case["image"], training=False))
    want = case["probs"] if classifier == "softmax" else case["logits"]
    assert_close(got, want, f"{case['name']} ({classifier}): netspec keras vs keras.applications")
    # same layer names as the reference, up to the dotted block paths
    names = {layer.name for layer in model.layers}
    node_of = MODELS[case["name"]][2]
    for layer in case["ref"].layers:
        if layer.get_weights():
            assert node_of(layer.name) in names


@pytest.mark.parametrize("classifier", ["softmax", "identity"])
def test_onnx_target_matches_reference(case, classifier):
    ort = pytest.importorskip("onnxruntime")
    graph = load(case, classifier)
    proto = netspec.compile(graph, "onnx", case["weights"])
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"image": case["image"].transpose(0, 3, 1, 2)})
    want = case["probs"] if classifier == "softmax" else case["logits"]
    assert_close(got, want, f"{case['name']} ({classifier}): onnxruntime vs keras.applications")


@pytest.mark.parametrize("classifier", ["softmax", "identity"])
def test_torch_target_matches_reference(case, classifier):
    if importlib.util.find_spec("netspec.targets.torch") is None:
        pytest.skip("the PyTorch target (netspec.targets.torch) does not exist yet")
    torch = pytest.importorskip("torch")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    graph = load(case, classifier)
    module = netspec.compile(graph, "torch", case["weights"])
    with torch.no_grad():
        got = module(torch.tensor(case["image"].transpose(0, 3, 1, 2))).numpy()
    want = case["probs"] if classifier == "softmax" else case["logits"]
    assert_close(got, want, f"{case['name']} ({classifier}): PyTorch target vs keras.applications")
