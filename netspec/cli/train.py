"""`netspec train SPEC`: train the model as its `training:` section says, with the target's
generated training script, and write the trained model's files (see netspec.train.run)."""

from __future__ import annotations

import sys
from contextlib import contextmanager

from ..errors import SpecError
from .common import (
    UsageError,
    load_spec,
    output_dir,
    output_dir_option,
    spec_options,
)


def add_parser(sub) -> None:
    sp = sub.add_parser(
        "train", help="train the model as the spec's training: section says; write the results"
    )
    sp.add_argument("spec", metavar="SPEC")
    sp.add_argument("--data", metavar="FILE", help="training data (default: the spec's data)")
    sp.add_argument(
        "--target",
        "-t",
        default="torch",
        choices=["torch", "keras"],
        help="whose generated training script runs (default: torch)",
    )
    output_dir_option(sp)
    sp.add_argument(
        "--weights",
        metavar="FILE",
        help="canonical safetensors weights to start from (default: init_weights(seed) with "
        "the training section's seed)",
    )
    sp.add_argument("--resume", action="store_true", help="go on from the last checkpoint")
    sp.add_argument("--epochs", type=int, metavar="N", help="train N epochs in all")
    sp.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="write TensorBoard event files into DIR (train/ and validation/, one value an epoch)",
    )
    sp.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train in N processes on this machine under torchrun (DistributedDataParallel; "
        "--target torch)",
    )
    sp.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    spec_options(sp)
    sp.set_defaults(func=run)


def format_logs(logs: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4g}" for k, v in logs.items())


@contextmanager
def epoch_progress(total: int, quiet: bool, file=None):
    """`with epoch_progress(n, quiet) as show: show(epoch, logs)`: a rich progress bar with the
    last epoch's values on a terminal; one plain line per epoch when piped; nothing when quiet."""
    from ..render.term import _rich_available

    file = sys.stderr if file is None else file
    if quiet:
        yield None
        return
    if not (file.isatty() and _rich_available()):

        def plain(epoch: int, logs: dict[str, float]) -> None:
            print(f"epoch {epoch + 1}/{total}  {format_logs(logs)}", file=file, flush=True)

        yield plain
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(file=file)
    with Progress(
        TextColumn("epoch"),
        MofNCompleteColumn(),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
    ) as bar:
        task = bar.add_task("", total=total)

        def fancy(epoch: int, logs: dict[str, float]) -> None:
            bar.update(task, completed=epoch + 1, description=format_logs(logs))

        yield fancy


def run(args) -> int:
    from ..train.run import train
    from ..yamlload import locate_in_source

    if args.epochs is not None and args.epochs < 1:
        raise UsageError(f"--epochs must be at least 1, got {args.epochs}")
    if args.nproc is not None and args.nproc < 1:
        raise UsageError(f"--nproc must be at least 1, got {args.nproc}")
    if args.nproc is not None and args.target != "torch":
        raise UsageError(
            f"--nproc runs the PyTorch training script under torchrun; --target {args.target} "
            'trains in one process (see docs/training.md, "Several processes")'
        )
    graph = load_spec(args, args.spec)
    outdir = output_dir(args, graph)
    total = args.epochs or (graph.training.epochs if graph.training is not None else 0)
    try:
        with epoch_progress(total, args.quiet) as show:
            result = train(
                graph,
                args.data,
                target=args.target,
                out=outdir,
                weights=args.weights,
                resume=args.resume,
                epochs=args.epochs,
                progress=show,
                tensorboard=args.tensorboard,
                nproc=args.nproc,
            )
    except SpecError as e:  # the training section's mistakes found with the data: at their line
        raise locate_in_source(e, graph.source) from None
    if not args.quiet:
        for part in ("train", "validation", "test"):
            if part in result.metrics:
                print(f"{part}: {format_logs(result.metrics[part])}", file=sys.stderr)
        for f in result.files:
            print(f)
    return 0
