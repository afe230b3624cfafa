#!/usr/bin/env python
"""Differential testing, long mode: random valid specs on every target, outputs compared.

    .venv/bin/python scripts/differential.py --count 5000
    .venv/bin/python scripts/differential.py --start 1000 --count 200 --targets onnx,keras
    .venv/bin/python scripts/differential.py --seeds 17,83 --shrink     # reduce failures

Each seed gives one spec (`tools.randspec`), random weights (`tools.testing.random_weights`,
batch_norm statistics included) and random inputs (batch 2, 3 or 1 by seed; dynamic axes 5).
Every target that exists builds it; the outputs are compared with the first target's (torch if
it exists) within the design page's bound, widened by the spec's own float32 noise (the torch
module run in float64; see `tools.randspec.float64_noise`). Keras is slow to build, so by
default it runs on every 5th seed (`--keras-every`). A build or run error on one target while
another runs is a failure too.

With `--shrink`, each failure is reduced (`tools.randspec.shrink`) to a small spec that fails
the same way, written to `--out` (default `build/differential/`) as `seed<N>_<target>.yaml`.
Exit status: 0 if every spec agreed everywhere, 1 otherwise.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import re
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import netspec  # noqa: E402
from tools import randspec  # noqa: E402
from tools.testing import random_inputs, random_weights  # noqa: E402


def batch_of(seed: int) -> int:
    """The batch size for a seed: 2, 3 or 1 (as in tests/test_differential.py)."""
    return (2, 3, 1)[seed % 3]


def run_all(graph, targets: list[str], seed: int) -> tuple[dict, dict]:
    """(outputs per target, error per target) for one graph."""
    w = random_weights(graph, seed=seed)
    x = random_inputs(graph, batch=batch_of(seed), seed=seed)
    results, errors = {}, {}
    for t in targets:
        try:
            results[t] = randspec.run_target(t, graph, w, x)
        except Exception as e:  # noqa: BLE001 - every failure is a finding
            errors[t] = f"{type(e).__name__}: {e}"
    return results, errors


def signature(message: str) -> str:
    """The gist of a failure message, for telling whether a smaller spec fails the same way."""
    m = message.split("\n")[0]
    m = re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "#", m)
    m = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", m)
    return m[:80]


def failures(graph, targets: list[str], seed: int) -> list[tuple[str, str]]:
    """(target, message) for each failure: errors, and outputs that differ from the first
    target that ran."""
    results, errors = run_all(graph, targets, seed)
    out = [(t, e) for t, e in errors.items()]
    if len(results) > 1:
        ref = next(iter(results))
        noise = None
        if "torch" in results:
            w = random_weights(graph, seed=seed)
            x = random_inputs(graph, batch=batch_of(seed), seed=seed)
            noise = randspec.float64_noise(graph, w, x, results["torch"])
        for msg in randspec.disagreements(graph, results, ref, noise):
            out.append((msg.split(" vs ")[0], msg))
    return out


def shrink_failure(spec: dict, target: str, message: str, targets: list[str], seed: int) -> dict:
    want = signature(message)
    kind = "error" if " vs " not in message else "diff"

    def still_fails(s: dict) -> bool:
        g = netspec.loads(randspec.to_yaml(s))
        for t, m in failures(g, targets, seed):
            if t != target:
                continue
            if kind == "diff" and " vs " in m:
                return True
            if kind == "error" and signature(m) == want:
                return True
        return False

    return randspec.shrink(spec, still_fails)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--seeds", help="comma-separated seeds (instead of --start/--count)")
    ap.add_argument(
        "--skip",
        default="",
        help="comma-separated seeds to leave out (known "
        "crashes: a crash ends the run, with a traceback naming the spec)",
    )
    ap.add_argument("--targets", help="comma-separated (default: every target that exists)")
    ap.add_argument("--keras-every", type=int, default=5, help="keras on every Nth seed")
    ap.add_argument("--shrink", action="store_true", help="reduce each failure")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "differential")
    ap.add_argument("--quiet", "-q", action="store_true")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    faulthandler.enable()  # a target that crashes the process: the traceback names the spec
    targets = args.targets.split(",") if args.targets else randspec.available_targets()
    skip = {int(s) for s in args.skip.split(",") if s}
    seeds = [
        s
        for s in (
            [int(s) for s in args.seeds.split(",")]
            if args.seeds
            else range(args.start, args.start + args.count)
        )
        if s not in skip
    ]
    t0 = time.time()
    ran = {t: 0 for t in targets}
    found: list[tuple[int, str, str]] = []
    for n, seed in enumerate(seeds):
        here = [t for t in targets if t != "keras" or seed % args.keras_every == 0 or args.seeds]
        gen = randspec.generate(seed)
        for t in here:
            ran[t] += 1
        for t, msg in failures(gen.graph, here, seed):
            found.append((seed, t, msg))
            print(f"seed {seed} [{gen.family}] {t}: {msg[:300]}", flush=True)
            if args.shrink:
                small = shrink_failure(gen.spec, t, msg, here, seed)
                args.out.mkdir(parents=True, exist_ok=True)
                path = args.out / f"seed{seed}_{t}.yaml"
                path.write_text(randspec.to_yaml(small), encoding="utf-8")
                print(f"  reduced to {path}:\n{randspec.to_yaml(small)}", flush=True)
        if not args.quiet and (n + 1) % 100 == 0:
            print(f"... {n + 1} specs, {len(found)} failures, {time.time() - t0:.0f}s", flush=True)
    runs = ", ".join(f"{t}: {k}" for t, k in ran.items())
    print(
        f"{len(seeds)} specs ({runs}) in {time.time() - t0:.0f}s; {len(found)} failures "
        f"in {len({s for s, _, _ in found})} specs"
    )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
