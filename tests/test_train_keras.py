"""The Keras training script (`<name>_train_keras.py`) and `netspec train`'s Keras side.

- generated scripts are ruff-clean, import no netspec, and are written by `build` only for a
  spec that trains;
- the model file of a spec that trains a softmax/sigmoid output with cross-entropy splits the
  activation into a layer named after the output (the loss reads its input, the logits);
- `run_training` in float64 gives netspec's numpy references' weights (the records' losses and
  optimizers, a hand-written MLP backward pass, netspec's batch order) within 1e-9 relative;
- a run stopped after epoch k and resumed from its checkpoint ends bit-identical;
- the written script trains on its own in a subprocess.

Until the `training:` section lowers, plans are built here (netspec/train/plan.py) and set on a
lowered graph.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, ruff_clean, spec

from netspec.train.losses import LOSSES
from netspec.train.metrics import METRICS
from netspec.train.optimizers import OPTIMIZERS, apply
from netspec.train.plan import EarlyStopping, Metric, Objective, TrainPlan
from netspec.train.schedules import SCHEDULES, for_run, lr_at
from netspec.train.split import batches, epoch_order

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


# -- graphs and plans -----------------------------------------------------------------------
def mlp(final: str = "", name: str = "t", units: int | None = None, separate: bool = False):
    """x -> dense h (tanh) -> dense out [activation: final]; `separate`: the final activation
    is a node of its own (`out`, after the dense `fc`)."""
    act = f", activation: {final}" if final and not separate else ""
    units = units or (1 if final == "sigmoid" else 3)
    last = f"\n        - {{op: {final}, name: out}}" if separate else ""
    dense = "fc" if separate else "out"
    return spec(
        "x: {shape: [4]}",
        f"""
        - {{op: dense, name: h, units: 6, activation: tanh}}
        - {{op: dense, name: {dense}, units: {units}{act}}}{last}
        """,
        name=name,
    )


def objective(loss: str, graph, output: str = "out", target: str = "y", weight: float = 1.0):
    from netspec.train.losses import loss_input

    node = graph.node(graph.outputs[output])
    op = node.attrs["activation"]["op"] if node.attrs.get("activation") else node.op
    kind = {"binary_crossentropy": "binary", "categorical_crossentropy": "classes"}
    return Objective(
        output,
        target,
        loss,
        LOSSES[loss].resolve({}),
        loss_input(loss, op),
        kind.get(loss, "regression"),
        weight,
    )


def plan(graph, loss="mse", optimizer=("sgd", {"lr": 0.1}), schedule=None, **kw):
    name, given = optimizer
    sched = {}
    if schedule:
        sched = {
            "schedule": schedule[0],
            "schedule_attrs": SCHEDULES[schedule[0]].resolve(schedule[1]),
        }
    base = dict(
        inputs={"x": ("a", "b", "c", "d")},
        objectives=kw.pop("objectives", None) or (objective(loss, graph),),
        optimizer=name,
        optimizer_attrs=OPTIMIZERS[name].resolve(given),
        batch_size=8,
        epochs=2,
        source="data.csv",
    )
    return TrainPlan(**{**base, **sched, **kw})


def data(n: int, loss: str, seed: int = 0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(dtype)
    if loss == "categorical_crossentropy":
        y = rng.integers(0, 3, n)
    elif loss == "binary_crossentropy":
        y = (rng.uniform(size=(n, 1)) > 0.5).astype(dtype)
    else:
        y = rng.normal(size=(n, 3)).astype(dtype)
    return {"x": x}, {"out": y}


# -- generation (no framework) --------------------------------------------------------------
def test_no_script_without_training():
    from netspec.targets import keras as K
    from netspec.targets.base import artifact

    g = mlp()
    assert K.generate_train(g) is None
    assert artifact(K.ARTIFACTS, "train").file(g) == "t_train_keras.py"


SCRIPTS = {
    "sgd_mse": lambda g: plan(g),
    "adam_cosine_warmup_ce_logits": lambda g: plan(
        g,
        "categorical_crossentropy",
        ("adam", {"lr": 0.01, "weight_decay": 1e-3, "clip_norm": 1.0}),
        ("cosine", {"warmup": 2}),
        metrics=(Metric("accuracy", METRICS["accuracy"].resolve({}), "out"),),
        validation=0.2,
        early_stopping=EarlyStopping(monitor="val_accuracy", mode="max", patience=3),
    ),
    "rmsprop_step_bce": lambda g: plan(
        g,
        "binary_crossentropy",
        ("rmsprop", {"centered": True, "momentum": 0.5}),
        ("step", {"step_size": 2, "interval": "step"}),
        metrics=(
            Metric("accuracy", METRICS["accuracy"].resolve({"threshold": 0.7}), "out"),
            Metric("mae", {}, "out"),
        ),
    ),
}
FINAL = {"sgd_mse": "", "adam_cosine_warmup_ce_logits": "softmax", "rmsprop_step_bce": "sigmoid"}


@pytest.mark.parametrize("case", SCRIPTS)
def test_generated_script_is_clean_and_standalone(case):
    from netspec.targets import keras as K

    g = mlp(FINAL[case])
    g.training = SCRIPTS[case](g)
    text = K.generate_train(g)
    ruff_clean(text, case)
    ruff_clean(K.generate(g), case + " model")
    assert "import netspec" not in text and "from netspec" not in text
    assert "    from t_keras import build_model, load_weights, save_weights" in text
    assert "shuffle=False" in text
    imports = {
        line.split()[1]
        for line in text.splitlines()
        if line.lstrip().startswith(("import ", "from "))
    }
    stdlib = {"argparse", "csv", "json", "math", "os", "fractions", "pathlib"}
    assert imports - stdlib == {"keras", "numpy", "safetensors.numpy", "t_keras", "sklearn"}


def test_generation_imports_no_framework():
    code = (
        "import sys; sys.path.insert(0, 'tests'); from test_train_keras import mlp, plan;"
        "from netspec.targets import keras as K; g = mlp('softmax');"
        "g.training = plan(g, 'categorical_crossentropy', ('adam', {}));"
        "K.generate_train(g); K.generate(g);"
        "bad = [m for m in ('keras', 'tensorflow', 'torch') if m in sys.modules];"
        "assert not bad, bad"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True)
    assert r.returncode == 0, r.stderr.decode()


def test_only_used_classes_are_copied():
    from netspec.targets import keras as K

    g = mlp()
    g.training = plan(g)  # plain SGD: Keras's own optimizer has PyTorch's arithmetic here
    text = K.generate_train(g)
    assert "keras.optimizers.SGD(learning_rate=0.1)" in text
    assert "class Torch" not in text and "from keras import" not in text
    g.training = plan(g, optimizer=("adamw", {}), schedule=("exponential", {"gamma": 0.9}))
    text = K.generate_train(g)
    assert [line for line in text.splitlines() if line.startswith("class Torch")] == [
        "class TorchOptimizer(keras.optimizers.Optimizer):",
        "class TorchAdam(TorchOptimizer):",
        "class TorchAdamW(TorchAdam):",
    ]


# -- the model file of a spec that trains ---------------------------------------------------
def test_logits_output_gets_its_own_activation_layer(keras):
    import netspec
    from netspec.targets import keras as K
    from netspec.weights import init_weights

    plain = mlp("softmax")
    g = mlp("softmax")
    g.training = plan(g, "categorical_crossentropy", ("adam", {}))
    text = K.generate(g)
    assert 'layers.Dense(3, name="out-logits")' in text
    assert 'layers.Softmax(name="out")' in text
    assert K.generate(plain) == netspec.generate(plain, target="keras")
    assert "out-logits" not in K.generate(plain)
    w = init_weights(g, 0)
    model, ref = K.compile(g, w), K.compile(plain, w)
    assert model.output_names == ["out"]
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    np.testing.assert_array_equal(model(x), ref(x))
    got = K.export_weights(model, g)
    assert all(np.array_equal(got[k], w[k]) for k in w)
    # a regression plan changes nothing
    g.training = plan(g)
    assert K.generate(g) == K.generate(plain)


def test_batch_norm_of_a_spec_that_trains_is_pytorchs(keras):
    from netspec.targets import keras as K

    g = spec(
        "img: {shape: [2, 6, 6]}",
        """
        - {op: conv2d, name: conv, filters: 4, kernel: 3, padding: same, bias: false}
        - {op: batch_norm, name: bn}
        - {op: relu, name: r}
        - {op: global_avg_pool, name: pool}
        - {op: dense, name: out, units: 3}
        """,
    )
    assert "TorchBatchNormalization" not in K.generate(g)
    g.training = plan(g, inputs={"img": "images"})
    text = K.generate(g)
    ruff_clean(text, "cnn that trains")
    assert "TorchBatchNormalization(momentum=0.9, epsilon=1e-05" in text.replace("\n", "")
    assert "from keras import layers, ops" in text
    assert 'CHANNELS_LAST = ("img",)' in K.generate_train(g)


def test_init_follows_the_spec():
    from netspec.targets import keras as K

    g = spec(
        "x: {shape: [null, 3]}",
        """
        - {op: lstm, name: rnn, units: 4}
        - {op: dense, name: h, units: 4, init: he_normal}
        - {op: dense, name: out, units: 2, init: zeros}
        """,
    )
    text = K.generate(g)
    assert 'recurrent_initializer="glorot_uniform"' in text
    assert "unit_forget_bias=False" in text
    assert 'distribution="untruncated_normal"' in text
    assert 'kernel_initializer="zeros"' in text


@pytest.mark.parametrize(
    ("init", "std"), [("he_normal", 2 / 200), ("glorot_normal", 2 / 300), ("uniform", 0.05**2 / 3)]
)
def test_initializers_draw_the_spec_distribution(keras, init, std):
    from netspec.targets import keras as K

    g = spec("x: {shape: [200]}", f"- {{op: dense, name: out, units: 100, init: {init}}}")
    mod = K.load_module(g)
    kernel = np.asarray(mod.build_model().get_layer("out").kernel)
    assert kernel.var() == pytest.approx(std, rel=0.05)
    assert np.abs(kernel).max() > 2.5 * np.sqrt(std) or init == "uniform"  # not truncated


def test_embedding_initializer_takes_netspecs_fans(keras):
    """he_uniform on an embedding table [vocab, dim]: netspec's fan_in is dim (PyTorch's
    convention), Keras's would be vocab."""
    from netspec.targets import keras as K

    g = spec(
        "ids: {shape: [5], dtype: int64}",
        "- {op: embedding, name: emb, vocab: 400, dim: 100, init: he_uniform}",
    )
    mod = K.load_module(g)
    table = np.asarray(mod.build_model().get_layer("emb").embeddings)
    assert table.var() == pytest.approx(2 / 100, rel=0.05)


# -- float64 parity with netspec's numpy references -----------------------------------------
def reference_training(graph, weights, train, p):
    """The MLP x -> tanh(dense) -> dense [-> softmax/sigmoid] trained by the records' numpy
    references, netspec's batch order, the plan's schedule."""
    d = "fc" if "fc.weight" in weights else "out"
    keys = ("h.weight", "h.bias", f"{d}.weight", f"{d}.bias")
    params = [weights[k].astype(np.float64) for k in keys]
    o = p.objectives[0]
    rec = OPTIMIZERS[p.optimizer]
    states = [{} for _ in params]
    x_all, y_all = train[0]["x"], train[1]["out"]
    n = len(x_all)
    steps_per_epoch = -(-n // p.batch_size)
    srec = SCHEDULES[p.schedule] if p.schedule else None
    if srec:
        units = p.epochs * (steps_per_epoch if p.schedule_attrs["interval"] == "step" else 1)
        sa = for_run(p.schedule_attrs, units)
    step = 0
    for epoch in range(p.epochs):
        for rows in batches(epoch_order(n, p.seed, epoch), p.batch_size):
            x, t = x_all[rows], y_all[rows]
            w1, b1, w2, b2 = params
            h = np.tanh(x @ w1.T + b1)
            z = h @ w2.T + b2
            if o.reads == "probabilities":  # through the output's own sigmoid/softmax
                act = graph.node("out").attrs.get("activation") or {"op": graph.node("out").op}
                if act["op"] == "sigmoid":
                    y = 1 / (1 + np.exp(-z))
                    _, dy = LOSSES[o.loss].reference(y, t, o.loss_attrs, False)
                    dz = dy * y * (1 - y)
                else:
                    e = np.exp(z - z.max(-1, keepdims=True))
                    y = e / e.sum(-1, keepdims=True)
                    _, dy = LOSSES[o.loss].reference(y, t, o.loss_attrs, False)
                    dz = y * (dy - (dy * y).sum(-1, keepdims=True))
            else:
                _, dz = LOSSES[o.loss].reference(z, t, o.loss_attrs, o.reads != "output")
            dh = dz @ w2 * (1 - h * h)
            grads = [dh.T @ x, dh.sum(0), dz.T @ h, dz.sum(0)]
            lr = p.optimizer_attrs["lr"]
            if srec:
                unit = step if sa["interval"] == "step" else epoch
                lr = lr_at(srec, unit, lr, sa)
            params, states = apply(rec, params, grads, states, lr, p.optimizer_attrs)
            step += 1
    return dict(zip(keys, params, strict=True))


CONFIGS = {  # every optimizer, with what changes its arithmetic (as tests/test_train_parity.py)
    "sgd": (
        ("sgd", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 1e-3}),
        ("step", {"step_size": 1, "gamma": 0.5}),
        "mse",
    ),
    "sgd_nesterov": (
        ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "clip_value": 0.5}),
        None,
        "categorical_crossentropy",
    ),
    "adam": (
        ("adam", {"lr": 0.01, "weight_decay": 1e-3, "clip_norm": 1.0}),
        ("cosine", {"warmup": 1}),
        "categorical_crossentropy",
    ),
    "adamw": (
        ("adamw", {"lr": 0.01, "weight_decay": 0.05}),
        ("exponential", {"gamma": 0.9}),
        "binary_crossentropy",
    ),
    "rmsprop": (
        ("rmsprop", {"lr": 0.003, "momentum": 0.5, "centered": True, "weight_decay": 1e-3}),
        ("step", {"step_size": 1, "gamma": 0.9, "interval": "step", "warmup": 3}),
        "mse",
    ),
    "adagrad": (
        ("adagrad", {"lr": 0.05, "lr_decay": 0.01, "initial_accumulator": 0.1}),
        None,
        "huber",
    ),
}
FAST = ("adam", "rmsprop", "sgd_nesterov")


def rel(a, b) -> float:
    return float(np.max(np.abs(a - b))) / max(float(np.max(np.abs(b))), 1e-300)


def parity(case: str, final: str | None = None, **model) -> float:
    from netspec.targets.keras.train import run_training
    from netspec.weights import init_weights

    optimizer, schedule, loss = CONFIGS[case]
    final = (
        final
        if final is not None
        else {"categorical_crossentropy": "softmax", "binary_crossentropy": "sigmoid"}.get(loss, "")
    )
    g = mlp(final, **model)
    g.training = plan(g, loss, optimizer, schedule, epochs=3, batch_size=8)
    w = init_weights(g, 0)
    train = data(30, loss)  # 4 batches per epoch, the last one of 6 rows
    want = reference_training(g, w, train, g.training)
    got = run_training(g, w, train, dtype="float64").weights("float64")
    moved = max(rel(want[k], w[k].astype(np.float64)) for k in want)
    assert moved > 1e-3, "training did not move the weights"
    return max(rel(got[k], want[k]) for k in want)


@pytest.mark.parametrize("case", FAST)
def test_float64_parity_with_the_references(keras, case):
    worst = parity(case)
    assert worst < 1e-9, f"max relative weight difference {worst:.2e}"


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in CONFIGS if c not in FAST])
def test_float64_parity_with_the_references_every_optimizer(keras, case):
    worst = parity(case)
    assert worst < 1e-9, f"max relative weight difference {worst:.2e}"


@pytest.mark.parametrize(
    ("final", "model", "reads"),
    [
        ("", {}, "logits"),  # cross-entropy of an output that is no probability
        ("softmax", {"separate": True}, "input_logits"),  # a softmax node of its own
        ("sigmoid", {"units": 3}, "probabilities"),  # the other probability op: PyTorch's NLL
    ],
)
def test_cross_entropy_reads(keras, final, model, reads):
    g = mlp(final, **model)
    assert objective("categorical_crossentropy", g).reads == reads
    worst = parity("sgd_nesterov", final=final, **model)
    assert worst < 1e-9, f"max relative weight difference {worst:.2e}"


# -- checkpoints ----------------------------------------------------------------------------
def test_resume_is_bit_identical(keras, tmp_path):
    from netspec.targets.keras.train import run_training
    from netspec.weights import init_weights

    g = spec(
        "x: {shape: [4]}",
        """
        - {op: dense, name: h, units: 8, activation: relu}
        - {op: dropout, name: drop, rate: 0.3}
        - {op: dense, name: out, units: 3, activation: softmax}
        """,
    )
    g.training = plan(
        g,
        "categorical_crossentropy",
        ("adam", {"lr": 0.01}),
        ("cosine", {"warmup": 1}),
        epochs=4,
        metrics=(Metric("accuracy", METRICS["accuracy"].resolve({}), "out"),),
        early_stopping=EarlyStopping(monitor="val_loss", patience=10),
    )
    w = init_weights(g, 0)
    train, val = data(40, "categorical_crossentropy", 1), data(10, "categorical_crossentropy", 2)
    seen = []
    whole = run_training(
        g, w, train, val, checkpoint_dir=tmp_path / "a", on_epoch_end=lambda *a: seen.append(a)
    )
    assert [e for e, _ in seen] == [0, 1, 2, 3]
    assert seen[-1][1] == {k: v[-1] for k, v in whole.history.items()}
    first = run_training(g, w, train, val, epochs=2, checkpoint_dir=tmp_path / "b")
    state = json.loads((tmp_path / "b" / "checkpoint.json").read_text())
    assert state["epoch"] == 1 and len(state["history"]["loss"]) == 2
    again = run_training(g, w, train, val, checkpoint_dir=tmp_path / "b", resume=True)
    assert again.history == whole.history
    a, b = whole.weights(), again.weights()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], first.weights()[k]) for k in a)
    assert not (tmp_path / "b" / "checkpoint.json.tmp").exists()


def test_resume_after_early_stopping_trains_no_more(keras, tmp_path):
    from netspec.targets.keras.train import run_training
    from netspec.weights import init_weights

    g = mlp()
    never = EarlyStopping(monitor="val_loss", patience=1, min_delta=10.0)  # stops at epoch 1
    g.training = plan(g, epochs=6, early_stopping=never)
    w = init_weights(g, 0)
    train, val = data(16, "mse", 1), data(8, "mse", 2)
    done = run_training(g, w, train, val, checkpoint_dir=tmp_path)
    assert len(done.history["loss"]) == 2
    again = run_training(g, w, train, val, checkpoint_dir=tmp_path, resume=True)
    assert again.history == done.history
    a, b = done.weights(), again.weights()
    assert all(np.array_equal(a[k], b[k]) for k in a)


# -- the written script on its own ----------------------------------------------------------
def test_written_script_trains_standalone(keras, tmp_path):
    from netspec.targets import keras as K
    from netspec.targets.base import write_sources

    g = mlp("softmax", name="iris_like")
    g.training = plan(
        g,
        "categorical_crossentropy",
        ("adam", {"lr": 0.05}),
        epochs=3,
        validation=0.25,
        test=0.1,
        metrics=(Metric("accuracy", METRICS["accuracy"].resolve({}), "out"),),
    )
    written = write_sources(K.ARTIFACTS, g, tmp_path)
    assert [p.name for p in written] == ["iris_like_keras.py", "iris_like_train_keras.py"]
    (x, y) = data(40, "categorical_crossentropy")
    with open(tmp_path / "data.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["a", "b", "c", "d", "y"])
        for row, label in zip(x["x"], y["out"], strict=True):
            out.writerow([*row, label])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run(
        [sys.executable, "iris_like_train_keras.py", "--checkpoints", "ck"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    lines = [line for line in r.stdout.splitlines() if line.startswith("epoch")]
    assert len(lines) == 3 and "val_accuracy" in lines[0]
    assert "test: " in r.stdout
    assert (tmp_path / "iris_like_trained.safetensors").exists()
    assert (tmp_path / "ck" / "checkpoint.safetensors").exists()


# -- several trained outputs ----------------------------------------------------------------
def test_several_outputs_history_keys_and_loss_weights(keras):
    """Keys `<output>_loss`, `<output>_<metric>`; each output's loss an example-weighted mean
    (Keras's own per-output loss is not: 20 rows in batches of 8, 8, 4)."""
    from netspec.targets.keras.train import run_training
    from netspec.weights import init_weights

    g = spec(
        "x: {shape: [4]}",
        """
        - {op: dense, name: h, units: 6, activation: tanh}
        - {op: dense, name: out, units: 3, activation: softmax}
        - {op: dense, name: reg, units: 2, inputs: [h]}
        """,
        outputs="{cls: out, value: reg}",
    )
    objs = (
        objective("categorical_crossentropy", g, "cls", "y"),
        objective("mse", g, "value", "v", weight=0.5),
    )
    metrics = (
        Metric("accuracy", METRICS["accuracy"].resolve({}), "cls"),
        Metric("mae", {}, "value"),
    )
    g.training = plan(g, optimizer=("adam", {"lr": 0.01}), objectives=objs, metrics=metrics)
    from netspec.targets import keras as K

    ruff_clean(K.generate_train(g), "several outputs")
    ruff_clean(K.generate(g), "several outputs, model")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 4))
    targets = {"cls": rng.integers(0, 3, 20), "value": rng.normal(size=(20, 2))}
    trained = run_training(g, init_weights(g, 0), ({"x": x}, targets), ({"x": x}, targets))
    keys = {"loss", "cls_loss", "value_loss", "cls_accuracy", "value_mae"}
    assert set(trained.history) == keys | {"val_" + k for k in keys}
    got = trained.evaluate(({"x": x}, targets))
    assert got["loss"] == pytest.approx(got["cls_loss"] + 0.5 * got["value_loss"], rel=1e-6)
    out = trained.predict({"x": x})
    assert list(out) == ["cls", "value"]
    np.testing.assert_allclose(out["cls"].sum(-1), 1, rtol=1e-6)
    assert trained.model.output_names == ["cls", "value"]


def test_resume_without_a_checkpoint_is_a_spec_error(keras, tmp_path):
    from netspec.errors import SpecError
    from netspec.targets.keras.train import run_training
    from netspec.weights import init_weights

    g = mlp()
    g.training = plan(g)
    with pytest.raises(SpecError, match="nothing to resume"):
        run_training(g, init_weights(g, 0), data(8, "mse"), checkpoint_dir=tmp_path, resume=True)


def test_script_adapts_normalize_as_netspec(keras, tmp_path):
    """The standalone script's `main` sets a normalize layer's statistics from the training rows
    as `netspec train` does (netspec.train.adapt)."""
    from netspec.targets import keras as K
    from netspec.targets.keras.train import load_script
    from netspec.train.adapt import adapt
    from netspec.train.data import DataMap, InputSpec, TargetSpec, load_data
    from netspec.weights import init_weights

    g = spec(
        "x: {shape: [2, 3]}",
        """
        - {op: normalize, name: scale, axis: 1}
        - {op: flatten, name: flat}
        - {op: dense, name: out, units: 3}
        """,
    )
    g.training = plan(g, inputs={"x": "x"})
    text = K.generate_train(g)
    assert 'NORMALIZE = {"scale": ("x", 1)}' in text
    assert "    adapt(model, train[0])\n" in text
    module = K.load_module(g)
    script = load_script(g, module)
    built = module.build_model()
    x = np.random.default_rng(0).normal(size=(10, 2, 3)) * [[3.0], [0.5]] + 1
    script.adapt(built, {"x": x})
    got = K.export_weights(built, g)
    np.savez(tmp_path / "d.npz", x=x.astype(np.float32), y=np.zeros((10, 3), np.float32))
    data = load_data(
        tmp_path / "d.npz",
        DataMap(inputs={"x": "x"}, targets={"out": "y"}),
        inputs={"x": InputSpec((2, 3))},
        targets={"out": TargetSpec("regression", (3,))},
    )
    want = adapt(g, init_weights(g, 0), data, np.arange(10))
    for k in ("scale.mean", "scale.variance"):
        np.testing.assert_allclose(got[k], want[k], rtol=1e-6)
