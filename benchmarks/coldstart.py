"""Cold start: `netspec validate` as a whole process vs `python -c pass`.

Contenders (interleaved, same environment, warm page cache after one discarded round):
`python -c pass`, the `netspec` console script validating `specs/mlp.yaml` and
`benchmarks/specs/resnet50.yaml`, and `python -c "import numpy"` for scale. Which modules
`netspec validate` imports is read from `python -X importtime` (the biggest ones listed).
Goal: no framework (torch, tensorflow, keras, jax, onnx, onnxruntime) is imported, and the
whole process stays under 0.5 s. The structure check against the JSON Schema is timed apart (in
one process: building the schema, walking a spec), beside `python -c "import jsonschema"`, the
general validator netspec does not load for it.
"""

from __future__ import annotations

import re

from common import (
    PY,
    ROOT,
    SPECS,
    Context,
    Proc,
    Table,
    fmt_ratio,
    fmt_s,
    fmt_sample,
    goal,
    netspec_cmd,
    run_process,
    time_processes,
)

FRAMEWORKS = ("torch", "tensorflow", "keras", "jax", "onnx", "onnxruntime", "tf_keras")


def imports(argv: list[str]) -> tuple[set[str], list[tuple[int, str]]]:
    """Top-level packages imported by a command, and the import time of each (the sum of its
    modules' self times, us), biggest first."""
    p = run_process([PY, "-X", "importtime", *argv])
    per: dict[str, int] = {}
    for line in p.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)", line)
        if m:
            top = m[3].split(".")[0]
            per[top] = per.get(top, 0) + int(m[1])
    return set(per), sorted(((us, top) for top, us in per.items()), reverse=True)


def run(ctx: Context) -> list[Table]:
    ns = netspec_cmd()
    repeat = max(ctx.repeat, 10)  # these are cheap: more runs, steadier medians
    contenders = {
        "python -c pass": [PY, "-c", "pass"],
        'python -c "import numpy"': [PY, "-c", "import numpy"],
        'python -c "import jsonschema"': [PY, "-c", "import jsonschema"],
        "netspec validate specs/mlp.yaml": [*ns, "validate", str(SPECS["mlp"])],
        "netspec validate resnet50.yaml": [*ns, "validate", str(SPECS["resnet50"])],
    }
    s = time_processes(contenders, repeat, warmup=1, log=lambda m: None)
    base = s["python -c pass"]
    t = Table(
        f"Cold start: whole process (median, min over {repeat} runs)",
        ["command", "time", "minus python -c pass", "/ python -c pass", "peak RSS"],
    )
    for k, v in s.items():
        t.add(
            k,
            fmt_sample(v),
            fmt_s(v.median - base.median) if v.ok else "-",
            fmt_ratio(v.median / base.median if v.ok else float("nan"), 1),
            f"{v.peak_kb / 1024:.0f} MiB",
        )
    # what validate imports (the module that is the console script's target, as it runs it)
    tops, cum = imports(
        [
            "-c",
            "import sys; from netspec.cli import main; "
            f"sys.exit(main(['validate', {str(SPECS['resnet50'])!r}]))",
        ]
    )
    fw = sorted(tops & set(FRAMEWORKS))
    heavy = ", ".join(f"{name} {us / 1e3:.0f} ms" for us, name in cum[:6])
    ok = not fw
    t.notes.append(
        f"frameworks imported by `netspec validate`: {', '.join(fw) or 'none'} ({goal(ok)})"
    )
    t.notes.append(f"import time by package (self times summed, -X importtime, one run): {heavy}")
    t.notes.append(
        "numpy imported: "
        + ("yes" if "numpy" in tops else "no")
        + "; yaml: "
        + ("yes" if "yaml" in tops else "no")
        + "; jsonschema: "
        + ("yes" if "jsonschema" in tops else "no")
    )
    p = run_process([PY, "-c", STRUCTURE, str(SPECS["resnet50"])])
    t.notes.append(f"structure check (JSON Schema walk, in process): {_structure(p)}")
    ctx.findings.append(
        f"coldstart: netspec validate imports no framework: {goal(ok)}"
        + (f" ({', '.join(fw)})" if fw else "")
    )
    v = s["netspec validate specs/mlp.yaml"]
    ctx.findings.append(
        f"coldstart: netspec validate mlp = {fmt_s(v.median)}, "
        f"{fmt_ratio(v.median / base.median, 1)} python -c pass"
    )
    big = s["netspec validate resnet50.yaml"]
    ctx.findings.append(
        f"coldstart: netspec validate resnet50 = {fmt_s(big.median)}, under 0.5 s: "
        f"{goal(big.ok and big.median < 0.5)}"
    )
    _ = ROOT
    return [t]


STRUCTURE = """
import sys, time
t0 = time.perf_counter()
from netspec import schema, structure, yamlload
t1 = time.perf_counter()
root = schema.schema()
t2 = time.perf_counter()
data = yamlload.parse(open(sys.argv[1], "rb").read()).data
t3 = time.perf_counter()
assert structure.first_failure(data, root) is None
t4 = time.perf_counter()
print(t1 - t0, t2 - t1, t4 - t3)
"""


def _structure(p: Proc) -> str:
    try:
        imp, build, walk = (float(x) for x in p.stdout.split())
    except ValueError:
        return "failed: " + p.stderr.strip()[-200:]
    return (
        f"import of netspec's loader {fmt_s(imp)}, schema built from the op table {fmt_s(build)}, "
        f"resnet50.yaml walked {fmt_s(walk)} (one run)"
    )
