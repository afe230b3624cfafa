"""`netspec train` and `netspec.train()`: data, split, initial weights, the target's training
script, evaluation, and the files of a trained model.

    history = train(graph, "data/xor.csv", target="torch", out="build/xor")

Order of work: every user mistake is found before anything is written (the spec has a
`training:` section, the data loads and fits the model, the weights file fits, a checkpoint
exists for `resume`, matplotlib is there); then the target's `run_training` runs exactly the
generated training script, writing a checkpoint each epoch into `<out>/checkpoints/`; then
every other file is written into a temporary folder inside `out` and moved into place (as
`netspec build` does): the trained canonical `<name>.safetensors`, `<name>.onnx` with those
weights, the model and training sources, history.csv/json, metrics.json, curves.png/svg.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..ir import Graph
from ..outdir import commit, remove_if_empty, staging


@contextlib.contextmanager
def _scratch():
    with tempfile.TemporaryDirectory(prefix="netspec-torchrun-") as d:
        yield Path(d)


TRAIN_TARGETS = ("torch", "keras")
CHECKPOINTS = "checkpoints"


@dataclass
class History:
    """A finished run: per-epoch `history` ({"loss": [...], "val_loss": [...], ...}), the final
    model's `metrics` by part ({"train": {...}, "validation": {...}, "test": {...}}), its
    canonical `weights`, and the `files` written (empty without an output folder)."""

    history: dict[str, list[float]]
    metrics: dict[str, dict[str, float]]
    weights: dict[str, Any]
    target: str
    files: list[Path] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(next(iter(self.history.values()), []))

    @property
    def test(self) -> dict[str, float]:
        return self.metrics.get("test", {})

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]


def _relative(graph: Graph, path: str) -> str:
    """A path the spec wrote: relative to the spec file's folder (sklearn:NAME as it is)."""
    if path.startswith("sklearn:") or os.path.isabs(path) or not graph.source:
        return path
    return os.path.join(os.path.dirname(graph.source), path)


def _target_module(target: str):
    if target not in TRAIN_TARGETS:
        raise SpecError(
            f"cannot train on the {target!r} target",
            hint="train with --target torch or --target keras (the ONNX model is written too)",
        )
    try:
        return importlib.import_module(f"netspec.targets.{target}.train")
    except ImportError as e:
        raise SpecError(
            f"training on the {target} target needs {e.name}, which is not installed",
            hint=f"pip install 'netspec[{target}]'",
        ) from None


def load_parts(graph: Graph, data=None):
    """(dataset, split, validation dataset or None, test dataset or None) of the plan."""
    from .data import input_specs, load_data
    from .split import split_rows

    plan = graph.training
    if data is None:
        if plan.source is None:
            raise SpecError(
                "no training data: the spec's `training:` names no `data`",
                (*plan.path,),
                hint="add `data: FILE` to the section, or pass --data FILE",
            )
        data = _relative(graph, plan.source)
    mapping, ins, outs = plan.data_map(), input_specs(graph), plan.target_specs(graph)
    dataset = load_data(data, mapping, ins, outs)
    side = {}
    for part in ("validation", "test"):
        v = getattr(plan, part)
        side[part] = (
            load_data(_relative(graph, v), mapping, ins, outs) if isinstance(v, str) else None
        )
    fracs = [0.0 if isinstance(v, str) else v for v in (plan.validation, plan.test)]
    rows = split_rows(dataset.rows, plan.seed, *fracs)
    return dataset, rows, side["validation"], side["test"]


def _adapt(graph: Graph, weights, dataset, rows):
    """Normalization statistics from the training rows (graphs with `normalize` layers)."""
    if not any(n.op == "normalize" for n in graph.nodes):
        return weights
    from .adapt import adapt

    return adapt(graph, weights, dataset, rows)


def _part(own, dataset, rows):
    """The (inputs, targets) arrays of a validation or test part: every row of its own file
    (`own`), else `rows` of the split data set, else None (no such part)."""
    if own is not None:
        return own.take(range(own.rows))
    return dataset.take(rows) if len(rows) else None


def train(
    graph: Graph,
    data: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    *,
    target: str = "torch",
    out: str | os.PathLike | None = None,
    weights: str | os.PathLike | Mapping | None = None,
    resume: bool = False,
    epochs: int | None = None,
    progress: Callable[[int, dict[str, float]], None] | None = None,
    tensorboard: str | os.PathLike | None = None,
    nproc: int | None = None,
) -> History:
    """Train `graph` as its `training:` section says, on `data` (default: the section's
    `data`), with the `target`'s generated training script; write the trained model's files
    into `out` (nothing is written without it). `weights`: initial canonical weights (default:
    `init_weights(graph, seed)`); `resume`: continue from `<out>/checkpoints/`; `epochs`: the
    run's length (default: the section's); `progress(epoch, logs)` after each epoch;
    `tensorboard`: a folder for TensorBoard event files; `nproc`: run the PyTorch script in
    that many processes under torchrun (DistributedDataParallel), not in this process."""
    from ..weights import init_weights, load_weights

    plan = graph.training
    if plan is None:
        raise SpecError(
            f"the spec {graph.name!r} has no `training:` section",
            hint="add one (see docs/training.md) to train the model",
        )
    if epochs is not None and (
        isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1
    ):
        raise SpecError(f"epochs must be a whole number >= 1, not {epochs!r}")
    if nproc is not None and target != "torch":
        raise SpecError(
            f"several training processes (nproc) run the PyTorch script; the {target} target "
            "trains in one process",
            hint="train with --target torch, or without --nproc (docs/training.md, "
            '"Several processes")',
        )
    module = _target_module(target)
    if tensorboard is not None:
        _check_tensorboard(target, tensorboard)
    root = None if out is None else Path(out)
    if root is not None and root.exists() and not root.is_dir():
        raise SpecError(f"the output folder {str(root)!r} is a file", hint="choose another -o")
    checkpoints = None if root is None else root / CHECKPOINTS
    if resume:
        if checkpoints is None:
            raise SpecError("resume needs the output folder of the run to resume")
        if not module.has_checkpoint(checkpoints):
            raise SpecError(
                f"nothing to resume: no checkpoint in {checkpoints}",
                hint="train without --resume first (each epoch writes one)",
            )
    dataset, rows, val_data, test_data = load_parts(graph, data)
    w = init_weights(graph, plan.seed) if weights is None else load_weights(weights, graph)
    w = _adapt(graph, w, dataset, rows.train)
    if root is not None:
        from .outputs import check_plotting

        check_plotting()
    train_part = dataset.take(rows.train)
    val_part = _part(val_data, dataset, rows.validation)
    test_part = _part(test_data, dataset, rows.test)

    created = root is not None and not root.exists()
    if nproc is not None:
        module.check_processes(nproc, len(rows.train), plan.batch_size, (*plan.path, "batch_size"))
        source = _one_source(graph, data)
    if root is not None:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SpecError(
                f"cannot create the output folder {str(root)!r}: {e.strerror}"
            ) from None
    if nproc is None:
        trained = module.run_training(
            graph,
            w,
            train_part,
            val_part,
            epochs=epochs,
            checkpoint_dir=checkpoints,
            resume=resume,
            on_epoch_end=progress,
            tensorboard=tensorboard,
        )
    else:
        # the processes' shared folder: a staging folder, so a killed run's is swept later
        with staging(root, "torchrun") if root is not None else _scratch() as work:
            trained = module.run_distributed(
                graph,
                w,
                source,
                nproc,
                work,
                epochs=epochs,
                checkpoint_dir=checkpoints,
                resume=resume,
                on_epoch_end=progress,
                tensorboard=tensorboard,
            )
    history = _ordered(plan, dict(trained.history), val_part is not None)
    metrics: dict[str, Any] = {"epochs": len(next(iter(history.values()), []))}
    metrics["train"] = trained.evaluate(train_part)
    if val_part is not None:
        metrics["validation"] = trained.evaluate(val_part)
    if test_part is not None:
        metrics["test"] = trained.evaluate(test_part)
    final = trained.weights()
    result = History(history, metrics, final, target)
    if root is not None:
        result.files = write_run(graph, target, result, root, created)
    return result


def _check_tensorboard(target: str, folder) -> None:
    """The writer of event files is there (torch: the tensorboard package; keras: TensorFlow's
    summaries, which the keras extra installs), and `folder` is not a file."""
    import importlib.util

    need = "tensorboard" if target == "torch" else "tensorflow"
    if importlib.util.find_spec(need) is None:
        raise SpecError(
            f"TensorBoard logs from the {target} target need {need}, which is not installed",
            hint="pip install 'netspec[logs]'"
            if need == "tensorboard"
            else "pip install 'netspec[keras]' (Keras writes event files with TensorFlow)",
        )
    if Path(folder).exists() and not Path(folder).is_dir():
        raise SpecError(f"the TensorBoard folder {str(folder)!r} is a file", hint="choose another")


def _one_source(graph: Graph, data) -> str:
    """The one data file (absolute) or sklearn:NAME that the script run by torchrun reads."""
    source = data if data is not None else _relative(graph, graph.training.source)
    if not isinstance(source, str | os.PathLike):
        raise SpecError(
            "several training processes read one data file; this run has several",
            hint="join them into one .npz, or train without --nproc",
        )
    text = os.fspath(source)
    return text if text.startswith("sklearn:") else os.path.abspath(text)


def _ordered(plan, history: dict, validation: bool) -> dict:
    """The history in the plan's key order (the same columns whatever the target)."""
    order = [k for k in plan.history_keys(validation) if k in history]
    return {**{k: history[k] for k in order}, **history}


def write_run(graph: Graph, target: str, run: History, root: Path, created: bool) -> list[Path]:
    """Every file of a finished run, written into a temporary folder in `root`, then moved."""
    from .. import targets
    from ..weights import write_weights
    from . import outputs

    root = root.resolve()
    try:
        with staging(root, "train") as tmp:
            write_weights(run.weights, graph, tmp / f"{graph.name}.safetensors")
            targets.get("onnx").write(graph, run.weights, tmp)
            targets.get(target).write(graph, run.weights, tmp)
            outputs.write_history(run.history, tmp)
            outputs.write_metrics(run.metrics, tmp)
            outputs.write_curves(run.history, f"{graph.name} ({target})", tmp)
            return commit(tmp, root)
    except BaseException:
        if created:
            remove_if_empty(root)  # only if empty: never what another command wrote there
        raise
