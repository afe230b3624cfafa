"""Training: epoch time of `netspec train` against the loop a user would write by hand.

Contenders, on the same model (netspec's compiled module / Keras model, the same weights) and the
same data, each timed per epoch after a warm-up epoch:

- PyTorch: netspec's generated training script (`run_training`, a checkpoint written after every
  epoch, as `netspec train` does; and again without checkpoints) against a hand-written loop
  (`TensorDataset` + a shuffling `DataLoader`, `zero_grad` / `backward` / `step`, the loss and
  the correct predictions summed for the epoch's loss and accuracy, as every tutorial does).
- Keras: netspec's generated script (`compile` + `fit` over its batch-order `PyDataset`, with
  and without checkpoints) against `model.compile(...)` + `model.fit(x, y, shuffle=True)` with
  Keras's own optimizer and loss.

Models: an MLP on scikit-learn's 8x8 digits (1,797 examples, batch 32, Adam), and ResNet-18 (the
spec's architecture at 32x32, 10 classes) on 256 random images (batch 32, SGD with momentum).
Contenders run in turns, epoch by epoch, the order reversed every other round; the figure is the
median epoch time. Goal: netspec <= 1.05x the hand-written loop on both frameworks.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from common import BENCH, ROOT, Context, Table, fmt_ratio, fmt_s, goal

SPECS = {
    "MLP, digits": ROOT / "specs/digits_mlp.yaml",
    "ResNet-18 32x32, random images": BENCH / "specs/resnet18_small.yaml",
}
GOAL = 1.05


def data_for(graph, name: str, quick: bool):
    """(inputs, targets) arrays for the spec's one input and one trained output."""
    plan = graph.training
    inp = next(iter(graph.inputs))
    out = plan.objectives[0].output
    if "digits" in name:
        from sklearn.datasets import load_digits

        d = load_digits()
        shape = graph.inputs[inp].shape
        x = d.data.astype(np.float32).reshape((-1, *shape))
        return {inp: x}, {out: d.target.astype(np.int64)}
    rng = np.random.default_rng(0)
    n = 64 if quick else 256
    x = rng.normal(size=(n, *graph.inputs[inp].shape)).astype(np.float32)
    return {inp: x}, {out: rng.integers(0, 10, n).astype(np.int64)}


class Clock:
    """Epoch times from `on_epoch_end` calls."""

    def __init__(self):
        self.times: list[float] = []
        self.t = time.perf_counter()

    def __call__(self, epoch, logs):
        now = time.perf_counter()
        self.times.append(now - self.t)
        self.t = now


def netspec_epochs(target: str, graph, weights, train, epochs: int, ckpt: Path | None):
    from importlib import import_module

    mod = import_module(f"netspec.targets.{target}.train")
    clock = Clock()
    mod.run_training(graph, weights, train, epochs=epochs, checkpoint_dir=ckpt, on_epoch_end=clock)
    return clock.times


def torch_loop_epochs(graph, weights, train, epochs: int):
    """The loop from every PyTorch tutorial, on netspec's compiled module."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    import netspec

    plan = graph.training
    model = netspec.compile(graph, target="torch", weights=weights)
    (x,), (y,) = train[0].values(), train[1].values()
    loader = DataLoader(
        TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
        batch_size=plan.batch_size,
        shuffle=True,
    )
    a = plan.optimizer_attrs
    if plan.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=a["lr"])
    else:
        opt = torch.optim.SGD(model.parameters(), lr=a["lr"], momentum=a.get("momentum", 0))
    loss_fn = torch.nn.CrossEntropyLoss()
    logits = plan.objectives[0].reads == "input_logits"
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        model.train()
        total, correct = 0.0, 0
        for xb, yb in loader:
            opt.zero_grad()
            out = model(xb, logits=True) if logits else model(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(xb)
            correct += (out.argmax(1) == yb).sum().item()
        times.append(time.perf_counter() - t0)
    return times


def keras_fit_epochs(graph, weights, train, epochs: int):
    """`compile` + `fit` as the Keras guides write it, on netspec's compiled model."""
    import keras

    import netspec

    plan = graph.training
    model = netspec.compile(graph, target="keras", weights=weights)
    (x,), (y,) = train[0].values(), train[1].values()
    if x.ndim == 4:
        x = x.transpose(0, 2, 3, 1)  # the Keras model is channels-last
    a = plan.optimizer_attrs
    if plan.optimizer == "adam":
        opt = keras.optimizers.Adam(a["lr"])
    else:
        opt = keras.optimizers.SGD(a["lr"], momentum=a.get("momentum", 0))
    model.compile(opt, keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    times: list[float] = []

    class Times(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)

    model.fit(
        x,
        y,
        batch_size=plan.batch_size,
        epochs=epochs,
        shuffle=True,
        verbose=0,
        callbacks=[Times()],
    )
    return times


def contenders(fw, hand, graph, weights, train, epochs, tmp: Path) -> dict:
    """name -> a call that trains `epochs` epochs and gives their times."""
    return {
        "netspec": lambda: netspec_epochs(fw, graph, weights, train, epochs, tmp / f"ckpt_{fw}"),
        "nockpt": lambda: netspec_epochs(fw, graph, weights, train, epochs, None),
        "hand": lambda: hand(graph, weights, train, epochs),
    }


def run(ctx: Context) -> list[Table]:
    import netspec

    epochs = 3 if ctx.quick else 6
    rounds = 1 if ctx.quick else max(2, ctx.repeat // 2)
    t = Table(
        f"Training: median epoch time ({rounds} rounds x {epochs} epochs, first epoch of each "
        "run discarded)",
        [
            "model",
            "framework",
            "netspec train",
            "no checkpoints",
            "hand-written",
            "netspec / hand-written",
            "goal",
        ],
    )
    for name, spec in SPECS.items():
        graph = netspec.load(spec)
        weights = netspec.init_weights(graph, seed=0)
        train = data_for(graph, name, ctx.quick)
        for fw, hand in (("torch", torch_loop_epochs), ("keras", keras_fit_epochs)):
            ctx.log(f"  {name}, {fw}")
            runs = contenders(fw, hand, graph, weights, train, epochs, ctx.tmp)
            got: dict[str, list[float]] = {k: [] for k in runs}
            for rnd in range(rounds):
                order = list(runs) if rnd % 2 == 0 else list(reversed(runs))
                for k in order:
                    got[k] += runs[k]()[1:]
            med = {k: statistics.median(v) for k, v in got.items()}
            r = med["netspec"] / med["hand"]
            t.add(
                name,
                fw,
                fmt_s(med["netspec"]),
                fmt_s(med["nockpt"]),
                fmt_s(med["hand"]),
                fmt_ratio(r, 3),
                f"<= {GOAL}: " + goal(r <= GOAL),
            )
    return [t]
