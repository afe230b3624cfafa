"""Lowering a spec's `training:` section into a `TrainPlan` (see plan.py), with located errors.

The JSON Schema (netspec.schema, `training_defs`) has checked the section's structure and its
literal values by then; here the rest is checked: values given by params (`lr: $lr`, `--set`),
names against the model (inputs, outputs), losses against the outputs they read, metrics
against the losses, the early-stopping monitor against the history the run will record. Every
error carries the YAML path of the offending node (`training.optimizer.lr`), which the loader
turns into file:line:col. Nothing here imports numpy or a framework.
"""

from __future__ import annotations

import dataclasses
from pathlib import PurePosixPath
from typing import Any

from .. import expr
from ..errors import Path, SpecError, did_you_mean
from ..ops.base import Attr, Invalid
from .losses import LOSSES, loss_input
from .metrics import METRICS
from .optimizers import OPTIMIZERS
from .plan import SETTINGS, STOPPING, WEIGHT, Columns, EarlyStopping, Metric, Objective, TrainPlan
from .record import Record
from .schedules import SCHEDULES

TABLES = {"optimizer": OPTIMIZERS, "loss": LOSSES, "schedule": SCHEDULES, "metric": METRICS}

# What each loss's target data is (a data.TargetSpec kind), and the kinds each metric fits.
LOSS_KIND = {
    "mse": "regression",
    "mae": "regression",
    "huber": "regression",
    "binary_crossentropy": "binary",
    "categorical_crossentropy": "classes",
}
METRIC_KINDS = {
    "accuracy": ("binary", "classes"),
    "mae": ("regression", "binary"),
    "mse": ("regression", "binary"),
}
# What `sources.open_source` reads (kept equal by a test; sources imports numpy).
DATA_SUFFIXES = (".csv", ".tsv", ".npz", ".npy")
SKLEARN_SETS = ("breast_cancer", "diabetes", "digits", "iris", "wine")

_KIND_WORDS = {
    "regression": "real-valued targets",
    "binary": "0/1 targets",
    "classes": "class targets",
}


def lower_training(raw: dict, graph, env: dict[str, Any]) -> TrainPlan:
    """The TrainPlan of a structurally valid `training:` section of `graph`'s spec; `env` holds
    the spec's params as resolved (overrides included). Raises a SpecError with a path."""
    return _Planner(raw, graph, env).plan()


class _Planner:
    def __init__(self, raw: dict, graph, env: dict[str, Any]):
        self.raw = raw
        self.graph = graph
        self.env = env

    def err(self, msg: str, tail: Path, hint: str | None = None, key: bool = False) -> SpecError:
        return SpecError(msg, ("training", *tail), hint=hint, key=key)

    def value(self, v: Any, tail: Path) -> Any:
        """`v` with `$param` / `${expression}` substituted (lists item by item)."""
        try:
            return expr.resolve(v, self.env)
        except expr.ExprError as e:
            raise self.err(e.message, tail, e.hint) from None

    def checked(self, a: Attr, v: Any, tail: Path) -> Any:
        v = self.value(v, tail)
        try:
            return a.check(v)
        except Invalid as e:
            raise self.err(e.message, tail, e.hint) from None

    def setting(self, a: Attr, raw: dict, tail: Path = ()) -> Any:
        if a.name not in raw:
            return a.default
        return self.checked(a, raw[a.name], (*tail, a.name))

    # -- the whole section ----------------------------------------------------------------
    def plan(self) -> TrainPlan:
        raw = self.raw
        source = self.source(raw["data"], ("data",)) if "data" in raw else None
        inputs = self.inputs(raw["inputs"])
        targets = self.targets(raw["targets"])
        objectives = self.objectives(raw["loss"], targets)
        opt, opt_attrs = self.record("optimizer", raw["optimizer"], ("optimizer",))
        self.check_optimizer(opt, opt_attrs, raw["optimizer"])
        sched, sched_attrs = None, {}
        if "schedule" in raw:
            sched, sched_attrs = self.record("schedule", raw["schedule"], ("schedule",))
        settings = {k: self.setting(a, raw) for k, a in SETTINGS.items()}
        metrics = self.metrics(raw.get("metrics", []), objectives)
        validation = self.split(raw, "validation")
        test = self.split(raw, "test")
        if isinstance(validation, float) and isinstance(test, float) and validation + test >= 1:
            raise self.err(
                f"validation {validation:g} and test {test:g} leave no examples for training",
                ("test",) if "test" in raw else ("validation",),
                "the two fractions together must be below 1, e.g. validation: 0.2, test: 0.2",
            )
        plan = TrainPlan(
            inputs=inputs,
            objectives=objectives,
            optimizer=opt,
            optimizer_attrs=opt_attrs,
            schedule=sched,
            schedule_attrs=sched_attrs,
            batch_size=settings["batch_size"],
            epochs=settings["epochs"],
            seed=settings["seed"],
            shuffle=settings["shuffle"],
            metrics=metrics,
            source=source,
            validation=validation,
            test=test,
        )
        self.check_keys(plan)
        if "early_stopping" in raw:
            stop = self.early_stopping(raw["early_stopping"], plan)
            plan = dataclasses.replace(plan, early_stopping=stop)
        return plan

    # -- data -----------------------------------------------------------------------------
    def source(self, v: Any, tail: Path) -> str:
        v = self.value(v, tail)
        if not isinstance(v, str) or not v.strip():
            raise self.err(
                f"expected a data file or sklearn:NAME, got {_show(v)}",
                tail,
                "e.g. data: data/xor.csv (relative to the spec's folder), or sklearn:iris",
            )
        if v.startswith("sklearn:"):
            name = v.removeprefix("sklearn:")
            if name not in SKLEARN_SETS:
                g = did_you_mean(name, SKLEARN_SETS)
                raise self.err(
                    f"unknown scikit-learn data set {name!r}",
                    tail,
                    f"did you mean 'sklearn:{g}'?"
                    if g
                    else "scikit-learn ships: " + ", ".join(SKLEARN_SETS),
                )
            return v
        suffix = PurePosixPath(v.replace("\\", "/")).suffix.lower()
        if suffix not in DATA_SUFFIXES:
            raise self.err(
                f"unknown data format {suffix or v!r}",
                tail,
                "expected a .csv or .tsv file with a header, a .npz or .npy file, or "
                "sklearn:NAME (" + ", ".join(SKLEARN_SETS) + ")",
            )
        return v

    def columns(self, v: Any, tail: Path) -> Columns:
        v = self.value(v, tail)
        if isinstance(v, str) and v.strip():
            return v
        if isinstance(v, list) and v and all(isinstance(c, str) and c.strip() for c in v):
            return tuple(v)
        raise self.err(
            f"expected a column name or a list of column names, got {_show(v)}",
            tail,
            "e.g. x: [study_hours, sleep_hours] (stacked side by side) or y: score",
        )

    def inputs(self, raw: dict) -> dict[str, Columns]:
        model = self.graph.inputs
        for k in raw:
            if k not in model:
                raise self.err(
                    f"the model has no input {k!r}",
                    ("inputs", k),
                    _names_hint(k, model, "inputs"),
                    key=True,
                )
        missing = [k for k in model if k not in raw]
        if missing:
            raise self.err(
                f"model input {missing[0]!r} has no data",
                ("inputs",),
                f"map every model input to data columns: add `{missing[0]}: COLUMN` "
                "(or a list of columns)",
            )
        return {k: self.columns(raw[k], ("inputs", k)) for k in model}

    def targets(self, raw: dict) -> dict[str, Columns]:
        outputs = self.graph.outputs
        for k in raw:
            if k not in outputs:
                hint = _names_hint(k, outputs, "outputs")
                if k in self.graph._by_name or k in self.graph.inputs:
                    hint = f"'{k}' is a layer, not an output; the model's outputs: " + ", ".join(
                        outputs
                    )
                raise self.err(f"the model has no output {k!r}", ("targets", k), hint, key=True)
        # in the model's output order
        return {o: self.columns(raw[o], ("targets", o)) for o in outputs if o in raw}

    def split(self, raw: dict, key: str) -> float | str:
        if key not in raw:
            return 0.0
        v = self.value(raw[key], (key,))
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if 0 <= v < 1:
                return float(v)
            raise self.err(
                f"expected a fraction in [0, 1) or a data file, got {_show(v)}",
                (key,),
                f"{key}: 0.2 holds out 20% of the examples",
            )
        if isinstance(v, str):
            return self.source(v, (key,))
        raise self.err(f"expected a fraction in [0, 1) or a data file, got {_show(v)}", (key,))

    # -- records --------------------------------------------------------------------------
    def record(self, kind: str, raw: Any, tail: Path) -> tuple[str, dict[str, Any]]:
        """A record's name and its resolved attributes (defaults filled in)."""
        name, given, atpath = self.given(kind, raw, tail)
        rec: Record = TABLES[kind][name]
        attrs: dict[str, Any] = {}
        for k, v in given.items():
            if k == "weight" and kind == "loss":
                continue
            a = rec.attrs[k]
            val = self.value(v, atpath(k))
            if val is None and not a.required and a.default is None:
                continue  # a param set to null: the attribute stays unset
            try:
                attrs[k] = a.check(val)
            except Invalid as e:
                raise self.err(e.message, atpath(k), e.hint) from None
        try:
            return name, rec.resolve(attrs)
        except Invalid as e:
            raise self.err(e.message, tail, e.hint) from None

    def given(self, kind: str, raw: Any, tail: Path):
        if isinstance(raw, str):
            name, given = raw, {}
        else:
            name, given = raw["name"], {k: v for k, v in raw.items() if k != "name"}
        return name, given, lambda k: (*tail, k)

    def check_optimizer(self, name: str, a: dict, raw: Any) -> None:
        if name == "sgd" and a["nesterov"] and (a["momentum"] <= 0 or a["dampening"] != 0):
            tail = ("optimizer", "nesterov")
            raise self.err(
                "Nesterov momentum needs momentum > 0 and dampening 0",
                tail,
                "set momentum (e.g. momentum: 0.9), or remove nesterov",
            )

    # -- objectives -----------------------------------------------------------------------
    def objectives(self, raw: Any, targets: dict[str, Columns]) -> tuple[Objective, ...]:
        if isinstance(raw, str) or "name" in raw:
            per = {o: (raw, ("loss",)) for o in targets}
        else:
            for k in raw:
                if k not in targets:
                    if k in self.graph.outputs:
                        hint = f"'{k}' has no data: add it under training.targets to train it"
                    else:
                        g = did_you_mean(k, targets)
                        hint = (
                            f"did you mean '{g}'?"
                            if g
                            else "a mapping without 'name' gives each trained output its "
                            "loss; the trained outputs (training.targets): " + ", ".join(targets)
                        )
                    raise self.err(
                        f"a loss for {k!r}, which is not a trained output", ("loss", k), hint, True
                    )
            missing = [o for o in targets if o not in raw]
            if missing:
                raise self.err(
                    f"no loss for trained output {missing[0]!r}",
                    ("loss",),
                    f"give every output under training.targets a loss (`{missing[0]}: mse`), "
                    "or one loss for all (loss: mse)",
                )
            per = {o: (raw[o], ("loss", o)) for o in targets}
        out = []
        for o, cols in targets.items():
            lraw, tail = per[o]
            name, attrs = self.record("loss", lraw, tail)
            weight = 1.0
            if isinstance(lraw, dict) and "weight" in lraw:
                weight = self.checked(WEIGHT, lraw["weight"], (*tail, "weight"))
            op = self.output_op(o, name, tail)
            out.append(
                Objective(
                    output=o,
                    target=cols,
                    loss=name,
                    loss_attrs=attrs,
                    reads=loss_input(name, op),
                    kind=LOSS_KIND[name],
                    weight=weight,
                )
            )
        return tuple(out)

    def output_op(self, output: str, loss: str, tail: Path) -> str:
        """The op whose result is `output` (a fused activation's op), checked against the loss."""
        g = self.graph
        vname = g.outputs[output]
        shape = g.value(vname).shape
        if vname in g.inputs:
            op, axis = "identity", None
        else:
            node = g.node(vname)
            act = node.attrs.get("activation")
            src = act if isinstance(act, dict) else node.attrs
            op = act["op"] if isinstance(act, dict) else node.op
            axis = src.get("axis")
        if loss == "categorical_crossentropy":
            if not shape:
                raise self.err(
                    f"output {output!r} has no class axis (its examples are single numbers)",
                    tail,
                    "categorical cross-entropy needs scores per class on the last axis",
                )
            classes = shape[-1]
            if not isinstance(classes, int):
                raise self.err(
                    f"output {output!r} has a dynamic last axis, but categorical cross-entropy "
                    "needs a fixed number of classes there",
                    tail,
                )
            if classes < 2:
                raise self.err(
                    f"categorical cross-entropy needs 2 or more classes on the last axis; "
                    f"output {output!r} has 1",
                    tail,
                    "for one probability per example use binary_crossentropy "
                    "(with a sigmoid output)",
                )
            if op in ("softmax", "log_softmax") and axis != len(shape):
                raise self.err(
                    f"output {output!r} is a {op} over axis {axis}, but categorical "
                    f"cross-entropy reads the classes on the last axis ({len(shape)})",
                    tail,
                    f"use a {op} over the last axis (axis: -1)",
                )
        return op

    # -- metrics and early stopping -------------------------------------------------------
    def metrics(self, raw: Any, objectives: tuple[Objective, ...]) -> tuple[Metric, ...]:
        by_output = {o.output: o for o in objectives}
        if isinstance(raw, list):
            lists = [(o, raw, ("metrics",)) for o in by_output]
        else:
            for k in raw:
                if k not in by_output:
                    raise self.err(
                        f"metrics for {k!r}, which is not a trained output",
                        ("metrics", k),
                        _names_hint(k, by_output, "trained outputs"),
                        key=True,
                    )
            lists = [(o, raw[o], ("metrics", o)) for o in by_output if o in raw]
        out = []
        for o, items, tail in lists:
            obj = by_output[o]
            seen: set[str] = set()
            for i, item in enumerate(items):
                name, attrs = self.record("metric", item, (*tail, i))
                if name in seen:
                    raise self.err(f"metric {name!r} is listed twice", (*tail, i))
                seen.add(name)
                if obj.kind not in METRIC_KINDS[name]:
                    fits = "mae or mse" if obj.kind == "regression" else "accuracy"
                    raise self.err(
                        f"metric {name!r} does not fit output {o!r}, which is trained with "
                        f"{obj.loss} ({_KIND_WORDS[obj.kind]})",
                        (*tail, i),
                        f"for this output use {fits}",
                    )
                given = item if isinstance(item, dict) else {}
                if name == "accuracy" and obj.reads == "logits" and "threshold" not in given:
                    attrs = {**attrs, "threshold": 0.0}  # the output is a logit, not a probability
                out.append(Metric(name, attrs, o))
        return tuple(out)

    def check_keys(self, plan: TrainPlan) -> None:
        """Output names that make two history keys equal (an output called `val`: its
        `val_loss` would be the validation loss's key) are refused."""
        keys = plan.history_keys(validation=True)
        seen: set[str] = set()
        for k in keys:
            if k in seen:
                o = next(o.output for o in plan.objectives if k.startswith(o.output + "_"))
                raise self.err(
                    f"with output {o!r} trained, the history would have two keys {k!r}",
                    ("targets", o),
                    "rename the output (outputs: {new_name: layer})",
                    key=True,
                )
            seen.add(k)

    def early_stopping(self, raw: dict, plan: TrainPlan) -> EarlyStopping:
        validated = plan.validated
        keys = plan.history_keys(validation=validated)
        tail = ("early_stopping", "monitor") if "monitor" in raw else ("early_stopping",)
        monitor = self.value(raw.get("monitor", "val_loss"), tail)
        if not isinstance(monitor, str):
            raise self.err(f"expected a history key such as val_loss, got {_show(monitor)}", tail)
        if monitor not in keys:
            if monitor.startswith("val_") and not validated:
                raise self.err(
                    f"early stopping monitors {monitor!r}, but the training section has no "
                    "validation data",
                    tail,
                    "add validation: 0.2 (a fraction of the data, or a file), or monitor "
                    + repr(monitor.removeprefix("val_")),
                )
            g = did_you_mean(monitor, keys)
            raise self.err(
                f"unknown early-stopping monitor {monitor!r}",
                tail,
                f"did you mean '{g}'?" if g else "this training records: " + ", ".join(keys),
            )
        s = {k: self.setting(a, raw, ("early_stopping",)) for k, a in STOPPING.items()}
        if s["mode"] is None:
            s["mode"] = plan.key_mode(monitor)
        return EarlyStopping(monitor=monitor, **s)


def _names_hint(k: str, names, what: str) -> str:
    g = did_you_mean(k, names)
    if g:
        return f"did you mean '{g}'?"
    return f"the model's {what}: " + ", ".join(names)


def _show(v: Any) -> str:
    from ..structure import show

    return show(v)
