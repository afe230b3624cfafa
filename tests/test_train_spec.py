"""The `training:` section: what a spec's section lowers to (`Graph.training`, a TrainPlan).

Plans from the example specs, defaults, params and `--set`, which tensor each loss reads,
metrics and history keys, early stopping, per-output losses, and that `validate` stays light.
Error messages are golden files (tests/invalid/training_*); the schema's agreement with the
lowering is tests/test_schema_agreement.py. A plain PyTorch loop that follows a plan (the
split, batch order and initial weights of netspec, PyTorch's optimizers, one thread) checks
that the examples' hyper-parameters reach their goals (a few seconds each).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT, SPECS, run_cli

import netspec
from netspec import SpecError
from netspec.train.plan import SETTINGS, STOPPING, EarlyStopping, Metric, TrainPlan

TRAINED = [
    "exam_score",
    "exam_score_sleep",
    "xor",
    "iris",
    "digits_mlp",
    "digits_cnn",
    "apartment_price",
]


def load(
    training: str, layers: str | None = None, inputs: str | None = None, **kw
) -> netspec.Graph:
    """A graph whose spec has this training section (YAML body)."""
    text = "netspec: 1\nname: m\nparams: {lr: 0.01, hidden: 4, file: d.csv, val: 0.1}\n"
    text += "inputs:\n" + textwrap.indent(inputs or "x: {shape: [3]}", "  ") + "\n"
    text += "layers:\n" + textwrap.indent(
        textwrap.dedent(layers or "- {op: dense, name: y, units: 1}").strip(), "  "
    )
    text += "\ntraining:\n" + textwrap.indent(textwrap.dedent(training).strip(), "  ") + "\n"
    return netspec.loads(text, kw.pop("params", None), file="m.yaml", **kw)


CLASSIFIER = """
- {op: dense, name: hidden, units: $hidden, activation: relu}
- {op: dense, name: logits, units: 3}
- {op: softmax, name: p}
"""


# -- the example specs ---------------------------------------------------------------------------


def test_every_example_with_a_training_section_lowers_to_a_plan():
    with_training = [p.stem for p in SPECS if netspec.load(p).training is not None]
    assert set(TRAINED) <= set(with_training)
    for p in SPECS:
        g = netspec.load(p)
        if g.training is None:
            continue
        plan = g.training
        assert isinstance(plan, TrainPlan)
        assert set(plan.inputs) == set(g.inputs)
        assert {o.output for o in plan.objectives} <= set(g.outputs)
        assert plan.source is not None, p.name  # every example names its data


def test_exam_score_plan():
    g = netspec.load(ROOT / "specs" / "exam_score.yaml")
    plan = g.training
    assert plan.source == "../data/student_score.csv"  # as written: relative to the spec
    assert Path(g.source).parent / plan.source == ROOT / "specs" / "../data/student_score.csv"
    assert plan.inputs == {"hours": "study_hours"}
    [obj] = plan.objectives
    assert (obj.output, obj.target, obj.loss, obj.reads, obj.kind) == (
        "score",
        "score",
        "mse",
        "output",
        "regression",
    )
    assert plan.optimizer == "sgd"
    assert plan.optimizer_attrs == {
        "lr": 0.01,
        "weight_decay": 0.0,
        "clip_norm": None,
        "clip_value": None,
        "momentum": 0.9,
        "dampening": 0.0,
        "nesterov": False,
    }
    assert (plan.batch_size, plan.epochs, plan.seed, plan.shuffle) == (10, 150, 0, True)
    assert plan.metrics == (Metric("mae", {}, "score"),)
    assert plan.history_keys() == ["loss", "mae"]


def test_set_overrides_reach_the_plan():
    spec = ROOT / "specs" / "exam_score.yaml"
    assert netspec.load(spec, params={"lr": 0.001}).training.optimizer_attrs["lr"] == 0.001
    plan = load("inputs: {x: a}\ntargets: {y: b}\nloss: mse\noptimizer: {name: adam, lr: $lr}")
    assert plan.training.optimizer_attrs["lr"] == 0.01
    g = load(
        "inputs: {x: a}\ntargets: {y: b}\nloss: mse\noptimizer: {name: adam, lr: $lr}",
        params={"lr": 0.25},
    )
    assert g.training.optimizer_attrs["lr"] == 0.25
    rc, out, err = run_cli(["validate", spec, "--set", "lr=-1"])
    assert rc == 2 and "training.optimizer.lr: expected a number >= 0, got -1" in err


def test_xor_reads_logits_before_the_fused_sigmoid():
    plan = netspec.load(ROOT / "specs" / "xor.yaml").training
    [obj] = plan.objectives
    assert (obj.output, obj.loss, obj.reads, obj.kind) == (
        "out",
        "binary_crossentropy",
        "input_logits",
        "binary",
    )
    assert plan.inputs == {"bits": ("a", "b")}  # a list of columns: stacked side by side
    assert plan.metrics == (Metric("accuracy", {"threshold": 0.5}, "out"),)


def test_classifiers_read_the_logits_before_the_softmax():
    for name in ("iris", "digits_mlp", "digits_cnn"):
        plan = netspec.load(ROOT / "specs" / f"{name}.yaml").training
        [obj] = plan.objectives
        assert (obj.loss, obj.reads, obj.kind) == (
            "categorical_crossentropy",
            "input_logits",
            "classes",
        ), name
        assert plan.validated and plan.test > 0
    iris = netspec.load(ROOT / "specs" / "iris.yaml").training
    assert iris.early_stopping == EarlyStopping("val_loss", 20, "min", 0.0, True)
    assert netspec.load(ROOT / "specs" / "digits_cnn.yaml").training.schedule == "cosine"
    assert netspec.load(ROOT / "specs" / "digits_cnn.yaml").training.schedule_attrs["t_max"] is None


# -- defaults and values -----------------------------------------------------------------------


def test_defaults():
    plan = load("inputs: {x: a}\ntargets: {y: b}\nloss: mse\noptimizer: adam").training
    assert plan == TrainPlan(
        inputs={"x": "a"},
        objectives=plan.objectives,
        optimizer="adam",
        optimizer_attrs=plan.optimizer_attrs,
    )
    assert plan.source is None and plan.schedule is None and plan.early_stopping is None
    assert (plan.validation, plan.test, plan.metrics) == (0.0, 0.0, ())
    assert plan.optimizer_attrs["lr"] == 0.001 and plan.optimizer_attrs["beta2"] == 0.999
    # the dataclass's defaults are the section's documented ones
    fields = {f.name: f.default for f in dataclasses.fields(TrainPlan)}
    assert {k: fields[k] for k in SETTINGS} == {k: a.default for k, a in SETTINGS.items()}
    stop = {f.name: f.default for f in dataclasses.fields(EarlyStopping)}
    assert {k: stop[k] for k in STOPPING if k != "mode"} == {
        k: a.default for k, a in STOPPING.items() if k != "mode"
    }


def test_a_graph_without_a_section_has_no_plan():
    assert netspec.load(ROOT / "specs" / "mlp.yaml").training is None


def test_expressions_and_params_everywhere():
    g = load(
        """
        data: $file
        inputs: {x: [a, b, c]}
        targets: {y: t}
        loss: {name: huber, delta: "${lr * 100}"}
        optimizer: {name: sgd, lr: $lr, momentum: 0.9, nesterov: true}
        schedule: {name: step, step_size: $hidden, gamma: 0.5, warmup: 1}
        batch_size: "${hidden * 2}"
        epochs: $hidden
        validation: $val
        """,
        params={"file": "d.npz", "val": 0.25},
        inputs="x: {shape: [3]}",
    )
    plan = g.training
    assert plan.source == "d.npz"
    assert plan.inputs == {"x": ("a", "b", "c")}
    assert plan.objectives[0].loss_attrs == {"delta": 1.0}
    assert plan.optimizer_attrs["nesterov"] is True
    assert plan.schedule_attrs == {
        "step_size": 4,
        "gamma": 0.5,
        "interval": "epoch",
        "warmup": 1,
        "warmup_start": 1 / 3,
    }
    assert (plan.batch_size, plan.epochs, plan.validation) == (8, 4, 0.25)


def test_validation_and_test_may_be_files():
    plan = load(
        "inputs: {x: a}\ntargets: {y: b}\nloss: mse\noptimizer: sgd\n"
        "validation: val.csv\ntest: sub/test.npz\nearly_stopping: {}"
    ).training
    assert (plan.validation, plan.test) == ("val.csv", "sub/test.npz")
    assert plan.validated and plan.early_stopping.monitor == "val_loss"
    assert plan.history_keys() == ["loss", "val_loss"]


# -- losses, metrics, history -------------------------------------------------------------------


def test_loss_reads_logits_and_accuracy_threshold_follows():
    g = load(
        "inputs: {x: a}\ntargets: {y: b}\nloss: binary_crossentropy\noptimizer: sgd\n"
        "metrics: [accuracy, mse]"
    )
    [obj] = g.training.objectives
    assert obj.reads == "logits"  # no sigmoid: the output is the logit
    acc, mse = g.training.metrics
    assert acc.attrs == {"threshold": 0.0} and mse.name == "mse"
    g = load(
        "inputs: {x: a}\ntargets: {y: b}\nloss: binary_crossentropy\noptimizer: sgd\n"
        "metrics: [{name: accuracy, threshold: 0.3}]"
    )
    assert g.training.metrics[0].attrs == {"threshold": 0.3}  # as written
    g = load(
        "inputs: {x: a}\ntargets: {p: b}\nloss: categorical_crossentropy\noptimizer: sgd",
        CLASSIFIER,
    )
    assert g.training.objectives[0].reads == "input_logits"
    g = load(
        "inputs: {x: a}\ntargets: {p: b}\nloss: binary_crossentropy\noptimizer: sgd", CLASSIFIER
    )
    assert g.training.objectives[0].reads == "probabilities"


def test_several_outputs_per_output_losses_metrics_and_history():
    layers = """
    - {op: dense, name: hidden, units: 8, activation: relu}
    - {op: dense, name: logits, units: 3}
    - {op: softmax, name: kind}
    - {op: dense, name: size, units: 1, inputs: [hidden]}
    - {op: dense, name: aux, units: 2, inputs: [hidden]}
    """
    text = (
        "netspec: 1\nname: m\ninputs:\n  x: {shape: [4]}\nlayers:\n"
        + textwrap.indent(textwrap.dedent(layers).strip(), "  ")
        + "\noutputs: [kind, size, aux]\ntraining:\n"
        + textwrap.indent(
            textwrap.dedent(
                """
                inputs: {x: [a, b, c, d]}
                targets: {size: s, kind: k}
                loss: {kind: categorical_crossentropy, size: {name: huber, delta: 2, weight: 0.5}}
                optimizer: adamw
                metrics: {kind: [accuracy], size: [mae]}
                validation: 0.2
                early_stopping: {monitor: val_kind_accuracy, patience: 3}
                """
            ).strip(),
            "  ",
        )
    )
    plan = netspec.loads(text).training
    assert [o.output for o in plan.objectives] == ["kind", "size"]  # the model's order
    kind, size = plan.objectives
    assert (kind.reads, kind.weight) == ("input_logits", 1.0)
    assert (size.loss, size.loss_attrs, size.weight) == ("huber", {"delta": 2.0}, 0.5)
    assert plan.history_keys() == [
        "loss",
        "kind_loss",
        "size_loss",
        "kind_accuracy",
        "size_mae",
        "val_loss",
        "val_kind_loss",
        "val_size_loss",
        "val_kind_accuracy",
        "val_size_mae",
    ]
    assert plan.early_stopping.mode == "max"  # an accuracy
    assert plan.optimizer_attrs["weight_decay"] == 0.01  # AdamW's default
    # aux is an output, not trained: a metric for it is refused
    bad = text.replace("size: [mae]}", "size: [mae], aux: [mae]}")
    with pytest.raises(SpecError, match="metrics for 'aux', which is not a trained output"):
        netspec.loads(bad)


def test_errors_are_located():
    with pytest.raises(SpecError) as e:
        load("inputs: {x: a}\ntargets: {y: b}\nloss: mse\noptimizer: {name: sgd, lr: -1}")
    assert (e.value.line, e.value.path) == (12, ("training", "optimizer", "lr"))
    with pytest.raises(SpecError) as e:
        load("inputs: {x: a}\ntargets: {y: b}\nloss: mse\noptimizer: sgd\nmetrics: [accuracy]")
    assert e.value.path == ("training", "metrics", 0)
    assert "does not fit output 'y'" in e.value.message


def test_softmax_over_another_axis_is_refused_for_categorical_crossentropy():
    layers = "- {op: dense, name: d, units: 3}\n- {op: softmax, name: p, axis: 1}"
    with pytest.raises(SpecError, match="softmax over axis 1, but categorical"):
        load(
            "inputs: {x: a}\ntargets: {p: b}\nloss: categorical_crossentropy\noptimizer: sgd",
            layers,
            "x: {shape: [5, 3]}",
        )


def test_constants_equal_the_data_readers():
    from netspec.train import losses, lowerplan, metrics, sources

    assert lowerplan.SKLEARN_SETS == sources.SKLEARN_SETS
    assert set(lowerplan.LOSS_KIND) == set(losses.LOSSES)
    assert set(lowerplan.METRIC_KINDS) == set(metrics.METRICS)
    for suffix in lowerplan.DATA_SUFFIXES:
        with pytest.raises(SpecError, match="cannot read the data"):
            sources.open_source("/nonexistent/x" + suffix)  # a known format, a missing file


# -- the plan feeds the data layer ---------------------------------------------------------------


def test_example_plans_load_their_data():
    pytest.importorskip("numpy")
    from netspec.train.data import input_specs, load_data

    for name in TRAINED:
        if name.startswith("digits") or name == "iris":
            pytest.importorskip("sklearn")
        g = netspec.load(ROOT / "specs" / f"{name}.yaml")
        plan = g.training
        src = plan.source
        if not src.startswith("sklearn:"):
            src = str(Path(g.source).parent / src)
        data = load_data(src, plan.data_map(), input_specs(g), plan.target_specs(g))
        x, t = data.take([0, 1])
        assert set(x) == set(g.inputs) and set(t) == {o.output for o in plan.objectives}


# -- nothing heavy is imported -------------------------------------------------------------------

PROBE = """
import json, sys
from netspec.cli import main
rc = main(sys.argv[1:])
heavy = {"numpy", "torch", "tensorflow", "keras", "onnx", "sklearn", "safetensors"}
loaded = sorted({m.split(".")[0] for m in sys.modules} & heavy)
sys.stderr.write("\\nPROBE " + json.dumps({"rc": rc, "loaded": loaded}) + "\\n")
"""


@pytest.mark.parametrize(
    "args",
    [
        ["validate", *[f"specs/{n}.yaml" for n in TRAINED]],
        ["validate", "tests/invalid/training_bad_monitor.yaml"],
    ],
    ids=["examples", "error"],
)
def test_validate_imports_no_numpy_with_a_training_section(args):
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    line = [x for x in proc.stderr.splitlines() if x.startswith("PROBE ")]
    assert line, proc.stderr[-2000:]
    result = json.loads(line[-1][6:])
    assert result == {"rc": 2 if "invalid" in args[1] else 0, "loaded": []}


# -- the examples reach their goals (a plain PyTorch loop that follows the plan) ----------------


def train_by_plan(spec: Path, params=None):
    """`_train_by_plan` on one thread (small models: threads only contend for the cores)."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_by_plan(spec, params)
    finally:
        torch.set_num_threads(threads)


def _train_by_plan(spec: Path, params=None):
    """Train `spec` as its plan says, with torch.optim and netspec's split, batch order and
    initial weights; the loss reads logits where the plan says (the output's final
    softmax/sigmoid left out of a copy of the spec). Returns (graph, model, split, data)."""
    torch = pytest.importorskip("torch")
    import copy

    from netspec.lower import lower
    from netspec.train.data import input_specs, load_data
    from netspec.train.schedules import SCHEDULES, for_run, lr_at
    from netspec.train.split import batch_count, batches, epoch_order, split_rows
    from netspec.yamlload import parse

    g = netspec.load(spec, params)
    plan = g.training
    src = plan.source if plan.source.startswith("sklearn:") else str(spec.parent / plan.source)
    data = load_data(src, plan.data_map(), input_specs(g), plan.target_specs(g))
    split = split_rows(data.rows, plan.seed, plan.validation, plan.test)
    [obj] = plan.objectives
    raw = copy.deepcopy(parse(spec.read_bytes(), str(spec)).data)
    raw.pop("training")
    outs = dict(g.outputs)
    if obj.reads == "input_logits":
        node = g.node(g.outputs[obj.output])
        if isinstance(node.attrs.get("activation"), dict):
            next(x for x in raw["layers"] if x.get("name") == node.name).pop("activation")
        else:
            assert raw["layers"].pop()["name"] == node.name
            outs[obj.output] = node.inputs[0]
    raw["outputs"] = outs
    weights = netspec.init_weights(g, plan.seed)
    if any(n.op == "normalize" for n in g.nodes):
        from netspec.train.adapt import adapt

        weights = adapt(g, weights, data, split.train)
    torch.manual_seed(plan.seed)  # dropout's masks
    model = netspec.compile(lower(raw, params), "torch", weights=weights)
    model.train()
    a = plan.optimizer_attrs
    if plan.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=a["lr"], momentum=a["momentum"])
    else:
        assert plan.optimizer == "adam"
        opt = torch.optim.Adam(model.parameters(), lr=a["lr"])
    loss_fn = {
        "mse": torch.nn.functional.mse_loss,
        "binary_crossentropy": torch.nn.functional.binary_cross_entropy_with_logits,
        "categorical_crossentropy": torch.nn.functional.cross_entropy,
    }[obj.loss]
    n = len(split.train)
    sched = None
    if plan.schedule:
        assert plan.schedule_attrs["interval"] == "epoch"
        sched = SCHEDULES[plan.schedule], for_run(plan.schedule_attrs, plan.epochs)

    def evaluate(rows):
        model.eval()
        x, t = data.take(rows)
        with torch.no_grad():
            y = model(*[torch.from_numpy(x[k]) for k in g.inputs])
        model.train()
        return float(loss_fn(y, torch.from_numpy(t[obj.output]))), y, t[obj.output]

    best = (float("inf"), None)
    wait = 0
    stop = plan.early_stopping
    for epoch in range(plan.epochs):
        if sched:
            for group in opt.param_groups:
                group["lr"] = lr_at(sched[0], epoch, a["lr"], sched[1])
        order = split.train[epoch_order(n, plan.seed, epoch, plan.shuffle)]
        for rows in batches(order, plan.batch_size):
            x, t = data.take(rows)
            y = model(*[torch.from_numpy(x[k]) for k in g.inputs])
            loss = loss_fn(y, torch.from_numpy(t[obj.output]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        if stop:  # Keras's rule; this test's specs monitor val_loss
            assert stop.monitor == "val_loss" and stop.mode == "min"
            current = evaluate(split.validation)[0]
            if current < best[0] - stop.min_delta:
                best, wait = (current, copy.deepcopy(model.state_dict())), 0
            else:
                wait += 1
                if wait >= stop.patience:
                    break
    assert batch_count(n, plan.batch_size) >= 1
    if stop and stop.restore_best:
        model.load_state_dict(best[1])
    return g, model, split, evaluate


def accuracy(y, t) -> float:
    import numpy as np

    y = y.numpy()
    if y.shape[-1] == 1:  # logits
        return float(np.mean((y > 0) == (t > 0.5)))
    return float(np.mean(y.argmax(-1) == t))


def test_exam_score_learns_slope_ten():
    g, model, _, _ = train_by_plan(ROOT / "specs" / "exam_score.yaml")
    w = float(model.score.weight.detach()[0, 0])
    b = float(model.score.bias.detach()[0])
    assert abs(w - 10) < 0.1 and abs(b) < 1, (w, b)  # within 1%


def test_exam_score_sleep_learns_that_sleep_does_not_count():
    g, model, _, _ = train_by_plan(ROOT / "specs" / "exam_score_sleep.yaml")
    assert g.training.inputs == {"hours": ("study_hours", "sleep_hours")}
    (study, sleep), b = model.score.weight.detach()[0].tolist(), float(model.score.bias.detach()[0])
    assert abs(study - 10) < 0.1 and abs(sleep) < 0.1 and abs(b) < 1, (study, sleep, b)


def test_xor_reaches_full_accuracy():
    _, _, split, evaluate = train_by_plan(ROOT / "specs" / "xor.yaml")
    _, y, t = evaluate(split.train)
    assert accuracy(y, t) == 1.0


@pytest.mark.parametrize("name", ["iris", "digits_mlp", "digits_cnn"])
def test_classifiers_reach_95_percent_on_their_test_split(name):
    pytest.importorskip("sklearn")
    _, _, split, evaluate = train_by_plan(ROOT / "specs" / f"{name}.yaml")
    _, y, t = evaluate(split.test)
    assert accuracy(y, t) >= 0.95


def test_output_names_that_make_history_keys_collide_are_refused():
    layers = """
    - {op: dense, name: val, units: 1}
    - {op: dense, name: other, units: 1, inputs: [x]}
    """
    text = (
        "netspec: 1\nname: m\ninputs:\n  x: {shape: [2]}\nlayers:\n"
        + textwrap.indent(textwrap.dedent(layers).strip(), "  ")
        + "\noutputs: [val, other]\ntraining:\n"
        + "  inputs: {x: [a, b]}\n  targets: {val: c, other: d}\n  loss: mse\n  optimizer: sgd\n"
    )
    with pytest.raises(SpecError, match="two keys 'val_loss'") as e:
        netspec.loads(text)
    assert e.value.path == ("training", "targets", "val")
    # one trained output has no per-output keys: no collision
    netspec.loads(text.replace("targets: {val: c, other: d}", "targets: {val: c}"))


def test_apartment_price_learns_within_the_noise():
    _, _, split, evaluate = train_by_plan(ROOT / "specs" / "apartment_price.yaml")
    _, y, t = evaluate(split.validation)
    mae = float(abs(y.numpy() - t).mean())
    assert mae < 10, mae  # the prices' noise has a standard deviation of 10
