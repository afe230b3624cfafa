"""`netspec tune`: the search-space parser, the trial loop (exact counts under concurrency, a
crashing trial fails and the study goes on), TPE against random search, grid search against
trainings by hand, and the command with its default SQLite storage and its input errors."""

from __future__ import annotations

import csv
import json
import math
import statistics
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT, run_cli

optuna = pytest.importorskip("optuna")

from netspec.tune.space import (  # noqa: E402
    SpaceError,
    TuneError,
    grid_space,
    parse_space,
    parse_spaces,
)

IRIS = ROOT / "specs" / "iris.yaml"


# ---- the search-space parser ----------------------------------------------------------------


def test_choices_keep_their_types():
    s = parse_space("hidden=8,16,32")
    assert s.choices == (8, 16, 32) and all(type(c) is int for c in s.choices)
    mixed = parse_space("act=relu, tanh,0.5,true")
    assert mixed.choices == ("relu", "tanh", 0.5, True)
    assert parse_space("hidden=8").choices == (8,)


@pytest.mark.parametrize(
    ("arg", "fields"),
    [
        ("lr=1e-4..1e-1:log", {"low": 1e-4, "high": 0.1, "log": True, "integer": False}),
        ("rate=0..0.5", {"low": 0.0, "high": 0.5, "log": False, "step": None}),
        ("units=8..64:int", {"low": 8, "high": 64, "integer": True}),
        ("units=8..64:int:step=8", {"low": 8, "high": 64, "integer": True, "step": 8}),
        ("rate=0..0.5:step=0.1", {"low": 0.0, "high": 0.5, "step": 0.1}),
        ("units=1..512:int:log", {"low": 1, "high": 512, "integer": True, "log": True}),
    ],
)
def test_ranges(arg, fields):
    s = parse_space(arg)
    for k, v in fields.items():
        assert getattr(s, k) == v, k
        if k in ("low", "high"):
            assert type(getattr(s, k)) is type(v)
    assert parse_space(f"{s.name}={s.describe()}") == s  # what a study stores reads back


def test_grid_values():
    assert parse_space("u=8..32:int:step=8").grid() == [8, 16, 24, 32]
    assert parse_space("r=0..0.5:step=0.1").grid() == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert parse_space("r=0..0.5").grid() is None
    assert grid_space({"h": parse_space("h=4,8"), "u": parse_space("u=1..2:int")}) == {
        "h": [4, 8],
        "u": [1, 2],
    }
    with pytest.raises(TuneError, match="cannot enumerate"):
        grid_space({"lr": parse_space("lr=1e-4..1e-1:log")})


@pytest.mark.parametrize(
    ("arg", "col", "words"),
    [
        ("lr=1e-4..x:log", 10, "upper bound 'x' is not a number"),
        ("lr=1e-4..1e-1:lgo", 15, "did you mean 'log'"),
        ("hidden=8,,16", 10, "an empty choice"),
        ("hidden", 7, "expected NAME=SPACE"),
        ("=8,16", 1, "name is missing"),
        ("rate=0.5..0", 6, "must be below"),
        ("lr=0..1:log", 4, "lower bound above 0"),
        ("u=1.5..3:int", 3, "whole numbers"),
        ("lr=1e-3..1:log:step=0.1", 4, "not both"),
        ("r=0..1:step=0", 13, "above 0"),
        ("r=0..1..2", 7, "one '..'"),
        ("hidden=8,8", 10, "listed twice"),
        ("x=.inf..2", 3, "finite"),
    ],
)
def test_bad_spaces_say_where(arg, col, words):
    with pytest.raises(SpaceError) as e:
        parse_space(arg)
    text = str(e.value)
    assert words in text and f"(column {col})" in text
    caret_line = text.splitlines()[2]
    assert caret_line.index("^") == len("    --search ") + col - 1


def test_unknown_param_did_you_mean():
    with pytest.raises(SpaceError, match="did you mean 'hidden'"):
        parse_spaces(["hiden=1,2"], ["hidden", "lr"])
    with pytest.raises(SpaceError, match="the spec's params: hidden, lr"):
        parse_spaces(["depth=1,2"], ["hidden", "lr"])
    with pytest.raises(SpaceError, match="searched twice"):
        parse_spaces(["lr=0.1,0.2", "lr=0..1"], ["lr"])


# ---- the trial loop, on objectives that train nothing ------------------------------------------


def _memory_study(sampler: str, direction: str = "minimize"):
    """A study in this process's memory (no lock needed: run_trials takes None)."""
    from netspec.tune.study import quiet_optuna

    return quiet_optuna().create_study(direction=direction), None


def _toy(spaces):
    """A cheap objective through the space parser: a bowl in (x, y) plus a categorical cost."""
    cost = {"a": 0.0, "b": 4.0, "c": 9.0}

    def objective(trial, timing):
        v = {name: s.suggest(trial) for name, s in spaces.items()}
        return (v["x"] - 1.3) ** 2 + (math.log10(v["lr"]) + 2.5) ** 2 + cost[v["kind"]]

    return objective


def test_tpe_beats_random_search():
    from netspec.tune.study import run_trials

    spaces = parse_spaces(["x=-5..5", "lr=1e-5..1:log", "kind=a,b,c"], ["x", "lr", "kind"])
    best = {"tpe": [], "random": []}
    for seed in range(7):
        for sampler in best:
            study, rdb = _memory_study(sampler)
            run_trials(study, rdb, _toy(spaces), trials=20, sampler=sampler, seed=seed)
            assert len(study.trials) == 20
            best[sampler].append(study.best_value)
    tpe, rnd = statistics.median(best["tpe"]), statistics.median(best["random"])
    assert tpe < rnd, (best, tpe, rnd)


def test_trials_are_reproducible_from_the_seed():
    from netspec.tune.study import run_trials

    spaces = parse_spaces(["x=-5..5", "lr=1e-5..1:log", "kind=a,b,c"], ["x", "lr", "kind"])
    params = []
    for _ in range(2):
        study, rdb = _memory_study("tpe")
        run_trials(study, rdb, _toy(spaces), trials=12, sampler="tpe", seed=3)
        params.append([t.params for t in study.trials])
    assert params[0] == params[1]


def test_a_crashing_trial_fails_and_the_study_goes_on():
    from netspec.tune.study import run_trials

    spaces = parse_spaces(["x=-5..5", "lr=1e-5..1:log", "kind=a,b,c"], ["x", "lr", "kind"])
    toy = _toy(spaces)

    def objective(trial, timing):
        if trial.number in (1, 3):
            raise RuntimeError(f"boom in trial {trial.number}")
        if trial.number == 4:
            raise optuna.TrialPruned()
        return toy(trial, timing)

    study, rdb = _memory_study("random")
    ran = run_trials(study, rdb, objective, trials=6, sampler="random")
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "FAIL", "COMPLETE", "FAIL", "PRUNED", "COMPLETE"]
    assert [r.number for r in ran] == list(range(6))
    assert "boom in trial 3" in ran[3].error
    assert study.trials[1].user_attrs["error"] == "RuntimeError: boom in trial 1"


WORKER = textwrap.dedent(
    """
    import sys, time
    from netspec.tune.space import parse_spaces
    from netspec.tune.study import open_storage, quiet_optuna, run_trials

    opt = quiet_optuna()
    rdb = open_storage(sys.argv[1], heartbeat=5)
    study = opt.create_study(storage=rdb, study_name="toy", load_if_exists=True)
    spaces = parse_spaces(["x=-5..5"], ["x"])

    def objective(trial, timing):
        time.sleep(0.05)
        return spaces["x"].suggest(trial) ** 2

    ran = run_trials(study, rdb, objective, trials=int(sys.argv[2]), sampler="random")
    print(" ".join(str(r.number) for r in ran))
    """
)


def test_sqlite_workers_make_the_exact_trial_count(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    cmd = [sys.executable, "-c", WORKER, url, "24"]
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    mine = [[int(n) for n in out.split()] for out, _ in outs]
    numbers = sorted(n for m in mine for n in m)
    assert numbers == list(range(24))  # each trial run once, none beyond the count
    assert sum(1 for m in mine if m) >= 2  # the workers shared the work
    study = optuna.load_study(study_name="toy", storage=url)
    assert len(study.trials) == 24 and all(t.state.name == "COMPLETE" for t in study.trials)


# ---- the command: input errors -----------------------------------------------------------------


def test_cli_bad_space_says_which_argument():
    rc, out, err = run_cli(["tune", IRIS, "--search", "hidden=4,8", "--search", "lr=1e-3..x:log"])
    assert rc == 2 and out == ""
    assert "--search lr=1e-3..x:log: the upper bound 'x' is not a number" in err
    assert "Traceback" not in err


def test_cli_unknown_param(tmp_path):
    rc, _, err = run_cli(["tune", IRIS, "--search", "hiddn=4,8", "-o", tmp_path / "o"])
    assert rc == 2 and "no param 'hiddn'" in err and "did you mean 'hidden'?" in err
    assert not (tmp_path / "o").exists()


def test_cli_space_the_spec_refuses(tmp_path):
    rc, _, err = run_cli(["tune", IRIS, "--search", "hidden=0..8", "-o", tmp_path / "o"])
    assert rc == 2 and "the spec does not accept hidden=0.0" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        (
            "postgresql://user:s3cret@127.0.0.1:1/db",
            "cannot open the storage postgresql://user:***@",
        ),
        ("postgres://user:s3cret@127.0.0.1:1/db", "write postgresql://"),
        ("redis://127.0.0.1/0", "not a storage netspec tune can share"),
    ],
)
def test_cli_unreachable_storage_is_one_line(tmp_path, url, words):
    pytest.importorskip("psycopg")
    rc, out, err = run_cli(
        ["tune", IRIS, "--search", "hidden=4,8", "--storage", url, "-o", tmp_path / "o"]
    )
    assert rc == 2 and out == "" and words in err, err
    assert "s3cret" not in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if not line.startswith("  hint:")]) == 1


def test_cli_needs_validation_data(tmp_path):
    text = IRIS.read_text().replace("  validation: 0.2\n", "").split("  early_stopping")[0]
    assert text != IRIS.read_text()
    (tmp_path / "novalid.yaml").write_text(text)
    rc, _, err = run_cli(["tune", tmp_path / "novalid.yaml", "--search", "hidden=4,8"])
    assert rc == 2 and "tuning needs validation data" in err
    rc, _, err = run_cli(
        ["tune", IRIS, "--search", "hidden=4,8", "--monitor", "val_acuracy", "-o", tmp_path]
    )
    assert rc == 2 and "did you mean 'val_accuracy'?" in err


# ---- the command: real trainings -------------------------------------------------------------


@pytest.mark.slow
def test_grid_search_finds_the_best_of_the_trainings_by_hand(tmp_path):
    """hidden=4,8,16 on iris: the grid's values are those of three `netspec train` runs."""
    import netspec
    from netspec.train.run import train
    from netspec.tune import tune

    epochs = 12
    by_hand = {}
    for h in (4, 8, 16):
        run = train(netspec.load(IRIS, {"hidden": h}), epochs=epochs)
        by_hand[h] = run.metrics["validation"]["loss"]
    result = tune(
        IRIS, ["hidden=4,8,16"], sampler="grid", epochs=epochs, out=tmp_path, best_model=False
    )
    found = {row["hidden"]: row["value"] for row in result.table}
    assert found == by_hand
    assert result.best_params == {"hidden": min(by_hand, key=by_hand.get)}
    assert result.best_value == min(by_hand.values())


@pytest.mark.slow
def test_cli_sqlite_default(tmp_path):
    """The default storage: study.db in -o; the report, the best model; --resume goes on."""
    out = tmp_path / "tuned"
    args = ["tune", IRIS, "--search", "hidden=2..24:int", "--search", "lr=1e-3..1e-1:log"]
    args += ["--sampler", "random", "--trials", "3", "--epochs", "4", "-o", out, "--seed", "1"]
    rc, stdout, err = run_cli(args)
    assert rc == 0, err
    for name in ("study.db", "trials.csv", "best.json", "history.png", "best/iris.onnx"):
        assert (out / name).is_file(), name
    assert str(out / "best" / "iris.safetensors") in stdout.split()
    with open(out / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["trial"] for r in rows] == ["0", "1", "2"]
    best = json.loads((out / "best.json").read_text())
    done = [r for r in rows if r["state"] == "COMPLETE"]
    assert best["best"]["value"] == min(float(r["value"]) for r in done)
    assert best["best"]["model"]["val_loss"] == pytest.approx(best["best"]["value"], rel=1e-6)
    assert "best: trial" in err

    rc, _, err = run_cli(args)  # the same folder again, without --resume
    assert rc == 2 and "--resume" in err
    rc, _, err = run_cli([*args[:-4], "--trials", "4", "-o", out, "--seed", "1", "--resume"])
    assert rc == 0, err
    study = optuna.load_study(study_name="iris", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 4
