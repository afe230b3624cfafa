"""Several training processes (`netspec train --nproc N`: the generated PyTorch script under
torchrun, DistributedDataParallel on gloo) and TensorBoard logs (`--tensorboard DIR`) from both
targets.

- two processes sharing each global batch end with the weights and the per-epoch history of one
  process (float32 reduction tolerance), with equal shards and with uneven ones (the loss of
  each shard weighed by its share);
- the user's mistakes (--nproc with keras, more processes than a batch has rows, --nproc 0, a
  TensorBoard folder that is a file) exit 2 with a message and write nothing;
- the event files hold per-epoch scalars `epoch_loss`, `epoch_<metric>`, `epoch_learning_rate`
  in `train/` and the validation values in `validation/`, one step per epoch, equal to the
  history; the same layout and tags on PyTorch and Keras.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import netspec
from tests.conftest import run_cli

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

# iris without early stopping or dropout: 150 rows, validation 0.2 -> 120 training rows
IRIS = """netspec: 1
name: iris
inputs:
  measurements: {shape: [4]}
layers:
  - {op: dense, name: hidden, units: 16, activation: relu}
  - {op: dense, name: logits, units: 3}
  - {op: softmax, name: species}
training:
  data: sklearn:iris
  inputs: {measurements: data}
  targets: {species: target}
  loss: categorical_crossentropy
  optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
  schedule: {name: step, step_size: 2, gamma: 0.5}
  batch_size: BATCH
  epochs: 4
  metrics: [accuracy]
  validation: 0.2
"""


def iris(tmp_path: Path, batch_size: int) -> Path:
    path = tmp_path / "iris.yaml"
    path.write_text(IRIS.replace("BATCH", str(batch_size)))
    return path


def assert_same_run(one, two, init):
    """Weights within float32 reduction tolerance, after training moved them."""
    assert set(one.weights) == set(two.weights)
    for k, v in one.weights.items():
        assert np.abs(v - init[k]).max() > 1e-3, f"{k} did not train"
        np.testing.assert_allclose(two.weights[k], v, rtol=1e-5, atol=1e-6, err_msg=k)
    assert one.history.keys() == two.history.keys()
    for k, v in one.history.items():
        np.testing.assert_allclose(two.history[k], v, rtol=1e-5, err_msg=k)


@pytest.mark.slow
@pytest.mark.parametrize(
    "batch_size",
    [
        16,  # 120 rows: 7 batches of 16 (8 rows a process), the last of 8 (4 a process)
        15,  # 8 batches of 15: shards of 8 and 7 rows, each loss weighed by its share
    ],
)
def test_two_processes_train_as_one(tmp_path, batch_size, monkeypatch):
    """With batches of 16, the two processes stop after 2 epochs and resume to 4."""
    monkeypatch.chdir(tmp_path)
    g = netspec.load(iris(tmp_path, batch_size))
    init = netspec.init_weights(g, g.training.seed)
    seen = []

    def progress(epoch, logs):
        seen.append((epoch, logs))

    if batch_size == 16:
        netspec.train(g, out=tmp_path / "two", nproc=2, epochs=2, progress=progress)
    resume = batch_size == 16
    two = netspec.train(g, out=tmp_path / "two", nproc=2, resume=resume, progress=progress)
    one = netspec.train(g)
    assert_same_run(one, two, init)
    assert [e for e, _ in seen] == [0, 1, 2, 3]  # progress follows the first process
    assert seen[-1][1]["loss"] == pytest.approx(two.history["loss"][-1])
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert metrics["validation"]["accuracy"] == pytest.approx(one.metrics["validation"]["accuracy"])
    assert not list((tmp_path / "two").glob(".netspec-*"))  # the work folder is gone


def test_nproc_with_keras_is_a_usage_error(tmp_path):
    rc, out, err = run_cli(
        ["train", iris(tmp_path, 16), "--target", "keras", "--nproc", "2", "-o", tmp_path / "o"]
    )
    assert rc == 2 and out == ""
    assert "--nproc runs the PyTorch training script" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("nproc", ["0", "9"])
def test_too_many_processes_or_none_is_refused(tmp_path, nproc):
    """0 processes; 9 processes for a last batch of 8 rows (120 rows in batches of 16)."""
    rc, out, err = run_cli(["train", iris(tmp_path, 16), "--nproc", nproc, "-o", tmp_path / "o"])
    assert rc == 2 and out == "" and "Traceback" not in err
    if nproc == "9":
        assert "training.batch_size" in err and "the smallest" in err and "has 8" in err
        assert "--nproc 8 or fewer" in err
    else:
        assert "--nproc must be at least 1" in err
    assert not (tmp_path / "o").exists()


def test_generated_script_trains_alone_without_torchrun(tmp_path):
    """The distributed helpers are inert in one process: join_processes gives the model itself
    (no process group), shard gives every row, and the loss weight is exactly 1."""
    from netspec.targets.torch.train import load_script

    g = netspec.load(iris(tmp_path, 16))
    _, script = load_script(g)
    model = torch.nn.Linear(2, 2)
    assert script.join_processes(model) == (model, 0, 1)
    rows = torch.arange(10)
    assert torch.equal(script.shard(rows, 0, 1), rows)
    assert [len(script.shard(rows, r, 3)) for r in range(3)] == [4, 3, 3]
    script.check_shards(16, 3)  # one batch of 16 rows
    with pytest.raises(ValueError, match="3 processes need at least 3 rows"):
        script.check_shards(17, 3)  # the second batch has one row
    assert not torch.distributed.is_initialized()


# -- TensorBoard -----------------------------------------------------------------------------
def scalars(folder: Path) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """{part: {tag: [(step, value)]}} of the event files under folder/train, folder/validation."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    out = {}
    for part in ("train", "validation"):
        acc = EventAccumulator(str(folder / part))
        acc.Reload()
        value = tensor_util.make_ndarray
        out[part] = {
            tag: [(e.step, float(value(e.tensor_proto))) for e in acc.Tensors(tag)]
            for tag in acc.Tags()["tensors"]
        }
    return out


def check_events(folder: Path, history: dict, epochs: int, lrs: list[float]):
    got = scalars(folder)
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"} <= set(got["train"])
    assert {"epoch_loss", "epoch_accuracy"} <= set(got["validation"])
    for part, prefix in (("train", ""), ("validation", "val_")):
        for key in ("loss", "accuracy"):
            steps = got[part][f"epoch_{key}"]
            assert [s for s, _ in steps] == list(range(epochs))
            np.testing.assert_allclose([v for _, v in steps], history[prefix + key], rtol=1e-6)
    rates = got["train"]["epoch_learning_rate"]
    assert [s for s, _ in rates] == list(range(epochs))
    np.testing.assert_allclose([v for _, v in rates], lrs, rtol=1e-6)


# step schedule (2 epochs, gamma 0.5) from 0.05: the rate after each epoch
RATES = [0.05, 0.025, 0.025, 0.0125]


@pytest.mark.slow  # SummaryWriter imports TensorFlow where it is installed: ~10 s of CPU
def test_tensorboard_events_from_torch(tmp_path):
    pytest.importorskip("tensorboard")
    rc, out, err = run_cli(
        ["train", iris(tmp_path, 16), "-o", tmp_path / "o", "--tensorboard", tmp_path / "tb"]
    )
    assert rc == 0, err
    history = json.loads((tmp_path / "o" / "history.json").read_text())["history"]
    check_events(tmp_path / "tb", history, 4, RATES)
    assert len(list((tmp_path / "tb" / "train").iterdir())) == 1


@pytest.mark.slow
def test_tensorboard_events_from_keras_have_the_same_layout(tmp_path):
    pytest.importorskip("keras")
    pytest.importorskip("tensorflow")
    g = netspec.load(iris(tmp_path, 16))
    h = netspec.train(g, target="keras", tensorboard=tmp_path / "tb")
    check_events(tmp_path / "tb", h.history, 4, RATES)


@pytest.mark.slow
def test_tensorboard_from_the_first_of_two_processes(tmp_path):
    pytest.importorskip("tensorboard")
    g = netspec.load(iris(tmp_path, 16))
    h = netspec.train(g, nproc=2, tensorboard=tmp_path / "tb")
    check_events(tmp_path / "tb", h.history, 4, RATES)
    for part in ("train", "validation"):  # one writer: the first process's
        assert len(list((tmp_path / "tb" / part).iterdir())) == 1


def test_tensorboard_folder_that_is_a_file(tmp_path):
    pytest.importorskip("tensorboard")
    (tmp_path / "tb").write_text("")
    rc, out, err = run_cli(
        ["train", iris(tmp_path, 16), "-o", tmp_path / "o", "--tensorboard", tmp_path / "tb"]
    )
    assert rc == 2 and "is a file" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
