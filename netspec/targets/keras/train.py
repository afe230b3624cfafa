"""The Keras training script of a spec with a `training:` section, and `netspec train`'s Keras side.

`generate_train(graph)` writes `<name>_train_keras.py`: a readable Keras 3 script (`compile` +
`fit`) that imports numpy, keras, safetensors and the generated model file `<name>_keras.py`,
never netspec. It reproduces netspec's training arithmetic (docs/training-arithmetic.md):

- batches in netspec's order (docs/training-data.md): a `keras.utils.PyDataset` yields consecutive
  slices of the PCG64 permutation of each epoch, and `fit` runs with `shuffle=False`;
- optimizers, schedules and probability losses with PyTorch's arithmetic: netspec's `Torch*`
  classes (optimizers.py, losses.py), copied into the script from their source, only those used;
- cross-entropy from the logits: where the plan reads an output's logits (`input_logits`), the
  model file has that output's softmax/sigmoid as a layer of its own named after the output
  (codegen.split_logits), and the script trains `keras.Model(model.inputs, <its input>)`;
- batch norm with PyTorch's training statistics: the model file of a spec that trains uses
  `TorchBatchNormalization` (train_layers.py) instead of Keras's layer (inference is the same);
- dropout is active in training (`fit` calls the model with training=True);
- early stopping is keras.callbacks.EarlyStopping; a checkpoint after every epoch
  (`checkpoint.safetensors` + `checkpoint.json`, written atomically, no pickle) holds the model's
  variables (seed-generator states included), the optimizer's, the epoch, the history and the
  early-stopping state; `resume=True` continues from it with `fit(initial_epoch=...)`.

`run_training(...)` executes exactly `generate(graph)` and `generate_train(graph)` and calls the
script's `fit`. Nothing at module level imports keras: the copied classes' source is read from
their files (`classes.class_source`).
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import SpecError
from ...ir import Graph
from ..python.pyfmt import quote
from ..python.text import docstring, wrap
from ..python.train_rules import ORDER_FUNCTIONS
from . import layout
from .classes import class_source
from .printer import call_lines

OPTIMIZER_CLASSES = {
    "sgd": "TorchSGD",
    "adam": "TorchAdam",
    "adamw": "TorchAdamW",
    "rmsprop": "TorchRMSprop",
    "adagrad": "TorchAdagrad",
}
BASES = {"TorchSGD": ["TorchOptimizer"], "TorchAdam": ["TorchOptimizer"]}
BASES["TorchAdamW"] = ["TorchOptimizer", "TorchAdam"]
BASES["TorchRMSprop"] = BASES["TorchAdagrad"] = ["TorchOptimizer"]
# each class's keyword defaults (its __init__ and its bases'), from the records' names
CLASS_DEFAULTS = {
    "TorchOptimizer": {"weight_decay": 0.0, "clip_norm": None, "clip_value": None},
    "TorchSGD": {"momentum": 0.0, "dampening": 0.0, "nesterov": False},
    "TorchAdam": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
    "TorchAdamW": {"weight_decay": 1e-2},
    "TorchRMSprop": {"alpha": 0.99, "eps": 1e-8, "momentum": 0.0, "centered": False},
    "TorchAdagrad": {"lr_decay": 0.0, "initial_accumulator": 0.0, "eps": 1e-10},
}


def _num(v: Any) -> str:
    return repr(float(v)) if isinstance(v, float) else repr(v)


def _f64(v: Any) -> str:
    return f"np.float64({_num(float(v))})"


@dataclass
class Script:
    """What one training script needs, gathered from the graph and its plan."""

    graph: Graph
    logits: dict[str, str]  # trained output -> the layer whose input is its logits
    classes: list[tuple[str, str]] = field(default_factory=list)  # (file, class) to copy
    helpers: set[str] = field(default_factory=set)

    @property
    def plan(self):
        return self.graph.training

    def copy(self, file: str, *names: str) -> None:
        for n in names:
            if (file, n) not in self.classes:
                self.classes.append((file, n))


def generate_train(graph: Graph) -> str | None:
    """`<name>_train_keras.py` for `graph`, or None when the spec has no `training:` section."""
    if graph.training is None:
        return None
    from .codegen import Generator
    from .emitters import EMITTERS

    gen = Generator(graph, EMITTERS)
    gen.source()
    return render(Script(graph, dict(gen.logits)))


# -- the script's parts ---------------------------------------------------------------------
def _out_rank(graph: Graph, output: str) -> int:
    return len(graph.value(graph.outputs[output]).shape)


def objectives(sc: Script):
    """(objective, reads logits through a layer of the model, per-example output shape)."""
    g = sc.graph
    out = []
    for o in sc.plan.objectives:
        reads = o.reads
        if reads == "input_logits" and o.output not in sc.logits:
            reads = "probabilities"  # no logits tensor to read: PyTorch's loss on probabilities
        out.append((o, reads, tuple(g.value(g.outputs[o.output]).shape)))
    return out


def loss_code(sc: Script, o, reads: str) -> str:
    """The Keras loss of one objective (`labels`: class indices, known when fit sees data)."""
    a = o.loss_attrs
    if o.loss == "mse":
        return "keras.losses.MeanSquaredError()"
    if o.loss == "mae":
        return "keras.losses.MeanAbsoluteError()"
    if o.loss == "huber":
        return f"keras.losses.Huber(delta={_f64(a['delta'])})"
    logits = reads != "probabilities"
    if o.loss == "binary_crossentropy":
        if logits:
            return "keras.losses.BinaryCrossentropy(from_logits=True)"
        sc.copy("losses.py", "TorchBinaryCrossentropy")
        return "TorchBinaryCrossentropy()"
    if not logits:
        sc.copy("losses.py", "TorchCategoricalCrossentropy")
        return f"TorchCategoricalCrossentropy(sparse={_labels(o)})"
    sc.helpers.add("cross_entropy")
    return f"cross_entropy({_labels(o)})"


def _labels(o) -> str:
    return f"labels[{quote(o.output)}]"


def metric_codes(sc: Script, o, reads: str, shape) -> list[str]:
    """The Keras metrics of one trained output, on its probabilities (from its logits where the
    model trains those)."""
    out = []
    on_logits = reads == "input_logits"
    act = {"binary_crossentropy": "sigmoid", "categorical_crossentropy": "softmax"}.get(o.loss)
    for m in sc.plan.metrics:
        if m.output != o.output:
            continue
        if m.name == "accuracy":
            if shape and shape[-1] == 1:
                t = m.attrs["threshold"]
                if on_logits:  # sigmoid(z) > t where z > log(t / (1 - t))
                    t = 0.0 if t == 0.5 else math.log(t / (1 - t))
                kw = "" if t == 0.5 else f", threshold={_num(float(t))}"
                out.append(f'keras.metrics.BinaryAccuracy(name="accuracy"{kw})')
            else:
                sc.helpers.add("accuracy")
                out.append(f"accuracy({_labels(o)})")
            continue
        fn = {"mae": "mean_absolute_error", "mse": "mean_squared_error"}[m.name]
        cls = {"mae": "MeanAbsoluteError", "mse": "MeanSquaredError"}[m.name]
        if on_logits and act:
            sc.helpers.add("on_probabilities")
            out.append(
                f"on_probabilities(keras.metrics.{fn}, keras.activations.{act}, {quote(m.name)})"
            )
        else:
            out.append(f"keras.metrics.{cls}(name={quote(m.name)})")
    return out


def optimizer_code(sc: Script) -> list[str]:
    """The body of `make_optimizer(steps_per_epoch, epochs)`."""
    plan = sc.plan
    a = dict(plan.optimizer_attrs)
    lr = a.pop("lr")
    lines = []
    rate = _num(float(lr))
    if plan.schedule:
        s = dict(plan.schedule_attrs)
        unit = "steps_per_epoch" if s["interval"] == "epoch" else "1"
        spu = "" if unit == "1" else ", steps_per_unit=steps_per_epoch"
        if plan.schedule == "cosine":
            sc.copy("optimizers.py", "TorchCosineLR")
            if s.get("t_max") is None:  # the run after warm-up (netspec.train.schedules.for_run)
                units = "epochs" if s["interval"] == "epoch" else "epochs * steps_per_epoch"
                t_max = f"max({units} - {s['warmup']}, 1)" if s["warmup"] else f"max({units}, 1)"
            else:
                t_max = str(s["t_max"])
            eta = "" if not s["eta_min"] else f", eta_min={_num(float(s['eta_min']))}"
            lines.append(f"rate = TorchCosineLR({rate}, t_max={t_max}{eta}{spu})")
        else:
            every = unit if plan.schedule == "exponential" else f"{s['step_size']}"
            if plan.schedule == "step" and unit != "1":
                every = f"{s['step_size']} * steps_per_epoch"
            elif plan.schedule == "step":
                every = str(s["step_size"])
            args = [_f64(lr), every, _f64(s["gamma"]), "staircase=True"]
            lines += [
                line[4:]
                for line in call_lines(
                    "    rate = ", "keras.optimizers.schedules.ExponentialDecay", args, ""
                )
            ]
        if s["warmup"]:
            sc.copy("optimizers.py", "LinearWarmup")
            start = s["warmup_start"]
            start = "" if start == 1 / 3 else f", warmup_start={_num(float(start))}"
            lines.append(f"rate = LinearWarmup(rate, {rate}, warmup={s['warmup']}{start}{spu})")
        rate = "rate"
    builtin = (
        plan.optimizer == "sgd"
        and not plan.schedule
        and not a["dampening"]
        and not a["weight_decay"]
        and a["clip_norm"] is None
    )
    if builtin:  # Keras's SGD computes PyTorch's steps here (docs/training-arithmetic.md)
        kw = [f"learning_rate={rate}"]
        if a["momentum"]:
            kw.append(f"momentum={_f64(a['momentum'])}")
        if a["nesterov"]:
            kw.append("nesterov=True")
        if a["clip_value"] is not None:
            kw.append(f"clipvalue={_num(float(a['clip_value']))}")
        lines.append(f"return keras.optimizers.SGD({', '.join(kw)})")
        return lines
    cls = OPTIMIZER_CLASSES[plan.optimizer]
    sc.copy("optimizers.py", *BASES[cls], cls)
    defaults: dict[str, Any] = {}
    for c in [*BASES[cls], cls]:
        defaults.update(CLASS_DEFAULTS[c])
    kw = [rate]
    for k, v in a.items():
        if k in defaults and v != defaults[k]:
            number = isinstance(v, int) and not isinstance(v, bool)
            kw.append(f"{k}={_num(float(v) if number else v)}")
    lines.append(f"return {cls}({', '.join(kw)})")
    return lines


def _table(name: str, items: dict[str, str], comment: str) -> list[str]:
    body = ", ".join(f"{quote(k)}: {v}" for k, v in items.items())
    one = f"{name} = {{{body}}}  # {comment}"
    if len(one) <= 100:
        return [one]
    return [
        f"# {comment}",
        f"{name} = {{",
        *[f"    {quote(k)}: {v}," for k, v in items.items()],
        "}",
    ]


def _tuple(items) -> str:
    items = [quote(i) for i in items]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def _list(head: str, items: list[str]) -> list[str]:
    """`head[items]` on one line, or one item per line, as ruff format lays a list out."""
    one = f"{head}[{', '.join(items)}]"
    if len(one) <= 100:
        return [one]
    indent = head[: len(head) - len(head.lstrip())]
    return [f"{head}[", *[f"{indent}    {i}," for i in items], f"{indent}]"]


def _cols(c) -> str:
    return quote(c) if isinstance(c, str) else "[" + ", ".join(quote(x) for x in c) + "]"


def _shape(shape) -> str:
    items = ["None" if not isinstance(d, int) else str(d) for d in shape]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def _value(v) -> str:
    return quote(v) if isinstance(v, str) else _num(float(v))


def render(sc: Script) -> str:  # noqa: PLR0915 - one template, top to bottom
    g, plan = sc.graph, sc.graph.training
    name = g.name
    objs = objectives(sc)
    single = len(objs) == 1
    spec = Path(g.source).name if g.source else "a spec"

    # -- the model the losses train
    train_outputs = []
    for o, reads, _ in objs:
        if o.output in sc.logits and reads == "input_logits":
            layer = sc.logits[o.output]
            train_outputs.append(
                f"layers.Identity(name={quote(o.output)})"
                f"(model.get_layer({quote(layer)}).input),  # logits"
            )
        else:
            k = list(g.outputs).index(o.output)
            train_outputs.append(f"model.outputs[{k}],  # {o.output}")
    as_is = not sc.logits and [o.output for o, _, _ in objs] == list(g.outputs)

    losses = [loss_code(sc, o, reads) for o, reads, _ in objs]
    metrics = [metric_codes(sc, o, reads, shape) for o, reads, shape in objs]
    opt = optimizer_code(sc)
    weights = [o.weight for o, _, _ in objs]

    # -- layouts: channels-first spec data -> the Keras model's boundary
    moved_in = [k for k, v in g.inputs.items() if layout.boundary(v.rank) != layout.logical(v.rank)]
    moved_out = [o.output for o, _, shape in objs if len(shape) >= 3]

    lines: list[str] = []
    text = [
        f"{name}: training script generated by netspec from {spec}.",
        "",
        f"Trains the Keras model of {name}_keras.py as the spec's `training:` section says, "
        "with netspec's arithmetic: PyTorch's optimizer, loss and batch-norm formulas, netspec's "
        "batch order (netspec shuffles, `fit` does not: shuffle=False), cross-entropy computed "
        "from the logits. It imports keras, numpy and safetensors (scikit-learn for sklearn: "
        "data), never netspec.",
        "",
        "Data arrays are in the spec's layout (channels-first); `to_keras` moves an image's "
        "channel axis last for the model. Data paths are relative to the working directory.",
    ]
    for para in text:
        lines += wrap(para, 96, cut_long=True) if para else [""]
    options = "[--data FILE] [--epochs N] [--checkpoints DIR] [--resume]"
    usage = f"    python {name}_train_keras.py {options}"
    if len(usage) > 100:
        usage = f"    python {name}_train_keras.py --help"
    usage = ["", usage]
    out = docstring([*lines, *usage], 0)
    out += [
        "",
        "import argparse",
        "import csv",
        "import json",
        "import math",
        "import os",
        "from fractions import Fraction",
        "from pathlib import Path",
        "",
        "import keras",
        "import numpy as np",
    ]
    needs_ops = bool(sc.classes)
    needs_layers = not as_is and bool(sc.logits)
    names = [n for n, used in (("layers", needs_layers), ("ops", needs_ops)) if used]
    if names:
        out.append(f"from keras import {', '.join(names)}")
    out += [
        "from safetensors.numpy import load_file, save_file",
        "",
        f"EPOCHS = {plan.epochs}",
        f"BATCH_SIZE = {plan.batch_size}",
        f"SEED = {plan.seed}",
        f"SHUFFLE = {plan.shuffle}",
        f"DATA = {quote(plan.source) if plan.source else 'None'}  # --data overrides it",
        f"VALIDATION = {_value(plan.validation)}  # a fraction of the data, or a file",
        f"TEST = {_value(plan.test)}",
    ]
    out += _table("INPUTS", {k: _cols(c) for k, c in plan.inputs.items()}, "input -> column(s)")
    out += _table(
        "TARGETS", {o.output: _cols(o.target) for o, _, _ in objs}, "trained output -> column(s)"
    )
    shapes = {k: _shape(v.shape) for k, v in g.inputs.items()}
    shapes |= {o.output: _shape(s) for o, _, s in objs}
    out += _table("SHAPES", shapes, "per example, the spec's layout (None: any size)")
    out += _table(
        "DTYPES", {k: quote(v.dtype) for k, v in g.inputs.items()}, "of the model's inputs"
    )
    classes = [o.output for o, _, _ in objs if o.kind == "classes"]
    out.append(f"CLASS_TARGETS = {_tuple(classes)}  # class labels or one-hot rows")
    out.append(f"CHANNELS_LAST = {_tuple(moved_in + moved_out)}  # channel axis moved last")
    out.append(f"OUTPUTS = {_tuple(o.output for o, _, _ in objs)}  # the trained outputs")
    norms = {
        n.name: (n.inputs[0], n.attrs["axis"])
        for n in g.nodes
        if n.op == "normalize" and n.inputs[0] in g.inputs
    }
    if norms:
        items = {k: f"({quote(i)}, {a})" for k, (i, a) in norms.items()}
        out += _table("NORMALIZE", items, "layer -> (the input it reads, its axis)")
    es = plan.early_stopping
    if es is not None:
        args = [
            f"monitor={quote(es.monitor)}",
            f"patience={es.patience}",
            f"mode={quote(es.mode)}",
            f"min_delta={_num(float(es.min_delta))}",
            f"restore_best_weights={es.restore_best}",
        ]
        out += call_lines("EARLY_STOPPING = ", "dict", args, "")
    out.append("")

    for file, cls in sc.classes:
        out += ["", class_source(file, cls)]
    out.append(BATCHES)
    out.append(TRAINING_MODEL_HEAD)
    if as_is:
        out += ["    return model"]
    else:
        out += ["    outputs = ["]
        out += [f"        {t}" for t in train_outputs]
        out += ["    ]", "    return keras.Model(model.inputs, outputs)"]
    out += ["", ""]
    out.append(
        "def make_optimizer(steps_per_epoch, epochs=EPOCHS):\n"
        '    """The optimizer, PyTorch\'s arithmetic; its rate follows the schedule."""'
    )
    out += [f"    {line}" for line in opt]
    out += ["", ""]
    out.append(
        "def losses_and_metrics(targets):\n"
        '    """Each trained output\'s loss and metrics (categorical ones take class labels or\n'
        '    one-hot rows, as the data has them)."""'
    )
    if any("labels[" in x for x in [*losses, *[m for ms in metrics for m in ms]]):
        out.append(
            "    labels = {k: k in CLASS_TARGETS and y.ndim == len(SHAPES[k]) for k, y in "
            "targets.items()}"
        )
    if single:
        out.append(f"    loss = {losses[0]}")
        out += _list("    metrics = ", metrics[0])
        out.append("    return loss, metrics, None")
    else:
        out += _list("    loss = ", losses)
        out += _list("    metrics = ", ["[" + ", ".join(m) + "]" for m in metrics])
        lw = None if all(w == 1 for w in weights) else "[" + ", ".join(map(_num, weights)) + "]"
        out += [
            "    for fn, more in zip(loss, metrics, strict=True):  # see example_weighted",
            '        more.append(keras.metrics.MeanMetricWrapper(fn.call, name="loss_mean"))',
            f"    return loss, metrics, {lw}",
        ]
    for helper in ("cross_entropy", "accuracy", "on_probabilities"):
        if helper in sc.helpers:
            out.append(HELPERS[helper])
    out.append(CHECKPOINT)
    out.append(FIT_HEAD)
    if es is not None:
        out.append("    stopping = keras.callbacks.EarlyStopping(**EARLY_STOPPING)")
    else:
        out.append("    stopping = None")
    out.append(FIT_TAIL)
    if norms:
        out.append(ADAPT)
    out.append(DATA_CODE.replace("<ORDER_FUNCTIONS>", ORDER_FUNCTIONS.strip("\n")))
    main = MAIN.replace("{name}", name)
    line = f"    from {name}_keras import build_model, load_weights, save_weights\n"
    if len(line) > 101:  # as ruff lays it out
        names = "".join(f"        {n},\n" for n in ("build_model", "load_weights", "save_weights"))
        main = main.replace(line, f"    from {name}_keras import (\n{names}    )\n")
    if norms:
        main = main.replace(
            "        load_weights(model, args.weights)\n",
            "        load_weights(model, args.weights)\n    adapt(model, train[0])\n",
        )
    out.append(main)
    text = "\n".join(out)
    return _tidy(text)


def _tidy(text: str) -> str:
    """Two blank lines before each top-level definition, one newline at the end."""
    lines = text.split("\n")
    out: list[str] = []
    for line in lines:
        top = line.startswith(("def ", "class ", "@", "if __name__"))
        if top and out and not out[-1].startswith("@"):
            while out and out[-1] == "":
                out.pop()
            out += ["", ""]
        out.append(line)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


BATCHES = '''
def to_keras(arrays):
    """Arrays in the spec's layout -> the model's: floats in Keras's floatx, an image's channel
    axis (axis 1) moved last."""
    out = {}
    for k, a in arrays.items():
        a = np.asarray(a)
        if a.dtype.kind == "f":
            a = a.astype(keras.config.floatx())
        if k in CHANNELS_LAST and a.ndim == len(SHAPES[k]) + 1:
            a = np.moveaxis(a, 1, -1)
        out[k] = a
    return out


class Batches(keras.utils.PyDataset):
    """netspec's batches: consecutive BATCH_SIZE rows of `batch_order(n, epoch)` (the last batch
    keeps the remainder). `epoch` is set by `Progress` when each epoch begins; validation and
    evaluation data (`shuffle=False`) keep their order."""

    def __init__(self, data, shuffle=False):
        super().__init__()
        inputs, targets = data
        self.x = to_keras(inputs)
        self.y = to_keras({k: targets[k] for k in OUTPUTS})
        self.n = len(next(iter(self.x.values())))
        self.shuffle = shuffle
        self.epoch = 0
        self.order = (None, None)

    def __len__(self):
        return -(-self.n // BATCH_SIZE)

    def __getitem__(self, i):
        if self.order[0] != self.epoch:
            order = batch_order(self.n, self.epoch) if self.shuffle else np.arange(self.n)
            self.order = (self.epoch, order)
        rows = self.order[1][i * BATCH_SIZE : (i + 1) * BATCH_SIZE]
        x = {k: v[rows] for k, v in self.x.items()}
        y = tuple(self.y[k][rows] for k in OUTPUTS)
        return single(x), single(y)


def single(items):
    """A model with one input (or output) takes an array, not a collection of one."""
    if len(items) != 1:
        return items
    return next(iter(items.values())) if isinstance(items, dict) else items[0]
'''

TRAINING_MODEL_HEAD = '''
def training_model(model):
    """The model the losses train: the trained outputs, as logits where a cross-entropy reads
    them (the input of the output's own softmax/sigmoid layer); it shares `model`'s layers."""'''

HELPERS = {}
HELPERS["cross_entropy"] = '''
def cross_entropy(labels):
    """Categorical cross-entropy from logits against class labels or one-hot rows."""
    if labels:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return keras.losses.CategoricalCrossentropy(from_logits=True)
'''

HELPERS["accuracy"] = '''
def accuracy(labels):
    """The arg-max over the classes against class labels or one-hot rows."""
    if labels:
        return keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    return keras.metrics.CategoricalAccuracy(name="accuracy")
'''

HELPERS["on_probabilities"] = '''
def on_probabilities(fn, activation, name):
    """A metric of an output's probabilities, computed from the logits the model trains."""

    def metric(y_true, logits):
        return fn(y_true, activation(logits))

    return keras.metrics.MeanMetricWrapper(metric, name=name)
'''

CHECKPOINT = '''
class Progress(keras.callbacks.Callback):
    """Sets each epoch's batch order and keeps the history (first of the callbacks); `report`:
    the last one, after the checkpoint, calls on_epoch_end(epoch, logs)."""

    def __init__(self, data, history):
        super().__init__()
        self.data = data
        self.history = history

    def on_epoch_begin(self, epoch, logs=None):
        self.data.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        for k, v in example_weighted(logs).items():
            self.history.setdefault(k, []).append(float(v))

    @staticmethod
    def report(on_epoch_end):
        def call(epoch, logs):
            on_epoch_end(epoch, {k: float(v) for k, v in logs.items()})

        return keras.callbacks.LambdaCallback(on_epoch_end=call)


class Checkpoint(keras.callbacks.Callback):
    """After every epoch, `checkpoint.safetensors` (the model's variables, seed-generator states
    included, the optimizer's and early stopping's best weights) and `checkpoint.json` (epoch,
    history, early-stopping state), each written to a temporary file and renamed."""

    def __init__(self, folder, model, history, stopping=None):
        super().__init__()
        self.folder = Path(folder)
        self.net = model
        self.history = history
        self.stopping = stopping
        self.restored = None
        self.stopped = False  # early stopping had ended the run

    def on_epoch_end(self, epoch, logs=None):
        self.folder.mkdir(parents=True, exist_ok=True)
        arrays = {f"model.{i}": np.asarray(v) for i, v in enumerate(self.net.variables)}
        for i, v in enumerate(self.model.optimizer.variables):
            arrays[f"optimizer.{i}"] = np.asarray(v)
        state = {"epoch": epoch, "history": self.history}
        if self.stopping is not None:
            s = self.stopping
            best = None if s.best is None else float(s.best)
            state["early_stopping"] = dict(
                wait=s.wait, best=best, best_epoch=s.best_epoch, stopped_epoch=s.stopped_epoch
            )
            for i, w in enumerate(s.best_weights or []):
                arrays[f"best.{i}"] = np.asarray(w)
        arrays["epoch"] = np.array(epoch)
        arrays = {k: np.ascontiguousarray(a) for k, a in arrays.items()}
        tmp = self.folder / "checkpoint.safetensors.tmp"
        save_file(arrays, str(tmp), metadata={"epoch": str(epoch)})
        os.replace(tmp, self.folder / "checkpoint.safetensors")
        tmp = self.folder / "checkpoint.json.tmp"
        tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
        os.replace(tmp, self.folder / "checkpoint.json")

    def restore(self, trainer):
        """Load the last checkpoint into the model and optimizer; the next epoch to run."""
        state = json.loads((self.folder / "checkpoint.json").read_text(encoding="utf-8"))
        arrays = load_file(str(self.folder / "checkpoint.safetensors"))
        if f"model.{len(self.net.variables) - 1}" not in arrays:
            raise ValueError(f"{self.folder}: the checkpoint is not of this model")
        for i, v in enumerate(self.net.variables):
            v.assign(arrays[f"model.{i}"].reshape(v.shape))  # a scalar comes back as [1]
        trainer.optimizer.build(trainer.trainable_variables)
        for i, v in enumerate(trainer.optimizer.variables):
            v.assign(arrays[f"optimizer.{i}"].reshape(v.shape))
        if int(arrays["epoch"].reshape(())) != state["epoch"]:
            raise ValueError(f"{self.folder}: the checkpoint's two files are of other epochs")
        self.history.update(state["history"])
        self.stopped = (state.get("early_stopping") or {}).get("stopped_epoch", 0) > 0
        best = [arrays[k] for k in sorted((k for k in arrays if k.startswith("best.")), key=_index)]
        self.restored = (state.get("early_stopping"), best or None)
        return state["epoch"] + 1

    def on_train_begin(self, logs=None):
        # EarlyStopping resets itself when training begins: give it back its state
        if self.stopping is not None and self.restored and self.restored[0]:
            for k, v in self.restored[0].items():
                setattr(self.stopping, k, v)
            self.stopping.best_weights = self.restored[1]


def example_weighted(logs):
    """`logs` (changed in place, for the callbacks after `Progress`) with netspec's keys and
    means. With several outputs, Keras averages each output's loss over the batches unweighted
    (a smaller last batch counts as much as a full one); the `<output>_loss_mean` metric is the
    example-weighted mean, and becomes `<output>_loss`."""
    logs.pop("learning_rate", None)
    for k in [k for k in logs if k.endswith("_loss_mean")]:
        logs[k.removesuffix("_mean")] = logs.pop(k)
    return logs


def _index(key):
    return int(key.rpartition(".")[2])
'''

FIT_HEAD = '''
def fit(
    model,
    train,
    validation=None,
    *,
    epochs=EPOCHS,
    checkpoint_dir=None,
    resume=False,
    on_epoch_end=None,
    tensorboard=None,
):
    """Train `model` (from build_model) on `train` = (inputs, targets), dicts of arrays in the
    spec's layout; `validation` likewise. A checkpoint after each epoch in `checkpoint_dir`;
    `resume`: continue from it; `tensorboard`: a folder for TensorBoard event files. Returns
    the history: loss, metrics, val_loss, val_<metric>."""
    data = Batches(train, shuffle=SHUFFLE)
    trainer = training_model(model)
    loss, metrics, weights = losses_and_metrics(train[1])
    trainer.compile(
        optimizer=make_optimizer(len(data), epochs),
        loss=loss,
        loss_weights=weights,
        metrics=metrics,
    )
    history = {}'''

FIT_TAIL = '''    callbacks = [Progress(data, history)]
    callbacks += [stopping] if stopping is not None else []
    start = 0
    if checkpoint_dir is not None:
        checkpoint = Checkpoint(checkpoint_dir, model, history, stopping)
        if resume:
            start = checkpoint.restore(trainer)
            if checkpoint.stopped:  # early stopping ended that run: nothing more to train
                start = epochs
        callbacks.append(checkpoint)
    if tensorboard is not None:  # after Progress, which gives the values netspec's names
        callbacks.append(keras.callbacks.TensorBoard(tensorboard, write_graph=False))
    if on_epoch_end is not None:
        callbacks.append(Progress.report(on_epoch_end))
    trainer.fit(
        data,
        epochs=epochs,
        initial_epoch=start,
        validation_data=None if validation is None else Batches(validation),
        shuffle=False,
        callbacks=callbacks,
        verbose=0,
    )
    return history


def evaluate(model, data):
    """Loss and metrics of `model` on `data` = (inputs, targets), as `fit` reports them."""
    trainer = training_model(model)
    loss, metrics, weights = losses_and_metrics(data[1])
    trainer.compile(loss=loss, loss_weights=weights, metrics=metrics)
    got = trainer.evaluate(Batches(data), verbose=0, return_dict=True)
    return {k: float(v) for k, v in example_weighted(got).items()}
'''

ADAPT = '''
def adapt(model, inputs):
    """Each normalize layer's mean and population variance from the training rows: one per
    entry of its axis (counted with the batch as 0, in the spec's layout), every other axis
    averaged over; one for every value without an axis (Keras's Normalization.adapt)."""
    for name, (source, axis) in NORMALIZE.items():
        x = np.asarray(inputs[source], dtype=np.float64)
        axes = None if axis is None else tuple(i for i in range(x.ndim) if i != axis)
        layer = model.get_layer(name)
        mean, variance = layer.weights
        mean.assign(np.reshape(x.mean(axis=axes), mean.shape))
        variance.assign(np.reshape(x.var(axis=axes), variance.shape))
'''

DATA_CODE = '''
def read_table(source):
    """The named columns or arrays of a data file (CSV/TSV with a header, .npz, .npy) or of a
    scikit-learn data set (`sklearn:iris`); the first axis runs over the examples."""
    if source.startswith("sklearn:"):
        from sklearn import datasets

        bunch = getattr(datasets, "load_" + source.removeprefix("sklearn:"))()
        table = {"data": bunch.data, "target": bunch.target}
        if "images" in bunch:
            table["images"] = bunch.images
        table.update(zip(bunch.feature_names, bunch.data.T, strict=True))
        return table
    path = Path(source)
    if path.suffix == ".npz":
        with np.load(path) as arrays:
            return {k: arrays[k] for k in arrays.files}
    if path.suffix == ".npy":
        return {path.stem: np.load(path, mmap_mode="r")}
    sep = "\\t" if path.suffix == ".tsv" else ","
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f, delimiter=sep, skipinitialspace=True))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def columns(table, names, n, shape):
    """One column or array, or several side by side, in the per-example `shape`."""
    if isinstance(names, str):
        a = np.asarray(table[names])
    else:
        a = np.concatenate([np.asarray(table[c]).reshape(n, -1) for c in names], axis=1)
    if None not in shape and a.size == n * math.prod(shape):
        a = a.reshape(n, *shape)
    return a


def read_data(source):
    """(inputs, targets) from `source`, by INPUTS and TARGETS, in the spec's layout."""
    table = read_table(source)
    n = len(next(iter(table.values())))
    inputs = {k: columns(table, c, n, SHAPES[k]).astype(DTYPES[k]) for k, c in INPUTS.items()}
    targets = {}
    for k, c in TARGETS.items():
        shape = SHAPES[k]
        labels = k in CLASS_TARGETS and None not in shape[:-1]
        labels = labels and columns(table, c, n, ()).size == n * math.prod(shape[:-1])
        if labels:  # class indices: the output's shape without its class axis
            targets[k] = columns(table, c, n, shape[:-1]).astype(np.int64)
        else:
            targets[k] = columns(table, c, n, shape).astype(np.float32)
    return inputs, targets


<ORDER_FUNCTIONS>


def take(data, rows):
    return tuple({k: np.asarray(a[rows]) for k, a in part.items()} for part in data)


def split(data):
    """(train, validation, test): netspec's split of the rows by SEED, or files of their own."""
    n = len(next(iter(data[0].values())))
    n_val, n_test = count(n, VALIDATION), count(n, TEST)
    val, test, train = np.split(permutation(n, 1), [n_val, n_val + n_test])
    parts = [take(data, np.sort(rows)) if len(rows) else None for rows in (val, test)]
    for i, given in enumerate((VALIDATION, TEST)):
        if isinstance(given, str):
            parts[i] = read_data(given)
    return take(data, np.sort(train)), parts[0], parts[1]
'''

MAIN = '''
def main(argv=None):
    """Read the data, split it, build the model, train it, save its weights."""
    # the model file beside this one
    from {name}_keras import build_model, load_weights, save_weights

    parser = argparse.ArgumentParser(description=__doc__.split("\\n")[0])
    parser.add_argument("--data", default=DATA, help="data file, or sklearn:NAME")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--weights", help="start from these canonical weights (safetensors)")
    parser.add_argument("--checkpoints", help="write a checkpoint into this folder every epoch")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    parser.add_argument("-o", "--output", help="default: <this file's name>_trained.safetensors")
    parser.add_argument("--tensorboard", help="a folder for TensorBoard event files")
    args = parser.parse_args(argv)
    if args.data is None:
        parser.error("the spec names no data: give --data FILE")
    keras.utils.set_random_seed(SEED)
    train, validation, test = split(read_data(args.data))
    model = build_model()
    if args.weights:
        load_weights(model, args.weights)

    def report(epoch, logs):
        print(f"epoch {epoch + 1}: " + ", ".join(f"{k} {v:.6g}" for k, v in logs.items()))

    fit(
        model,
        train,
        validation,
        epochs=args.epochs,
        checkpoint_dir=args.checkpoints,
        resume=args.resume,
        on_epoch_end=report,
        tensorboard=args.tensorboard,
    )
    if test is not None:
        print("test: " + ", ".join(f"{k} {v:.6g}" for k, v in evaluate(model, test).items()))
    output = args.output or __file__.replace("_train_keras.py", "_trained.safetensors")
    save_weights(model, output)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
'''


# -- netspec train's Keras side -------------------------------------------------------------
@contextlib.contextmanager
def precision(dtype: str):
    """Keras in `dtype` (floatx and the global dtype policy: a policy made earlier keeps the
    floatx it was made with), TF32 off on TensorFlow; restored afterwards."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_tensor_float_32_execution(False)
    before = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        yield
    finally:
        keras.config.set_floatx(before[0])
        keras.config.set_dtype_policy(before[1])


def load_script(graph: Graph, model_module):
    """Execute `generate_train(graph)` with its `from <name>_keras import ...` resolving to
    `model_module` (put in sys.modules under that name while it runs, restored after)."""
    from ..python.run import run_source

    text = generate_train(graph)
    if text is None:
        raise SpecError(f"'{graph.name}' has no training: section")
    key = f"{graph.name}_keras"
    saved = sys.modules.get(key)
    sys.modules[key] = model_module
    try:
        return run_source(text, "keras_train", graph.name)
    finally:
        if saved is None:
            sys.modules.pop(key, None)
        else:
            sys.modules[key] = saved


@dataclass
class Trained:
    """A trained Keras model and how it got there (the same interface as the PyTorch side)."""

    model: Any
    history: dict[str, list[float]]
    graph: Graph
    module: Any  # the executed model source
    script: Any  # the executed training script
    dtype: str = "float32"

    def weights(self, dtype: str = "float32") -> dict:
        """Canonical weights (keys and layouts of the IR), float32 unless asked otherwise."""
        import numpy as np

        out: dict = {}
        parts = getattr(self.module, "_parts", None)
        for layer in self.model.layers:
            pieces = parts(layer) if parts else ([(layer, "")] if layer.weights else [])
            for part, suffix in pieces:
                from_keras = self.module.CONVERSIONS[type(part).__name__][1]
                arrays = [np.asarray(v, dtype=dtype) for v in part.get_weights()]
                node = layer.name.partition("-")[0]
                for p, a in from_keras(*arrays).items():
                    out[f"{node}.{p}{suffix}"] = np.ascontiguousarray(a, dtype=dtype)
        return {k: out[k] for k in self.graph.weight_shapes()}

    def evaluate(self, data) -> dict[str, float]:
        with precision(self.dtype):
            return self.script.evaluate(self.model, data)

    def predict(self, inputs) -> dict:
        """The model's outputs (spec layout) on `inputs` (spec layout)."""
        import numpy as np

        with precision(self.dtype):
            x = self.script.single(self.script.to_keras(dict(inputs)))
            got = self.model.predict(x, batch_size=self.script.BATCH_SIZE, verbose=0)
        got = got if isinstance(got, (list, tuple)) else [got]
        out = {}
        for name, a in zip(self.graph.outputs, got, strict=True):
            a = np.asarray(a)
            out[name] = np.moveaxis(a, -1, 1) if a.ndim >= 4 else a
        return out


def has_checkpoint(checkpoint_dir) -> bool:
    """Whether `checkpoint_dir` holds a checkpoint a run can resume from."""
    folder = Path(checkpoint_dir)
    return (folder / "checkpoint.json").is_file() and (folder / "checkpoint.safetensors").is_file()


def run_training(
    graph: Graph,
    weights: dict,
    train,
    validation=None,
    *,
    epochs: int | None = None,
    checkpoint_dir=None,
    resume: bool = False,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    dtype: str = "float32",
    tensorboard=None,
) -> Trained:
    """Train `graph`'s Keras model from the canonical `weights` by exactly its generated model
    and training sources; `train`/`validation`: (inputs, targets) in the spec's layout."""
    if graph.training is None:
        raise SpecError(f"'{graph.name}' has no training: section")
    if dtype not in ("float32", "float64"):
        raise SpecError(f"dtype must be float32 or float64, not {dtype!r}")
    if resume and (checkpoint_dir is None or not has_checkpoint(checkpoint_dir)):
        raise SpecError(
            f"nothing to resume: no checkpoint in {checkpoint_dir}",
            hint="train without --resume first",
        )
    from ..python.run import run_source
    from .codegen import Generator
    from .emitters import EMITTERS

    with precision(dtype):
        import keras

        module = run_source(Generator(graph, EMITTERS).source(), "keras", graph.name)
        script = load_script(graph, module)
        keras.utils.set_random_seed(graph.training.seed)
        model = module.build_model()
        module.load_weights(model, dict(weights))
        history = script.fit(
            model,
            train,
            validation,
            epochs=graph.training.epochs if epochs is None else epochs,
            checkpoint_dir=None if checkpoint_dir is None else str(checkpoint_dir),
            resume=resume,
            on_epoch_end=on_epoch_end,
            tensorboard=None if tensorboard is None else str(tensorboard),
        )
    return Trained(model, history, graph, module, script, dtype)
