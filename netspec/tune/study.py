"""A `netspec tune` study on Optuna: storage, sampler, pruner, the trial loop and its objective.

Each trial trains the spec with the trial's params through `netspec.train.run.train` (the code
path of `netspec train`), reports the monitored validation value after every epoch (the
pruner may stop it there) and returns the final model's validation value.

Many workers, one study: every `netspec tune` process that opens the same storage and study
name is a worker. A worker creates its next trial only while holding a study-wide lock (a
PostgreSQL advisory lock, or a lock file next to the SQLite file) after counting the study's
trials in every state, so `trials` is the exact number of trials the study ends with, and each
trial is run by the one worker that created it. A trial's sampler is seeded from (seed, trial
number), so a study is reproducible whichever worker runs which trial. Each running trial beats
a heartbeat; a trial whose worker died (SIGKILL, a lost machine) is marked FAIL by the next
worker that starts a trial after `2 * heartbeat` seconds of silence, and is not retried (no
trial runs twice; the failed one still counts towards `trials`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import math
import os
import socket
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..ir import Graph
from .space import Space, TuneError, grid_space

SAMPLERS = ("tpe", "random", "grid")
DEFAULT_TRIALS = 20
DEFAULT_HEARTBEAT = 30  # seconds; a silent trial is failed after twice this
SCHEMES = ("sqlite", "postgresql")


@dataclass
class Setup:
    """What a study is: the spec (its text and fixed params), the search, how trials run."""

    spec: str  # the spec file
    text: bytes  # its content, read once
    graph: Graph  # the spec with the fixed params (the searched ones at their spec values)
    spaces: dict[str, Space]
    data: str | None = None
    fixed: dict[str, Any] = field(default_factory=dict)  # --set params
    sampler: str = "tpe"
    trials: int | None = None
    seed: int = 0
    target: str = "torch"
    prune: bool = True
    monitor: str | None = None
    max_params: int | None = None
    epochs: int | None = None  # each trial's (default: the training section's)

    def __post_init__(self) -> None:
        plan = self.graph.training
        if plan is None:
            raise TuneError(
                f"the spec {self.graph.name!r} has no `training:` section",
                hint="add one (see docs/training.md); each trial trains the model",
            )
        if not plan.validated:
            raise TuneError(
                "tuning needs validation data: the spec's `training:` has none",
                hint="add `validation: 0.2` (a fraction of the data, or a file) to training:",
            )
        if self.monitor is None:
            stop = plan.early_stopping
            self.monitor = stop.monitor if stop and stop.monitor.startswith("val_") else "val_loss"
        keys = [k for k in plan.history_keys(True) if k.startswith("val_")]
        if self.monitor not in keys:
            from ..errors import did_you_mean

            guess = did_you_mean(self.monitor, keys)
            raise TuneError(
                f"--monitor {self.monitor}: not a validation value of this training",
                hint=f"did you mean '{guess}'?" if guess else "it records: " + ", ".join(keys),
            )
        if self.sampler not in SAMPLERS:
            hint = "one of " + ", ".join(SAMPLERS)
            raise TuneError(f"unknown sampler {self.sampler!r}", hint=hint)
        self.grid = grid_space(self.spaces) if self.sampler == "grid" else None
        size = math.prod(len(v) for v in self.grid.values()) if self.grid else None
        if self.trials is None:
            self.trials = size or DEFAULT_TRIALS
        if self.epochs is not None and self.epochs < 1:
            raise TuneError(f"--epochs must be at least 1, got {self.epochs}")
        if self.trials < 1:
            raise TuneError(f"--trials must be at least 1, got {self.trials}")
        if size is not None and self.trials > size:
            self.trials = size  # a grid point is not trained twice

    @property
    def direction(self) -> str:
        mode = self.graph.training.key_mode(self.monitor)
        return "maximize" if mode == "max" else "minimize"

    @property
    def key(self) -> str:
        """The name of the monitored value in the final metrics (`val_loss` -> `loss`)."""
        return self.monitor.removeprefix("val_")

    def graph_for(self, values: Mapping[str, Any]) -> Graph:
        """The spec with the fixed params and `values` (a trial's)."""
        from ..api import loads
        from ..lower import MAX_PARAMS

        return loads(
            self.text,
            {**self.fixed, **values},
            file=self.spec,
            max_params=self.max_params or MAX_PARAMS,
        )

    def check_spaces(self) -> None:
        """Every choice and bound of every space loads with the spec, before any trial runs."""
        from ..errors import SpecError

        for space in self.spaces.values():
            for v in space.corners():
                try:
                    self.graph_for({space.name: v})
                except SpecError as e:
                    raise TuneError(
                        f"--search {space.name}={space.describe()}: the spec does not accept "
                        f"{space.name}={v!r}:\n{e}",
                        hint="narrow the space" + ("" if space.integer else ", or add :int"),
                    ) from None

    def attrs(self) -> dict[str, Any]:
        """What every worker of one study must agree on (stored in the study when created)."""
        return {
            "netspec.spec": self.graph.name,
            "netspec.spec_hash": self.graph.spec_hash,
            "netspec.search": {n: s.describe() for n, s in self.spaces.items()},
            "netspec.monitor": self.monitor,
            "netspec.sampler": self.sampler,
            "netspec.target": self.target,
            "netspec.epochs": self.epochs,
            "netspec.trials": self.trials,
        }


@dataclass
class TrialRun:
    """A trial this worker ran: its number, final state, value and wall seconds (ask to tell)."""

    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    seconds: float
    error: str | None = None


def quiet_optuna():
    """Optuna, with its per-trial INFO lines and experimental-feature warnings off."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # run_trials beats the heartbeat as Study.optimize does (see _heartbeat)
    warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with")
    return optuna


def shown_url(url: str) -> str:
    """The storage URL with its password hidden."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1] if "@" in url else url


def open_storage(url: str, heartbeat: int | None = DEFAULT_HEARTBEAT):
    """An Optuna RDB storage at `url` (sqlite:///FILE or postgresql://...), connected and
    checked; a `TuneError` with one line if it cannot be reached. `heartbeat`: seconds between
    a running trial's heartbeats (None: none, e.g. for an in-memory database)."""
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme == "postgres":
        raise TuneError(
            f"--storage {shown_url(url)}: write postgresql://, not postgres://",
            hint="postgresql://USER:PASSWORD@HOST:PORT/DATABASE",
        )
    if scheme not in SCHEMES or "://" not in url:
        raise TuneError(
            f"--storage {shown_url(url)}: not a storage netspec tune can share",
            hint="sqlite:///FILE.db (one machine) or postgresql://USER:PASSWORD@HOST/DB",
        )
    optuna = quiet_optuna()
    import sqlalchemy.exc

    if scheme == "postgresql":
        engine = {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
    else:
        engine = {"connect_args": {"timeout": 60}}
    try:
        with _schema_lock(url, engine):  # workers starting together create the tables once
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine,
                heartbeat_interval=heartbeat,
                grace_period=None if heartbeat is None else 2 * heartbeat,
            )
    except ImportError as e:
        cause = getattr(e.__cause__, "name", None) or "its database driver"
        raise TuneError(
            f"cannot open the storage {shown_url(url)}: {cause} is not installed",
            hint="pip install 'netspec[tune]'",
        ) from None
    except (sqlalchemy.exc.SQLAlchemyError, ValueError) as e:
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()
        raise TuneError(
            f"cannot open the storage {shown_url(url)}: {reason[0] if reason else type(e).__name__}"
        ) from None


def _lock_key(name: str) -> int:
    """A PostgreSQL advisory-lock key (a signed 64-bit integer) for `name`."""
    key = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big")
    return key - (1 << 63)


@contextlib.contextmanager
def _advisory_lock(engine, key: int) -> Iterator[None]:
    from sqlalchemy import text

    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()


@contextlib.contextmanager
def _schema_lock(url: str, engine_kwargs: dict) -> Iterator[None]:
    """Hold a lock while Optuna creates its tables (two workers that create them at once
    collide): a PostgreSQL advisory lock, or SQLite's lock file."""
    if not url.startswith("postgresql"):
        with _file_lock(_sqlite_file(url)):
            yield
        return
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, **engine_kwargs)
    try:
        with _advisory_lock(engine, _lock_key("netspec tune: optuna schema")):
            yield
    finally:
        engine.dispose()


@contextlib.contextmanager
def study_lock(storage, study_name: str) -> Iterator[None]:
    """Hold the study-wide lock: a PostgreSQL advisory lock (any machine), or for SQLite an
    exclusive lock on FILE.lock next to the database (one machine, as SQLite is)."""
    url = str(storage.url)
    if url.startswith("postgresql"):
        with _advisory_lock(storage.engine, _lock_key(f"netspec tune: {study_name}")):
            yield
        return
    with _file_lock(_sqlite_file(url)):
        yield


def _sqlite_file(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    return None if not database or database == ":memory:" else database


@contextlib.contextmanager
def _file_lock(database: str | None) -> Iterator[None]:
    """An exclusive lock on DATABASE.lock (nothing to lock for an in-memory database)."""
    if database is None:
        yield
        return
    fd = os.open(f"{database}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def trial_seed(seed: int, number: int) -> int:
    """The sampler seed of trial `number` (independent streams for different seeds)."""
    import numpy as np

    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


def make_sampler(kind: str, seed: int, grid: dict | None = None, startup: int = 10):
    import optuna

    if kind == "grid":

        class Grid(optuna.samplers.GridSampler):
            def after_trial(self, study, trial, state, values) -> None:
                """No `study.stop()` when the grid is done: run_trials counts the trials."""

        return Grid(grid, seed=seed)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)


def make_pruner(prune: bool):
    import optuna

    if not prune:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)


def open_study(setup: Setup, storage, name: str, *, create: bool = True):
    """The study `name` in `storage`, created with `setup`'s direction and attributes if new;
    a `TuneError` if it exists with another spec, search, monitor or sampler."""
    optuna = quiet_optuna()
    kw = {"storage": storage, "study_name": name, "pruner": make_pruner(setup.prune)}
    if create:
        study = optuna.create_study(direction=setup.direction, load_if_exists=True, **kw)
    else:
        study = optuna.load_study(**kw)
    mine = setup.attrs()
    theirs = study.user_attrs
    if not any(k in theirs for k in mine):
        for k, v in mine.items():
            study.set_user_attr(k, v)
        return study
    for k, v in mine.items():
        if k != "netspec.trials" and theirs.get(k) != v:
            raise TuneError(
                f"the study {name!r} in {shown_url(str(storage.url))} was made with "
                f"{k.split('.', 1)[1]} {theirs.get(k)!r}, this command has {v!r}",
                hint="join it with the same spec and options, or name another one with --study",
            )
    return study


def _heartbeat(storage, trial_id: int) -> contextlib.AbstractContextManager:
    """Optuna's heartbeat thread for a trial run outside `study.optimize` (which starts the
    same one); Optuna's version is pinned in constraints.txt."""
    from optuna.storages._heartbeat import get_heartbeat_thread

    return get_heartbeat_thread(trial_id, storage)


def _heartbeat_enabled(storage) -> bool:
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return is_heartbeat_enabled(storage)


def train_objective(setup: Setup, trial, timing: dict) -> float:
    """Train with the trial's params; report the monitored value each epoch; the final value."""
    import optuna

    from ..train.run import train

    values = {name: space.suggest(trial) for name, space in setup.spaces.items()}
    graph = setup.graph_for(values)
    spent = [0.0]

    def report(epoch: int, logs: dict[str, float]) -> None:
        t = time.perf_counter()
        value = logs.get(setup.monitor)
        if value is not None and math.isfinite(value):
            trial.report(float(value), epoch)
            if setup.prune and trial.should_prune():
                spent[0] += time.perf_counter() - t
                raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}")
        spent[0] += time.perf_counter() - t

    start = time.perf_counter()
    try:
        result = train(graph, setup.data, target=setup.target, epochs=setup.epochs, progress=report)
    finally:
        timing["train"] = time.perf_counter() - start - spent[0]
        timing["report"] = spent[0]
    trial.set_user_attr("epochs", result.epochs)
    return float(result.metrics["validation"][setup.key])


def run_trials(
    study,
    rdb,
    objective: Callable[[Any, dict], float],
    *,
    trials: int,
    sampler: str = "tpe",
    seed: int = 0,
    grid: dict | None = None,
    worker: str | None = None,
    on_trial: Callable[[TrialRun], None] | None = None,
    limit: int | None = None,
) -> list[TrialRun]:
    """Run trials until the study holds `trials` trials (in any state, counting those other
    workers run), or this worker has run `limit`; the trials this worker ran.

    `rdb`: the study's `RDBStorage` (its lock; None for a study of this process alone, in
    memory); `objective(trial, timing)`: the trial's value (it may raise `optuna.TrialPruned`;
    any other exception fails the trial); `sampler`, `seed` and `grid` (for "grid"): the
    sampler each trial is asked with (see `make_sampler`)."""
    optuna = quiet_optuna()
    from optuna.trial import TrialState

    worker = worker or f"{socket.gethostname()}:{os.getpid()}"
    storage = study._storage
    heartbeat = _heartbeat_enabled(storage)
    done: list[TrialRun] = []
    while limit is None or len(done) < limit:
        start = time.perf_counter()
        if heartbeat:
            optuna.storages.fail_stale_trials(study)
        with study_lock(rdb, study.study_name) if rdb is not None else contextlib.nullcontext():
            count = len(study.get_trials(deepcopy=False))
            if count >= trials:
                break
            # the grid's order comes from its seed: one seed for the whole study
            trial_s = trial_seed(seed, 0 if grid else count)
            study.sampler = make_sampler(sampler, trial_s, grid)
            trial = study.ask()
        trial.set_user_attr("worker", worker)
        timing: dict[str, float] = {}
        error = value = None
        state = TrialState.COMPLETE
        with _heartbeat(storage, trial._trial_id):
            try:
                value = objective(trial, timing)
            except optuna.TrialPruned:
                state = TrialState.PRUNED
            except KeyboardInterrupt:
                study.tell(trial, state=TrialState.FAIL)
                raise
            except Exception as e:  # a crashing trial fails; the study goes on
                state, error = TrialState.FAIL, _reason(e)
                trial.set_user_attr("error", error[:1000])
            for k, v in timing.items():
                trial.set_user_attr(f"seconds_{k}", round(v, 6))
            if state == TrialState.COMPLETE:
                frozen = study.tell(trial, value)
            else:
                frozen = study.tell(trial, state=state)
        run = TrialRun(
            trial.number,
            frozen.state.name,
            frozen.value,
            dict(frozen.params),
            time.perf_counter() - start,
            error,
        )
        done.append(run)
        if on_trial is not None:
            on_trial(run)
    return done


def _reason(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
