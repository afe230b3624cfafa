"""Scaling: compile time and peak memory of 64-, 512- and 4096-layer specs.

The specs are generated into the run's temporary directory: a chain of `dense(128, relu)`,
`layer_norm`, `dense(128)`, `gelu`, repeated (so every layer is a node; weights grow linearly:
33,280 floats per 4 layers, 136 MB at 4096 layers). Each size is compiled in fresh processes by
`benchmarks/scaling_worker.py` (stages: load = validate + IR, torch_src, keras_src, weights,
onnx = ModelProto + serialize to a file); times are medians over the runs. Memory is the peak
resident set's growth over the process's resident set right after its imports (VmHWM - VmRSS
from /proc/self/status), divided by the weight bytes; tracemalloc's peak of Python allocations
(numpy included, protobuf's upb arena not) comes from one extra traced run.
Goals: linear growth (time exponent between 512 and 4096 layers <= 1.15, i.e. 8x the layers
costs at most 8^1.15 = 10.9x the time); peak memory growth <= 1.5x the weight bytes.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics

from common import BENCH, PY, Context, Table, fmt_mb, fmt_s, goal, run_process

SIZES = [64, 512, 4096]
PATTERN = [
    "{op: dense, units: 128, activation: relu}",
    "layer_norm",
    "{op: dense, units: 128}",
    "gelu",
]
STAGES = ["load", "torch_src", "keras_src", "weights", "onnx"]
EXP_GOAL = 1.15
MEM_GOAL = 1.5


def deep_spec(n: int) -> str:
    lines = [
        "netspec: 1",
        f"name: deep_{n}",
        f"description: {n}-layer scaling spec (benchmarks/scaling.py)",
        "inputs:",
        "  x: {shape: [128]}",
        "layers:",
    ]
    lines += [f"  - {PATTERN[i % len(PATTERN)]}" for i in range(n)]
    return "\n".join(lines) + "\n"


def _worker(spec, out, trace=False) -> dict:
    argv = [PY, str(BENCH / "scaling_worker.py"), str(spec), str(out)]
    if trace:
        argv.append("--trace")
    p = run_process(argv)
    if p.rc != 0:
        raise RuntimeError(f"scaling worker failed on {spec}: {p.stderr.strip()[-400:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def run(ctx: Context) -> list[Table]:
    d = ctx.tmp / "scaling"
    d.mkdir(parents=True, exist_ok=True)
    results: dict[int, dict] = {}
    repeat = ctx.repeat
    for n in SIZES:
        spec = d / f"deep_{n}.yaml"
        spec.write_text(deep_spec(n))
        ctx.log(f"  scaling {n} layers")
        _worker(spec, d / "out")  # warm-up (page cache, .pyc), discarded
        shutil.rmtree(d / "out", ignore_errors=True)
        runs = []
        for _ in range(repeat):
            runs.append(_worker(spec, d / "out"))
            shutil.rmtree(d / "out", ignore_errors=True)
        traced = _worker(spec, d / "out", trace=True)
        shutil.rmtree(d / "out", ignore_errors=True)
        stages = [s for s in STAGES if all(s in r["stages"] for r in runs)]
        med = {s: statistics.median(r["stages"][s] for r in runs) for s in stages}
        growth = max(r["hwm_kb"][stages[-1]] - r["base_rss_kb"] for r in runs) * 1024
        results[n] = {
            "med": med,
            "stages": stages,
            "run": runs[0],
            "growth": growth,
            "traced": traced,
            "import": statistics.median(r["import_s"] for r in runs),
        }

    stages = [s for s in STAGES if all(s in results[n]["stages"] for n in SIZES)]
    cols = (
        ["layers", "nodes", "weights"]
        + stages
        + [
            "compile total",
            "per layer",
            "peak RSS growth",
            "/ weights",
            "tracemalloc peak / weights",
            "goal",
        ]
    )
    table = Table(
        f"Scaling: compile time per stage (median of {repeat} processes) and peak memory", cols
    )
    for n in SIZES:
        r = results[n]
        total = sum(r["med"].values())
        wb = r["run"]["weight_bytes"]
        mem_ratio = r["growth"] / wb
        tpeak = r["traced"].get("trace_total_peak", float("nan"))
        table.add(
            n,
            r["run"]["nodes"],
            fmt_mb(wb),
            *(fmt_s(r["med"][s]) for s in stages),
            fmt_s(total),
            f"{total / n * 1e6:.0f} us",
            fmt_mb(r["growth"]),
            f"{mem_ratio:.2f}x",
            f"{tpeak / wb:.2f}x",
            goal(mem_ratio <= MEM_GOAL) if n == SIZES[-1] else "-",
        )
    # growth exponents between the two larger sizes (the smallest is dominated by fixed costs)
    a, b = SIZES[-2], SIZES[-1]
    exps = {}
    for s in [*stages, "total"]:
        ta = sum(results[a]["med"].values()) if s == "total" else results[a]["med"][s]
        tb = sum(results[b]["med"].values()) if s == "total" else results[b]["med"][s]
        exps[s] = math.log(tb / ta) / math.log(b / a) if ta > 0 and tb > 0 else float("nan")
    ex = Table(
        f"Scaling: growth exponent of time, {a} -> {b} layers (1.00 = linear)",
        ["stage", *[s for s in exps], "goal"],
    )
    ex.add("exponent", *(f"{v:.2f}" for v in exps.values()), goal(exps["total"] <= EXP_GOAL))
    ex.add(f"time x ({b // a}x the layers)", *(f"{(b / a) ** v:.1f}x" for v in exps.values()), "-")
    trace = Table(
        f"Scaling: tracemalloc peak per stage at {b} layers, relative to the weight "
        "bytes (Python heap only)",
        ["layers", *results[b]["traced"]["trace_peak"]],
    )
    for n in SIZES:
        wb = results[n]["run"]["weight_bytes"]
        tp = results[n]["traced"]["trace_peak"]
        trace.add(n, *(f"{fmt_mb(v)} ({v / wb:.2f}x)" for v in tp.values()))
    missing = results[SIZES[0]]["run"]["missing"]
    if missing:
        table.notes.append("targets missing, stage not measured: " + "; ".join(missing))
    fw = results[SIZES[0]]["run"]["frameworks"]
    table.notes.append(
        f"frameworks imported by the target modules: {', '.join(fw) or 'none'}; "
        f"import time (not in the totals) {fmt_s(results[SIZES[-1]]['import'])}"
    )
    table.notes.append(
        "peak RSS growth = VmHWM after the last stage - VmRSS after the imports "
        "(largest over the runs); the goal is judged at the largest size"
    )
    wb = results[b]["run"]["weight_bytes"]
    mem = results[b]["growth"] / wb
    ctx.findings.append(
        f"scaling: time exponent {a}->{b} layers = {exps['total']:.2f} "
        f"(goal <= {EXP_GOAL}): {goal(exps['total'] <= EXP_GOAL)}"
    )
    worst = max(stages, key=lambda s: exps[s])
    ctx.findings.append(f"scaling: steepest stage {worst} (exponent {exps[worst]:.2f})")
    ctx.findings.append(
        f"scaling: peak memory growth at {b} layers = {mem:.2f}x the weight bytes "
        f"(goal <= {MEM_GOAL}x): {goal(mem <= MEM_GOAL)}"
    )
    from diagnose import run_table

    ctx.log(f"  diagnosis: netspec build of the {b}-layer spec, step by step")
    return [table, ex, trace, run_table(d / f"deep_{b}.yaml")]
