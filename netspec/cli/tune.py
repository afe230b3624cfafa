"""`netspec tune SPEC --search NAME=SPACE...`: search the spec's params with Optuna, one
training run per trial, and write the results (see netspec.tune)."""

from __future__ import annotations

import argparse
import sys

from .common import UsageError, params, spec_options


def add_parser(sub) -> None:
    sp = sub.add_parser(
        "tune", help="search the spec's params with Optuna (grid, random, TPE); write the best"
    )
    sp.add_argument("spec", metavar="SPEC")
    sp.add_argument("--data", metavar="FILE", help="training data (default: the spec's data)")
    sp.add_argument(
        "--search",
        action="append",
        required=True,
        metavar="NAME=SPACE",
        help="a param's space: 8,16,32 (choices), 1e-4..1e-1:log, 0..0.5, 8..64:int, "
        "0..1:step=0.1 (repeatable)",
    )
    sp.add_argument(
        "--sampler",
        default="tpe",
        choices=["tpe", "random", "grid"],
        help="how trials pick params (default: tpe, Optuna's Bayesian sampler)",
    )
    sp.add_argument(
        "--trials",
        type=int,
        metavar="N",
        help="the study's total number of trials, all workers together (default: the grid's "
        "size with --sampler grid, else 20)",
    )
    sp.add_argument(
        "--storage",
        metavar="URL",
        help="a study storage every worker joins: postgresql://USER:PASSWORD@HOST/DB "
        "(default: sqlite study.db in the output folder)",
    )
    sp.add_argument("--study", metavar="NAME", help="the study's name (default: the spec's)")
    sp.add_argument(
        "--resume", action="store_true", help="continue the study already in the output folder"
    )
    sp.add_argument(
        "--target",
        "-t",
        default="torch",
        choices=["torch", "keras"],
        help="whose generated training script runs each trial (default: torch)",
    )
    sp.add_argument(
        "--epochs", type=int, metavar="N", help="each trial trains N epochs (default: the spec's)"
    )
    sp.add_argument("--seed", type=int, default=0, metavar="N", help="the sampler's seed")
    sp.add_argument(
        "--monitor",
        metavar="KEY",
        help="the validation value to optimize (default: early stopping's monitor, else "
        "val_loss); accuracy is maximized, the rest minimized",
    )
    sp.add_argument(
        "--prune",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="stop trials whose validation value is worse than the median at that epoch "
        "(default: on)",
    )
    sp.add_argument(
        "--best-model",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="train the best params once more into DIR/best/: weights, ONNX, sources, curves "
        "(default: on; a study's extra workers can leave it to one)",
    )
    sp.add_argument(
        "--heartbeat",
        type=int,
        default=30,
        metavar="S",
        help="seconds between a running trial's heartbeats; a trial silent for twice this "
        "(its worker died) is marked failed (default: 30)",
    )
    sp.add_argument(
        "-o", "--output", metavar="DIR", help="output directory (default build/<name>-tune/)"
    )
    sp.add_argument("-q", "--quiet", action="store_true", help="print only the files written")
    spec_options(sp)
    sp.set_defaults(func=run)


def _show(run) -> str:
    values = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in run.params.items()
    )
    head = f"trial {run.number} ({values}): {run.state.lower()}"
    if run.value is not None:
        head += f", {run.value:.6g}"
    if run.error:
        head += f": {run.error.splitlines()[0][:300]}"
    return head + f"  [{run.seconds:.1f} s]"


def run(args) -> int:
    from ..tune import tune
    from ..tune.report import format_table

    if args.trials is not None and args.trials < 1:
        raise UsageError(f"--trials must be at least 1, got {args.trials}")

    def show(trial_run) -> None:
        if not args.quiet:
            print(_show(trial_run), file=sys.stderr, flush=True)

    result = tune(
        args.spec,
        args.search,
        data=args.data,
        fixed=params(args.set),
        sampler=args.sampler,
        trials=args.trials,
        storage=args.storage,
        study=args.study,
        resume=args.resume,
        target=args.target,
        seed=args.seed,
        out=args.output,
        prune=args.prune,
        monitor=args.monitor,
        heartbeat=args.heartbeat,
        max_params=args.max_params,
        epochs=args.epochs,
        best_model=args.best_model,
        on_trial=show,
    )
    if not args.quiet:
        print(format_table(result.table, result.search, result.direction), file=sys.stderr)
        for note in result.notes:
            print(f"note: {note}", file=sys.stderr)
        if result.best_params is not None:
            print(
                f"best: trial {result.best_trial}, {result.monitor} {result.best_value:.6g}, "
                + ", ".join(f"{k}={v}" for k, v in result.best_params.items()),
                file=sys.stderr,
            )
    for f in result.files:
        print(f)
    if result.best_params is None:
        print("netspec tune: no trial completed (see trials.csv)", file=sys.stderr)
        return 1
    return 0
