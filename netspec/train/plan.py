"""The training plan: what a spec's `training:` section means, resolved and checked.

The lowering turns the section into a `TrainPlan` on `Graph.training` (None without one). Both
Python targets generate their training scripts from it, and `netspec train` runs those scripts;
the ONNX target ignores it. Every record name and attribute here is resolved against the record
tables in this package (`optimizers`, `losses`, `schedules`, `metrics`): defaults filled in,
values checked. The section's normative meaning is in docs/spec-language.md ("Training").

Nothing here imports numpy or a framework.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..ops.base import Attr
from .record import Choice

Columns = str | tuple[str, ...]  # one column/array name, or several stacked side by side

# The section's own settings (the record tables give the rest): schema, checks and defaults.
SETTINGS = {
    a.name: a
    for a in (
        Attr(
            "batch_size",
            "int",
            32,
            "examples per optimizer step; an epoch's last batch keeps the remainder",
            minimum=1,
        ),
        Attr("epochs", "int", 10, "passes over the training rows", minimum=1),
        Attr(
            "seed",
            "int",
            0,
            "seeds the split, the batch order and the initial weights",
            minimum=0,
            maximum=2**63 - 1,
        ),
        Attr("shuffle", "bool", True, "visit the training rows in a fresh order every epoch"),
    )
}
STOPPING = {
    a.name: a
    for a in (
        Attr(
            "patience",
            "int",
            5,
            "epochs without improvement before training stops",
            minimum=0,
        ),
        Choice(
            "mode",
            "choice",
            None,
            "min or max: which way is better (default: max for accuracy, min otherwise)",
            choices=("min", "max"),
        ),
        Attr(
            "min_delta",
            "float",
            0.0,
            "an improvement must be larger than this",
            minimum=0,
        ),
        Attr(
            "restore_best",
            "bool",
            True,
            "end with the weights of the best epoch, not the last",
        ),
    )
}
WEIGHT = Attr(
    "weight", "float", 1.0, "this output's loss counts weight times in the total", minimum=0
)


@dataclass(frozen=True)
class Objective:
    """One trained output: the loss between it and its target data.

    `reads` is `losses.loss_input(loss, op)` for the output node's op (or final activation):
    "output" (regression losses), "input_logits" (the output is the loss's own softmax/sigmoid:
    the loss reads the logits before it, `from_logits`), "logits" (a cross-entropy over an
    output that is no probability op) or "probabilities" (the other probability op).
    `kind` is what the target data must be: regression, binary or classes (a
    `data.TargetSpec` kind)."""

    output: str
    target: Columns
    loss: str
    loss_attrs: dict[str, Any]
    reads: str
    kind: str
    weight: float = 1.0


@dataclass(frozen=True)
class Metric:
    """A metric record computed on one output (on its probabilities, not logits)."""

    name: str
    attrs: dict[str, Any]
    output: str


@dataclass(frozen=True)
class EarlyStopping:
    """Stop when `monitor` has not improved by more than `min_delta` for `patience` epochs
    (Keras's EarlyStopping rule); `restore_best`: end with the best epoch's weights."""

    monitor: str = "val_loss"
    patience: int = 5
    mode: str = "min"  # min | max
    min_delta: float = 0.0
    restore_best: bool = True


@dataclass(frozen=True)
class TrainPlan:
    """A resolved `training:` section (one objective set, one optimizer: a single phase)."""

    inputs: dict[str, Columns]  # model input -> data column(s)
    objectives: tuple[Objective, ...]
    optimizer: str
    optimizer_attrs: dict[str, Any]
    schedule: str | None = None
    schedule_attrs: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 32
    epochs: int = 10
    seed: int = 0
    shuffle: bool = True
    metrics: tuple[Metric, ...] = ()
    source: str | None = None  # the data file the spec names (a path as written, or sklearn:NAME)
    validation: float | str = 0.0  # a fraction of the data, or a file of its own
    test: float | str = 0.0
    early_stopping: EarlyStopping | None = None
    path: tuple[str | int, ...] = ("training",)  # where the section sits in the spec

    @property
    def validated(self) -> bool:
        """Whether the run has validation data (a fraction above 0, or a file)."""
        return self.validation != 0.0

    def metric_key(self, m: Metric) -> str:
        """The history key of a metric: `<metric>`, or `<output>_<metric>` with several
        trained outputs."""
        return m.name if len(self.objectives) == 1 else f"{m.output}_{m.name}"

    def history_keys(self, validation: bool | None = None) -> list[str]:
        """The keys of the run's history, in order: `loss` (the weighted total), with several
        trained outputs each `<output>_loss`, then each metric's key; then the same with `val_`
        in front when there is validation data (`validation`: default `self.validated`)."""
        keys = ["loss"]
        if len(self.objectives) > 1:
            keys += [f"{o.output}_loss" for o in self.objectives]
        keys += [self.metric_key(m) for m in self.metrics]
        if self.validated if validation is None else validation:
            keys += ["val_" + k for k in keys]
        return keys

    def key_metric(self, key: str) -> str:
        """What a history key measures: `loss` or a metric's name."""
        for m in self.metrics:
            if key in (self.metric_key(m), "val_" + self.metric_key(m)):
                return m.name
        return "loss"

    def key_mode(self, key: str) -> str:
        """Whether a history key is better lower or higher: "max" for accuracy, else "min"."""
        return "max" if self.key_metric(key) == "accuracy" else "min"

    def data_map(self):
        """The `data.DataMap` of this plan (inputs and trained outputs to columns)."""
        from .data import DataMap

        return DataMap(
            inputs=dict(self.inputs),
            targets={o.output: o.target for o in self.objectives},
            path=self.path,  # inputs: and targets: sit in the section itself
        )

    def target_specs(self, graph) -> dict:
        """The `data.TargetSpec` of each trained output of `graph`."""
        from .data import TargetSpec

        return {
            o.output: TargetSpec(o.kind, tuple(graph.value(graph.outputs[o.output]).shape))
            for o in self.objectives
        }
