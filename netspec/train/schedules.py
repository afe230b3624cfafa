"""Learning-rate schedules: PyTorch's StepLR, ExponentialLR and CosineAnnealingLR, each with an
optional linear warm-up (torch's LinearLR, then the schedule, joined by SequentialLR).

A schedule counts in `interval` units: epochs (the rate changes between epochs, as a PyTorch loop
that calls `scheduler.step()` once per epoch) or optimizer steps. Each record's reference is
`lr(t, base_lr, attrs) -> float`, the rate during unit `t` (0-based). For `t < warmup` the rate
is `base_lr * (warmup_start + (1 - warmup_start) * t / warmup)`; afterwards the schedule runs
from its own unit 0 (`t - warmup`).
"""

from __future__ import annotations

import math

from ..ops.base import Attr
from .record import Choice, table

SCHEDULES, schedule = table("schedule")

_COMMON = [
    Choice(
        "interval",
        "choice",
        "epoch",
        "the unit the schedule counts: epoch or step",
        choices=("epoch", "step"),
    ),
    Attr("warmup", "int", 0, "units of linear warm-up before the schedule starts", minimum=0),
    Attr(
        "warmup_start",
        "float",
        1 / 3,
        "fraction of the learning rate the warm-up starts from (torch's LinearLR start_factor)",
        minimum=0,
        maximum=1,
        exclusive_min=True,
    ),
]


def lr_at(record, t: int, base_lr: float, a: dict) -> float:
    """The learning rate during unit `t`, warm-up included."""
    w = a["warmup"]
    if t < w:
        return base_lr * (a["warmup_start"] + (1 - a["warmup_start"]) * t / w)
    return record.reference(t - w, base_lr, a)


def for_run(a: dict, units: int) -> dict:
    """`a` with the defaults that depend on the run's length (in `interval` units) filled in:
    the cosine's `t_max` is the run after warm-up."""
    if a.get("t_max", 0) is None:
        return {**a, "t_max": max(units - a["warmup"], 1)}
    return a


@schedule(
    "step",
    [
        Attr("step_size", "int", doc="units between decays", minimum=1),
        Attr("gamma", "float", 0.1, "factor applied every step_size units", minimum=0),
        *_COMMON,
    ],
    doc="Multiply the rate by gamma every step_size units.",
    torch="torch.optim.lr_scheduler.StepLR",
)
def step(t, base_lr, a):
    return base_lr * a["gamma"] ** (t // a["step_size"])


@schedule(
    "exponential",
    [Attr("gamma", "float", doc="factor applied every unit", minimum=0), *_COMMON],
    doc="Multiply the rate by gamma every unit.",
    torch="torch.optim.lr_scheduler.ExponentialLR",
)
def exponential(t, base_lr, a):
    return base_lr * a["gamma"] ** t


@schedule(
    "cosine",
    [
        Attr(
            "t_max",
            "int",
            None,
            "units from the full rate down to eta_min (default: the whole run after warm-up)",
            minimum=1,
        ),
        Attr("eta_min", "float", 0.0, "the lowest rate", minimum=0),
        *_COMMON,
    ],
    doc="Cosine annealing from the rate to eta_min over t_max units.",
    torch="torch.optim.lr_scheduler.CosineAnnealingLR",
    notes=[
        "Past t_max the rate rises again along the same cosine, as PyTorch's does "
        "(Keras's CosineDecay holds eta_min): choose t_max >= the run's length for a "
        "plain anneal.",
    ],
)
def cosine(t, base_lr, a):
    lo = a["eta_min"]
    return lo + (base_lr - lo) * (1 + math.cos(math.pi * t / a["t_max"])) / 2
