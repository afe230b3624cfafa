"""Where `netspec build --target onnx` spends its time and memory, step by step.

    python benchmarks/diagnose.py SPEC [--json]

Runs the same code path as the command (`netspec.cli.main(["build", SPEC, "--target", "onnx",
...])`) in this process, with the steps it goes through wrapped from the outside (nothing in
netspec is changed): reading + validating + lowering, drawing the weights, building the graph
and its initializers, the size check `_too_big`, the streamed .onnx write, and writing the
.safetensors; steps the current code does not have are not shown. For
each step: wall time, resident set before and after, and the peak resident set during the step
(VmHWM, reset before each step through /proc/self/clear_refs).
"""

from __future__ import annotations

import functools
import json
import sys
import tempfile
import time
from pathlib import Path

from common import proc_status_kb


def _status(field: str) -> int:
    """A /proc/self/status field in bytes (-1 if missing)."""
    kb = proc_status_kb(field)
    return kb * 1024 if kb >= 0 else -1


def _reset_hwm() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class Recorder:
    def __init__(self):
        self.steps: dict[str, dict] = {}
        self.stack: list[list[int]] = []  # per open step: [peak seen in finished children]
        self.can_reset = _reset_hwm()

    def wrap(self, name: str, fn):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            rss0 = _status("VmRSS")
            gap = _status("VmHWM")  # the peak of the unwrapped code since the last reset
            if self.stack:
                self.stack[-1][0] = max(self.stack[-1][0], gap)
            self.stack.append([0])
            _reset_hwm()
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                dt = time.perf_counter() - t0
                peak = max(_status("VmHWM"), self.stack.pop()[0])
                if self.stack:
                    self.stack[-1][0] = max(self.stack[-1][0], peak)
                _reset_hwm()
                s = self.steps.setdefault(
                    name,
                    {
                        "calls": 0,
                        "seconds": 0.0,
                        "rss_before": rss0,
                        "peak": 0,
                        "rss_after": 0,
                        "gap_peak": gap,
                    },
                )
                s["calls"] += 1
                s["seconds"] += dt
                s["peak"] = max(s["peak"], peak)
                s["rss_after"] = _status("VmRSS")

        return wrapper


def diagnose(spec: str) -> dict:
    t_start = time.perf_counter()
    import onnx

    import netspec
    import netspec.api
    import netspec.build
    import netspec.cli
    import netspec.cli.build
    import netspec.targets.onnx as tonnx
    import netspec.weights

    t_import = time.perf_counter() - t_start
    rec = Recorder()
    base = _status("VmRSS")

    # wrap from the outside, where the callers look the functions up at call time; a step the
    # current code no longer has is simply not shown
    def wrap(owner, attr: str, label: str) -> None:
        fn = getattr(owner, attr, None)
        if callable(fn):
            setattr(owner, attr, rec.wrap(label, fn))

    def shadow(owner, attr: str, module) -> object | None:
        """Give `owner` a private copy of the module it calls as `attr` (to wrap in it)."""
        if getattr(owner, attr, None) is not module:
            return None
        copy = type(sys)(f"{attr}_wrapped")
        for k in dir(module):
            if not k.startswith("__"):
                setattr(copy, k, getattr(module, k))
        setattr(owner, attr, copy)
        return copy

    wrap(netspec.cli.build, "load_spec", "load: read + validate + IR")
    wrap(netspec.build, "load_weights", "init_weights (PCG64 draws)")
    wrap(tonnx, "write", "onnx target write (total)")
    wrap(tonnx, "_build", "  graph + initializers (_build)")
    wrap(tonnx, "_name_output_dims", "  _name_output_dims")
    wrap(tonnx, "_too_big", "_too_big (size check)")
    wrap(tonnx.stream, "write", "streamed .onnx write (stream.write)")
    wrap(netspec.build, "write_weights", "write_weights (.safetensors)")
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        rc = netspec.cli.main(["build", spec, "--target", "onnx", "-o", d, "-q"])
        total = time.perf_counter() - t0
    graph = netspec.load(spec)
    _ = (onnx, netspec.api, netspec.weights)
    return {
        "spec": spec,
        "rc": rc,
        "import_s": t_import,
        "build_s": total,
        "base_rss": base,
        "weight_bytes": 4 * (graph.param_count + graph.buffer_count),
        "hwm_reset": rec.can_reset,
        "steps": rec.steps,
    }


def table(d: dict):
    from common import Table, fmt_mb, fmt_s

    wb = d["weight_bytes"]
    t = Table(
        f"Diagnosis: netspec build --target onnx {Path(d['spec']).name}, in-process, "
        f"steps wrapped from outside (weights {fmt_mb(wb)})",
        ["step", "calls", "time", "RSS before", "peak during", "peak / weights"],
    )
    order = [
        ("load: read + validate + IR", 0),
        ("init_weights (PCG64 draws)", 0),
        ("onnx target write (total)", 0),
        ("  graph + initializers (_build)", 1),
        ("  _name_output_dims", 2),
        ("_too_big (size check)", 1),
        ("streamed .onnx write (stream.write)", 1),
        ("write_weights (.safetensors)", 0),
    ]
    for key, depth in order:
        s = d["steps"].get(key)
        if s is None:
            continue
        name = "  " * depth + key.strip()
        peak = fmt_mb(s["peak"] - d["base_rss"])
        rel = f"{(s['peak'] - d['base_rss']) / wb:.2f}x"
        t.add(
            name,
            s["calls"],
            fmt_s(s["seconds"]),
            fmt_mb(s["rss_before"] - d["base_rss"]),
            peak,
            rel,
        )
    t.notes.append(
        f"imports {fmt_s(d['import_s'])}; build (after imports) {fmt_s(d['build_s'])};"
        " RSS and peaks are relative to the resident set after the imports; a step's "
        "peak includes what was resident before it"
    )
    if not d["hwm_reset"]:
        t.notes.append("/proc/self/clear_refs not writable: peaks are cumulative")
    return t


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    d = diagnose(sys.argv[1])
    if "--json" in sys.argv:
        print(json.dumps(d))
    else:
        print(table(d).text())
    return 0


if __name__ == "__main__":
    sys.exit(main())


def run_table(spec) -> object:
    """The diagnosis of `spec` in a fresh process, as a Table (or a one-row failure table)."""
    from common import BENCH, PY, Table, run_process

    p = run_process([PY, str(BENCH / "diagnose.py"), str(spec), "--json"])
    if p.rc != 0:
        tail = (p.stderr.strip().splitlines() or ["?"])[-1]
        return Table(f"Diagnosis of {Path(spec).name} failed", ["error"], [[tail[:200]]])
    return table(json.loads(p.stdout.strip().splitlines()[-1]))
