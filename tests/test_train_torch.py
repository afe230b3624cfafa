"""The PyTorch training script (`<name>_train_torch.py`) and `run_training`.

- the generated script is ruff-clean and imports only numpy, torch, safetensors, the generated
  model file and the standard library, for many plan shapes;
- the loss trajectory of a float64 run equals netspec's numpy references (the records in
  netspec/train: losses, optimizers, schedules) for a small MLP over several steps: regression
  with SGD momentum + step schedule, softmax + categorical cross-entropy (from the logits) with
  Adam, warm-up + cosine and clipping, sigmoid + binary cross-entropy with RMSprop;
- the model's `forward(..., logits=True)` gives the values before the final sigmoid/softmax;
- float32 training reaches the examples' goals (XOR 100 %, the exam-score slope within 1 %);
- checkpoints: a run stopped after epoch k and resumed ends bit-identical to an uninterrupted
  one (stopped by an exception, by a shorter run, and a real process killed with SIGKILL);
- the script run alone (`python <name>_train_torch.py` in a build folder) gives the weights
  `netspec.train` gives.

Until the `training:` lowering lands, plans are built here (`TrainPlan`) and attached to a
lowered graph.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import netspec
from netspec.train.losses import LOSSES
from netspec.train.optimizers import OPTIMIZERS, apply
from netspec.train.plan import EarlyStopping, Metric, Objective, TrainPlan
from netspec.train.schedules import SCHEDULES, for_run, lr_at
from tests.conftest import ruff_clean

torch = pytest.importorskip("torch")

from netspec.targets.torch.train import generate_train, run_training  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


# -- plans -----------------------------------------------------------------------------------
def plan(
    inputs,
    objectives,
    optimizer=("sgd", {"lr": 0.1}),
    schedule=None,
    metrics=(),
    **kw,
) -> TrainPlan:
    """A resolved TrainPlan: objectives are (output, target, loss, reads, kind[, attrs])."""
    objs = tuple(
        Objective(o[0], o[1], o[2], LOSSES[o[2]].resolve(o[5] if len(o) > 5 else {}), o[3], o[4])
        for o in objectives
    )
    return TrainPlan(
        inputs=inputs,
        objectives=objs,
        optimizer=optimizer[0],
        optimizer_attrs=OPTIMIZERS[optimizer[0]].resolve(optimizer[1]),
        schedule=schedule and schedule[0],
        schedule_attrs=SCHEDULES[schedule[0]].resolve(schedule[1]) if schedule else {},
        metrics=tuple(Metric(m[0], m[1], m[2]) for m in metrics),
        **kw,
    )


def spec(text: str, name: str = "net", training: TrainPlan | None = None, source=""):
    g = netspec.loads(f"netspec: 1\nname: {name}\n" + text, file=source or f"<{name}>")
    if source:
        g.source = source
    g.training = training
    return g


def xor_graph(**kw):
    g = netspec.load(ROOT / "specs" / "xor.yaml")
    g.source = str(ROOT / "specs" / "xor.yaml")
    g.training = plan(
        {"bits": ["a", "b"]},
        [("out", "xor", "binary_crossentropy", "input_logits", "binary")],
        optimizer=kw.pop("optimizer", ("sgd", {"lr": 0.5, "momentum": 0.9})),
        metrics=[("accuracy", {"threshold": 0.5}, "out")],
        source="../data/xor.csv",
        **{"epochs": 300, "batch_size": 4, **kw},
    )
    return g


MLP = """
inputs:
  x: {shape: [3]}
layers:
  - {op: dense, name: hidden, units: 5, activation: tanh}
  - {op: dense, name: out, units: UNITS ACT}
"""


def mlp(units=2, act="", **kw):
    text = MLP.replace("UNITS", str(units)).replace("ACT", f", activation: {act}" if act else "")
    return spec(text, "mlp", **kw)


def data(n=12, units=2, kind="regression", dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(dtype)
    if kind == "regression":
        t = rng.normal(size=(n, units)).astype(dtype)
    elif kind == "classes":
        t = rng.integers(0, units, n).astype(np.int64)
    else:
        t = rng.integers(0, 2, (n, units)).astype(dtype)
    return {"x": x}, {"out": t}


# -- the generated script ----------------------------------------------------------------------
CASES = {
    "xor": lambda: xor_graph(),
    "schedules_es": lambda: xor_graph(
        schedule=("cosine", {"warmup": 2}),
        early_stopping=EarlyStopping("loss", 5),
        optimizer=("adamw", {"lr": 0.01, "beta1": 0.8, "clip_norm": 1.0, "clip_value": 0.5}),
    ),
    "step_per_step": lambda: xor_graph(
        schedule=("step", {"step_size": 2, "interval": "step"}),
        optimizer=("rmsprop", {"centered": True, "momentum": 0.5}),
    ),
    "files": lambda: xor_graph(
        schedule=("exponential", {"gamma": 0.9}),
        validation="../data/xor.csv",
        test="../data/xor.csv",
        optimizer=("adagrad", {"initial_accumulator": 0.1}),
    ),
    "two_outputs": lambda: spec(
        """
inputs:
  x: {shape: [4]}
layers:
  - {op: dense, name: hidden, units: 8, activation: relu}
  - {op: dense, name: scores, units: 3}
  - {op: softmax, name: probs}
  - {op: dense, name: level, units: 1, inputs: [hidden]}
outputs: [probs, level]
""",
        "two",
        plan(
            {"x": ["a", "b", "c", "d"]},
            [
                ("probs", "label", "categorical_crossentropy", "input_logits", "classes"),
                ("level", "y", "huber", "output", "regression", {"delta": 0.5}),
            ],
            metrics=[("accuracy", {"threshold": 0.5}, "probs"), ("mae", {}, "level")],
            validation=0.2,
        ),
    ),
    "sequence": lambda: spec(
        """
params: {vocab: 7}
inputs:
  tokens: {shape: [time], dtype: int64}
layers:
  - {op: embedding, vocab: $vocab, dim: 4}
  - {op: lstm, units: 6, return_sequences: true}
  - {op: dense, name: logits, units: $vocab}
""",
        "seq",
        plan(
            {"tokens": "x"},
            [("logits", "y", "categorical_crossentropy", "logits", "classes")],
            optimizer=("adam", {"lr": 0.01}),
        ),
    ),
    "wide_and_long": lambda: spec(
        """
inputs:
  image: {shape: [1, 8, 8]}
  extra: {shape: [3]}
layers:
  - {op: flatten, inputs: [image]}
  - {op: concat, inputs: [flatten_1, extra], axis: -1}
  - {op: dense, name: digit, units: 10, activation: softmax}
""",
        "wide",
        plan(
            {"image": [f"pixel_{i}" for i in range(64)], "extra": ["a" * 40, "b" * 40, "c"]},
            [("digit", "label", "categorical_crossentropy", "input_logits", "classes")],
            source="/a/long/path/" + "x" * 90 + ".csv",
            validation="/b/" + "y" * 100 + ".csv",
        ),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_generated_script_is_clean_and_standalone(case):
    graph = CASES[case]()
    text = generate_train(graph)
    ruff_clean(text, f"training script {case}")
    tree = ast.parse(text)
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots.add(node.module.split(".")[0])
    stdlib = {"argparse", "csv", "json", "math", "os", "fractions"}
    assert roots <= stdlib | {"numpy", "torch", "safetensors", "sklearn", f"{graph.name}_torch"}
    assert "netspec" not in roots and "pickle" not in text and "torch.save" not in text
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert {"fit", "evaluate", "predict", "batch_order", "save_checkpoint", "main"} <= names
    assert text.rstrip().endswith('if __name__ == "__main__":\n    main()')
    # the spec's names are kept
    for out in graph.training.objectives:
        assert f'"{out.output}"' in text


def untrained_xor():
    """specs/xor.yaml without its `training:` section (if it has one)."""
    text = (ROOT / "specs" / "xor.yaml").read_text().split("\ntraining:")[0]
    return netspec.loads(text)


def test_no_script_without_a_training_section():
    g = untrained_xor()
    assert generate_train(g) is None
    from netspec.targets.torch import ARTIFACTS

    assert [a.kind for a in ARTIFACTS] == ["model", "train"]


def test_build_writes_the_training_script(tmp_path):
    from netspec.build import build

    g = xor_graph()
    files = {p.name for p in build(g, ["torch"], tmp_path)}
    assert files == {"xor_torch.py", "xor_train_torch.py", "xor.safetensors"}


# -- the model's logits switch -------------------------------------------------------------------
def test_forward_logits_switch_only_where_the_plan_needs_it():
    g = CASES["two_outputs"]()
    src = netspec.generate(g, "torch")
    ruff_clean(src, "model with logits")
    assert ", logits: bool = False)" in src and "if not logits:" in src
    w = netspec.init_weights(g, 0)
    m = netspec.compile(g, "torch", w)
    x = torch.randn(5, 4)
    probs, level = m(x)
    scores, level2 = m(x, logits=True)
    torch.testing.assert_close(probs, torch.softmax(scores, -1), rtol=0, atol=0)
    torch.testing.assert_close(level, level2, rtol=0, atol=0)
    # a fused sigmoid
    x2 = xor_graph()
    m2 = netspec.compile(x2, "torch", netspec.init_weights(x2, 0))
    b = torch.rand(4, 2)
    torch.testing.assert_close(m2(b), torch.sigmoid(m2(b, logits=True)), rtol=0, atol=0)
    # no switch without a plan, nor for a regression plan
    plain = netspec.generate(untrained_xor(), "torch")
    assert "logits" not in plain
    assert "logits" not in netspec.generate(mlp(training=plan({"x": "x"}, [REG])), "torch")


def test_model_source_initializes_as_the_spec_says():
    g = spec(
        """
inputs:
  x: {shape: [50]}
layers:
  - {op: dense, name: a, units: 400, init: he_normal}
  - {op: dense, name: b, units: 300, init: zeros, bias: false}
  - {op: dense, name: c, units: 200}
""",
        "inits",
    )
    src = netspec.generate(g, "torch")
    assert 'nn.init.kaiming_normal_(self.a.weight, nonlinearity="relu")' in src
    assert "nn.init.zeros_(self.b.weight)" in src and "self.b.bias" not in src
    torch.manual_seed(0)
    from netspec.targets.torch import load_module

    m = load_module(g).Inits()
    assert abs(float(m.a.weight.detach().std()) - (2 / 50) ** 0.5) < 0.01
    assert float(m.a.bias.abs().max()) == 0 and float(m.b.weight.abs().max()) == 0
    lim = (6 / (300 + 200)) ** 0.5
    assert float(m.c.weight.abs().max()) <= lim and float(m.c.weight.abs().max()) > 0.9 * lim


# -- the arithmetic against netspec's numpy references -------------------------------------------
REG = ("out", "t", "mse", "output", "regression")


def numpy_mlp(w, x, t, loss, reads, steps, opt, sched, epochs_units):
    """Full-batch training of MLP by hand with the records' numpy references: the losses."""
    rec = OPTIMIZERS[opt[0]]
    a = rec.resolve(opt[1])
    names = ["hidden.weight", "hidden.bias", "out.weight", "out.bias"]
    params = [w[k].astype(np.float64) for k in names]
    states = [{} for _ in params]
    s_rec = SCHEDULES[sched[0]] if sched else None
    s_a = for_run(s_rec.resolve(sched[1]), epochs_units) if sched else None
    losses = []
    for k in range(steps):
        w1, b1, w2, b2 = params
        h = np.tanh(x @ w1.T + b1)
        z = h @ w2.T + b2
        value, dz = LOSSES[loss].reference(z, t, {}, reads != "output")
        losses.append(value)
        grads = [None] * 4
        grads[2], grads[3] = dz.T @ h, dz.sum(0)
        dh = dz @ w2 * (1 - h * h)
        grads[0], grads[1] = dh.T @ x, dh.sum(0)
        lr = lr_at(s_rec, k, a["lr"], s_a) if sched else a["lr"]
        params, states = apply(rec, params, grads, states, lr, a)
    return losses, dict(zip(names, params, strict=True))


ARITH = {
    "mse_sgd_step": (
        "",
        REG,
        ("sgd", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 1e-3}),
        ("step", {"step_size": 2, "gamma": 0.5}),
        "regression",
    ),
    "softmax_cce_adam_cosine": (
        "softmax",
        ("out", "t", "categorical_crossentropy", "input_logits", "classes"),
        ("adam", {"lr": 0.02, "weight_decay": 1e-3, "clip_norm": 0.5}),
        ("cosine", {"warmup": 2}),
        "classes",
    ),
    "sigmoid_bce_rmsprop": (
        "sigmoid",
        ("out", "t", "binary_crossentropy", "input_logits", "binary"),
        ("rmsprop", {"lr": 0.01, "centered": True, "momentum": 0.5, "clip_value": 0.1}),
        None,
        "binary",
    ),
    "logits_cce_adagrad": (
        "",
        ("out", "t", "categorical_crossentropy", "logits", "classes"),
        ("adagrad", {"lr": 0.1, "lr_decay": 0.01}),
        ("exponential", {"gamma": 0.9}),
        "classes",
    ),
}


@pytest.mark.parametrize("case", list(ARITH))
def test_float64_losses_equal_the_numpy_references(case):
    act, obj, opt, sched, kind = ARITH[case]
    steps = 8
    units = 3 if kind == "classes" else 2
    g = mlp(units, act, training=plan({"x": "x"}, [obj], opt, sched, batch_size=12, epochs=steps))
    x, t = data(12, units, kind)
    w = netspec.init_weights(g, 3)
    tr = run_training(g, w, (x, t), dtype="float64")
    want, final = numpy_mlp(w, x["x"], t["out"], obj[2], obj[3], steps, opt, sched, steps)
    got = tr.history["loss"]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    state = tr.model.state_dict()
    for k, v in final.items():
        np.testing.assert_allclose(state[k].numpy(), v, rtol=1e-10, atol=1e-13)
    assert len(set(got)) == steps  # the loss moved every step


def test_batch_order_and_last_partial_batch():
    """Several batches an epoch: each epoch's loss is the example-weighted mean of its batches'
    losses, visited in netspec's order (checked against the numpy reference, step by step)."""
    from netspec.train.split import batches, epoch_order

    g = mlp(2, training=plan({"x": "x"}, [REG], ("sgd", {"lr": 0.1}), batch_size=5, epochs=3))
    x, t = data(12)
    w = netspec.init_weights(g, 1)
    tr = run_training(g, w, (x, t), dtype="float64")
    rec = OPTIMIZERS["sgd"]
    a = rec.resolve({"lr": 0.1})
    params = [
        w[k].astype(np.float64) for k in ["hidden.weight", "hidden.bias", "out.weight", "out.bias"]
    ]
    for epoch in range(3):
        total = 0.0
        for rows in batches(epoch_order(12, 0, epoch), 5):
            w1, b1, w2, b2 = params
            xb, tb = x["x"][rows], t["out"][rows]
            h = np.tanh(xb @ w1.T + b1)
            z = h @ w2.T + b2
            value, dz = LOSSES["mse"].reference(z, tb, {})
            total += value * len(rows)
            dh = dz @ w2 * (1 - h * h)
            grads = [dh.T @ xb, dh.sum(0), dz.T @ h, dz.sum(0)]
            params, _ = apply(rec, params, grads, [{}] * 4, 0.1, a)
        assert tr.history["loss"][epoch] == pytest.approx(total / 12, rel=1e-12)


# -- float32 goals -------------------------------------------------------------------------------
def test_xor_reaches_full_accuracy():
    g = xor_graph()
    h = netspec.train(g)
    assert h.metrics["train"]["accuracy"] == 1.0
    assert h["accuracy"][-1] == 1.0
    assert h.epochs == 300


def test_exam_score_learns_the_slope():
    g = spec(
        "inputs:\n  hours: {shape: [1]}\nlayers:\n  - {op: dense, name: score, units: 1}\n",
        "exam",
        plan(
            {"hours": "study_hours"},
            [("score", "score", "mse", "output", "regression")],
            ("sgd", {"lr": 0.01}),
            metrics=[("mae", {}, "score")],
            source=str(ROOT / "data" / "student_score.csv"),
            batch_size=4,
            epochs=200,
        ),
    )
    h = netspec.train(g)
    slope = float(h.weights["score.weight"][0, 0])
    assert abs(slope - 10) / 10 < 0.01, slope


# -- checkpoints and resume ----------------------------------------------------------------------
DROPOUT = """
inputs:
  x: {shape: [3]}
layers:
  - {op: dense, name: hidden, units: 16, activation: relu}
  - {op: dropout, rate: 0.3}
  - {op: batch_norm, name: bn}
  - {op: dense, name: out, units: 3}
  - {op: softmax, name: probs}
"""


def resume_graph(**kw):
    return spec(
        DROPOUT,
        "drop",
        plan(
            {"x": "x"},
            [("probs", "t", "categorical_crossentropy", "input_logits", "classes")],
            kw.pop("optimizer", ("adam", {"lr": 0.01})),
            kw.pop("schedule", ("cosine", {"warmup": 1, "t_max": 6})),
            metrics=[("accuracy", {"threshold": 0.5}, "probs")],
            **{"batch_size": 8, "epochs": 6, **kw},
        ),
    )


def class_data(n=40):
    x, t = data(n, 3, "classes", np.float32)
    return x, {"probs": t["out"]}


class Stop(Exception):
    pass


def test_resume_after_a_crash_is_bit_identical(tmp_path):
    g = resume_graph(early_stopping=EarlyStopping("val_loss", 3, restore_best=True))
    tr_data, val = class_data(40), class_data(16)
    w = netspec.init_weights(g, 0)
    whole = run_training(g, w, tr_data, val)

    def crash(epoch, logs):
        if epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        run_training(g, w, tr_data, val, checkpoint_dir=tmp_path, on_epoch_end=crash)
    record = json.loads((tmp_path / "checkpoint.json").read_text())
    assert record["epoch"] == 3 and len(record["history"]["loss"]) == 3
    seen = []
    again = run_training(
        g,
        w,
        tr_data,
        val,
        checkpoint_dir=tmp_path,
        resume=True,
        on_epoch_end=lambda e, logs: seen.append(e),
    )
    assert seen == list(range(3, len(whole.history["loss"])))
    assert again.history == whole.history
    a, b = again.model.state_dict(), whole.model.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_a_shorter_run_to_the_full_length(tmp_path):
    g = resume_graph(schedule=("step", {"step_size": 2, "gamma": 0.5}))
    tr_data = class_data(40)
    w = netspec.init_weights(g, 0)
    whole = run_training(g, w, tr_data)
    run_training(g, w, tr_data, epochs=2, checkpoint_dir=tmp_path)
    again = run_training(g, w, tr_data, checkpoint_dir=tmp_path, resume=True)
    assert again.history == whole.history
    for k, v in whole.weights().items():
        np.testing.assert_array_equal(again.weights()[k], v)


def test_checkpoint_files_hold_no_pickle(tmp_path):
    from safetensors import safe_open

    g = resume_graph()
    run_training(g, netspec.init_weights(g, 0), class_data(20), epochs=1, checkpoint_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.json",
        "checkpoint.safetensors",
    ]
    with safe_open(tmp_path / "checkpoint.safetensors", "pt") as f:
        keys = set(f.keys())
        meta = json.loads(f.metadata()["checkpoint"])
    assert (
        "rng" in keys and "model.hidden.weight" in keys and "model.bn.num_batches_tracked" in keys
    )
    assert any(k.startswith("optimizer.") and k.endswith("exp_avg") for k in keys)
    assert meta == json.loads((tmp_path / "checkpoint.json").read_text())
    assert meta["scheduler"]["_milestones"] == [1]


def test_resume_without_a_checkpoint_is_a_user_error(tmp_path):
    g = resume_graph()
    with pytest.raises(netspec.SpecError, match="nothing to resume"):
        run_training(
            g, netspec.init_weights(g, 0), class_data(8), checkpoint_dir=tmp_path, resume=True
        )


# -- the script run alone ------------------------------------------------------------------------
def _env():
    return {**os.environ, "PYTHONPATH": "", "OMP_NUM_THREADS": "1"}


def test_script_run_alone_gives_the_weights_of_netspec_train(tmp_path):
    from safetensors.numpy import load_file

    from netspec.build import build

    g = xor_graph(epochs=60, validation=0.25)
    build(g, ["torch"], tmp_path, netspec.init_weights(g, g.training.seed))
    data_file = ROOT / "data" / "xor.csv"
    r = subprocess.run(
        [
            sys.executable,
            "xor_train_torch.py",
            "--data",
            str(data_file),
            "--weights",
            "xor.safetensors",
            "--out",
            "trained.safetensors",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("epoch 1/60  loss ")
    alone = load_file(tmp_path / "trained.safetensors")
    h = netspec.train(g, data_file)
    assert set(alone) == set(h.weights)
    for k, v in h.weights.items():
        np.testing.assert_array_equal(alone[k], v)


@pytest.mark.slow
def test_killed_process_resumes_bit_identical(tmp_path):
    """A real process killed with SIGKILL in the middle of a run, resumed from its checkpoint,
    ends with the weights of an uninterrupted run."""
    from safetensors.numpy import load_file

    from netspec.build import build

    g = resume_graph(epochs=150, optimizer=("sgd", {"lr": 0.05, "momentum": 0.9}))
    g.training = dataclasses.replace(g.training, source="train.npz", validation=0.2)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "train.npz", x=rng.normal(size=(600, 3)), t=rng.integers(0, 3, 600))
    build(g, ["torch"], tmp_path, netspec.init_weights(g, 0))
    base = [
        sys.executable,
        "drop_train_torch.py",
        "--data",
        "train.npz",
        "--weights",
        "drop.safetensors",
    ]
    kw = dict(cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    r = subprocess.run([*base, "--out", "whole.safetensors"], timeout=600, **kw)
    assert r.returncode == 0, r.stderr
    proc = subprocess.Popen([*base, "--out", "resumed.safetensors", "--checkpoints", "ck"], **kw)
    record = tmp_path / "ck" / "checkpoint.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if record.exists() and json.loads(record.read_text() or "{}").get("epoch", 0) >= 10:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL  # killed, not finished
    assert not (tmp_path / "resumed.safetensors").exists()
    r = subprocess.run(
        [*base, "--out", "resumed.safetensors", "--checkpoints", "ck", "--resume"],
        timeout=600,
        **kw,
    )
    assert r.returncode == 0, r.stderr
    whole, resumed = (
        load_file(tmp_path / "whole.safetensors"),
        load_file(tmp_path / "resumed.safetensors"),
    )
    for k, v in whole.items():
        np.testing.assert_array_equal(resumed[k], v)


IRIS = """
inputs:
  x: {shape: [4]}
layers:
  - {op: dense, name: hidden, units: 16, activation: relu}
  - {op: dense, name: species, units: 3, activation: softmax}
"""


@pytest.mark.slow
def test_iris_reaches_95_percent_and_the_script_alone_agrees(tmp_path):
    """sklearn:iris with validation and test splits: >= 95 % test accuracy, and the script run
    alone (reading sklearn's copy itself, splitting by the documented rule) ends with the same
    weights."""
    from safetensors.numpy import load_file

    from netspec.build import build

    g = spec(
        IRIS,
        "iris",
        plan(
            {"x": "data"},
            [("species", "target", "categorical_crossentropy", "input_logits", "classes")],
            ("adam", {"lr": 0.02}),
            metrics=[("accuracy", {"threshold": 0.5}, "species")],
            source="sklearn:iris",
            batch_size=16,
            epochs=150,
            validation=0.2,
            test=0.2,
        ),
    )
    h = netspec.train(g)
    assert h.test["accuracy"] >= 0.95
    build(g, ["torch"], tmp_path, netspec.init_weights(g, 0))
    r = subprocess.run(
        [sys.executable, "iris_train_torch.py", "--weights", "iris.safetensors"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-2].startswith("test  loss ")
    alone = load_file(tmp_path / "iris_trained.safetensors")
    for k, v in h.weights.items():
        np.testing.assert_array_equal(alone[k], v)


@pytest.mark.parametrize("name", ["early_stopping", "fraction", "DATA", "fit", "np", "torch"])
def test_spec_names_that_are_the_scripts_own(name):
    """The model class is imported under another name where the script has one like it."""
    text = (ROOT / "specs" / "xor.yaml").read_text().replace("name: xor", f"name: {name}")
    g = netspec.loads(text)
    g.training = xor_graph(early_stopping=EarlyStopping("loss", 2)).training
    script = generate_train(g)
    ruff_clean(script, name)
    tree = ast.parse(script)
    model = next(
        n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == f"{name}_torch"
    )
    local = model.names[0].asname or model.names[0].name
    defined = [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    assigned = [t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets]
    assert local not in defined + assigned
    assert f"    model = {local}()" in script


def test_sequence_model_trains_alone_and_in_netspec_alike(tmp_path):
    """Token ids [time] -> class scores [time, vocab] with labels [time] from a .npz (dynamic
    sizes), an LSTM trained with one bias per gate: netspec.train and the script run alone end
    with the same weights."""
    from safetensors.numpy import load_file

    from netspec.build import build

    g = CASES["sequence"]()
    g.training = dataclasses.replace(g.training, source="seq.npz", epochs=3, batch_size=4)
    g.source = str(tmp_path / "seq.yaml")
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 7, (10, 5))
    np.savez(tmp_path / "seq.npz", x=tokens, y=(tokens + 1) % 7)
    h = netspec.train(g)
    assert h.epochs == 3 and h["loss"][2] < h["loss"][0]
    assert not h.weights["lstm_1.bias_hh_l0"].any()  # folded into bias_ih, frozen at zero
    out = tmp_path / "build"
    build(g, ["torch"], out, netspec.init_weights(g, 0))
    r = subprocess.run(
        [
            sys.executable,
            "seq_train_torch.py",
            "--data",
            "../seq.npz",
            "--weights",
            "seq.safetensors",
        ],
        cwd=out,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    alone = load_file(out / "seq_trained.safetensors")
    for k, v in h.weights.items():
        np.testing.assert_array_equal(alone[k], v)
