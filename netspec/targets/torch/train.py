"""The PyTorch training script of a spec with a `training:` section, and running it.

- `generate_train(graph)` writes `<name>_train_torch.py`: a plain PyTorch loop a person would
  write (numpy, torch, safetensors and the generated model file; never netspec): the plan's
  constants, netspec's split and batch order, the losses, optimizer, schedule, metrics and
  early stopping of the plan, `fit`, `evaluate`, `predict`, checkpoints (safetensors + JSON,
  atomic, no pickle) and a `main()` that reads the spec's data itself. None without a plan.
- `run_training(...)` executes exactly that text and the model source `generate(graph)` (the
  script's `from <name>_torch import ...` resolves to the executed model module), loads the
  canonical weights and calls the script's `fit`; it returns a `Trained`.

The arithmetic is netspec's (docs/training-arithmetic.md): torch.optim, torch.nn losses (mean
reduction), clip_grad_value_ then clip_grad_norm_, the LR scheduler stepped per epoch or per
optimizer step, cross-entropy on the logits where `Objective.reads` says so (the model's
`forward(..., logits=True)`), one bias per LSTM/RNN gate (bias_hh folded into bias_ih, frozen).
"""

from __future__ import annotations

import os
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import SpecError
from ...ir import Graph
from ..python.pyfmt import INDENT, WIDTH, Call, Kw, Raw, Seq, flat, lit, split
from ..python.text import docstring, escape
from ..python.train_rules import ORDER_FUNCTIONS
from .codegen import LOGITS, PROBABILITY_OPS, logits_nodes, model_class

CHECKPOINT = "checkpoint"  # checkpoint.safetensors + checkpoint.json in the checkpoint folder

# torch.optim class, and each netspec attribute's torch argument and torch default
OPTIMIZER_ARGS: dict[str, tuple[str, dict[str, tuple[str, Any]]]] = {
    "sgd": (
        "torch.optim.SGD",
        {
            "momentum": ("momentum", 0.0),
            "dampening": ("dampening", 0.0),
            "nesterov": ("nesterov", False),
            "weight_decay": ("weight_decay", 0.0),
        },
    ),
    "adam": ("torch.optim.Adam", {"weight_decay": ("weight_decay", 0.0), "eps": ("eps", 1e-8)}),
    "adamw": (
        "torch.optim.AdamW",
        {"weight_decay": ("weight_decay", 1e-2), "eps": ("eps", 1e-8)},
    ),
    "rmsprop": (
        "torch.optim.RMSprop",
        {
            "alpha": ("alpha", 0.99),
            "eps": ("eps", 1e-8),
            "weight_decay": ("weight_decay", 0.0),
            "momentum": ("momentum", 0.0),
            "centered": ("centered", False),
        },
    ),
    "adagrad": (
        "torch.optim.Adagrad",
        {
            "lr_decay": ("lr_decay", 0.0),
            "weight_decay": ("weight_decay", 0.0),
            "initial_accumulator": ("initial_accumulator_value", 0.0),
            "eps": ("eps", 1e-10),
        },
    ),
}


def script_file(graph: Graph) -> str:
    return f"{graph.name}_train_torch.py"


# -- formatting ------------------------------------------------------------------------------
def _value(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, tuple):
        inner = ", ".join(_value(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_value(k)}: {_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, float):
        return repr(v)
    return flat(lit(v))


def _expr(v: Any):
    """A constant's value as a pyfmt expression (lists and tuples split one item a line)."""
    if isinstance(v, list | tuple) and v:
        return Seq("[" if isinstance(v, list) else "(", tuple(_expr(x) for x in v))
    return Raw(_value(v))


def _const(name: str, v: Any, comment: str = "") -> list[str]:
    """`NAME = value  # comment`, laid out as ruff formats it: a mapping that does not fit is
    split one entry a line, an entry's list one item a line."""
    one = f"{name} = {_value(v)}"
    tail = f"  # {comment}" if comment else ""
    if len(one + tail) <= WIDTH:
        return [one + tail]
    lines = [f"# {comment}"] if comment else []
    if len(one) <= WIDTH:
        return [*lines, one]
    if not isinstance(v, dict):
        if isinstance(v, list | tuple):
            return [*lines, *split(f"{name} = ", _expr(v), 0)]
        return [*lines, one + "  # noqa: E501"]  # a long path: nothing to split
    lines.append(f"{name} = {{")
    for k, x in v.items():
        lines += split(f"{_value(k)}: ", _expr(x), 1, ",")
    return [*lines, "}"]


def _columns(c) -> Any:
    return list(c) if isinstance(c, tuple) else c


def _fixed(shape) -> tuple | None:
    """A per-example shape with fixed sizes, or None when an axis is dynamic."""
    return tuple(shape) if all(isinstance(d, int) for d in shape) else None


def _num(v: float) -> str:
    return repr(float(v))


# -- the script's fixed parts ----------------------------------------------------------------
DATA_FUNCTIONS = '''
def read_columns(path, names):
    """Named columns of a data file: a CSV (or .tsv) with a header, the arrays of a .npz, a
    .npy (named by its file's stem, memory-mapped), or a scikit-learn set (sklearn:NAME)."""
    if path.startswith("sklearn:"):
        from sklearn import datasets

        bunch = getattr(datasets, "load_" + path.removeprefix("sklearn:"))()
        arrays = {"data": bunch.data, "target": bunch.target}
        if "images" in bunch:
            arrays["images"] = bunch.images
        for i, feature in enumerate(bunch.feature_names):
            arrays.setdefault(str(feature), bunch.data[:, i])
        return {n: np.asarray(arrays[n]) for n in names}
    if path.endswith(".npz"):
        with np.load(path) as arrays:
            return {n: arrays[n] for n in names}
    if path.endswith(".npy"):
        return {os.path.splitext(os.path.basename(path))[0]: np.load(path, mmap_mode="r")}
    delimiter = "\\t" if path.endswith(".tsv") else ","
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f, delimiter=delimiter, skipinitialspace=True))
    return {n: np.array([float(row[n]) for row in rows]) for n in names}


def examples(columns, names, shape):
    """One column as it is, or several flattened side by side; shaped (rows, *shape)."""
    if isinstance(names, str):
        x = np.asarray(columns[names])
    else:
        parts = [np.asarray(columns[n]) for n in names]
        x = np.concatenate([p.reshape(len(p), -1) for p in parts], axis=1)
    return x if shape is None else x.reshape(len(x), *shape)


def load(path):
    """(inputs, targets): numpy arrays by model input and trained output, one example a row."""
    names = []
    for c in [*INPUTS.values(), *TARGETS.values()]:
        names += [c] if isinstance(c, str) else c
    columns = read_columns(path, list(dict.fromkeys(names)))
    inputs = {
        k: examples(columns, c, INPUT_SHAPES[k]).astype(INPUT_DTYPES[k]) for k, c in INPUTS.items()
    }
    targets = {}
    for k, c in TARGETS.items():
        labels = LABEL_SHAPES.get(k)
        x = examples(columns, c, None)
        if labels is not None and are_labels(x, labels):  # class indices
            targets[k] = (x if None in labels else x.reshape(len(x), *labels)).astype(np.int64)
        else:
            targets[k] = examples(columns, c, TARGET_SHAPES[k]).astype(np.float32)
    return inputs, targets


def are_labels(x, shape):
    """Whether the examples `x` are class indices shaped `shape` (None: a dynamic size)."""
    if None in shape:
        return x.ndim - 1 == len(shape)
    return x[0].size == math.prod(shape)


<ORDER_FUNCTIONS>


def split(data, validation, test):
    """(train, validation, test) parts of `data`: the first round(n * validation) rows of
    netspec's split permutation, the next round(n * test) rows, then the rest, each part in
    file order."""
    n = size(data)
    n_val, n_test = count(n, validation), count(n, test)
    parts = np.split(permutation(n, 1), [n_val, n_val + n_test])
    val, test_rows, train = (np.sort(p) for p in parts)
    return tuple(take(data, rows) for rows in (train, val, test_rows))


def take(data, rows):
    """The examples at `rows` of (inputs, targets)."""
    return tuple({k: v[rows] for k, v in part.items()} for part in data)


def size(data):
    """The number of examples in (inputs, targets)."""
    return len(next(iter(data[1].values())))


def to_tensors(data, model):
    """(inputs, targets) as tensors on the model's device; floats in the model's dtype."""
    param = next(model.parameters())

    def tensor(a):
        t = torch.as_tensor(np.asarray(a), device=param.device)
        return t.to(param.dtype) if t.is_floating_point() else t

    return tuple({k: tensor(v) for k, v in part.items()} for part in data)
'''

METRIC_FUNCTIONS = '''
def accuracy(y, t, threshold=0.5):
    """Arg-max over the last axis against class indices or one-hot rows; a single-column
    output is class 1 where it is > threshold."""
    if y.shape[-1] == 1:
        hit = (y > threshold) == (t.reshape(y.shape) > 0.5)
    else:
        hit = y.argmax(-1) == (t.argmax(-1) if t.shape == y.shape else t)
    return hit.double().mean()


def mae(y, t):
    return (y - t).abs().double().mean()


def mse(y, t):
    return ((y - t) ** 2).double().mean()


METRIC_FUNCTIONS = {"accuracy": accuracy, "mae": mae, "mse": mse}


def batch_logs(loss, parts, y, t):
    """One batch's loss and metrics by history key (metrics read the model's outputs)."""
    y = PROBABILITIES(y)
    logs = {"loss": loss.item()}
    several = len(parts) > 1  # then each output's loss and metrics by its name
    if several:
        logs.update({name + "_loss": part.item() for name, part in parts.items()})
    for name, metrics in METRICS.items():
        for metric, attrs in metrics.items():
            key = f"{name}_{metric}" if several else metric
            logs[key] = METRIC_FUNCTIONS[metric](y[name], t[name], **attrs).item()
    return logs


def mean_logs(batches, world=1):
    """The example-weighted mean of (logs, batch size) pairs; of every process's pairs under
    torchrun (`world` processes)."""
    n = sum(size for _, size in batches)
    sums = {k: sum(logs[k] * size for logs, size in batches) for k in batches[0][0]}
    if world == 1:
        return {k: v / n for k, v in sums.items()}
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    total = torch.tensor([*sums.values(), n], dtype=torch.float64, device=device)
    dist.all_reduce(total)
    *values, n = total.tolist()
    return {k: v / n for k, v in zip(sums, values, strict=True)}


@torch.no_grad()
def evaluate(model, data):
    """Loss and metrics of `model` on data = (inputs, targets), in eval mode, batch by batch."""
    model.eval()
    inputs, targets = to_tensors(data, model)
    n = size(data)
    batches = []
    for start in range(0, n, BATCH_SIZE):
        x = {k: v[start : start + BATCH_SIZE] for k, v in inputs.items()}
        t = {k: v[start : start + BATCH_SIZE] for k, v in targets.items()}
        y = outputs(model, x)
        loss, parts = compute_loss(y, t)
        batches.append((batch_logs(loss, parts, y, t), len(next(iter(t.values())))))
    return mean_logs(batches)


@torch.no_grad()
def predict(model, inputs):
    """The model's outputs (numpy arrays by name) for inputs (numpy arrays by name)."""
    model.eval()
    x, _ = to_tensors((inputs, {}), model)
    return {k: v.cpu().numpy() for k, v in PROBABILITIES(outputs(model, x)).items()}
'''

EARLY_STOPPING_CLASS = '''
class EarlyStopping:
    """Keras's EarlyStopping rule: stop when `monitor` has not improved by more than
    `min_delta` for `patience` epochs; `restore_best`: end with the best epoch's weights."""

    def __init__(self, monitor, patience, mode, min_delta, restore_best):
        self.monitor, self.patience, self.mode = monitor, patience, mode
        self.min_delta, self.restore_best = min_delta, restore_best
        self.best, self.best_epoch, self.wait, self.stop = None, 0, 0, False
        self.best_weights = None

    def improved(self, value):
        if self.best is None:
            return True
        if self.mode == "min":
            return value + self.min_delta < self.best
        return value - self.min_delta > self.best

    def update(self, epoch, logs, model):
        value = logs[self.monitor]
        if self.restore_best and self.best_weights is None:
            self.best_weights = {k: v.clone() for k, v in model.state_dict().items()}
            self.best_epoch = epoch
        self.wait += 1
        if self.improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self.best_weights = {k: v.clone() for k, v in model.state_dict().items()}
        elif self.wait >= self.patience and epoch > 0:
            self.stop = True

    def restore(self, model):
        if self.restore_best and self.best_weights is not None:
            model.load_state_dict(self.best_weights)

    def state(self):
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "stop": self.stop,
        }
'''

CHECKPOINT_FUNCTIONS = '''
def save_checkpoint(directory, epoch, history, model, optimizer, scheduler, stopper):
    """Write checkpoint.safetensors (the model, the optimizer's tensors, torch's RNG state)
    and checkpoint.json (epoch, history, the rest of the optimizer's and scheduler's state),
    each to a temporary file renamed over the old one. The safetensors file carries the JSON
    record in its metadata too: its rename commits the checkpoint."""
    tensors = {"rng": torch.get_rng_state()}
    tensors.update({"model." + k: v for k, v in model.state_dict().items()})
    opt = optimizer.state_dict()
    plain = {}
    for i, state in opt["state"].items():
        for k, v in state.items():
            if torch.is_tensor(v):
                tensors[f"optimizer.{i}.{k}"] = v
            else:
                plain[f"{i}.{k}"] = v
    record = {
        "epoch": epoch,
        "history": history,
        "optimizer": {"param_groups": opt["param_groups"], "state": plain},
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "early_stopping": stopper.state() if stopper is not None else None,
    }
    if stopper is not None and stopper.best_weights is not None:
        tensors.update({"best." + k: v for k, v in stopper.best_weights.items()})
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "checkpoint")
    save_file(tensors, path + ".safetensors.tmp", metadata={"checkpoint": json.dumps(record)})
    os.replace(path + ".safetensors.tmp", path + ".safetensors")
    with open(path + ".json.tmp", "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
    os.replace(path + ".json.tmp", path + ".json")


def load_checkpoint(directory, model, optimizer, scheduler, stopper):
    """Restore what `save_checkpoint` wrote; the epochs done and the history so far."""
    path = os.path.join(directory, "checkpoint.safetensors")
    with safe_open(path, "pt") as f:
        record = json.loads(f.metadata()["checkpoint"])
    tensors = load_file(path)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state = {}
    for k, v in tensors.items():
        if k.startswith("optimizer."):
            _, i, name = k.split(".", 2)
            state.setdefault(int(i), {})[name] = v
    for k, v in record["optimizer"]["state"].items():
        i, name = k.split(".", 1)
        state.setdefault(int(i), {})[name] = v
    optimizer.load_state_dict({"state": state, "param_groups": record["optimizer"]["param_groups"]})
    if scheduler is not None:
        scheduler.load_state_dict(record["scheduler"])
    if stopper is not None:
        for k, v in record["early_stopping"].items():
            setattr(stopper, k, v)
        best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
        stopper.best_weights = best or None
    torch.set_rng_state(tensors["rng"])
    return record["epoch"], record["history"]
'''


DISTRIBUTED_FUNCTIONS = '''
# Several processes: `torchrun --nproc_per_node N` instead of `python`; alone they change nothing.
def join_processes(model):
    """(the model to train, this process's rank, the number of processes). One process: (model,
    0, 1). Under `torchrun --nproc_per_node N` (which sets WORLD_SIZE, RANK and LOCAL_RANK): join
    the process group (NCCL with one GPU per process, the model moved to it; gloo on the CPU)
    and wrap the model in DistributedDataParallel, which averages the gradients."""
    if "WORLD_SIZE" not in os.environ:
        return model, 0, 1
    gpu = torch.cuda.is_available()
    if not dist.is_initialized():
        if gpu:
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        dist.init_process_group("nccl" if gpu else "gloo")
    if gpu:
        model.to(torch.device("cuda", torch.cuda.current_device()))
    net = nn.parallel.DistributedDataParallel(model<UNUSED>)
    return net, dist.get_rank(), dist.get_world_size()


def shard(rows, rank, world):
    """This process's rows of a batch: the rank-th of `world` consecutive slices (their sizes
    differ by at most one)."""
    return rows.tensor_split(world)[rank]


def check_shards(n, world):
    """Every process needs a row of every batch, the last (smaller) one too."""
    smallest = min(n, BATCH_SIZE, n % BATCH_SIZE or BATCH_SIZE)
    if smallest < world:
        raise ValueError(
            f"{world} processes need at least {world} rows in every batch; "
            f"the smallest of {n} rows in batches of {BATCH_SIZE} has {smallest}"
        )


def leave_processes():
    """Whether this process reports and writes the results (the first of several, or the only
    one); under torchrun it leaves the process group."""
    if not dist.is_initialized():
        return True
    first = dist.get_rank() == 0
    dist.destroy_process_group()
    return first
'''

TENSORBOARD_FUNCTIONS = '''
def tensorboard_writers(folder):
    """TensorBoard writers for `folder`/train and `folder`/validation, as Keras's TensorBoard
    callback lays them out (a value's two curves share a chart)."""
    from torch.utils.tensorboard import SummaryWriter

    return {part: SummaryWriter(os.path.join(folder, part)) for part in ("train", "validation")}


def log_epoch(writers, epoch, logs, learning_rate):
    """An epoch's values as scalars named as Keras names them (epoch_loss, epoch_accuracy,
    epoch_learning_rate: the rate after the epoch); `val_` values in the validation folder."""
    for k, v in logs.items():
        part = "validation" if k.startswith("val_") else "train"
        writers[part].add_scalar("epoch_" + k.removeprefix("val_"), v, epoch)
    writers["train"].add_scalar("epoch_learning_rate", learning_rate, epoch)
'''


FIT = '''
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
    """Train `model` on `train`; the history: {"loss": [per epoch], ...}.

    `train` and `validation` are (inputs, targets): numpy arrays by model input and trained
    output, one example a row. Epoch e visits the training rows in batch_order(n, e), batch by
    batch; its history values are the example-weighted means of the batches' losses and
    metrics (in training mode), and `val_` ones from `evaluate` on the validation data. With
    `checkpoint_dir`, each epoch ends with a checkpoint there, from which `resume` continues.
    `on_epoch_end(epoch, logs)` is called after each epoch (counted from 0). `tensorboard`: a
    folder for TensorBoard event files (each epoch's values and learning rate).

    Under torchrun every process trains on its shard of each batch (see join_processes); the
    first one writes the checkpoints and event files and calls `on_epoch_end`.
    """
    one_bias_per_gate(model)  #@rnn
    net, rank, world = join_processes(model)
    inputs, targets = to_tensors(train, model)
    n = size(train)
    check_shards(n, world)
    optimizer = make_optimizer(model)
    scheduler = make_scheduler(optimizer, epochs, math.ceil(n / BATCH_SIZE))  #@sched
    scheduler = None  #@nosched
    stopper = EarlyStopping(**EARLY_STOPPING)  #@es
    stopper = None  #@noes
    params = [p for p in model.parameters() if p.requires_grad]  #@clip
    torch.manual_seed(SEED)  # dropout's random numbers
    first, history = 0, {}
    if resume:
        first, history = load_checkpoint(checkpoint_dir, model, optimizer, scheduler, stopper)
    board = tensorboard_writers(tensorboard) if tensorboard and rank == 0 else None
    for epoch in range(first, epochs):
        if stopper.stop:  #@es
            break  #@es
        model.train()
        order = torch.from_numpy(batch_order(n, epoch))
        batches = []
        for start in range(0, n, BATCH_SIZE):
            rows = order[start : start + BATCH_SIZE]
            mine = shard(rows, rank, world)  # all of them in one process
            x = {k: v[mine] for k, v in inputs.items()}
            t = {k: v[mine] for k, v in targets.items()}
            optimizer.zero_grad()
            y = outputs(net, x)
            loss, parts = compute_loss(y, t)
            # DDP averages the processes' gradients: weigh each shard by its share (1 alone)
            (loss * (world * len(mine) / len(rows))).backward()
            nn.utils.clip_grad_value_(params, CLIP_VALUE)  #@cv
            nn.utils.clip_grad_norm_(params, CLIP_NORM)  #@cn
            optimizer.step()
            scheduler.step()  #@step
            with torch.no_grad():
                batches.append((batch_logs(loss, parts, y, t), len(mine)))
        scheduler.step()  #@epoch
        logs = mean_logs(batches, world)
        if validation is not None:
            logs.update({"val_" + k: v for k, v in evaluate(model, validation).items()})
        for k, v in logs.items():
            history.setdefault(k, []).append(v)
        stopper.update(epoch, logs, model)  #@es
        if rank > 0:  # under torchrun the first process writes and reports
            continue
        if checkpoint_dir is not None:
            save_checkpoint(
                checkpoint_dir, epoch + 1, history, model, optimizer, scheduler, stopper
            )
        if board is not None:
            log_epoch(board, epoch, logs, optimizer.param_groups[0]["lr"])
        if on_epoch_end is not None:
            on_epoch_end(epoch, logs)
    for writer in (board or {}).values():
        writer.close()
    stopper.restore(model)  #@es
    return history
'''

MAIN = """
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DATA, required=DATA is None, help="the data file")
    parser.add_argument("--weights", help="initial canonical weights (default: the model's)")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--out", default="<OUT>")
    parser.add_argument("--checkpoints", help="a folder for a checkpoint each epoch")
    parser.add_argument("--resume", action="store_true", help="go on from the checkpoint")
    parser.add_argument("--tensorboard", help="a folder for TensorBoard event files")
    args = parser.parse_args()
    data = load(args.data)
    train, validation, test = split(data, <VALIDATION>, <TEST>)
    validation = load(VALIDATION)  #@valfile
    test = load(TEST)  #@testfile
    torch.manual_seed(SEED)
    model = <CLASS>()
    if args.weights:
        load_weights(model, args.weights)

    def show(epoch, logs):
        values = "  ".join(f"{k} {v:.4g}" for k, v in logs.items())
        print(f"epoch {epoch + 1}/{args.epochs}  {values}")

    fit(
        model,
        train,
        validation if size(validation) else None,
        epochs=args.epochs,
        checkpoint_dir=args.checkpoints,
        resume=args.resume,
        on_epoch_end=show,
        tensorboard=args.tensorboard,
    )
    if not leave_processes():  # under torchrun, the first process reports and writes
        return
    if size(test):
        values = "  ".join(f"{k} {v:.4g}" for k, v in evaluate(model, test).items())
        print(f"test  {values}")
    state = model.state_dict()
    weights = {k: v.float().contiguous() for k, v in state.items() if "num_batches" not in k}
    save_file(weights, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
"""


def _tagged(text: str, tags: dict[str, bool]) -> str:
    """`text` without the lines marked `  #@tag` whose tag is off (the marks removed)."""
    out = []
    for line in text.strip("\n").split("\n"):
        if "  #@" in line:
            line, tag = line.split("  #@")
            if not tags[tag]:
                continue
        out.append(line)
    return "\n".join(out)


def generate_train(graph: Graph) -> str | None:
    """The training script's text, or None when the spec has no `training:` section."""
    if graph.training is None:
        return None
    return _Script(graph).source()


class _Script:
    def __init__(self, graph: Graph):
        self.g = graph
        self.p = graph.training
        self.cls = model_class(graph.name)
        self.local = self.cls  # the class's name in the script (an alias if the script's own)
        self.logits = logits_nodes(graph)
        self.recurrent = any(n.op in ("rnn", "lstm") for n in graph.nodes)
        self.sched = self.p.schedule
        self.es = self.p.early_stopping

    def out_shape(self, output: str):
        return self.g.value(self.g.outputs[output]).shape

    # -- pieces --------------------------------------------------------------------------
    def header(self) -> str:
        g = self.g
        data = f"`{self.data_path()}`" if self.p.source else "a data file"
        lines = [
            f'"""Train the `{escape(g.name)}` network with PyTorch, as its spec\'s `training:` '
            "section says.",
            "",
            f"Generated by netspec from {escape(g.source or 'a spec')}; `netspec train` runs "
            "exactly this code (`fit`). Run it alone from where netspec build ran (the data "
            "path is relative to it):",
            "",
            f"    python {escape(script_file(g))} [--data FILE] [--weights FILE] [--epochs N]",
            "",
            "In several processes (DistributedDataParallel, each its shard of every batch), start "
            "it with `torchrun --nproc_per_node N` instead of `python`.",
            "",
            f"It reads {escape(data)}, splits it into training / validation / test rows as "
            f"netspec does, trains `{self.cls}` from {escape(g.name)}_torch.py and writes the "
            f"trained weights to {escape(g.name)}_trained.safetensors (netspec's canonical "
            "keys: the model's state_dict() keys).",
            '"""',
        ]
        import textwrap

        out = []
        for ln in lines:
            if ln.startswith("    ") or not ln:
                out.append(ln)
            else:
                out += textwrap.wrap(ln, WIDTH, break_on_hyphens=False, break_long_words=False)
        return "\n".join(out)

    def imports(self) -> str:
        froms = {
            "safetensors": "from safetensors import safe_open",
            "safetensors.torch": "from safetensors.torch import load_file, save_file",
            "torch": "from torch import nn",
            f"{self.g.name}_torch": f"from {self.g.name}_torch import {self.imported()}",
        }
        lines = [
            "import argparse",
            "import csv",
            "import json",
            "import math",
            "import os",
            "from fractions import Fraction",
            "",
            "import numpy as np",
            "import torch",
            "import torch.distributed as dist",
            *(froms[k] for k in sorted(froms, key=lambda m: (m.lower(), m))),
        ]
        return "\n".join(lines)

    def imported(self) -> str:
        """What the script imports from the model file (an alias on a line of its own, as
        ruff's isort writes it)."""
        if self.local == self.cls:
            return f"{self.cls}, load_weights"
        module = f"{self.g.name}_torch"
        return f"{self.cls} as {self.local}\nfrom {module} import load_weights"

    def data_path(self) -> str | None:
        src = self.p.source
        if src is None or src.startswith("sklearn:"):
            return src
        base = os.path.dirname(self.g.source) if self.g.source else ""
        return os.path.normpath(os.path.join(base, src)).replace(os.sep, "/")

    def side_file(self, v):
        if isinstance(v, str):
            base = os.path.dirname(self.g.source) if self.g.source else ""
            return os.path.normpath(os.path.join(base, v)).replace(os.sep, "/")
        return v

    def constants(self) -> str:
        g, p = self.g, self.p
        labels = {}
        for o in p.objectives:
            if o.kind == "classes":
                shape = self.out_shape(o.output)[:-1]
                labels[o.output] = tuple(d if isinstance(d, int) else None for d in shape)
        lines = []
        data = self.data_path()
        if data is None:
            where = "the spec names no data: pass --data FILE"
        elif data.startswith("sklearn:"):
            where = "scikit-learn's bundled copy"
        else:
            where = "relative to where netspec build ran"
        lines += _const("DATA", data, where)
        lines += _const(
            "INPUTS", {k: _columns(v) for k, v in p.inputs.items()}, "model input <- data"
        )
        lines += _const(
            "TARGETS",
            {o.output: _columns(o.target) for o in p.objectives},
            "trained output <- data",
        )
        lines += _const(
            "INPUT_SHAPES",
            {k: _fixed(v.shape) for k, v in g.inputs.items()},
            "per example; None: as the data has it",
        )
        lines += _const("INPUT_DTYPES", {k: v.dtype for k, v in g.inputs.items()})
        lines += _const(
            "TARGET_SHAPES", {o.output: _fixed(self.out_shape(o.output)) for o in p.objectives}
        )
        lines += _const("LABEL_SHAPES", labels, "class targets as class indices")
        lines += _const("OUTPUTS", list(g.outputs), "the model's outputs, in forward's order")
        lines += _const(
            "VALIDATION",
            self.side_file(p.validation),
            "a file" if isinstance(p.validation, str) else "a fraction of the data",
        )
        lines += _const(
            "TEST",
            self.side_file(p.test),
            "a file" if isinstance(p.test, str) else "a fraction of the data",
        )
        lines += [
            f"EPOCHS = {p.epochs}",
            f"BATCH_SIZE = {p.batch_size}",
            f"SEED = {p.seed}",
            f"SHUFFLE = {p.shuffle}",
        ]
        a = p.optimizer_attrs
        if a.get("clip_value") is not None:
            lines.append(f"CLIP_VALUE = {_num(a['clip_value'])}")
        if a.get("clip_norm") is not None:
            lines.append(f"CLIP_NORM = {_num(a['clip_norm'])}")
        if self.es is not None:
            lines += _const(
                "EARLY_STOPPING",
                {
                    "monitor": self.es.monitor,
                    "patience": self.es.patience,
                    "mode": self.es.mode,
                    "min_delta": float(self.es.min_delta),
                    "restore_best": self.es.restore_best,
                },
            )
        return "\n".join(lines)

    def loss_table(self) -> str:
        p = self.p
        rows = []
        for o in p.objectives:
            if o.loss == "mse":
                expr = "nn.MSELoss()"
            elif o.loss == "mae":
                expr = "nn.L1Loss()"
            elif o.loss == "huber":
                expr = f"nn.HuberLoss(delta={_num(o.loss_attrs.get('delta', 1.0))})"
            elif o.loss == "binary_crossentropy":
                expr = "nn.BCELoss()" if o.reads == "probabilities" else "nn.BCEWithLogitsLoss()"
            elif o.loss == "categorical_crossentropy":
                expr = (
                    "nll_of_probabilities"
                    if o.reads == "probabilities"
                    else "nn.CrossEntropyLoss()"
                )
            else:  # pragma: no cover - the loss records are these
                raise SpecError(f"the torch target has no loss {o.loss!r}")
            rows.append((o.output, expr))
        logit = [o.output for o in p.objectives if o.reads in ("input_logits", "logits")]
        comment = "# trained output -> its loss (torch.nn, the mean over the batch)"
        if logit:
            comment += f"; {', '.join(logit)}: from the logits"
        lines = [comment]
        one = "LOSSES = {" + ", ".join(f'"{k}": {e}' for k, e in rows) + "}"
        if len(one) <= WIDTH:
            lines.append(one)
        else:
            lines += ["LOSSES = {", *[f'{INDENT}"{k}": {e},' for k, e in rows], "}"]
        if any(o.weight != 1.0 for o in p.objectives):
            lines += _const("LOSS_WEIGHTS", {o.output: float(o.weight) for o in p.objectives})
        metrics: dict[str, dict] = {}
        for m in p.metrics:
            metrics.setdefault(m.output, {})[m.name] = dict(m.attrs)
        lines += _const("METRICS", metrics, "trained output -> metric -> its attributes")
        return "\n".join(lines)

    def model_functions(self) -> list[str]:
        g, p = self.g, self.p
        out: list[str] = []
        if any(
            o.reads == "probabilities" and o.loss == "categorical_crossentropy"
            for o in p.objectives
        ):
            out.append('''def nll_of_probabilities(p, t):
    """Cross-entropy of probabilities `p` (not logits) against class indices or one-hot rows:
    log p, unclipped (netspec's rule for a sigmoid output under categorical cross-entropy)."""
    if t.dim() < p.dim():
        return nn.functional.nll_loss(torch.log(p), t)
    return -torch.where(t != 0, t * torch.log(p), 0.0).sum(-1).mean()''')
        if self.recurrent:
            out.append('''def one_bias_per_gate(model):
    """Train one bias per LSTM/RNN gate, as Keras keeps one (netspec's rule): bias_hh is
    folded into bias_ih and frozen at zero."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.LSTM, nn.RNN)):
                for name, bias in module.named_parameters():
                    if name.startswith("bias_hh"):
                        getattr(module, name.replace("bias_hh", "bias_ih")).add_(bias)
                        bias.zero_()
                        bias.requires_grad_(False)''')
        args = ", ".join(f'x["{k}"]' for k in g.inputs)
        call = f"model({args}, {LOGITS}=True)" if self.logits else f"model({args})"
        doc = "The model's outputs by name"
        doc += " (the logits of outputs whose loss reads them)." if self.logits else "."
        out.append(f'''def outputs(model, x):
    """{doc}"""
    y = {call}
    return dict(zip(OUTPUTS, y if isinstance(y, tuple) else (y,), strict=True))''')
        if self.logits:
            body = []
            for o in p.objectives:
                node = g.node(g.outputs[o.output])
                if node.name not in self.logits:
                    continue
                attrs = node.attrs if node.op in PROBABILITY_OPS else node.attrs["activation"]
                op = node.op if node.op in PROBABILITY_OPS else attrs["op"]
                k = o.output
                if op == "sigmoid":
                    body.append(f'    y["{k}"] = torch.sigmoid(y["{k}"])')
                else:
                    axis, rank = attrs.get("axis", -1), len(node.shape)
                    axis = axis + rank + 1 if axis < 0 else axis  # counts the batch axis
                    dim = -1 if axis == rank else axis  # as the model's emitter writes it
                    body.append(f'    y["{k}"] = torch.softmax(y["{k}"], dim={dim})')
            out.append(
                "def probabilities(y):\n"
                '    """The outputs as the model gives them: the final sigmoid/softmax '
                'applied to the logits."""\n'
                "    y = dict(y)\n" + "\n".join(body) + "\n    return y"
            )
        deep = [
            o.output
            for o in p.objectives
            if o.kind == "classes" and len(self.out_shape(o.output)) > 1
        ]
        if deep:
            out.append('''def per_position(y, t):
    """Class scores [N, ..., C] as rows [N * ..., C], and their targets (class indices or
    one-hot rows) alike: the loss averages over every position."""
    rows = y.reshape(-1, y.shape[-1])
    return rows, t.reshape(-1, t.shape[-1]) if t.dim() == y.dim() else t.reshape(-1)''')
        parts = []
        for o in p.objectives:
            k = o.output
            args = f'*per_position(y["{k}"], t["{k}"])' if k in deep else f'y["{k}"], t["{k}"]'
            parts.append(f'        "{k}": LOSSES["{k}"]({args}),')
        if any(o.weight != 1.0 for o in p.objectives):
            total = "sum(LOSS_WEIGHTS[k] * v for k, v in parts.items())"
        else:
            total = "sum(parts.values())"
        out.append(
            "def compute_loss(y, t):\n"
            '    """The batch\'s loss, and each trained output\'s part of it."""\n'
            "    parts = {\n" + "\n".join(parts) + "\n    }\n"
            f"    return {total}, parts"
        )
        return out

    def optimizer(self) -> str:
        p = self.p
        a = p.optimizer_attrs
        cls, table = OPTIMIZER_ARGS[p.optimizer]
        args = [f"lr={_num(a['lr'])}"]
        if p.optimizer in ("adam", "adamw") and (a["beta1"], a["beta2"]) != (0.9, 0.999):
            args.append(f"betas=({_num(a['beta1'])}, {_num(a['beta2'])})")
        for name, (arg, default) in table.items():
            v = a.get(name, default)
            if v is None or v == default and type(v) is type(default):
                continue
            args.append(f"{arg}={v!r}" if isinstance(v, bool) else f"{arg}={_num(v)}")
        call = f"{cls}(params, {', '.join(args)})"
        ret = f"    return {call}"
        if len(ret) > WIDTH:
            items = "".join(f"        {x},\n" for x in ["params", *args])
            ret = f"    return {cls}(\n{items}    )"
        return (
            "def make_optimizer(model):\n"
            f'    """{cls} over the trained parameters, as the spec says."""\n'
            "    params = [p for p in model.parameters() if p.requires_grad]\n" + ret
        )

    def scheduler(self) -> str | None:
        p = self.p
        if p.schedule is None:
            return None
        a = p.schedule_attrs
        unit = a["interval"]
        units = Raw("epochs" if unit == "epoch" else "epochs * steps_per_epoch")
        S = "torch.optim.lr_scheduler"
        w = a["warmup"]
        opt = Raw("optimizer")
        if p.schedule == "step":
            main = Call(
                f"{S}.StepLR",
                (opt, Kw("step_size", lit(a["step_size"])), Kw("gamma", Raw(_num(a["gamma"])))),
            )
            what = f"the rate times {a['gamma']:g} every {a['step_size']} {unit}s"
        elif p.schedule == "exponential":
            main = Call(f"{S}.ExponentialLR", (opt, Kw("gamma", Raw(_num(a["gamma"])))))
            what = f"the rate times {a['gamma']:g} every {unit}"
        else:
            if a["t_max"] is not None:
                t_max = lit(a["t_max"])
                what = f"cosine annealing over {a['t_max']} {unit}s"
            else:
                left = Raw(f"{units.text} - {w}") if w else units
                t_max = Call("max", (left, lit(1)))
                what = "cosine annealing over the rest of the run"
            main = Call(
                f"{S}.CosineAnnealingLR",
                (opt, Kw("T_max", t_max), Kw("eta_min", Raw(_num(a["eta_min"])))),
            )
        if w:
            what = f"a linear warm-up of {w} {unit}s, then {what}"
        doc = textwrap.wrap(
            f"The learning-rate schedule, stepped once per {unit}: {what}.", WIDTH - 7
        )
        lines = ["def make_scheduler(optimizer, epochs, steps_per_epoch):"]
        lines += docstring(doc, 1)
        if w:
            warm = Call(
                f"{S}.LinearLR",
                (opt, Kw("start_factor", Raw(_num(a["warmup_start"]))), Kw("total_iters", lit(w))),
            )
            seq = Call(
                f"{S}.SequentialLR",
                (opt, Raw("[warmup, main]"), Kw("milestones", Raw(f"[{w}]"))),
            )
            lines += split("main = ", main, 1)
            lines += split("warmup = ", warm, 1)
            lines += split("return ", seq, 1)
        else:
            lines += split("return ", main, 1)
        return "\n".join(lines)

    def fit(self) -> str:
        p = self.p
        sched = p.schedule is not None
        per_step = sched and p.schedule_attrs["interval"] == "step"
        a = p.optimizer_attrs
        tags = {
            "rnn": self.recurrent,
            "sched": sched,
            "nosched": not sched,
            "step": per_step,
            "epoch": sched and not per_step,
            "es": self.es is not None,
            "noes": self.es is None,
            "clip": a.get("clip_value") is not None or a.get("clip_norm") is not None,
            "cv": a.get("clip_value") is not None,
            "cn": a.get("clip_norm") is not None,
        }
        return _tagged(FIT, tags)

    def distributed(self) -> str:
        """The torchrun helpers; DistributedDataParallel looks for parameters that get no
        gradient only where some are (outputs that are not trained)."""
        trained = {o.output for o in self.p.objectives}
        unused = ", find_unused_parameters=True" if trained != set(self.g.outputs) else ""
        return DISTRIBUTED_FUNCTIONS.strip("\n").replace("<UNUSED>", unused)

    def main(self) -> str:
        p = self.p
        val, test = isinstance(p.validation, str), isinstance(p.test, str)
        text = _tagged(MAIN, {"valfile": val, "testfile": test})
        text = text.replace("<VALIDATION>", "0" if val else "VALIDATION")
        text = text.replace("<TEST>", "0" if test else "TEST")
        text = text.replace("<CLASS>", self.local)
        return text.replace("<OUT>", f"{self.g.name}_trained.safetensors")

    def source(self) -> str:
        """The script; the model class imported under another name when the script defines
        or imports its name itself (a spec called `early_stopping` or `fraction`)."""
        import ast

        text = self.text()
        taken = set()
        for node in ast.parse(text).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                taken.add(node.name)
            elif isinstance(node, ast.Assign):
                taken |= {t.id for t in node.targets if isinstance(t, ast.Name)}
            elif isinstance(node, ast.Import | ast.ImportFrom):
                mod = getattr(node, "module", None)
                if mod != f"{self.g.name}_torch":
                    taken |= {(a.asname or a.name).split(".")[0] for a in node.names}
        if self.cls not in taken:
            return text
        k, local = 1, self.cls + "Model"
        while local in taken:
            k, local = k + 1, f"{self.cls}Model{k + 1}"
        self.local = local
        return self.text()

    def text(self) -> str:
        parts = [
            self.header(),
            self.imports(),
            self.constants(),
        ]
        text = "\n\n".join(parts) + "\n\n" + self.loss_table()
        data = DATA_FUNCTIONS.replace("<ORDER_FUNCTIONS>", ORDER_FUNCTIONS.strip("\n"))
        blocks = [data.strip("\n")]
        blocks += self.model_functions()
        metric_text = METRIC_FUNCTIONS.strip("\n")
        if self.logits:
            metric_text = metric_text.replace("PROBABILITIES(", "probabilities(")
        else:
            metric_text = metric_text.replace("    y = PROBABILITIES(y)\n", "")
            metric_text = metric_text.replace(
                "PROBABILITIES(outputs(model, x))", "outputs(model, x)"
            )
        blocks.append(metric_text)
        blocks.append(self.optimizer())
        s = self.scheduler()
        if s:
            blocks.append(s)
        if self.es is not None:
            blocks.append(EARLY_STOPPING_CLASS.strip("\n"))
        blocks.append(CHECKPOINT_FUNCTIONS.strip("\n"))
        blocks.append(self.distributed())
        blocks.append(TENSORBOARD_FUNCTIONS.strip("\n"))
        blocks.append(self.fit())
        blocks.append(self.main())
        return text + "\n\n\n" + "\n\n\n".join(blocks) + "\n"


# -- running it ------------------------------------------------------------------------------
@dataclass
class Trained:
    """A model trained by the executed script: `.model`, `.history`, canonical `.weights()`,
    `.evaluate(data)` and `.predict(inputs)` (the script's own functions)."""

    model: Any
    history: dict[str, list[float]]
    graph: Graph
    script: Any

    def weights(self) -> dict:
        from .state import export_weights

        return export_weights(self.model, self.graph)

    def evaluate(self, data) -> dict[str, float]:
        return self.script.evaluate(self.model, data)

    def predict(self, inputs) -> dict:
        return self.script.predict(self.model, inputs)


def has_checkpoint(checkpoint_dir) -> bool:
    return (Path(checkpoint_dir) / f"{CHECKPOINT}.safetensors").is_file()


def check_checkpoint(checkpoint_dir, model) -> None:
    """A SpecError unless the checkpoint holds this model's weights (names and shapes)."""
    from safetensors import SafetensorError, safe_open

    path = Path(checkpoint_dir) / f"{CHECKPOINT}.safetensors"
    try:
        with safe_open(str(path), "pt") as f:
            keys = {k[6:]: tuple(f.get_slice(k).get_shape()) for k in f.keys() if k[:6] == "model."}
            ok = "checkpoint" in (f.metadata() or {})
    except (SafetensorError, OSError) as e:
        raise SpecError(f"{path}: not a readable checkpoint ({e})") from None
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if not ok or keys != own:
        raise SpecError(
            f"the checkpoint in {checkpoint_dir} is not one of this model's",
            hint="resume with the spec (and --set values) that wrote it, or train afresh "
            "into another folder",
        )


def load_script(graph: Graph):
    """(model module, training script module): the generated texts executed, the script's
    `from <name>_torch import ...` bound to that model module."""
    from ..python.run import run_source
    from .codegen import Generator
    from .emitters import EMITTERS

    model_mod = run_source(Generator(graph, EMITTERS).source(), "torch", graph.name)
    name = f"{graph.name}_torch"
    saved = sys.modules.get(name)
    sys.modules[name] = model_mod
    try:
        script = run_source(generate_train(graph), "torch_train", graph.name)
    finally:
        if saved is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = saved
    return model_mod, script


def run_training(
    graph: Graph,
    weights,
    train,
    validation=None,
    *,
    epochs: int | None = None,
    checkpoint_dir=None,
    resume: bool = False,
    on_epoch_end=None,
    dtype: str = "float32",
    tensorboard=None,
) -> Trained:
    """Train `graph`'s model from canonical `weights` with exactly the generated script."""
    import torch

    from .state import load_state

    if graph.training is None:
        raise SpecError("the spec has no `training:` section", hint="add one to train it")
    if resume and (checkpoint_dir is None or not has_checkpoint(checkpoint_dir)):
        raise SpecError(
            f"nothing to resume: no checkpoint in {checkpoint_dir}",
            hint="train without --resume first",
        )
    model_mod, script = load_script(graph)
    model = model_mod.__dict__[model_class(graph.name)]()
    model = model.to(getattr(torch, dtype))
    load_state(model, weights)
    if resume:
        check_checkpoint(checkpoint_dir, model)
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
    return Trained(model.eval(), history, graph, script)


def check_processes(nproc: int, train_rows: int, batch_size: int, where=()) -> None:
    """A SpecError unless `nproc` processes each get rows of every batch (the script's
    check_shards rule, found before anything starts)."""
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise SpecError(f"the number of processes must be a whole number >= 1, not {nproc!r}")
    smallest = min(train_rows, batch_size, train_rows % batch_size or batch_size)
    if smallest < nproc:
        raise SpecError(
            f"{nproc} processes need at least {nproc} rows in every batch; the smallest of "
            f"{train_rows} training rows in batches of {batch_size} has {smallest}",
            where,
            hint=f"use --nproc {smallest} or fewer, or another batch_size",
        )


def run_distributed(
    graph: Graph,
    weights,
    data: str,
    nproc: int,
    workdir: Path,
    *,
    epochs: int | None = None,
    checkpoint_dir=None,
    resume: bool = False,
    on_epoch_end=None,
    tensorboard=None,
) -> Trained:
    """Train `graph`'s model with exactly the generated script's `main()` in `nproc` processes
    started by torch.distributed.run (torchrun, this machine only). The model and script files
    and the initial canonical `weights` are written into `workdir`; the script reads `data`
    itself and splits it as netspec does. `on_epoch_end(epoch, logs)` follows the checkpoints
    the first process writes into `checkpoint_dir` (default: in `workdir`). The trained model is
    loaded back into this process (for evaluation and export) with the run's history."""
    import json
    import subprocess

    from safetensors.numpy import load_file

    from ...weights import write_weights
    from .codegen import Generator
    from .emitters import EMITTERS
    from .state import load_state

    if graph.training is None:
        raise SpecError("the spec has no `training:` section", hint="add one to train it")
    workdir = Path(workdir)
    checkpoints = Path(checkpoint_dir) if checkpoint_dir is not None else workdir / "checkpoints"
    script = workdir / script_file(graph)
    (workdir / f"{graph.name}_torch.py").write_text(
        Generator(graph, EMITTERS).source(), encoding="utf-8"
    )
    script.write_text(generate_train(graph), encoding="utf-8")
    start, trained_file = workdir / "initial.safetensors", workdir / "trained.safetensors"
    write_weights(weights, graph, start)
    model_mod, module = load_script(graph)
    model = model_mod.__dict__[model_class(graph.name)]()
    if resume:
        check_checkpoint(checkpoints, model)
    args = [str(script), "--data", data, "--weights", str(start), "--out", str(trained_file)]
    args += ["--epochs", str(graph.training.epochs if epochs is None else epochs)]
    args += ["--checkpoints", str(checkpoints)] + (["--resume"] if resume else [])
    args += ["--tensorboard", str(tensorboard)] if tensorboard is not None else []
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += [f"--nproc_per_node={nproc}", *args]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    log = workdir / "torchrun.log"
    with (
        open(log, "w", encoding="utf-8") as err,
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True, env=env) as proc,
    ):
        try:
            for line in proc.stdout:  # "epoch 3/20  loss ...": the checkpoint holds epoch 3
                if line.startswith("epoch ") and on_epoch_end is not None:
                    epoch = int(line.split()[1].split("/")[0]) - 1
                    record = json.loads((checkpoints / f"{CHECKPOINT}.json").read_text("utf-8"))
                    on_epoch_end(epoch, {k: v[epoch] for k, v in record["history"].items()})
        except BaseException:  # torchrun ends its worker processes on SIGTERM
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
    if proc.returncode != 0 or not trained_file.is_file():
        tail = log.read_text("utf-8", errors="replace").strip().splitlines()[-12:]
        raise SpecError(
            f"the {nproc} training processes under torchrun failed (exit status {proc.returncode})",
            hint="its last lines:\n" + "\n".join(tail),
        )
    record = json.loads((checkpoints / f"{CHECKPOINT}.json").read_text("utf-8"))
    load_state(model, load_file(str(trained_file)))
    return Trained(model.eval(), record["history"], graph, module)
