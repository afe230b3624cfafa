"""`netspec tune` overhead per trial: what a trial costs beyond the training it runs.

The digits MLP (specs/digits_mlp.yaml, 40 epochs, scikit-learn's 1,797 8x8 digits) is tuned
over a one-value space (`hidden=128`), so that every trial trains exactly what `netspec train`
would, with the default storage (an SQLite file, a heartbeat every 30 s), TPE and median pruning
(identical trials never prune). Each trial's wall time runs from the stale-trial sweep before
`ask` to the end of `tell`; its training time is the time inside `netspec.train.run.train`
less the per-epoch callback (Optuna's `report` and `should_prune`). Overhead = trial - training:
Optuna (lock, ask, tell, report, prune, heartbeat) and netspec's per-trial work (the spec
loaded with the trial's params). As a cross-check, the same training run by hand
(`netspec.train()` without tuning) is timed in turns with the trials.

    .venv/bin/python benchmarks/tune_overhead.py [--rounds 8]

Goal: overhead under 5% of the trial's training time.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import tempfile
import time

from common import ROOT, fmt_s, pin_threads

SPEC = ROOT / "specs/digits_mlp.yaml"
GOAL = 0.05


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8, help="trials (and runs by hand) to time")
    args = ap.parse_args()
    pin_threads()

    import netspec
    from netspec.train.run import train
    from netspec.tune import prepare
    from netspec.tune.study import open_storage, open_study, run_trials, train_objective

    setup = prepare(SPEC, ["hidden=128"], sampler="tpe", trials=args.rounds)
    graph = netspec.load(SPEC, {"hidden": 128})
    train(graph, epochs=2)  # warm-up: imports, the generated script's first compile
    by_hand, trials = [], []
    with tempfile.TemporaryDirectory() as tmp:
        rdb = open_storage(f"sqlite:///{os.path.join(tmp, 'study.db')}")
        study = open_study(setup, rdb, "overhead")
        objective = functools.partial(train_objective, setup)
        for i in range(args.rounds):
            order = ("hand", "tune") if i % 2 == 0 else ("tune", "hand")
            for who in order:
                if who == "hand":
                    t = time.perf_counter()
                    train(graph)
                    by_hand.append(time.perf_counter() - t)
                else:
                    (run,) = run_trials(study, rdb, objective, trials=i + 1, sampler="tpe", limit=1)
                    attrs = study.trials[run.number].user_attrs
                    assert run.state == "COMPLETE", run
                    trials.append((run.seconds, attrs["seconds_train"], attrs["seconds_report"]))
            wall, training, _ = trials[-1]
            print(
                f"round {i + 1}: trial {fmt_s(wall)}, its training {fmt_s(training)}, "
                f"overhead {(wall - training) / training:.2%}; by hand {fmt_s(by_hand[-1])}",
                flush=True,
            )

    wall = [t for t, _, _ in trials]
    training = [tr for _, tr, _ in trials]
    overhead = [t - tr for t, tr, _ in trials]
    report = [r for _, _, r in trials]
    ratio = statistics.median(o / tr for o, tr in zip(overhead, training, strict=True))
    hand = statistics.median(by_hand)
    vs_hand = statistics.median(wall) / hand - 1
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"tune overhead per trial, digits MLP (40 epochs), {args.rounds} trials; load {load}")
    print()
    print("| measure | median | min |")
    print("| --- | ---: | ---: |")
    for name, xs in (
        ("trial (sweep, lock, ask ... tell)", wall),
        ("training inside the trial", training),
        ("overhead = trial - training", overhead),
        ("  of which report + should_prune (40 epochs)", report),
        ("the same training by hand (netspec.train)", by_hand),
    ):
        print(f"| {name} | {fmt_s(statistics.median(xs))} | {fmt_s(min(xs))} |")
    print()
    print(f"overhead / training (median per trial): {ratio:.2%}  (goal < {GOAL:.0%}: ", end="")
    print("met)" if ratio < GOAL else "NOT met)")
    print(f"trial / training by hand - 1 (cross-check, noisier): {vs_hand:+.2%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
