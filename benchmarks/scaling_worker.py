"""One compile of a spec, stage by stage, in a fresh process; prints a JSON line.

    python benchmarks/scaling_worker.py SPEC OUTDIR [--trace]

Stages: `load` (read + validate + lower to the IR), `torch_src` / `keras_src` (each target's
generated source, `netspec.generate`), `weights` (`init_weights`, seed 0), `onnx` (the ONNX
target's `write`: the model with the weights as initializers, streamed to OUTDIR, what
`netspec build --target onnx` does). Import time is measured but is not part of the compile.

Memory, without --trace: the process's resident set from /proc/self/status, VmRSS right after
the imports (the baseline) and VmHWM (the kernel's high-water mark) after each stage; with
--trace: tracemalloc's peak per stage (Python allocations, numpy buffers included; protobuf's
C++/upb arena is not seen by tracemalloc), and no timings (tracemalloc slows Python down).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from common import proc_status_kb as status_kb


def main() -> int:
    spec, outdir = sys.argv[1], Path(sys.argv[2])
    trace = "--trace" in sys.argv
    outdir.mkdir(parents=True, exist_ok=True)
    res: dict = {"stages": {}, "hwm_kb": {}, "trace_peak": {}, "missing": []}

    t0 = time.perf_counter()
    import netspec
    from netspec import targets

    mods = {}
    for name in targets.names():
        try:
            mods[name] = targets.get(name)
        except Exception as e:  # noqa: BLE001 - a target missing or being written
            res["missing"].append(f"{name}: {e}")
    res["import_s"] = time.perf_counter() - t0
    res["base_rss_kb"] = status_kb("VmRSS")
    res["base_hwm_kb"] = status_kb("VmHWM")
    res["frameworks"] = sorted(m for m in ("torch", "tensorflow", "keras") if m in sys.modules)

    if trace:
        import tracemalloc

        tracemalloc.start()

    state: dict = {}

    def stage(name, fn):
        if trace:
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
        t = time.perf_counter()
        state[name] = fn()
        res["stages"][name] = time.perf_counter() - t
        res["hwm_kb"][name] = status_kb("VmHWM")
        if trace:
            cur, peak = tracemalloc.get_traced_memory()
            res["trace_peak"][name] = peak - before
            res["trace_total_peak"] = max(res.get("trace_total_peak", 0), peak)

    stage("load", lambda: netspec.load(spec))
    g = state["load"]
    res["nodes"] = len(g.nodes)
    res["weight_bytes"] = 4 * (g.param_count + g.buffer_count)
    for name in ("torch", "keras"):
        if name in mods:
            try:
                stage(f"{name}_src", lambda n=name: len(mods[n].generate(g)))
            except Exception as e:  # noqa: BLE001 - a target being written; reported
                res["missing"].append(f"{name}: {type(e).__name__}: {str(e)[:100]}")
    stage("weights", lambda: netspec.init_weights(g, 0))
    if "onnx" in mods:
        w = state["weights"]
        stage("onnx", lambda: mods["onnx"].write(g, w, outdir))
    if trace:
        res["stages"] = {k: None for k in res["stages"]}  # not meaningful under tracemalloc
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
