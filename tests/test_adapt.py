"""`netspec.train.adapt`: normalize's statistics from the training rows, as Keras's
`Normalization.adapt` computes them, and the adapted model on every target.

The statistics must equal numpy's mean and population variance over the training rows only
(per feature of the node's axis, or over every value with `axis: null`); the adapted weights
must give every target the reference's function of the raw data, whose normalized training
rows then have mean 0 and variance 1.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

import netspec
from netspec.errors import SpecError
from netspec.train.adapt import adapt
from netspec.train.data import DataMap, TargetSpec, input_specs, load_data
from netspec.train.split import split_rows
from tools import randspec
from tools.reference import reference
from tools.testing import assert_close

RUN = randspec.available_targets()

TABLE = """\
netspec: 1
name: table
inputs:
  x: {shape: [3]}
layers:
  - normalize
  - {op: dense, units: 2, activation: tanh}
outputs: {scaled: normalize_1, y: dense_1}
"""

IMAGE = """\
netspec: 1
name: image
inputs:
  img: {shape: [2, 3, 4]}
  v: {shape: [5]}
layers:
  - {op: normalize, name: per_channel, inputs: [img], axis: 1}
  - {op: normalize, name: per_column, inputs: [img]}
  - {op: add, inputs: [per_channel, per_column]}
  - global_avg_pool
  - {op: normalize, name: whole, inputs: [v], axis: null}
  - {op: dense, inputs: [whole], units: 2}
  - {op: add, name: out, inputs: [global_avg_pool_1, dense_1]}
"""


def load(tmp_path, text: str, name: str) -> netspec.Graph:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return netspec.load(str(path))


def table_data(tmp_path, n: int = 40, seed: int = 0):
    """A CSV with three features of very different scales, and the graph that reads it."""
    rng = np.random.default_rng(seed)
    x = rng.normal([100.0, -3.0, 0.0], [20.0, 0.5, 1e-3], (n, 3))
    path = tmp_path / "rows.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "c", "label"])
        for row in x:
            w.writerow([repr(float(v)) for v in row] + [0.5])
    graph = load(tmp_path, TABLE, "table")
    data = load_data(
        path,
        DataMap(inputs={"x": ["a", "b", "c"]}, targets={"y": "label"}),
        input_specs(graph),
        {"y": TargetSpec("regression", (1,))},
    )
    return graph, data, x


def test_statistics_from_the_training_rows_of_a_csv(tmp_path):
    graph, data, x = table_data(tmp_path)
    rows = split_rows(data.rows, seed=0, validation=0.25).train
    start = netspec.init_weights(graph, seed=0)
    w = adapt(graph, start, data, rows)
    assert w["normalize_1.mean"].dtype == np.float32
    train = x[rows]
    np.testing.assert_allclose(w["normalize_1.mean"], train.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(w["normalize_1.variance"], train.var(axis=0), rtol=1e-6)
    assert not np.allclose(w["normalize_1.mean"], x.mean(axis=0), rtol=1e-6)  # not all rows
    for k, v in start.items():  # everything else unchanged, the input dict untouched
        if not k.startswith("normalize_1."):
            np.testing.assert_array_equal(w[k], v)
    assert not start["normalize_1.mean"].any()


def test_statistics_per_channel_per_last_axis_and_over_everything(tmp_path):
    rng = np.random.default_rng(1)
    img = rng.normal(5.0, 3.0, (30, 2, 3, 4)) * rng.uniform(0.1, 10.0, (1, 2, 1, 4))
    v = rng.normal(-7.0, 2.0, (30, 5))
    np.savez(tmp_path / "data.npz", img=img, v=v, y=np.zeros((30, 2)))
    graph = load(tmp_path, IMAGE, "image")
    data = load_data(
        tmp_path / "data.npz",
        DataMap(inputs={"img": "img", "v": "v"}, targets={"out": "y"}),
        input_specs(graph),
        {"out": TargetSpec("regression", (2,))},
    )
    rows = np.arange(0, 30, 3)
    w = adapt(graph, netspec.init_weights(graph, seed=0), data, rows)
    t = img[rows]
    np.testing.assert_allclose(w["per_channel.mean"], t.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(w["per_channel.variance"], t.var(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(w["per_column.mean"], t.mean(axis=(0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(w["per_column.variance"], t.var(axis=(0, 1, 2)), rtol=1e-6)
    assert w["whole.mean"].shape == (1,)
    np.testing.assert_allclose(w["whole.mean"], [v[rows].mean()], rtol=1e-6)
    np.testing.assert_allclose(w["whole.variance"], [v[rows].var()], rtol=1e-6)


def test_normalize_of_a_computed_value_is_a_located_error(tmp_path):
    text = TABLE.replace(
        "  - normalize\n  - {op: dense, units: 2, activation: tanh}\n",
        "  - {op: dense, units: 2}\n  - normalize\n",
    ).replace("{scaled: normalize_1, y: dense_1}", "{y: normalize_1}")
    graph, data, _ = table_data(tmp_path)
    bad = load(tmp_path, text, "bad")
    with pytest.raises(SpecError) as info:
        adapt(bad, netspec.init_weights(bad, seed=0), data, np.arange(10))
    err = info.value
    assert "must read a model input" in err.message and "'dense_1'" in err.message
    assert (err.line, err.col) == (7, 5)
    assert err.file.endswith("bad.yaml") and err.source_line == "  - normalize"
    assert "'x'" in err.hint


@pytest.mark.skipif(not RUN, reason="no target installed")
@pytest.mark.parametrize("target", RUN)
def test_adapted_model_agrees_on_every_target(tmp_path, target, request):
    if target == "keras":
        request.getfixturevalue("keras")
    graph, data, x = table_data(tmp_path)
    rows = split_rows(data.rows, seed=0, validation=0.25).train
    w = adapt(graph, netspec.init_weights(graph, seed=3), data, rows)
    inputs = {"x": x.astype(np.float32)}
    want = reference(graph, w, inputs)
    scaled = want["scaled"][rows]  # the training rows, normalized: mean 0, variance 1
    np.testing.assert_allclose(scaled.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(scaled.var(axis=0), 1.0, rtol=1e-4)
    got = randspec.run_target(target, graph, w, inputs)
    for (name, b), a in zip(want.items(), got, strict=True):
        assert_close(np.asarray(a), b, f"{target}: {name}")


@pytest.mark.skipif(not RUN, reason="no target installed")
@pytest.mark.parametrize("target", RUN)
def test_a_constant_feature_divides_by_epsilon_on_every_target(tmp_path, target, request):
    """Variance 0 over the training rows: the divisor is max(sqrt(0), 1e-7), as in Keras."""
    if target == "keras":
        request.getfixturevalue("keras")
    graph, data, x = table_data(tmp_path)
    data.inputs["x"].parts[1][:] = 2.0  # column b: constant
    w = adapt(graph, netspec.init_weights(graph, seed=3), data, np.arange(data.rows))
    assert w["normalize_1.variance"][1] == 0.0
    inputs = {"x": np.array([[100.0, 2.0, 0.0], [100.0, 2.0 + 2.0**-20, 0.0]], np.float32)}
    got = np.asarray(randspec.run_target(target, graph, w, inputs)[0])
    np.testing.assert_allclose(got[:, 1], [0.0, 2.0**-20 / 1e-7], rtol=1e-6)
