"""`netspec tune` and `netspec.tune.tune()`: hyperparameter search over a spec's params with
Optuna (grid, random or TPE sampling, median pruning), one training run per trial.

    result = tune("specs/iris.yaml", search=["hidden=4,8,16"], sampler="grid", out="build/t")

Order of work: every user mistake is found before anything is written or trained (the spec
loads, has a `training:` section with validation data, every `--search` parses and names a
param, the spec accepts every choice and bound, the storage can be reached); then this worker
runs trials until the study holds `trials` of them (see `study`); then the report is written
into `out` (trials.csv, best.json, history.png, importance.png) and the best params are trained
once more into `out/best/` (the files of `netspec train`: weights, ONNX, sources, curves).
Training is deterministic for a given spec and seed, so that run reproduces the best trial.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .space import Space, SpaceError, TuneError, parse_space, parse_spaces
from .study import DEFAULT_HEARTBEAT, Setup, TrialRun

__all__ = [
    "Space",
    "SpaceError",
    "TrialRun",
    "TuneError",
    "TuneResult",
    "parse_space",
    "parse_spaces",
    "tune",
]

STUDY_FILE = "study.db"


@dataclass
class TuneResult:
    """A finished `tune`: the study's name and storage, its best trial (None if no trial
    completed), the trials this worker ran, the report rows and the files written."""

    study: str
    storage: str
    direction: str
    monitor: str
    search: list[str]  # the searched params' names
    best_value: float | None
    best_params: dict[str, Any] | None
    best_trial: int | None
    ran: list[TrialRun]
    table: list[dict[str, Any]]
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def prepare(
    spec: str | os.PathLike,
    search: Sequence[str],
    *,
    data: str | None = None,
    fixed: dict[str, Any] | None = None,
    sampler: str = "tpe",
    trials: int | None = None,
    seed: int = 0,
    target: str = "torch",
    prune: bool = True,
    monitor: str | None = None,
    max_params: int | None = None,
    epochs: int | None = None,
) -> Setup:
    """The checked `Setup` of a search (nothing written, nothing trained)."""
    from ..api import loads
    from ..lower import MAX_PARAMS
    from ..outdir import read_bounded
    from ..yamlload import MAX_FILE_BYTES

    if not search:
        raise TuneError("nothing to search", hint="add --search NAME=SPACE, e.g. hidden=8,16,32")
    text = read_bounded(spec, MAX_FILE_BYTES, "spec")  # as netspec.load reads a spec
    fixed = dict(fixed or {})
    graph = loads(text, fixed, file=str(spec), max_params=max_params or MAX_PARAMS)
    spaces = parse_spaces(search, _spec_params(text, graph))
    both = sorted(set(spaces) & set(fixed))
    if both:
        raise TuneError(f"{both[0]} is both searched and fixed with --set", hint="keep one")
    setup = Setup(
        spec=str(spec),
        text=text,
        graph=graph,
        spaces=spaces,
        data=None if data is None else str(data),
        fixed=fixed,
        sampler=sampler,
        trials=trials,
        seed=seed,
        target=target,
        prune=prune,
        monitor=monitor,
        max_params=max_params,
        epochs=epochs,
    )
    setup.check_spaces()
    return setup


def _spec_params(text: bytes, graph) -> list[str]:
    """The names `--set` takes: the spec's top-level params."""
    from ..yamlload import parse

    params = parse(text, graph.source).data.get("params") or {}
    return list(params) if isinstance(params, dict) else []


def tune(
    spec: str | os.PathLike,
    search: Sequence[str],
    *,
    data: str | None = None,
    fixed: dict[str, Any] | None = None,
    sampler: str = "tpe",
    trials: int | None = None,
    storage: str | None = None,
    study: str | None = None,
    resume: bool = False,
    target: str = "torch",
    seed: int = 0,
    out: str | os.PathLike | None = None,
    prune: bool = True,
    monitor: str | None = None,
    heartbeat: int = DEFAULT_HEARTBEAT,
    max_params: int | None = None,
    epochs: int | None = None,
    best_model: bool = True,
    on_trial: Callable[[TrialRun], None] | None = None,
) -> TuneResult:
    """Search `spec`'s params over `search` (`NAME=SPACE` strings, see `space`); see the module
    docstring. `storage`: an Optuna RDB URL shared by every worker (default: SQLite in `out`);
    `study`: its name (default: the spec's name); `resume`: continue the study in `out`'s
    default storage; `trials`: the study's total trial count (every worker together);
    `epochs`: each trial's training length (default: the training section's)."""
    from .study import open_storage, open_study, quiet_optuna, run_trials, train_objective

    setup = prepare(
        spec,
        search,
        data=data,
        fixed=fixed,
        sampler=sampler,
        trials=trials,
        seed=seed,
        target=target,
        prune=prune,
        monitor=monitor,
        max_params=max_params,
        epochs=epochs,
    )
    if heartbeat < 1:
        raise TuneError(f"--heartbeat must be at least 1 second, got {heartbeat}")
    name = study or setup.graph.name
    root = Path(out) if out is not None else Path("build") / f"{setup.graph.name}-tune"
    if root.exists() and not root.is_dir():
        raise TuneError(f"the output folder {str(root)!r} is a file", hint="choose another -o")
    if storage is None:
        db = root / STUDY_FILE
        exists = db.is_file() and _has_study(db, name)
        if exists and not resume:
            raise TuneError(
                f"{root} already holds the study {name!r}",
                hint="add --resume to continue it, or choose another -o or --study",
            )
        if resume and not exists:
            raise TuneError(f"nothing to resume: no study {name!r} in {db}")
        root.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{db.resolve()}"
    rdb = open_storage(storage, heartbeat)
    if resume:
        optuna = quiet_optuna()
        if name not in optuna.get_all_study_names(rdb):
            raise TuneError(f"nothing to resume: no study {name!r} in the storage")
    the_study = open_study(setup, rdb, name)
    ran = run_trials(
        the_study,
        rdb,
        functools.partial(train_objective, setup),
        trials=setup.trials,
        sampler=setup.sampler,
        seed=setup.seed,
        grid=setup.grid,
        on_trial=on_trial,
    )
    return finish(setup, the_study, storage, root, ran, best_model=best_model)


def _has_study(db: Path, name: str) -> bool:
    import sqlite3

    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT 1 FROM studies WHERE study_name = ?", (name,)).fetchone()
    except sqlite3.Error:
        return False
    return row is not None


def finish(setup: Setup, study, storage: str, root: Path, ran, *, best_model=True) -> TuneResult:
    """Write the report of `study` into `root` and train its best params into `root/best`."""
    from ..outdir import commit, staging
    from . import report
    from .study import shown_url

    names = list(setup.spaces)
    table = report.rows(study, names)
    try:
        best = study.best_trial
    except ValueError:  # no trial completed
        best = None
    result = TuneResult(
        study=study.study_name,
        storage=shown_url(storage),
        direction=setup.direction,
        monitor=setup.monitor,
        search=names,
        best_value=None if best is None else best.value,
        best_params=None if best is None else dict(best.params),
        best_trial=None if best is None else best.number,
        ran=ran,
        table=table,
    )
    root.mkdir(parents=True, exist_ok=True)
    with staging(root.resolve(), "tune") as tmp:
        report.write_csv(table, tmp)
        plots, result.notes = report.write_plots(study, tmp)
        summary = {
            "study": result.study,
            "storage": result.storage,
            "spec": setup.graph.name,
            "monitor": setup.monitor,
            "direction": setup.direction,
            "sampler": setup.sampler,
            "search": {n: s.describe() for n, s in setup.spaces.items()},
            "fixed": setup.fixed,
            "trials": _counts(table),
            "best": None
            if best is None
            else {"trial": best.number, "value": best.value, "params": dict(best.params)},
        }
        if best is not None and best_model:
            summary["best"]["model"] = _train_best(setup, best, root / "best", result)
        report.write_best(summary, tmp)
        result.files = commit(tmp, root.resolve()) + result.files
    return result


def _counts(table) -> dict[str, int]:
    counts: dict[str, int] = {"total": len(table)}
    for row in table:
        counts[row["state"].lower()] = counts.get(row["state"].lower(), 0) + 1
    return counts


def _train_best(setup: Setup, best, folder: Path, result: TuneResult) -> dict[str, Any]:
    """Train the best params again into `folder` (the files of `netspec train`)."""
    from ..train.run import train

    graph = setup.graph_for(best.params)
    run = train(graph, setup.data, target=setup.target, epochs=setup.epochs, out=folder)
    value = float(run.metrics["validation"][setup.key])
    if abs(value - best.value) > 1e-6 * max(1.0, abs(best.value)):
        result.notes.append(
            f"the best params trained again give {setup.monitor} {value:.6g} "
            f"(trial {best.number}: {best.value:.6g})"
        )
    result.files.extend(run.files)
    return {"folder": str(folder), setup.monitor: value}
