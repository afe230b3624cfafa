"""Many `netspec tune` workers on one study: PostgreSQL (the server `.ci/run` starts, its URL in
NETSPEC_TEST_POSTGRES; skipped without one) and an SQLite file (one machine).

A first worker is killed with SIGKILL in the middle of its trial; then two workers run the rest.
The study must end with exactly --trials trials, each run by one worker, both workers having
run some, and the killed worker's trial marked failed by the heartbeat (or, had nobody started a
trial since it went silent, still RUNNING) — never run again.
"""

from __future__ import annotations

import datetime
import os
import re
import signal
import subprocess
import sys
import time
import uuid

import pytest

from tests.conftest import ROOT

optuna = pytest.importorskip("optuna")

TRIALS = 6
HEARTBEAT = 1  # seconds; a trial silent for 2 s is stale


def _postgres_url() -> str:
    url = os.environ.get("NETSPEC_TEST_POSTGRES")
    if not url:
        pytest.skip("no PostgreSQL server (set NETSPEC_TEST_POSTGRES; .ci/run starts one)")
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.Error as e:
        pytest.skip(f"PostgreSQL not reachable: {str(e).splitlines()[0]}")
    return url


def _worker(storage: str, study: str, out) -> subprocess.Popen:
    args = [sys.executable, "-m", "netspec", "tune", ROOT / "specs" / "iris.yaml"]
    args += ["--search", "hidden=2..32:int", "--search", "lr=1e-3..1e-1:log"]
    args += ["--sampler", "random", "--trials", TRIALS, "--epochs", "6", "--seed", "5"]
    args += ["--storage", storage, "--study", study, "--heartbeat", HEARTBEAT, "-o", out]
    args += ["--no-best-model"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [str(a) for a in args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _worker_of(t) -> int:
    return int(t.user_attrs["worker"].rsplit(":", 1)[1])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_workers_share_one_study(tmp_path, backend):
    storage = _postgres_url() if backend == "postgresql" else f"sqlite:///{tmp_path / 's.db'}"
    name = f"netspec-test-{uuid.uuid4().hex[:12]}"

    optuna.storages.RDBStorage(storage)  # the tables, before anyone polls them
    killed = _worker(storage, name, tmp_path / "killed")
    deadline = time.monotonic() + 300
    victim = None
    while victim is None:
        assert time.monotonic() < deadline, "the first worker never started a trial"
        assert killed.poll() is None, killed.communicate()
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:  # not created yet
            study = None
        for t in study.get_trials(deepcopy=False) if study else []:
            if t.state.name == "RUNNING" and "worker" in t.user_attrs:
                victim = t.number
        time.sleep(0.1)
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    killed_at = datetime.datetime.now()

    workers = [_worker(storage, name, tmp_path / f"w{i}") for i in range(2)]
    outs = [w.communicate(timeout=900) for w in workers]
    for w, (_, err) in zip(workers, outs, strict=True):
        assert w.returncode == 0, err

    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == list(range(TRIALS))  # the exact count
    by_worker = {}
    for t in trials:
        by_worker.setdefault(_worker_of(t), []).append(t.number)
    assert by_worker.pop(killed.pid) == [victim]
    ran = [sorted(int(n) for n in re.findall(r"^trial (\d+) ", err, re.M)) for _, err in outs]
    assert sorted(by_worker) == sorted(w.pid for w in workers)  # both workers contributed
    for w, numbers in zip(workers, ran, strict=True):
        assert by_worker[w.pid] == numbers  # what each said it ran is what the study holds
    assert sorted(ran[0] + ran[1] + [victim]) == list(range(TRIALS))  # nothing ran twice

    lost = study.trials[victim]
    grace = datetime.timedelta(seconds=2 * HEARTBEAT + 1)
    later = [t for t in trials if t.datetime_start and t.datetime_start > killed_at + grace]
    assert lost.state.name == "FAIL" if later else lost.state.name in ("FAIL", "RUNNING")
    others = [t.state.name for t in trials if t.number != victim]
    assert set(others) <= {"COMPLETE", "PRUNED"}
    assert study.best_trial.number != victim
