"""`netspec train`: the files it writes, progress, resume, and every user mistake -> a located
message, exit 2 and nothing written.

Until the `training:` lowering lands, the command's spec loading is wrapped so that a spec
named in PLANS gets that plan (a real `training:` section needs the lowering).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

import netspec
from netspec.cli import main
from netspec.train.plan import EarlyStopping
from tests.test_train_torch import plan

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parent.parent

XOR = """netspec: 1
name: xor
inputs:
  bits: {shape: [2]}
layers:
  - {op: dense, name: hidden, units: 4, activation: tanh}
  - {op: dense, name: out, units: 1, activation: sigmoid}
"""


def xor_plan(**kw):
    return plan(
        {"bits": ["a", "b"]},
        [("out", "xor", "binary_crossentropy", "input_logits", "binary")],
        ("adam", {"lr": 0.05}),
        metrics=[("accuracy", {"threshold": 0.5}, "out")],
        source="xor.csv",
        **{"epochs": 6, "batch_size": 2, **kw},
    )


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A folder with xor.yaml and xor.csv; `netspec train` gives xor.yaml `plans["xor"]`."""
    (tmp_path / "xor.yaml").write_text(XOR)
    (tmp_path / "xor.csv").write_text((ROOT / "data" / "xor.csv").read_text())
    (tmp_path / "plain.yaml").write_text(XOR.replace("name: xor", "name: plain"))
    plans = {"xor": xor_plan()}
    import netspec.cli.train as cli_train

    real = cli_train.load_spec

    def load_spec(args, spec):
        g = real(args, spec)
        if g.name in plans and g.training is None:
            g.training = plans[g.name]
        return g

    monkeypatch.setattr(cli_train, "load_spec", load_spec)
    monkeypatch.chdir(tmp_path)
    return tmp_path, plans


def run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def listing(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


def test_train_writes_the_trained_model_and_its_records(project, capsys):
    root, _ = project
    code, out, err = run(["train", "xor.yaml", "-o", "out"], capsys)
    assert code == 0, err
    assert listing(root / "out") == [
        "checkpoints",
        "checkpoints/checkpoint.json",
        "checkpoints/checkpoint.safetensors",
        "curves.png",
        "curves.svg",
        "history.csv",
        "history.json",
        "metrics.json",
        "xor.onnx",
        "xor.safetensors",
        "xor_torch.py",
        "xor_train_torch.py",
    ]
    written = [str((root / "out" / f).resolve()) for f in listing(root / "out")]
    assert out.split() == [f for f in written if "checkpoint" not in f]
    # progress: one plain line per epoch when piped, then the final metrics
    lines = err.splitlines()
    assert [ln.split()[1] for ln in lines[:6]] == [f"{e}/6" for e in range(1, 7)]
    assert lines[0].startswith("epoch 1/6  loss ") and "accuracy" in lines[0]
    assert lines[6].startswith("train: loss ")
    with open(root / "out" / "history.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "loss", "accuracy"] and len(rows) == 7
    hist = json.loads((root / "out" / "history.json").read_text())
    assert hist["epochs"] == 6 and float(rows[6][1]) == hist["history"]["loss"][-1]
    metrics = json.loads((root / "out" / "metrics.json").read_text())
    assert metrics["epochs"] == 6 and set(metrics["train"]) == {"loss", "accuracy"}
    assert (root / "out" / "curves.png").read_bytes().startswith(b"\x89PNG")
    assert b"<svg" in (root / "out" / "curves.svg").read_bytes()[:500]


def test_trained_weights_and_onnx_agree_with_the_api(project, capsys):
    root, plans = project
    assert run(["train", "xor.yaml", "-o", "out", "-q"], capsys)[0] == 0
    graph = netspec.load(root / "xor.yaml")
    graph.training = plans["xor"]
    h = netspec.train(graph)
    from safetensors.numpy import load_file

    saved = load_file(root / "out" / "xor.safetensors")
    for k, v in h.weights.items():
        np.testing.assert_array_equal(saved[k], v)
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(root / "out" / "xor.onnx"), providers=["CPUExecutionProvider"])
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    got = sess.run(None, {"bits": x})[0]
    torch_model = netspec.compile(graph, "torch", h.weights)
    import torch

    want = torch_model(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_quiet_prints_nothing(project, capsys):
    code, out, err = run(["train", "xor.yaml", "-o", "out", "-q"], capsys)
    assert (code, out, err) == (0, "", "")


def test_resume_continues_to_the_same_weights(project, capsys):
    root, plans = project
    plans["xor"] = xor_plan(schedule=("step", {"step_size": 2, "gamma": 0.5}))
    assert run(["train", "xor.yaml", "-o", "whole", "-q"], capsys)[0] == 0
    assert run(["train", "xor.yaml", "-o", "part", "-q", "--epochs", "2"], capsys)[0] == 0
    assert json.loads((root / "part" / "history.json").read_text())["epochs"] == 2
    code, _, err = run(["train", "xor.yaml", "-o", "part", "--resume"], capsys)
    assert code == 0, err
    assert err.splitlines()[0].startswith("epoch 3/6")  # only the epochs still to run
    files = ("xor.safetensors", "xor.onnx", "history.csv", "history.json", "metrics.json")
    for f in (*files, "curves.png", "curves.svg"):
        assert (root / "part" / f).read_bytes() == (root / "whole" / f).read_bytes(), f


def test_api_train_without_output_writes_nothing(project):
    root, plans = project
    graph = netspec.load(root / "xor.yaml")
    graph.training = plans["xor"]
    before = listing(root)
    seen = []
    h = netspec.train(graph, progress=lambda e, logs: seen.append((e, sorted(logs))))
    assert listing(root) == before
    assert h.epochs == 6 and seen[0] == (0, ["accuracy", "loss"]) and h.files == []
    assert set(h.weights) == set(graph.weight_shapes())


def test_validation_and_test_splits(project, capsys):
    root, plans = project
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (40, 2))
    with open(root / "big.csv", "w") as f:
        f.write("a,b,xor\n" + "".join(f"{a},{b},{a ^ b}\n" for a, b in x))
    plans["xor"] = xor_plan(
        validation=0.25, test=0.25, early_stopping=EarlyStopping("val_loss", 2), epochs=4
    )
    code, _, err = run(["train", "xor.yaml", "--data", "big.csv", "-o", "out"], capsys)
    assert code == 0, err
    metrics = json.loads((root / "out" / "metrics.json").read_text())
    assert set(metrics) == {"epochs", "train", "validation", "test"}
    hist = json.loads((root / "out" / "history.json").read_text())["history"]
    assert list(hist) == ["loss", "accuracy", "val_loss", "val_accuracy"]


# -- user mistakes: exit 2, a located message, nothing written -------------------------------------
MISTAKES = {
    "no training section": (["train", "plain.yaml"], "no `training:` section"),
    "missing data file": (["train", "xor.yaml", "--data", "nope.csv"], "nope.csv"),
    "missing column": (["train", "xor.yaml", "--data", "cols.csv"], "no column 'xor'"),
    "bad cell": (["train", "xor.yaml", "--data", "cell.csv"], "cell.csv:3:"),
    "nan": (["train", "xor.yaml", "--data", "nan.csv"], "not a finite number"),
    "label out of range": (["train", "xor.yaml", "--data", "range.csv"], "outside [0, 1]"),
    "empty": (["train", "xor.yaml", "--data", "empty.csv"], "no data rows"),
    "epochs": (["train", "xor.yaml", "--epochs", "0"], "--epochs"),
    "target": (["train", "xor.yaml", "--target", "onnx"], "invalid choice"),
    "resume": (["train", "xor.yaml", "--resume"], "nothing to resume"),
    "weights": (["train", "xor.yaml", "--weights", "w.safetensors"], "the spec needs"),
    "set": (["train", "xor.yaml", "--set", "nope"], "NAME=VALUE"),
    "output is a file": (["train", "xor.yaml", "-o", "xor.csv"], "is a file"),
}


@pytest.mark.parametrize("case", list(MISTAKES))
def test_user_mistakes_exit_2_and_write_nothing(project, capsys, case):
    root, _ = project
    (root / "cols.csv").write_text("a,b,y\n0,0,0\n")
    (root / "cell.csv").write_text("a,b,xor\n0,0,0\n0,one,1\n")
    (root / "nan.csv").write_text("a,b,xor\n0,nan,0\n")
    (root / "range.csv").write_text("a,b,xor\n0,0,2\n")
    (root / "empty.csv").write_text("a,b,xor\n")
    from netspec.weights import write_weights

    other = netspec.loads(XOR.replace("units: 4", "units: 3"))
    write_weights(netspec.init_weights(other), other, root / "w.safetensors")
    before = listing(root)
    args, message = MISTAKES[case]
    code, out, err = run([*args, "-o", "out"] if "-o" not in args else args, capsys)
    assert code == 2, err
    assert message in err, err
    assert "Traceback" not in err
    assert listing(root) == before  # nothing written: no out/, no build/


def test_a_located_data_error(project, capsys):
    code, _, err = run(["train", "xor.yaml", "--data", "cols.csv", "-o", "out"], capsys)
    assert code == 2  # no such file yet: the file's name is in the message
    assert "cols.csv" in err


def test_progress_line_format():
    from netspec.cli.train import epoch_progress

    buf = io.StringIO()
    with epoch_progress(3, False, buf) as show:
        show(0, {"loss": 0.5, "val_loss": 0.25})
    assert buf.getvalue() == "epoch 1/3  loss 0.5  val_loss 0.25\n"
    with epoch_progress(3, True, buf) as show:
        assert show is None


def test_resume_from_another_models_checkpoint_is_refused(project, capsys):
    root, plans = project
    assert run(["train", "xor.yaml", "-o", "out", "-q", "--epochs", "1"], capsys)[0] == 0
    (root / "wide.yaml").write_text(XOR.replace("units: 4", "units: 5"))
    before = {p: p.read_bytes() for p in (root / "out").rglob("*") if p.is_file()}
    code, _, err = run(["train", "wide.yaml", "-o", "out", "--resume"], capsys)
    assert code == 2 and "is not one of this model's" in err, err
    after = {p: p.read_bytes() for p in (root / "out").rglob("*") if p.is_file()}
    assert after == before


def test_netspec_train_is_the_function_after_submodule_imports():
    import netspec.train.data  # noqa: F401
    import netspec.train.split  # noqa: F401
    from netspec.api import train

    assert netspec.train is train and "train" in netspec.__all__
    from netspec.cli import COMMANDS

    assert "train" in COMMANDS
